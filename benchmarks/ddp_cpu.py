"""Which data-parallel mechanism works for GANs: two CPU processes (gloo), WGAN-GP on the ring.

    python benchmarks/ddp_cpu.py [--steps 100]   # generator steps

For Lightning's ``ddp``, ``ddp_find_unused_parameters_true`` and this lab's ``gan_ddp``, runs
``main.py fit`` with 2 processes and prints whether it finished, its first error, generator steps per
second, and whether both ranks ended with identical weights; a single-process run is the baseline.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

ROOT = Path(__file__).resolve().parents[1]
QUIET = ROOT / "configs" / "debug" / "quiet.yaml"  # no progress bar, summary or logger


class SaveRankWeights(Callback):
    """Each rank writes its final weights to <run folder>/rank<r>.pt."""

    def on_train_end(self, trainer, pl_module) -> None:
        path = Path(trainer.default_root_dir) / f"rank{trainer.global_rank}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({k: v.detach().cpu() for k, v in pl_module.state_dict().items()}, path)


def run(strategy: str, devices: int, steps: int, runs: Path) -> dict:
    cmd = [sys.executable, str(ROOT / "main.py"), "fit", "--config", str(ROOT / "configs" / "wgan_gp_ring.yaml"),
           "--config", str(QUIET), "--runs_dir", str(runs / strategy),
           "--trainer.max_steps", str(steps), "--data.init_args.num_samples", "20000",
           "--trainer.devices", str(devices), "--trainer.accelerator", "cpu", "--trainer.strategy", strategy,
           "--trainer.callbacks+=ddp_cpu.SaveRankWeights", "--checkpoint.save_last", "false"]
    env = {**os.environ, "PYTHONPATH": f"{Path(__file__).parent}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - start
    errors = re.findall(r"(\w*(?:Error|Exception): .*)$", proc.stderr, flags=re.M)
    folders = sorted((runs / strategy / "wgan_gp_ring").glob("*/"))
    ranks = sorted(folders[-1].glob("rank*.pt")) if folders else []
    same = None
    if len(ranks) == devices > 1:
        states = [torch.load(p, weights_only=True) for p in ranks]
        same = all(torch.equal(states[0][k], s[k]) for s in states[1:] for k in states[0])
    return {"ok": proc.returncode == 0, "error": errors[0][:110] if errors else "", "wall": wall,
            "g_steps_per_s": steps / wall if proc.returncode == 0 else 0.0, "same": same}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100, help="generator steps")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [("single process (baseline)", run("auto", 1, args.steps, Path(tmp)))]
        for strategy in ("ddp", "ddp_find_unused_parameters_true", "gan_ddp"):
            rows.append((strategy, run(strategy, 2, args.steps, Path(tmp))))
    print(f"\nWGAN-GP ring, {args.steps} generator steps, 2 CPU processes (gloo), 1 thread each, torch "
          f"{torch.__version__}; wall time includes start-up\n")
    print("| strategy | finished | ranks identical | G steps/s | first error |")
    print("|---|---|---|---|---|")
    for name, r in rows:
        same = "-" if r["same"] is None else ("yes" if r["same"] else "NO")
        print(f"| {name} | {'yes' if r['ok'] else 'no'} | {same} | {r['g_steps_per_s']:.1f} | {r['error']} |")


if __name__ == "__main__":
    main()
