"""Image folders and CelebA: decoded once into a uint8 cache, then served from memory.

Decoding and resizing JPEGs is the slow part of an image GAN's input pipeline (a DCGAN-64 step on a GPU is
faster than decoding its batch).  On first use the images are decoded, centre-cropped and resized with a
progress bar, in ``num_workers`` processes, into one uint8 tensor that is saved next to the data
(``<data_dir>/.gan_lab_cache/``) and memory-mapped by later runs; a file that cannot be read is named in a
warning and left out, so a broken JPEG never stops an epoch half-way.  ``cache: false`` decodes on the fly
instead.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2 as T
from tqdm.auto import tqdm

from .loader import ResumableDataLoader, TensorSampleSet, resumable_loader, sample_from

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
CACHE_FORMAT = 1  # bump when the cache layout changes


def uint8_to_unit(x: Tensor) -> Tensor:
    """uint8 images in [0, 255] -> float32 in [-1, 1]."""
    return x.float().div_(127.5).sub_(1.0)


class _DecodeFiles(Dataset):
    """Decode one file to a (C, H, W) uint8 tensor: centre crop, resize; None for an unreadable file."""

    def __init__(self, files: Sequence[Path], image_size: int, channels: int, crop: int | None) -> None:
        self.files, self.channels = list(files), channels
        self.resize = T.Compose([T.CenterCrop(crop) if crop else _SquareCrop(),
                                 T.Resize(image_size, antialias=True), T.CenterCrop(image_size)])

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> Tensor | None:
        try:
            with Image.open(self.files[i]) as img:
                img = img.convert("L" if self.channels == 1 else "RGB")
                return self.resize(T.functional.pil_to_tensor(img))
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
            return None


class _SquareCrop:
    """Centre crop to the shorter side."""

    def __call__(self, img: Tensor) -> Tensor:
        return T.functional.center_crop(img, min(img.shape[-2:]))


class _FileImages(Dataset):
    """On-the-fly decoding for ``cache: false``: a file that fails here is named in the error."""

    def __init__(self, files: Sequence[Path], image_size: int, channels: int, crop: int | None) -> None:
        self.decode = _DecodeFiles(files, image_size, channels, crop)

    def __len__(self) -> int:
        return len(self.decode)

    def __getitem__(self, i: int) -> Tensor:
        image = self.decode[i]
        if image is None:
            raise OSError(f"cannot read image {self.decode.files[i]}: delete or replace it, or use cache: true, "
                          "which leaves unreadable files out.")
        return uint8_to_unit(image)


def _first(batch: list[Any]) -> Any:
    return batch[0]


class ImageFolderDataModule(L.LightningDataModule):
    """Every image under ``data_dir`` (nested folders too), square ``image_size`` images in [-1, 1]."""

    def __init__(
        self,
        data_dir: str = "data/images",     # a folder of images, searched recursively
        image_size: int = 64,              # side of the square images the networks see
        channels: int = 3,                 # 3 for RGB, 1 for greyscale
        crop: int | None = None,           # centre crop (pixels) before resizing; None: the shorter side
        subset: int | None = None,         # use only the first `subset` files (sorted by path)
        batch_size: int = 64,
        num_workers: int = 2,              # processes that decode (cache building, or every batch without a cache)
        pin_memory: bool = True,
        persistent_workers: bool = True,
        cache: bool = True,                # decode once into a uint8 tensor on disk and reuse it
        cache_dir: str | None = None,      # default: <data_dir>/.gan_lab_cache
        data_on_device: bool = False,      # fast path (with cache): keep the decoded images on the GPU
        seed: int = 0,                     # shuffling seed
    ) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"data.channels={channels}: use 3 (RGB) or 1 (greyscale)")
        self.data_dir, self.image_size, self.channels, self.crop = data_dir, image_size, channels, crop
        self.subset, self.batch_size, self.num_workers = subset, batch_size, num_workers
        self.pin_memory, self.persistent_workers, self.seed = pin_memory, persistent_workers, seed
        self.cache, self.cache_dir, self.data_on_device = cache, cache_dir, data_on_device
        self.data_shape = (channels, image_size, image_size)
        self.dataset: Dataset | None = None

    # -------------------------------------------------------------- files
    def image_root(self) -> Path:
        """The folder the images are read from; subclasses resolve their own layouts."""
        root = Path(self.data_dir)
        if not root.is_dir():
            raise FileNotFoundError(f"image folder {root.resolve()} does not exist: set data.init_args.data_dir "
                                    "to a folder of images (nested folders are searched too).")
        return root

    def files(self) -> list[Path]:
        root = self.image_root()
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS
                       and ".gan_lab_cache" not in p.parts)
        if not files:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {root.resolve()}")
        return files[: self.subset] if self.subset else files

    # -------------------------------------------------------------- setup
    def setup(self, stage: str | None = None) -> None:
        if self.dataset is not None:
            return
        files = self.files()
        if self.cache:
            self.dataset = TensorSampleSet(self._cached_images(files), transform=uint8_to_unit)
        else:
            self.dataset = _FileImages(files, self.image_size, self.channels, self.crop)

    def real_samples(self, n: int, seed: int = 0) -> Tensor:
        """``n`` training images in [-1, 1], the same for the same seed."""
        self.setup()
        return sample_from(self.dataset, n, seed)

    def cache_path(self, files: Sequence[Path]) -> Path:
        """One cache file per (file list, size, crop, channels): changing any of them makes a new one."""
        key = json.dumps({"format": CACHE_FORMAT, "root": str(self.image_root().resolve()),
                          "files": [str(f) for f in files], "size": self.image_size, "crop": self.crop,
                          "channels": self.channels})
        digest = hashlib.sha1(key.encode()).hexdigest()[:16]
        cache_dir = Path(self.cache_dir) if self.cache_dir else self.image_root() / ".gan_lab_cache"
        return cache_dir / f"{len(files)}x{self.channels}x{self.image_size}-{digest}.pt"

    def _cached_images(self, files: list[Path]) -> Tensor:
        path = self.cache_path(files)
        if path.exists():
            return torch.load(path, mmap=True, weights_only=True)["images"]
        images, bad = self._decode_all(files)
        if bad:
            names = ", ".join(str(f) for f in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            warnings.warn(f"{len(bad)} image(s) could not be read and are left out: {names}", stacklevel=2)
        if len(images) == 0:
            raise OSError(f"none of the {len(files)} images under {self.image_root()} could be read")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save({"images": images, "files": [str(f) for f in files if f not in set(bad)]}, tmp)
        tmp.replace(path)  # atomic: an interrupted build never leaves a half-written cache behind
        return images

    def _decode_all(self, files: list[Path]) -> tuple[Tensor, list[Path]]:
        decode = _DecodeFiles(files, self.image_size, self.channels, self.crop)
        loader = DataLoader(decode, batch_size=None, num_workers=self.num_workers, collate_fn=None)
        images = torch.empty(len(files), *self.data_shape, dtype=torch.uint8)
        ok = torch.zeros(len(files), dtype=torch.bool)
        bad: list[Path] = []
        for i, image in enumerate(tqdm(loader, total=len(files), desc=f"decoding {len(files)} images once",
                                       unit="img", mininterval=1.0)):
            if image is None:
                bad.append(files[i])
            else:
                images[i], ok[i] = image, True
        return images[ok], bad

    def train_dataloader(self) -> ResumableDataLoader:
        self.setup()
        assert self.dataset is not None
        return resumable_loader(self.dataset, self, self.batch_size, self.seed, self.num_workers, self.pin_memory,
                                self.persistent_workers, self.data_on_device)


class CelebADataModule(ImageFolderDataModule):
    """CelebA's aligned faces (178x218 JPEGs): centre crop 178, resize to 64, [-1, 1].

    ``data_dir`` may be the ``img_align_celeba/`` folder itself, a folder holding it (the seed notebook's
    ``./data``), or torchvision's CelebA root (``<root>/celeba/img_align_celeba``).  The seed notebook trained
    on the first 10,000 images: ``subset: 10000``.
    """

    def __init__(self, data_dir: str = "data", image_size: int = 64, crop: int | None = 178, **kwargs: Any) -> None:
        super().__init__(data_dir=data_dir, image_size=image_size, channels=3, crop=crop, **kwargs)

    def image_root(self) -> Path:
        root = Path(self.data_dir)
        candidates = [root / "img_align_celeba", root / "celeba" / "img_align_celeba"]
        if root.name == "img_align_celeba":
            candidates.insert(0, root)
        for candidate in candidates:
            if candidate.is_dir():
                return candidate
        raise FileNotFoundError(
            f"CelebA not found: expected the folder img_align_celeba/ at {root.resolve()}, "
            f"{(root / 'img_align_celeba').resolve()} or {(root / 'celeba' / 'img_align_celeba').resolve()}. "
            "Download img_align_celeba.zip (Aligned&Cropped images) from "
            "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (or torchvision.datasets.CelebA(root, "
            "download=True)) and unzip it there, or set data.init_args.data_dir.")
