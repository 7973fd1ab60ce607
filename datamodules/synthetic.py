"""Synthetic data sets: a 1-D Gaussian, the ring of 8 Gaussians and the 5x5 grid.

Each draws ``num_samples`` points once from ``seed`` and serves them in seeded shuffled batches; an epoch
is one pass.  Each also knows how to score generated samples (``score``) by the protocol papers report.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import lightning as L
import torch
from torch import Tensor

from .loader import ResumableDataLoader, TensorSampleSet, resumable_loader
from .scoring import gaussian_1d_scores, mixture_scores, own_mode_scores


class SyntheticDataModule(L.LightningDataModule, ABC):
    """Base of the synthetic sets: a fixed seeded sample, served by a resumable loader."""

    data_shape: tuple[int, ...]
    num_classes: int | None = None  # classes of the labels it yields; None: samples only

    def __init__(
        self,
        batch_size: int = 256,          # samples per discriminator step
        num_samples: int = 100_000,     # size of the fixed training sample (an epoch)
        seed: int = 0,                  # seed of the sample and of the shuffling
        data_on_device: bool = False,   # fast path: keep the sample on the GPU and gather batches there
    ) -> None:
        super().__init__()
        if num_samples < batch_size:
            raise ValueError(f"data.num_samples={num_samples} is smaller than data.batch_size={batch_size}")
        self.batch_size, self.num_samples, self.seed = batch_size, num_samples, seed
        self.data_on_device = data_on_device
        self.data: Tensor | None = None
        self.labels: Tensor | None = None  # with num_classes: each training sample's class

    @abstractmethod
    def draw(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` fresh samples from the target distribution, shape ``(n, *data_shape)``."""

    def draw_labeled(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor | None]:
        """``n`` fresh samples and their classes (None for a set without labels)."""
        return self.draw(n, generator), None

    @abstractmethod
    def score(self, samples: Tensor) -> dict[str, float]:
        """How close ``samples`` are to the target distribution (see ``datamodules.scoring``)."""

    def identity(self) -> dict[str, Any]:
        """What determines the samples (see ``datamodules.identity``); subclasses add their distribution's
        parameters."""
        return {"class": type(self).__qualname__, "data_shape": list(self.data_shape),
                "num_samples": self.num_samples, "seed": self.seed}

    def real_samples(self, n: int, seed: int = 0, labels: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """``n`` fresh draws from the target distribution (not the training sample), the same for a seed; with
        ``labels``, also their classes."""
        x, y = self.draw_labeled(n, torch.Generator().manual_seed(1_000_003 + seed))
        return (x, y) if labels else x

    def setup(self, stage: str | None = None) -> None:
        if self.data is None:
            self.data, labels = self.draw_labeled(self.num_samples, torch.Generator().manual_seed(self.seed))
            self.labels = labels if self.num_classes is not None else None

    def train_dataloader(self) -> ResumableDataLoader:
        self.setup()
        return resumable_loader(TensorSampleSet(self.data, self.labels), self, self.batch_size, self.seed,
                                data_on_device=self.data_on_device)


class Gaussian1D(SyntheticDataModule):
    """N(mean, std^2) in one dimension: the classic first GAN exercise learns N(0, 1)."""

    def __init__(self, mean: float = 0.0, std: float = 1.0, batch_size: int = 64, **kwargs: Any) -> None:
        super().__init__(batch_size=batch_size, **kwargs)
        if std <= 0:
            raise ValueError(f"data.std={std} must be > 0")
        self.mean, self.std = mean, std
        self.data_shape = (1,)

    def draw(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.mean + self.std * torch.randn(n, 1, generator=generator)

    def identity(self) -> dict[str, Any]:
        return super().identity() | {"mean": self.mean, "std": self.std}

    def score(self, samples: Tensor) -> dict[str, float]:
        return gaussian_1d_scores(samples, self.mean, self.std)


class GaussianMixture2D(SyntheticDataModule):
    """Equal-weight mixture of isotropic 2-D Gaussians around fixed means; with ``labels``, each sample comes
    with the index of its mode as its class (for conditional GANs)."""

    def __init__(self, means: Tensor, std: float, labels: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.means, self.std = means, std
        self.data_shape = (2,)
        self.num_classes = len(means) if labels else None

    def draw(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.draw_labeled(n, generator)[0]

    def draw_labeled(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        which = torch.randint(len(self.means), (n,), generator=generator)
        return self.means[which] + self.std * torch.randn(n, 2, generator=generator), which

    def identity(self) -> dict[str, Any]:
        return super().identity() | {"means": self.means.tolist(), "std": self.std}

    def score(self, samples: Tensor) -> dict[str, float]:
        return mixture_scores(samples, self.means, self.std)

    def score_labeled(self, samples: Tensor, labels: Tensor) -> dict[str, float]:
        """How well a conditional model puts each class on its own mode (see ``own_mode_scores``)."""
        return own_mode_scores(samples, labels, self.means, self.std)


class Ring2D(GaussianMixture2D):
    """The ring of Metz et al. 2017: 8 Gaussians on a circle of radius 2, std 0.02, everything divided by 1.414."""

    def __init__(self, num_modes: int = 8, radius: float = 2.0 / 1.414, std: float = 0.02 / 1.414,
                 labels: bool = False, **kwargs: Any) -> None:
        angles = torch.arange(num_modes) * (2 * math.pi / num_modes)
        means = radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
        super().__init__(means, std, labels, **kwargs)  # labels: yield (point, mode index) for conditional GANs


class Grid2D(GaussianMixture2D):
    """25 Gaussians with means on the grid {-4, -2, 0, 2, 4}^2 and std 0.05 (VEEGAN, PacGAN)."""

    def __init__(self, side: int = 5, spacing: float = 2.0, std: float = 0.05, labels: bool = False,
                 **kwargs: Any) -> None:
        coords = (torch.arange(side) - (side - 1) / 2) * spacing
        means = torch.cartesian_prod(coords, coords)
        super().__init__(means, std, labels, **kwargs)  # labels: yield (point, mode index) for conditional GANs


class RandomImages(SyntheticDataModule):
    """Uniform-noise images in [-1, 1]: a stand-in data set for speed measurements (benchmarks/speed.py)."""

    def __init__(self, image_size: int = 64, channels: int = 3, batch_size: int = 64, num_samples: int = 2048,
                 **kwargs: Any) -> None:
        super().__init__(batch_size=batch_size, num_samples=num_samples, **kwargs)
        self.data_shape = (channels, image_size, image_size)

    def draw(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.rand(n, *self.data_shape, generator=generator) * 2 - 1

    def score(self, samples: Tensor) -> dict[str, float]:
        return {}  # noise has no quality to measure
