"""The cached real FID statistics are keyed on what determines the real samples and the feature extractor's
weights: changing the data recomputes them, changing how the data are served does not."""

from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import torch
from torch import nn

from callbacks.fid import FID
from datamodules import Gaussian1D, ImageFolderDataModule, MNISTDataModule, Ring2D
from datamodules.mnist_offline import write_mnist

EXTRACTOR = nn.Linear(2, 4)  # one feature extractor (its weights are part of the key)


def fid_cache_file(datamodule: L.LightningDataModule, tmp_path: Path, extractor: nn.Module | None = None) -> Path:
    """The file FID would cache the real statistics of ``datamodule`` in (no real features are computed)."""
    fid = FID(feature="classifier", weights_path="not-read.ckpt", kid=False, num_samples=8, cache_dir=str(tmp_path))
    fid.extractor = extractor if extractor is not None else EXTRACTOR
    return fid.cache_file(SimpleNamespace(datamodule=datamodule))


def test_ring_parameters_key_the_cache_but_serving_settings_do_not(tmp_path):
    base = fid_cache_file(Ring2D(), tmp_path)
    for other in (Ring2D(num_modes=3, radius=5), Ring2D(std=0.1), Ring2D(seed=1), Ring2D(num_samples=50_000)):
        assert fid_cache_file(other, tmp_path) != base
    assert fid_cache_file(Ring2D(data_on_device=True, batch_size=64), tmp_path) == base
    assert fid_cache_file(Gaussian1D(mean=1.0), tmp_path) != fid_cache_file(Gaussian1D(), tmp_path)


def write_digits(root: Path, n: int, seed: int) -> None:
    images = torch.randint(0, 256, (n, 28, 28), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)
    write_mnist(root, images.numpy(), np.arange(n) % 10)


def test_mnist_files_key_the_cache_but_serving_settings_do_not(tmp_path):
    root = tmp_path / "data"
    write_digits(root, 40, seed=0)
    forty = fid_cache_file(MNISTDataModule(data_dir=str(root), download=False), tmp_path)
    served = MNISTDataModule(data_dir=str(root), download=False, batch_size=3, data_on_device=True, pin_memory=False)
    assert fid_cache_file(served, tmp_path) == forty
    assert fid_cache_file(MNISTDataModule(data_dir=str(root), download=False, subset=20), tmp_path) != forty
    assert fid_cache_file(MNISTDataModule(data_dir=str(root), download=False, image_size=32), tmp_path) != forty
    write_digits(root, 80, seed=1)  # 80 other digits in the same folder
    assert fid_cache_file(MNISTDataModule(data_dir=str(root), download=False), tmp_path) != forty


def write_images(folder: Path, n: int, seed: int, side: int = 16) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    for i in range(n):
        pixels = torch.randint(0, 256, (side, side, 3), generator=gen, dtype=torch.uint8).numpy()
        Image.fromarray(pixels).save(folder / f"{i:04d}.png")


def test_image_files_key_the_cache_but_serving_settings_do_not(tmp_path):
    folder = tmp_path / "images"
    write_images(folder, 4, seed=0)
    four = fid_cache_file(ImageFolderDataModule(data_dir=str(folder), image_size=16), tmp_path)
    served = ImageFolderDataModule(data_dir=str(folder), image_size=16, batch_size=2, num_workers=0,
                                   data_on_device=True, cache_dir=str(tmp_path / "elsewhere"))
    assert fid_cache_file(served, tmp_path) == four
    assert fid_cache_file(ImageFolderDataModule(data_dir=str(folder), image_size=8), tmp_path) != four
    write_images(folder, 8, seed=1)  # 4 files rewritten and 4 more
    assert fid_cache_file(ImageFolderDataModule(data_dir=str(folder), image_size=16), tmp_path) != four


def test_feature_weights_key_the_cache_by_content(tmp_path):
    torch.manual_seed(0)
    extractor = nn.Linear(2, 4)
    twin = nn.Linear(2, 4)
    twin.load_state_dict(extractor.state_dict())  # the same weights, another object (another file)
    base = fid_cache_file(Ring2D(), tmp_path, extractor)
    assert fid_cache_file(Ring2D(), tmp_path, twin) == base
    with torch.no_grad():
        twin.weight[0, 0] += 1e-3
    assert fid_cache_file(Ring2D(), tmp_path, twin) != base


class SamplesOnly(L.LightningDataModule):
    """A user's data module that states no identity: the real samples themselves key the cache."""

    def __init__(self, offset: float, batch_size: int = 4) -> None:
        super().__init__()
        self.offset, self.batch_size = offset, batch_size

    def real_samples(self, n: int, seed: int = 0) -> torch.Tensor:
        return torch.arange(2.0 * n).view(n, 2) + self.offset


def test_a_data_module_without_identity_is_keyed_on_its_samples(tmp_path):
    base = fid_cache_file(SamplesOnly(0.0), tmp_path)
    assert fid_cache_file(SamplesOnly(0.0, batch_size=64), tmp_path) == base
    assert fid_cache_file(SamplesOnly(1.0), tmp_path) != base
