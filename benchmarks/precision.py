"""WGAN-GP under fp32, bf16 and fp16 mixed precision: same seed, penalty values compared, NaNs looked for.

    python benchmarks/precision.py [--steps 300]

Trains configs/wgan_gp_mnist.yaml (28x28 DCGAN networks, layer-norm critic) on noise images of MNIST's
shape, once per precision, logging every generator step. Prints, per precision, the gradient penalty at the
first generator steps, its largest relative difference from fp32 over those steps, and whether any logged
value was NaN or infinite over the whole run. Under 16-mixed the penalty differentiates the critic's scores
multiplied by the GradScaler's scale and unscales inside the graph (gan_modules/regularizers.py). On a CPU,
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
sys.path.insert(0, str(ROOT))

from main import cli_main  # noqa: E402


class _Record(Callback):
    """Keeps every generator step's logged values."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []
        self._last = -1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.g_steps != self._last and pl_module.latest_metrics.get("train/g_step") == pl_module.g_steps:
            self._last = pl_module.g_steps
            self.rows.append(dict(pl_module.latest_metrics))


def run(precision: str, steps: int, accelerator: str, runs: str) -> list[dict[str, float]]:
    record = _Record()
    if precision == "16-mixed" and accelerator == "cpu":
        plugin = {"class_path": "lightning.pytorch.plugins.MixedPrecision",
                  "init_args": {"precision": "16-mixed", "device": "cpu"}}
        how = ["--trainer.plugins", json.dumps(plugin)]
    else:
        how = ["--trainer.precision", precision]
    cli = cli_main(["--config", str(ROOT / "configs" / "wgan_gp_mnist.yaml"), "--runs_dir", runs, *how,
                    "--trainer.accelerator", accelerator,
                    "--trainer.max_steps", str(steps * 6), "--trainer.log_every_n_steps", "1",
                    "--trainer.logger", "false", "--trainer.enable_progress_bar", "false", "--trainer.callbacks", "[]",
                    "--checkpoint.save_last", "false", "--data", "datamodules.RandomImages",
                    "--data.init_args.image_size", "28", "--data.init_args.channels", "1",
                    "--data.init_args.batch_size", "64"], run=False)
    cli.trainer.callbacks.append(record)
    try:
        cli.trainer.fit(cli.model, cli.datamodule)
    except FloatingPointError as err:  # the lab stops on NaN: report it as such
        record.rows.append({"error": str(err)})
    return record.rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="generator steps per run")
    parser.add_argument("--compare", type=int, default=5, help="first generator steps whose penalties are compared")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    precisions = ["32-true", "bf16-mixed", "16-mixed"]
    accelerator = "gpu" if cuda else "cpu"
    results = {}
    with tempfile.TemporaryDirectory() as runs:
        os.environ.setdefault("WANDB_MODE", "offline")
        for precision in precisions:
            results[precision] = run(precision, args.steps, accelerator, runs)
    base = [r["train/gp"] for r in results["32-true"][: args.compare]]
    where = torch.cuda.get_device_name() if cuda else f"CPU ({torch.get_num_threads()} threads)"
    print(f"\nWGAN-GP, 28x28 DCGAN networks, noise data, seed 0, {args.steps} generator steps, {where}, "
          f"torch {torch.__version__}\n")
    print(f"| precision | penalty at generator steps 1..{args.compare} | max rel. diff to fp32 | finite throughout |")
    print("|---|---|---|---|")
    for precision, rows in results.items():
        if rows and "error" in rows[-1]:
            print(f"| {precision} | - | - | no: {rows[-1]['error'][:80]} |")
            continue
        gps = [r["train/gp"] for r in rows[: args.compare]]
        diff = max(abs(a - b) / max(abs(b), 1e-8) for a, b in zip(gps, base, strict=False))
        finite = all(math.isfinite(v) for r in rows for v in r.values())
        print(f"| {precision} | {', '.join(f'{g:.4f}' for g in gps)} | {diff:.3f} | {'yes' if finite else 'NO'} "
              f"({len(rows)} steps) |")


if __name__ == "__main__":
    main()
