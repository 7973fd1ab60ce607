"""A small digit classifier: the feature space for MNIST FID/KID and the judge of class coverage.

Inception features say little about 28x28 greyscale digits (and need a weights download); a classifier
trained on the digits themselves is the usual domain-specific choice.  Train it once:

    python main.py fit --config configs/classifier_mnist.yaml

and point ``callbacks.FID`` at its checkpoint (``feature: classifier``, ``weights_path: <ckpt>``).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.transforms import v2 as T

from .base import _rng_states, _set_rng_states

#: the warps of ``augment``: within what one writer's digits vary by (as in elastic/affine MNIST augmentation)
STYLE_WARP = T.RandomAffine(degrees=15, translate=(0.1, 0.1), scale=(0.8, 1.2), shear=15, fill=-1.0)


def style_augment(x: Tensor) -> Tensor:
    """Images in [-1, 1] (ink bright), each randomly warped (``STYLE_WARP``) and given strokes thicker, thinner
    or unchanged: the ways another data set's handwriting differs, learned without that data set's labels."""
    x = torch.stack([STYLE_WARP(image) for image in x])
    thicker = F.max_pool2d(x, 3, 1, 1)                                   # dilation: a pixel more on each side
    thinner = -F.max_pool2d(F.pad(-x, (0, 1, 0, 1), value=-1.0), 2, 1)  # erosion by one pixel: 2 px strokes stay
    choice = torch.randint(3, (len(x), 1, 1, 1), device=x.device)
    return torch.where(choice == 1, thicker, torch.where(choice == 2, thinner, x))


class DigitClassifier(L.LightningModule):
    """Two conv blocks and a 128-d feature layer; about 99% accuracy on MNIST after a few epochs."""

    def __init__(
        self,
        num_classes: int = 10,                    # output classes
        feature_dim: int = 128,                   # size of the feature layer used for FID/KID
        lr: float = 1e-3,                         # Adam learning rate
        augment: bool = False,                    # train on warped, thicker/thinner digits (style_augment)
        data_shape: Sequence[int] = (1, 28, 28),  # linked from the datamodule
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        channels, height, width = data_shape
        self.features = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * (height // 4) * (width // 4), feature_dim), nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, num_classes)
        self.num_features = feature_dim  # read by torchmetrics when this serves as an FID feature extractor

    def forward(self, x: Tensor) -> Tensor:
        """Logits for images in [-1, 1]."""
        return self.head(self.features(self.fit_size(x)))

    def fit_size(self, x: Tensor) -> Tensor:
        """Images of another size (MNIST resized to 32 for StyleGAN) resized (bilinear) to the trained size, so
        one classifier judges every MNIST config; real and generated images pass through the same resize."""
        size = tuple(self.hparams.data_shape[1:])
        if tuple(x.shape[-2:]) == size:
            return x
        return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        if self.hparams.augment:  # a reader of other handwriting too (the source classifier of CycleGAN)
            x = style_augment(x)
        loss = F.cross_entropy(self(x), y)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)

    # the style warps draw from the global RNG: checkpoints keep it, so a resumed run draws what an
    # uninterrupted one draws (one process; the GAN harness also keeps one state per rank)
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["rng"] = _rng_states()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._rng_to_restore = checkpoint.get("rng")  # applied when training resumes, not on a plain load

    def on_train_start(self) -> None:
        if getattr(self, "_rng_to_restore", None) is not None:
            _set_rng_states(self._rng_to_restore)
            self._rng_to_restore = None


def newest_match(pattern: str | None, config: str = "classifier_mnist") -> str | None:
    """``pattern`` itself, or for a glob (``runs/classifier_mnist/*/checkpoints/last.ckpt``) its newest match;
    ``config`` names the config that trains the missing classifier, for the error."""
    if pattern is None or not any(c in pattern for c in "*?["):
        return pattern
    matches = sorted(glob.glob(pattern), key=os.path.getmtime)  # glob.glob: absolute patterns too
    if not matches:
        raise FileNotFoundError(f"no file matches {pattern} (from {os.getcwd()}); train the digit classifier first: "
                                f"`python main.py fit --config configs/{config}.yaml`, or, if it was trained with "
                                "another --runs_dir, give its checkpoint's path as weights_path")
    return str(matches[-1])


def load_classifier(pattern: str, config: str = "classifier_mnist") -> DigitClassifier:
    """A frozen, eval-mode DigitClassifier from a checkpoint path or glob (newest match), on the CPU."""
    path = newest_match(pattern, config)
    if not Path(path).is_file():
        raise FileNotFoundError(f"classifier checkpoint {path} does not exist; train one with "
                                f"`python main.py fit --config configs/{config}.yaml`.")
    return DigitClassifier.load_from_checkpoint(path, map_location="cpu").eval().requires_grad_(False)


class ClassifierFeatures(nn.Module):
    """The classifier's feature layer as a frozen, eval-mode extractor (what torchmetrics' FID expects)."""

    def __init__(self, classifier: DigitClassifier) -> None:
        super().__init__()
        self.classifier = classifier.eval().requires_grad_(False)
        self.num_features = classifier.num_features

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier.features(self.classifier.fit_size(x))

    def train(self, mode: bool = True) -> ClassifierFeatures:
        return super().train(False)  # stays in eval mode whatever its parent does
