"""Image folders and CelebA: decoded once into a uint8 cache, then served from memory.

Decoding and resizing JPEGs is the slow part of an image GAN's input pipeline (a DCGAN-64 step on a GPU is
faster than decoding its batch).  On first use the images are decoded, centre-cropped and resized with a
progress bar, in ``num_workers`` processes, into one uint8 tensor that is saved next to the data
(``<data_dir>/.gan_lab_cache/``) and memory-mapped by later runs; a file that cannot be read is named in a
warning and left out, so a broken JPEG never stops an epoch half-way.  ``cache: false`` decodes on the fly
instead.
"""

from __future__ import annotations

import os
import sys
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2 as T
from tqdm.auto import tqdm

from .identity import digest, files_identity
from .loader import ResumableDataLoader, TensorSampleSet, resumable_loader, sample_from

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
CACHE_FORMAT = 2  # bump when the cache layout or the decoding (crop, resize) changes
MAX_UPSCALE = 2.0  # images enlarged more than this to image_size are reported


def uint8_to_unit(x: Tensor) -> Tensor:
    """uint8 images in [0, 255] -> float32 in [-1, 1]."""
    return x.float().div_(127.5).sub_(1.0)


class _DecodeFiles(Dataset):
    """Decode one file to a (C, H, W) uint8 tensor (centre crop, resize) and its original (width, height);
    None for an unreadable file."""

    def __init__(self, files: Sequence[Path], image_size: int, channels: int, crop: int | None) -> None:
        self.files, self.channels = list(files), channels
        self.resize = T.Compose([T.CenterCrop(crop) if crop else _SquareCrop(),
                                 T.Resize(image_size, antialias=True), T.CenterCrop(image_size)])

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[Tensor, tuple[int, int]] | None:
        try:
            with Image.open(self.files[i]) as img:
                size = img.size
                img = img.convert("L" if self.channels == 1 else "RGB")
                return self.resize(T.functional.pil_to_tensor(img)), size
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
            return None


class _SquareCrop:
    """Centre crop to the shorter side."""

    def __call__(self, img: Tensor) -> Tensor:
        return T.functional.center_crop(img, min(img.shape[-2:]))


class _FileImages(Dataset):
    """On-the-fly decoding for ``cache: false``: a file that fails here is named in the error."""

    def __init__(self, files: Sequence[Path], image_size: int, channels: int, crop: int | None,
                 labels: Tensor | None = None) -> None:
        self.decode, self.labels = _DecodeFiles(files, image_size, channels, crop), labels

    def __len__(self) -> int:
        return len(self.decode)

    def __getitem__(self, i: int) -> Tensor | tuple[Tensor, Tensor]:
        decoded = self.decode[i]
        if decoded is None:
            raise OSError(f"cannot read image {self.decode.files[i]}: delete or replace it, or use cache: true, "
                          "which leaves unreadable files out.")
        image = uint8_to_unit(decoded[0])
        return image if self.labels is None else (image, self.labels[i])


def _first(batch: list[Any]) -> Any:
    return batch[0]


class ImageFolderDataModule(L.LightningDataModule):
    """Every image under ``data_dir`` (nested folders too), square ``image_size`` images in [-1, 1].

    With ``labels: true`` each subfolder of ``data_dir`` is a class, numbered in sorted name order
    (torchvision's ImageFolder rule), and batches are ``(images, labels)`` for conditional GANs.
    """

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
        labels: bool = False,              # one subfolder per class (ImageFolder rule): yield (image, class)
    ) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"data.channels={channels}: use 3 (RGB) or 1 (greyscale)")
        self.data_dir, self.image_size, self.channels, self.crop = data_dir, image_size, channels, crop
        self.subset, self.batch_size, self.num_workers = subset, batch_size, num_workers
        self.pin_memory, self.persistent_workers, self.seed = pin_memory, persistent_workers, seed
        self.cache, self.cache_dir, self.data_on_device = cache, cache_dir, data_on_device
        self.data_shape = (channels, image_size, image_size)
        self.labels = labels
        self.dataset: Dataset | None = None
        self._files: list[Path] | None = None        # listed and stat-ed once per instance: this run's data
        self._identity: dict[str, Any] | None = None
        self._classes: list[str] | None = None

    # -------------------------------------------------------------- labels
    @property
    def num_classes(self) -> int | None:
        """How many classes the labels take (linked into conditional models); None without labels."""
        return len(self.classes()) if self.labels else None

    def classes(self) -> list[str]:
        """The class names: the subfolders of the image folder, sorted (torchvision's ImageFolder rule)."""
        if self._classes is None:
            root = self.image_root()
            self._classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
            if len(self._classes) < 2:
                raise ValueError(f"data.init_args.labels=true needs one subfolder per class under {root.resolve()} "
                                 f"(ImageFolder layout, e.g. cats/ and dogs/), found {len(self._classes)}; set "
                                 "labels: false for an unlabeled folder.")
        return self._classes

    def file_labels(self, files: Sequence[Path]) -> Tensor | None:
        """Each file's class: the index of the subfolder it lies in; None without labels."""
        if not self.labels:
            return None
        root, index = self.image_root(), {name: i for i, name in enumerate(self.classes())}
        labels = []
        for f in files:
            top = Path(f).relative_to(root).parts[0]
            if top not in index:
                raise ValueError(f"{f} lies directly in {root}, not in a class subfolder; with labels: true every "
                                 "image must be inside one subfolder per class.")
            labels.append(index[top])
        return torch.tensor(labels, dtype=torch.long)

    # -------------------------------------------------------------- files
    def image_root(self) -> Path:
        """The folder the images are read from; subclasses resolve their own layouts."""
        root = Path(self.data_dir)
        if not root.is_dir():
            raise FileNotFoundError(f"image folder {root.resolve()} does not exist: set data.init_args.data_dir "
                                    "to a folder of images (nested folders are searched too).")
        return root

    def files(self) -> list[Path]:
        if self._files is None:
            root = self.image_root()
            files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS
                           and ".gan_lab_cache" not in p.parts)
            if not files:
                raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {root.resolve()}")
            self._files = files[: self.subset] if self.subset else files
        return self._files

    def identity(self) -> dict[str, Any]:
        """What determines the images (see ``datamodules.identity``): the files with their sizes and modification
        times, and how they are decoded (size, crop, channels)."""
        if self._identity is None:
            self._identity = {"images": files_identity(self.files(), self.image_root()), "format": CACHE_FORMAT,
                              "size": self.image_size, "crop": self.crop, "channels": self.channels}
        return self._identity

    # -------------------------------------------------------------- setup
    def prepare_data(self) -> None:
        """Build the decode cache once per machine: Lightning calls this in one process per node (local rank 0)
        before any process's ``setup``, which then only loads it."""
        if self.cache and not self.cache_path().exists():
            self._build_cache()

    def setup(self, stage: str | None = None) -> None:
        if self.dataset is not None:
            return
        if self.cache:
            path = self.cache_path()
            if not path.exists():  # prepare_data did not run (a script calling setup itself)
                self._build_cache()
            cached = torch.load(path, mmap=True, weights_only=True)
            report_sizes(cached["sizes"], self.crop, self.image_size, self.image_root())
            labels = self.file_labels([Path(f) for f in cached["files"]])  # the readable files, in cache order
            self.dataset = TensorSampleSet(cached["images"], labels, transform=uint8_to_unit)
        else:
            files = self.files()
            report_sizes(size_problems(_image_sizes(files), self.crop, self.image_size), self.crop, self.image_size,
                         self.image_root())
            self.dataset = _FileImages(files, self.image_size, self.channels, self.crop, self.file_labels(files))

    def real_samples(self, n: int, seed: int = 0, labels: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """``n`` training images in [-1, 1], the same for the same seed; with ``labels``, also their classes."""
        self.setup()
        return sample_from(self.dataset, n, seed, labels)

    def cache_path(self) -> Path:
        """One cache file per identity: editing, adding or removing an image, or changing the size, crop or
        channels, makes a new one."""
        identity = self.identity()
        cache_dir = Path(self.cache_dir) if self.cache_dir else self.image_root() / ".gan_lab_cache"
        return cache_dir / f"{identity['images']['files']}x{self.channels}x{self.image_size}-{digest(identity)[:16]}.pt"

    def _build_cache(self) -> None:
        """Decode every file once and save the images under the cache's name, atomically.

        Each process writes its own temporary file (several processes or nodes may build the same cache at
        once) and renames it into place, so no reader ever sees a half-written cache.
        """
        files, path = self.files(), self.cache_path()
        images, sizes, bad = self._decode_all(files)
        if bad:
            names = ", ".join(str(f) for f in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            warnings.warn(f"{len(bad)} image(s) could not be read and are left out: {names}", stacklevel=2)
        if len(images) == 0:
            raise OSError(f"none of the {len(files)} images under {self.image_root()} could be read")
        problems = size_problems(sizes, self.crop, self.image_size)
        report_sizes(problems, self.crop, self.image_size, self.image_root(), warn=False)  # refuse before saving
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
        try:
            torch.save({"images": images, "files": [str(f) for f in files if f not in set(bad)],
                        "sizes": problems}, tmp)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
        print(f"decoded {len(images)} images once into {path}", file=sys.stderr)

    def _decode_all(self, files: list[Path]) -> tuple[Tensor, list[tuple[int, int]], list[Path]]:
        """The decoded images, the original (width, height) of each, and the files that could not be read."""
        decode = _DecodeFiles(files, self.image_size, self.channels, self.crop)
        loader = DataLoader(decode, batch_size=None, num_workers=self.num_workers, collate_fn=None)
        images = torch.empty(len(files), *self.data_shape, dtype=torch.uint8)
        ok = torch.zeros(len(files), dtype=torch.bool)
        sizes: list[tuple[int, int]] = []
        bad: list[Path] = []
        for i, decoded in enumerate(tqdm(loader, total=len(files), desc=f"decoding {len(files)} images once",
                                         unit="img", mininterval=1.0)):
            if decoded is None:
                bad.append(files[i])
            else:
                images[i], ok[i] = decoded[0], True
                sizes.append(tuple(decoded[1]))
        return images[ok], sizes, bad

    def train_dataloader(self) -> ResumableDataLoader:
        self.setup()
        assert self.dataset is not None
        return resumable_loader(self.dataset, self, self.batch_size, self.seed, self.num_workers, self.pin_memory,
                                self.persistent_workers, self.data_on_device)


def _image_sizes(files: Sequence[Path]) -> list[tuple[int, int]]:
    """(width, height) of every readable file, from its header only (no decoding)."""
    sizes = []
    for f in files:
        try:
            with Image.open(f) as img:
                sizes.append(img.size)
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
            continue  # named when it is decoded
    return sizes


def size_problems(sizes: Sequence[tuple[int, int]], crop: int | None, image_size: int) -> dict[str, int]:
    """How many images a centre crop of ``crop`` pixels pads with black (a side shorter than the crop), and how
    many are enlarged more than ``MAX_UPSCALE`` times to ``image_size``; and the shortest side seen."""
    sides = [min(w, h) for w, h in sizes]
    return {"images": len(sizes),
            "padded": sum(crop is not None and (w < crop or h < crop) for w, h in sizes),
            "upscaled": sum(image_size > MAX_UPSCALE * min(side, crop or side) for side in sides),
            "shortest_side": min(sides, default=0)}


def report_sizes(problems: dict[str, int], crop: int | None, image_size: int, root: Path, warn: bool = True) -> None:
    """Warn (once, on rank 0) about padded or much enlarged images; refuse when every image is."""
    n, shortest = problems["images"], problems["shortest_side"]
    messages = []
    if problems["padded"]:
        messages.append(f"{problems['padded']} of {n} images under {root} are smaller than the centre crop of {crop} "
                        f"pixels and get black borders: set data.init_args.crop to at most {shortest} (the shortest "
                        "side found) or to null (crop each image to its shorter side), or remove the small images")
    if problems["upscaled"]:
        messages.append(f"{problems['upscaled']} of {n} images under {root} are enlarged more than {MAX_UPSCALE:g}x to "
                        f"image_size {image_size} (the shortest side found is {shortest} pixels) and look blurry: set "
                        f"data.init_args.image_size to at most {int(MAX_UPSCALE * min(shortest, crop or shortest))} "
                        "or use larger images")
    if n and n in (problems["padded"], problems["upscaled"]):
        raise ValueError("; ".join(messages) + ".")
    if warn:
        for message in messages:
            rank_zero_warn(message + ".")


class CelebADataModule(ImageFolderDataModule):
    """CelebA's aligned faces (178x218 JPEGs): centre crop 178, resize to 64, [-1, 1].

    ``data_dir`` may be the ``img_align_celeba/`` folder itself, a folder holding it (e.g.
    ``./data``), or torchvision's CelebA root (``<root>/celeba/img_align_celeba``).  A common WGAN-GP setup trains
    on the first 10,000 images: ``subset: 10000``.
    """

    ATTRIBUTES_FILE = "list_attr_celeba.txt"

    def __init__(self, data_dir: str = "data", image_size: int = 64, crop: int | None = 178,
                 attributes: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(data_dir=data_dir, image_size=image_size, channels=3, crop=crop, **kwargs)
        # condition on these of the 40 attributes (e.g. [Smiling]): the class is their bits, attribute i = bit i
        self.attributes = list(attributes) if attributes else None

    @property
    def num_classes(self) -> int | None:
        """2 ** (number of attributes): every combination of present/absent; None without attributes."""
        return 2 ** len(self.attributes) if self.attributes else None

    def attributes_file(self) -> Path:
        """``list_attr_celeba.txt`` next to ``img_align_celeba/`` (torchvision's layout) or in ``data_dir``."""
        for candidate in (self.image_root().parent / self.ATTRIBUTES_FILE, Path(self.data_dir, self.ATTRIBUTES_FILE)):
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(f"data.init_args.attributes needs CelebA's {self.ATTRIBUTES_FILE} next to "
                                f"{self.image_root()} (from the Anno/ folder of the CelebA download).")

    def file_labels(self, files: Sequence[Path]) -> Tensor | None:
        """Each image's class from the attributes file: bit i set when attribute i is present (+1)."""
        if not self.attributes:
            return None
        names, table = read_celeba_attributes(self.attributes_file())
        unknown = [a for a in self.attributes if a not in names]
        if unknown:
            raise ValueError(f"data.init_args.attributes: {unknown} not among CelebA's attributes {names}")
        columns = [names.index(a) for a in self.attributes]
        labels = []
        for f in files:
            row = table.get(Path(f).name)
            if row is None:
                raise ValueError(f"{Path(f).name} has no row in {self.attributes_file()}")
            labels.append(sum(int(row[c] == 1) << bit for bit, c in enumerate(columns)))
        return torch.tensor(labels, dtype=torch.long)

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


def read_celeba_attributes(path: Path) -> tuple[list[str], dict[str, list[int]]]:
    """CelebA's ``list_attr_celeba.txt``: a count line, a line of the 40 attribute names, then one line per image
    (``000001.jpg -1  1  1 -1 ...``, values -1 or 1). Returns the names and each file's row of values."""
    lines = path.read_text().splitlines()
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise ValueError(f"{path} is not in CelebA's attribute format (a count line, then the attribute names)")
    names = lines[1].split()
    table = {}
    for line in lines[2:]:
        parts = line.split()
        if not parts:
            continue
        if len(parts) != len(names) + 1:
            raise ValueError(f"{path}: the row of {parts[0]} has {len(parts) - 1} values for {len(names)} attributes")
        table[parts[0]] = [int(v) for v in parts[1:]]
    return names, table
