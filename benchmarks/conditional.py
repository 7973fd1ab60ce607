"""Conditional GANs: does every class land where it was asked to?

    python benchmarks/conditional.py --part ring --ring_budget 180            # (a) the labeled ring, CPU minutes
    python benchmarks/conditional.py --part mnist --budget 600 --classifier /path/to/classifier.ckpt   # (b)
    python benchmarks/conditional.py --smoke                                  # seconds: every row, tiny budgets

(a) Trains configs/cgan_ring.yaml for ``--ring_budget`` seconds and draws 2,500 samples per class; for each
    class, the share of its samples within 3 std of its *own* mode (target >= 95% for every class). Baseline:
    the real data's own share (about 98.9%, the mass of a 2-D Gaussian within 3 sigma).
(b) Trains each conditional MNIST config for ``--budget`` seconds on the offline 5k digits (``make
    mnist-offline``) and scores ``--per_class`` samples of every digit with the lab's digit classifier
    (callbacks.ConditionalFID): conditional accuracy (the share read as the asked digit; mean and worst
    digit) and intra-class FID (per-digit FID in the classifier's feature space, averaged), plus the plain FID.
    Baseline row: the real digits themselves, one half scored against the other.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.mnist_quality import budget_steps  # noqa: E402
from callbacks.conditional import ConditionalFID  # noqa: E402
from datamodules.scoring import own_mode_shares  # noqa: E402
from main import cli_main  # noqa: E402

MNIST_CONFIGS = ["cgan_mnist", "cdcgan_proj_mnist", "acgan_mnist"]
QUIET = ["--config", str(ROOT / "configs" / "debug" / "quiet.yaml")]


def train(config: str, runs: str, budget: int, *extra: str) -> object:
    """Fit ``config`` for ``budget`` seconds (no callbacks, no checkpoints); a config with a learning-rate
    schedule stops at its own max_steps, where the rates reach zero, if that comes first."""
    return cli_main(["fit", "--config", str(ROOT / "configs" / f"{config}.yaml"), "--runs_dir", runs,
                     *budget_steps(config), "--trainer.callbacks", "[]",
                     "--trainer.max_time", f"00:{budget // 3600:02d}:{budget // 60 % 60:02d}:{budget % 60:02d}",
                     "--checkpoint.save_last", "false", "--checkpoint.every_n_train_steps", "0", *QUIET, *extra])


def ring(runs: str, budget: int, per_class: int, extra: list[str]) -> None:
    cli = train("cgan_ring", runs, budget, *extra)
    dm, model = cli.datamodule, cli.model
    labels = torch.arange(dm.num_classes).repeat_interleave(per_class)
    torch.manual_seed(0)
    fake = own_mode_shares(model.sample(labels=labels), labels, dm.means, dm.std)
    real_x, real_y = dm.real_samples(per_class * dm.num_classes, labels=True)
    real = own_mode_shares(real_x, real_y, dm.means, dm.std)
    print(f"\n(a) Conditional ring (configs/cgan_ring.yaml), {budget} s of training on "
          f"{torch.get_num_threads()} CPU thread(s), {model.g_steps} generator steps; {per_class} samples per "
          "class; share of each class's samples within 3 std of its own mode\n")
    print("| | " + " | ".join(f"class {c}" for c in range(dm.num_classes)) + " | worst |")
    print("|---" * (dm.num_classes + 2) + "|")
    for name, shares in (("real data", real), ("cgan_ring", fake)):
        print(f"| {name} | " + " | ".join(f"{100 * s:.1f}%" for s in shares) + f" | {100 * min(shares):.1f}% |")
    print(f"\ntarget >= 95% for every class: {'met' if min(fake) >= 0.95 else 'NOT met'}", flush=True)


class RealDigits:
    """Stands in for a generator: 'samples' of class c are real digits of class c from the held-out half."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> None:
        self.num_classes, self.latent_dim, self.device = num_classes, 1, torch.device("cpu")
        self.pools = {c: iter(images[labels == c].split(50)) for c in range(num_classes)}
        self._buffer: dict[int, torch.Tensor] = {c: images[:0] for c in range(num_classes)}

    def sample(self, n: int | None = None, z: torch.Tensor | None = None, use_ema: bool = True,
               labels: torch.Tensor | None = None) -> torch.Tensor:
        c = int(labels[0])
        while len(self._buffer[c]) < len(labels):
            self._buffer[c] = torch.cat([self._buffer[c], next(self.pools[c])])
        out, self._buffer[c] = self._buffer[c][: len(labels)], self._buffer[c][len(labels):]
        return out


def real_baseline(trainer: object, classifier: str, cache: str) -> dict[str, float]:
    """Label accuracy and intra-FID of the real digits: the second half scored against the first half."""
    dm = trainer.datamodule
    x, y = dm.real_samples(len(dm.images), labels=True)
    half = len(x) // 2
    per_class = int(torch.bincount(y[half:]).min())
    fid = ConditionalFID(feature="classifier", weights_path=classifier, num_samples=half, kid=False,
                         per_class=per_class, cache_dir=cache)
    original = dm.real_samples
    dm.real_samples = lambda n, seed=0, labels=False: (x[:half], y[:half]) if labels else x[:half]
    try:
        return fid.class_scores(trainer, RealDigits(x[half:], y[half:], 10)) | {"per_class": per_class}
    finally:
        dm.real_samples = original


def worst_class(scores: dict[str, float]) -> str:
    """The worst class's label accuracy and which class it is, e.g. ``88.2% (digit 9)``."""
    per_class = {k.rsplit("/", 1)[1]: v for k, v in scores.items() if k.startswith("val/label_accuracy/")}
    worst = min(per_class, key=per_class.get)
    return f"{100 * per_class[worst]:.1f}% (digit {worst})"


def mnist(runs: str, budget: int, configs: list[str], classifier: str, per_class: int, extra: list[str]) -> None:
    rows, baseline = [], None
    for config in configs:
        cli = train(config, runs, budget, *extra)
        if baseline is None:
            baseline = real_baseline(cli.trainer, classifier, str(Path(runs, "baseline-cache")))
        fid = ConditionalFID(feature="classifier", weights_path=classifier, num_samples=2500,
                             kid_subset_size=1000, per_class=per_class, cache_dir=str(Path(runs, "fid-cache")))
        scores = fid.evaluate(cli.trainer, cli.model)
        rows.append((config, cli.model.g_steps, scores))
        print(config, cli.model.g_steps, {k: round(v, 4) for k, v in scores.items()}, flush=True)
    print(f"\n(b) Conditional MNIST on the offline 5k digits, {budget} s of training per config on "
          f"{torch.get_num_threads()} CPU thread(s); {per_class} samples per digit judged by the lab's digit "
          "classifier (accuracy: read as the asked digit; intra-FID: per-digit FID in its feature space, "
          "averaged); FID of 2,500 samples against 2,500 real digits\n")
    print("| config | G steps | label accuracy | worst digit | intra-FID | FID |\n|---|---|---|---|---|---|")
    print(f"| real digits (half vs half, {baseline['per_class']} per digit) | - | "
          f"{100 * baseline['val/label_accuracy']:.1f}% | {100 * baseline['val/label_accuracy_min']:.1f}% | "
          f"{baseline['val/intra_fid']:.3f} | - |")
    for config, g, s in rows:
        print(f"| {config} | {g} | {100 * s['val/label_accuracy']:.1f}% | {worst_class(s)} "
              f"| {s['val/intra_fid']:.3f} | {s['val/fid']:.3f} |")
    print("\ntarget: label accuracy >= 97% with every digit generated", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["ring", "mnist", "all"], default="all")
    parser.add_argument("--ring_budget", type=int, default=180, help="training seconds of the ring")
    parser.add_argument("--budget", type=int, default=600, help="training seconds per MNIST config")
    parser.add_argument("--configs", nargs="+", default=MNIST_CONFIGS)
    parser.add_argument("--classifier", default="runs/classifier_mnist/*/checkpoints/last.ckpt",
                        help="a DigitClassifier checkpoint (a glob takes the newest)")
    parser.add_argument("--per_class", type=int, default=500, help="generated samples per class")
    parser.add_argument("--data_dir", default="data", help="MNIST root (make mnist-offline)")
    parser.add_argument("--smoke", action="store_true", help="a few seconds per row, to check the script")
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")
    from gan_modules.classifier import newest_match

    ring_extra: list[str] = []
    mnist_extra = ["--data.init_args.data_dir", args.data_dir]
    if args.smoke:
        args.ring_budget, args.budget, args.per_class = 5, 5, 20
        mnist_extra += ["--data.init_args.batch_size", "8"]
    with tempfile.TemporaryDirectory() as runs:
        if args.part in ("ring", "all"):
            ring(runs, args.ring_budget, 2500 if not args.smoke else 100, ring_extra)
        if args.part in ("mnist", "all"):
            mnist(runs, args.budget, args.configs, newest_match(args.classifier), args.per_class, mnist_extra)


if __name__ == "__main__":
    main()
