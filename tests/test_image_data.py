"""MNIST, CelebA and image folders, on tiny files written in the real formats."""

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import CONFIGS

from datamodules import CelebADataModule, ImageFolderDataModule, MNISTDataModule
from datamodules.mnist_offline import write_idx, write_mnist


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
    with pytest.warns(UserWarning, match=r"1 image\(s\) could not be read.*000021\.jpg"):
        dm.setup()
    assert len(dm.dataset) == 20 and len(list(cache.glob("*.pt"))) == 1
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
    # one batch of all 21 files (20 images + the broken one), so the broken file is read whatever the order
    dm = ImageFolderDataModule(data_dir=str(tiny_celeba), image_size=16, batch_size=21, num_workers=0, cache=False)
    with pytest.raises(OSError, match=r"000021\.jpg"):
        next(iter(dm.train_dataloader()))


def write_jpegs(folder, sides, seed=0):
    """Random JPEGs of the given (width, height) sizes, named 0000.jpg, 0001.jpg, ..."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    for i, (w, h) in enumerate(sides):
        pixels = torch.randint(0, 256, (h, w, 3), generator=gen, dtype=torch.uint8).numpy()
        Image.fromarray(pixels).save(folder / f"{i:04d}.jpg", quality=90)


def images_module(folder, **kwargs):
    return ImageFolderDataModule(data_dir=str(folder), image_size=16, batch_size=2, num_workers=0, **kwargs)


def test_edited_images_are_decoded_again(tmp_path):
    folder = tmp_path / "images"
    write_jpegs(folder, [(24, 24)] * 4, seed=0)
    first = images_module(folder)
    first.setup()
    write_jpegs(folder, [(24, 24)] * 4, seed=1)  # the same names, other pictures
    for f in folder.iterdir():  # an edit made later than the first run (file times can be coarse)
        os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    second = images_module(folder)
    second.setup()
    expected = images_module(folder, cache=False)
    expected.setup()
    assert torch.equal(second.dataset.samples, torch.stack([expected.dataset.decode[i][0] for i in range(4)]))
    assert not torch.equal(second.dataset.samples, first.dataset.samples)
    assert len(list((folder / ".gan_lab_cache").glob("*.pt"))) == 2


def test_prepare_data_builds_the_cache_and_setup_only_loads_it(tmp_path):
    folder = tmp_path / "images"
    write_jpegs(folder, [(24, 24)] * 4)
    images_module(folder).prepare_data()  # what Lightning runs once per node, before every process's setup
    other_rank = images_module(folder)
    other_rank._decode_all = None  # another process must load, not decode
    other_rank.setup()
    assert len(other_rank.dataset) == 4


def test_processes_building_the_same_cache_at_once_never_share_a_temporary_file(tmp_path, monkeypatch):
    folder = tmp_path / "images"
    write_jpegs(folder, [(24, 24)] * 4)
    save = torch.save
    writers = []

    def save_then_let_another_process_finish(obj, path, *args, **kwargs):
        writers.append(Path(path).name)
        save(obj, path, *args, **kwargs)
        if len(writers) == 1:  # a second process builds and renames its cache while the first is between steps
            images_module(folder).setup()

    monkeypatch.setattr(torch, "save", save_then_let_another_process_finish)
    first = images_module(folder)
    first.setup()
    assert len(set(writers)) == 2 and all(name.endswith(".tmp") for name in writers)
    assert [p.suffix for p in (folder / ".gan_lab_cache").iterdir()] == [".pt"]  # no temporary file left
    assert len(first.dataset) == 4


def test_images_smaller_than_the_crop_are_counted_in_a_warning_and_refused_when_all_are(tmp_path):
    faces = tmp_path / "some" / "img_align_celeba"
    write_jpegs(faces, [(178, 218)] * 2 + [(100, 100)] * 3)
    for cache in (True, True, False):  # building the cache, reading it back, decoding on the fly
        dm = CelebADataModule(data_dir=str(faces.parent), batch_size=2, num_workers=0, cache=cache)
        with pytest.warns(UserWarning, match=r"3 of 5 images .* smaller than the centre crop of 178 pixels"):
            dm.setup()
    faces = tmp_path / "all" / "img_align_celeba"
    write_jpegs(faces, [(100, 100)] * 3)
    for cache in (True, False):
        with pytest.raises(ValueError, match=r"3 of 3 images .* crop of 178 .*data\.init_args\.crop to at most 100"):
            CelebADataModule(data_dir=str(faces.parent), batch_size=2, num_workers=0, cache=cache).setup()
    assert not (faces / ".gan_lab_cache").exists()  # nothing cached for a configuration that was refused


def test_images_enlarged_more_than_twice_are_counted_in_a_warning_and_refused_when_all_are(tmp_path):
    write_jpegs(tmp_path / "mixed", [(32, 32), (8, 8)])
    with pytest.warns(UserWarning, match=r"1 of 2 images .* enlarged more than 2x to image_size 24"):
        ImageFolderDataModule(data_dir=str(tmp_path / "mixed"), image_size=24, batch_size=1, num_workers=0).setup()
    write_jpegs(tmp_path / "small", [(8, 8), (10, 9)])
    with pytest.raises(ValueError, match=r"2 of 2 images .*image_size to at most 16"):
        ImageFolderDataModule(data_dir=str(tmp_path / "small"), image_size=24, batch_size=1, num_workers=0).setup()
    with warnings.catch_warnings():  # twice is fine
        warnings.simplefilter("error")
        ImageFolderDataModule(data_dir=str(tmp_path / "small"), image_size=16, batch_size=1, num_workers=0).setup()


def test_a_truncated_mnist_file_is_named_with_its_expected_size(tmp_path):
    raw = write_mnist(tmp_path, np.zeros((40, 28, 28), dtype=np.uint8), np.arange(40) % 10)
    images = raw / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:1000])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte is damaged: it has 1,000 bytes, expected 31,376 "
                                         r"bytes .*download: true.*make mnist-offline"):
        MNISTDataModule(data_dir=str(tmp_path), download=False).prepare_data()


@pytest.mark.slow
def test_two_processes_on_a_fresh_folder_decode_once(tmp_path):
    from helpers import main_py

    write_jpegs(tmp_path / "data" / "img_align_celeba", [(178, 218)] * 8)
    proc = main_py(tmp_path, "--config", str(CONFIGS / "dcgan_celeba.yaml"), "--trainer.devices", "2",
                   "--trainer.accelerator", "cpu", "--trainer.strategy", "gan_ddp", "--trainer.max_steps", "1",
                   "--trainer.callbacks", "[]", "--data.init_args.data_dir", str(tmp_path / "data"),
                   "--data.init_args.batch_size", "2", "--data.init_args.num_workers", "0",
                   "--model.init_args.generator.init_args.width", "8",
                   "--model.init_args.discriminator.init_args.width", "8")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    assert out.count("decoding 8 images once: 100%") == 1, out[-3000:]  # one process decoded, the other loaded
    cache = tmp_path / "data" / "img_align_celeba" / ".gan_lab_cache"
    assert [p.suffix for p in cache.iterdir()] == [".pt"]
