"""WGAN-GP under fp32, bf16 and fp16 mixed precision: same seed, penalty values compared, NaNs looked for.

    python benchmarks/precision.py [--steps 300]      # on the GPU machine
    python benchmarks/precision.py --toy --steps 300  # the MLP WGAN-GP on the ring: quick on a CPU

Trains configs/wgan_gp_mnist.yaml (28x28 DCGAN networks, layer-norm critic) on noise images of MNIST's
shape (``--toy``: configs/wgan_gp_ring.yaml on its ring; a CPU's bf16 and fp16 convolutions are too slow for
the image networks), once per precision, logging every generator step. Prints, per precision, the gradient
penalty of the very first critic step (same weights, same batch) and its relative difference from fp32's,
how many generator steps logged a NaN or infinite value, the last penalty and the GradScaler's final scale. Under
16-mixed the penalty differentiates the critic's mean score multiplied by the GradScaler's scale and unscales
inside the graph (gan_modules/regularizers.py). On a CPU,
16-mixed is Lightning's MixedPrecision plugin given explicitly (its ``precision`` flag falls back to bf16
there): fp16 autocast and a GradScaler on the CPU, the same code path as on a GPU, only slower.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

ROOT = Path(__file__).resolve().parents[1]
QUIET = ROOT / "configs" / "debug" / "quiet.yaml"  # no progress bar, summary or logger
sys.path.insert(0, str(ROOT))

from main import cli_main  # noqa: E402


class _Record(Callback):
    """Keeps every generator step's logged values, and the GradScaler's scale when there is one."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []
        self._last = -1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.g_steps != self._last and pl_module.latest_metrics.get("train/g_step") == pl_module.g_steps:
            self._last = pl_module.g_steps
            scaler = getattr(trainer.precision_plugin, "scaler", None)
            scale = {"scale": scaler.get_scale()} if scaler is not None and scaler.is_enabled() else {}
            self.rows.append({**pl_module.latest_metrics, **scale})


IMAGE = ["--config", str(ROOT / "configs" / "wgan_gp_mnist.yaml"), "--data", "datamodules.RandomImages",
         "--data.init_args.image_size", "28", "--data.init_args.channels", "1", "--data.init_args.batch_size", "64"]
TOY = ["--config", str(ROOT / "configs" / "wgan_gp_ring.yaml")]


def run(precision: str, steps: int, accelerator: str, runs: str, setup: list[str], n_critic: int | None = None
        ) -> list[dict[str, float]]:
    record = _Record()
    if precision == "16-mixed" and accelerator == "cpu":
        plugin = {"class_path": "lightning.pytorch.plugins.MixedPrecision",
                  "init_args": {"precision": "16-mixed", "device": "cpu"}}
        how = ["--trainer.plugins", json.dumps(plugin)]
    else:
        how = ["--trainer.precision", precision]
    critic = ["--model.init_args.n_critic", str(n_critic)] if n_critic else []
    cli = cli_main([*setup, "--runs_dir", runs, *how, *critic, "--trainer.accelerator", accelerator,
                    "--trainer.log_every_n_steps", "1",
                    "--config", str(QUIET), "--trainer.callbacks", "[]",
                    "--checkpoint.save_last", "false"], run=False)
    cli.trainer.callbacks.append(record)
    cli.trainer.fit_loop.epoch_loop.max_steps = steps  # generator steps
    try:
        cli.trainer.fit(cli.model, cli.datamodule)
    except FloatingPointError as err:  # the lab stops on NaN: report it as such
        record.rows.append({"error": str(err)})
    return record.rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="generator steps per run")
    parser.add_argument("--toy", action="store_true", help="the MLP WGAN-GP on the ring instead of the 28x28 DCGAN")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    accelerator = "gpu" if cuda else "cpu"
    setup = TOY if args.toy else IMAGE
    first, results = {}, {}
    with tempfile.TemporaryDirectory() as runs:
        os.environ.setdefault("WANDB_MODE", "offline")
        for precision in ["32-true", "bf16-mixed", "16-mixed"]:
            # the penalty of the very first critic step: same weights, same batch, before any update (n_critic
            # 1 logs it); later steps differ anyway, because fp16 skips its first steps while the scale drops
            first[precision] = run(precision, 1, accelerator, runs, setup, n_critic=1)[0]["train/gp"]
            results[precision] = run(precision, args.steps, accelerator, runs, setup)
    where = torch.cuda.get_device_name() if cuda else f"CPU ({torch.get_num_threads()} threads)"
    what = "MLP on the ring (wgan_gp_ring.yaml)" if args.toy else "28x28 DCGAN networks, noise data"
    print(f"\nWGAN-GP, {what}, seed 0, {args.steps} generator steps, {where}, torch {torch.__version__}\n")
    print("| precision | first penalty | rel. diff to fp32 | generator steps with a non-finite value | last penalty "
          "| loss scale at the end |")
    print("|---|---|---|---|---|---|")
    for precision, rows in results.items():
        diff = abs(first[precision] - first["32-true"]) / max(abs(first["32-true"]), 1e-8)
        if rows and "error" in rows[-1]:
            print(f"| {precision} | {first[precision]:.4f} | {diff:.4f} | stopped: {rows[-1]['error'][:80]} | | |")
            continue
        bad = sum(not all(math.isfinite(v) for v in r.values()) for r in rows)
        scale = f"{rows[-1]['scale']:.0f}" if "scale" in rows[-1] else "-"
        print(f"| {precision} | {first[precision]:.4f} | {diff:.4f} | {bad} of {len(rows)} | "
              f"{rows[-1]['train/gp']:.4f} | {scale} |")


if __name__ == "__main__":
    main()
