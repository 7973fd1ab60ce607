"""MNIST, CelebA and image folders, on tiny files written in the real formats."""

import shutil
import warnings

import numpy as np
import pytest
import torch

from datamodules import CelebADataModule, ImageFolderDataModule, MNISTDataModule
from datamodules.mnist_offline import write_idx


def test_mnist_loads_idx_files_through_torchvision(tiny_mnist):
    dm = MNISTDataModule(data_dir=str(tiny_mnist), batch_size=8, download=False)
    dm.prepare_data()
    dm.setup()
    assert dm.images.shape == (40, 1, 28, 28) and dm.labels.tolist() == [i % 10 for i in range(40)]
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 1, 28, 28) and x.dtype == torch.float32 and y.shape == (8,)
    assert x.min() >= -1 and x.max() <= 1
    # [-1, 1] maps back exactly onto the stored bytes
    pixels = ((x + 1) * 127.5).round().to(torch.uint8)
    stored = {bytes(img.numpy()) for img in dm.images}
    assert all(bytes(p.numpy()) in stored for p in pixels)


def test_mnist_subset_and_resize(tiny_mnist):
    dm = MNISTDataModule(data_dir=str(tiny_mnist), batch_size=4, download=False, subset=12, image_size=32)
    dm.setup()
    assert dm.images.shape == (12, 1, 32, 32) and dm.data_shape == (1, 32, 32)


def test_mnist_missing_offline_names_the_folder_and_the_offline_command(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"MNIST[/\\]raw.*make mnist-offline"):
        MNISTDataModule(data_dir=str(tmp_path), download=False).prepare_data()


def test_idx_writer_header(tmp_path):
    write_idx(tmp_path / "x", np.zeros((3, 2, 2), dtype=np.uint8))
    raw = (tmp_path / "x").read_bytes()
    assert raw[:4] == b"\x00\x00\x08\x03" and raw[4:16] == b"\x00\x00\x00\x03" + b"\x00\x00\x00\x02" * 2
    assert len(raw) == 16 + 12


def test_celeba_skips_a_broken_file_by_name_and_caches(tiny_celeba, tmp_path):
    cache = tmp_path / "cache"
    dm = CelebADataModule(data_dir=str(tiny_celeba), batch_size=4, num_workers=0, cache_dir=str(cache))
    with pytest.warns(UserWarning, match=r"1 image\(s\) could not be read.*000009\.jpg"):
        dm.setup()
    assert len(dm.dataset) == 8 and len(list(cache.glob("*.pt"))) == 1
    x = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 64, 64) and x.min() >= -1 and x.max() <= 1

    again = CelebADataModule(data_dir=str(tiny_celeba), batch_size=4, num_workers=0, cache_dir=str(cache))
    again._decode_all = None  # the second run must read the cache, not decode
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again.setup()
    assert torch.equal(again.dataset.samples, dm.dataset.samples)


def test_celeba_finds_the_usual_layouts(tiny_celeba, tmp_path):
    assert CelebADataModule(data_dir=str(tiny_celeba)).image_root().name == "img_align_celeba"
    assert CelebADataModule(data_dir=str(tiny_celeba / "img_align_celeba")).image_root().name == "img_align_celeba"
    torchvision_root = tmp_path / "tv"
    shutil.copytree(tiny_celeba / "img_align_celeba", torchvision_root / "celeba" / "img_align_celeba")
    expected = torchvision_root / "celeba" / "img_align_celeba"
    assert CelebADataModule(data_dir=str(torchvision_root)).image_root() == expected
    with pytest.raises(FileNotFoundError, match=r"img_align_celeba.*mmlab\.ie\.cuhk\.edu\.hk"):
        CelebADataModule(data_dir=str(tmp_path / "nothing")).setup()


def test_image_folder_nested_greyscale_without_cache(tiny_celeba):
    dm = ImageFolderDataModule(data_dir=str(tiny_celeba), image_size=32, channels=1, batch_size=2,
                               num_workers=0, cache=False, subset=4)
    dm.setup()
    x = next(iter(dm.train_dataloader()))
    assert x.shape == (2, 1, 32, 32) and dm.data_shape == (1, 32, 32)


def test_image_folder_without_cache_names_a_broken_file(tiny_celeba):
    dm = ImageFolderDataModule(data_dir=str(tiny_celeba), image_size=16, batch_size=9, num_workers=0, cache=False)
    with pytest.raises(OSError, match=r"000009\.jpg"):
        next(iter(dm.train_dataloader()))
