"""Stacked MNIST: three random MNIST digits as the three channels of one image, 1,000 modes.

The mode-collapse benchmark of Metz et al. 2017 (unrolled GAN), VEEGAN (Srivastava et al. 2017) and PacGAN
(Lin et al. 2018): a sample's mode is the triple of its digits, ``100 * d1 + 10 * d2 + d3``; a generator is
scored by classifying each channel of 26,000 samples, counting the modes hit and the KL divergence of the
mode histogram from uniform (:func:`mode_scores`).

Only the triples of digit indices are stored (``num_samples x 3``), drawn once from ``seed``; images are
gathered per batch from the digits in memory, so 128,000 stacked samples cost 3 MB, not 300.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from .images import uint8_to_unit
from .loader import ResumableDataLoader, TensorSampleSet, resumable_loader, sample_from
from .mnist import MNISTDataModule

NUM_MODES = 1000
CHANNELS = 3


def mode_ids(digits: Tensor) -> Tensor:
    """Mode id ``100 * d1 + 10 * d2 + d3`` of digit triples, shape ``(N, 3) -> (N,)``."""
    return digits[..., 0] * 100 + digits[..., 1] * 10 + digits[..., 2]


def mode_scores(modes: Tensor, num_modes: int = NUM_MODES) -> dict[str, float]:
    """Modes covered (at least one sample) and KL(mode histogram || uniform), as VEEGAN and PacGAN report.

    KL = sum_k p_k log(p_k * K) over the hit modes: 0 for a uniform histogram, log K when every sample
    falls in one mode (6.908 for K = 1000).
    """
    counts = torch.bincount(modes.reshape(-1).long().cpu(), minlength=num_modes).double()
    if len(counts) > num_modes:
        raise ValueError(f"mode ids must lie in [0, {num_modes}), got {len(counts) - 1}")
    p = counts[counts > 0] / counts.sum()
    return {"modes": float((counts > 0).sum()), "kl": float((p * torch.log(p * num_modes)).sum())}


class StackedDigitSet(TensorSampleSet):
    """Triples of digit indices that become (3, H, W) images in [-1, 1] when a batch is gathered."""

    def __init__(self, digits: Tensor, triples: Tensor, modes: Tensor) -> None:
        super().__init__(triples, modes)
        self.digits = digits  # (M, H, W) uint8

    def to(self, device: torch.device | str) -> StackedDigitSet:
        return StackedDigitSet(self.digits.to(device), self.samples.to(device), self.labels.to(device))

    def __getitems__(self, indices: list[int]) -> tuple[Tensor, Tensor]:
        idx = torch.as_tensor(indices, device=self.samples.device)
        return uint8_to_unit(self.digits[self.samples[idx]]), self.labels[idx]


class StackedMNIST(MNISTDataModule):
    """``num_samples`` images whose channels are three random MNIST digits; the label is the mode id (0..999).

    The digits come from the MNIST training files exactly as :class:`~datamodules.mnist.MNISTDataModule` reads
    them (``subset``, offline 5k digits, resizing); the triples are drawn once from ``seed``, and the loader's
    order depends only on ``seed`` and the epoch, so runs are reproducible and resume exactly.
    """

    num_classes = NUM_MODES

    def __init__(
        self,
        data_dir: str = "data",            # torchvision's root: files live in <data_dir>/MNIST/raw
        batch_size: int = 64,
        num_samples: int = 128_000,        # stacked images in the training set (one epoch)
        image_size: int = 28,              # resized (bilinear) when not 28
        subset: int | None = None,         # draw the digits from the first `subset` MNIST digits only
        download: bool = True,             # fetch the MNIST files when missing (needs a network)
        pin_memory: bool = True,           # pinned host memory for faster copies to a GPU
        data_on_device: bool = False,      # fast path: keep the digits on the GPU and gather batches there
        seed: int = 0,                     # seed of the triples and of the shuffling
    ) -> None:
        super().__init__(data_dir=data_dir, batch_size=batch_size, image_size=image_size, subset=subset,
                         download=download, pin_memory=pin_memory, data_on_device=data_on_device, seed=seed)
        if num_samples < 1:
            raise ValueError(f"data.num_samples={num_samples}: must be >= 1.")
        self.num_samples = num_samples
        self.data_shape = (CHANNELS, image_size, image_size)
        self.triples: Tensor | None = None  # (num_samples, 3) indices into the digits
        self.modes: Tensor | None = None    # (num_samples,) mode ids

    def identity(self) -> dict[str, Any]:
        """The digits' identity plus what draws the triples (see ``datamodules.identity``)."""
        return {**super().identity(), "class": type(self).__qualname__, "num_samples": self.num_samples,
                "seed": self.seed}

    def setup(self, stage: str | None = None) -> None:
        if self.triples is not None:
            return
        super().setup(stage)  # the digits: self.images (M, 1, H, W) uint8, self.labels (M,)
        gen = torch.Generator().manual_seed(self.seed)
        self.triples = torch.randint(len(self.images), (self.num_samples, CHANNELS), generator=gen)
        self.modes = mode_ids(self.labels[self.triples])

    def dataset(self) -> StackedDigitSet:
        """The stacked training set (images and mode ids)."""
        self.setup()
        return StackedDigitSet(self.images[:, 0], self.triples, self.modes)

    def real_samples(self, n: int, seed: int = 0) -> Tensor:
        """``n`` stacked training images in [-1, 1], the same for the same seed."""
        return sample_from(self.dataset(), min(n, self.num_samples), seed)

    def train_dataloader(self) -> ResumableDataLoader:
        return resumable_loader(self.dataset(), self, self.batch_size, self.seed, pin_memory=self.pin_memory,
                                data_on_device=self.data_on_device)


def expected_real_kl(num_samples: int, num_modes: int = NUM_MODES) -> float:
    """About how far a uniform sample of ``num_samples`` lands from uniform: (K - 1) / (2 N) (the chi-square
    approximation of the KL of an empirical histogram), 0.019 for 26,000 samples of 1,000 modes."""
    return (num_modes - 1) / (2 * num_samples) if num_samples else math.inf


__all__ = ["StackedMNIST", "expected_real_kl", "mode_ids", "mode_scores"]
