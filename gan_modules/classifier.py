"""A small digit classifier: the feature space for MNIST FID/KID and the judge of class coverage.

Inception features say little about 28x28 greyscale digits (and need a weights download); a classifier
trained on the digits themselves is the usual domain-specific choice.  Train it once:

    python main.py fit --config configs/classifier_mnist.yaml

and point ``callbacks.FID`` at its checkpoint (``feature: classifier``, ``weights_path: <ckpt>``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn


class DigitClassifier(L.LightningModule):
    """Two conv blocks and a 128-d feature layer; about 99% accuracy on MNIST after a few epochs."""

    def __init__(
        self,
        num_classes: int = 10,                    # output classes
        feature_dim: int = 128,                   # size of the feature layer used for FID/KID
        lr: float = 1e-3,                         # Adam learning rate
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
        loss = F.cross_entropy(self(x), y)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


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
