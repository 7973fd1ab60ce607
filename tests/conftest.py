"""Fixtures: run the CLI in a temporary folder, quietly, without reading pytest's argv; tiny data sets in their
real on-disk formats; a trained digit classifier. Plain helpers live in helpers.py."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from helpers import CONFIGS, QUIET, ROOT, last_checkpoint  # noqa: F401  (ROOT, last_checkpoint: older imports)

from main import GANLabCLI, cli_main


@pytest.fixture
def run_fit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., GANLabCLI]:
    """``run_fit(config_name, *extra_args, logger=False)``: ``main.py fit`` into ``tmp_path/runs``."""

    def run(config: str, *args: str, logger: bool = False) -> GANLabCLI:
        monkeypatch.setattr(sys, "argv", ["main.py"])  # the CLI must not see pytest's own arguments
        # quiet.yaml also turns the logger off; with a logger, only the progress bar and summary go
        quiet = ["--config", str(QUIET)] if not logger else ["--trainer.enable_progress_bar", "false",
                                                              "--trainer.enable_model_summary", "false"]
        return cli_main(["fit", "--config", str(CONFIGS / config), *quiet, "--runs_dir", str(tmp_path / "runs"), *args])

    return run


@pytest.fixture(scope="session")
def tiny_mnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 digits in MNIST's own IDX files under <root>/MNIST/raw, as torchvision downloads them."""
    from datamodules.mnist_offline import write_mnist

    root = tmp_path_factory.mktemp("mnist")
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 28, 28), generator=gen, dtype=torch.uint8).numpy()
    write_mnist(root, images, (torch.arange(40) % 10).numpy())
    return root


@pytest.fixture(scope="session")
def tiny_celeba(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder holding img_align_celeba/ with 20 JPEGs of CelebA's size (178x218) and one broken file
    (20: one generator step of n_critic 5 x batch 4)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("celeba")
    faces = root / "img_align_celeba"
    faces.mkdir()
    gen = torch.Generator().manual_seed(0)
    for i in range(20):
        pixels = torch.randint(0, 256, (218, 178, 3), generator=gen, dtype=torch.uint8).numpy()
        Image.fromarray(pixels).save(faces / f"{i + 1:06d}.jpg", quality=90)
    (faces / "000021.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    return root


@pytest.fixture(scope="session")
def digit_classifier(tmp_path_factory: pytest.TempPathFactory, tiny_mnist: Path) -> str:
    """A DigitClassifier trained for two epochs through the CLI on the tiny MNIST files: its last.ckpt."""
    runs = tmp_path_factory.mktemp("classifier")
    with pytest.MonkeyPatch.context() as m:
        m.setattr("sys.argv", ["main.py"])  # the CLI must not see pytest's own arguments
        cli = cli_main(["fit", "--config", str(CONFIGS / "classifier_mnist.yaml"), "--config",
                        str(QUIET), "--runs_dir", str(runs), "--trainer.max_epochs", "2",
                        "--data.init_args.data_dir", str(tiny_mnist), "--data.init_args.batch_size", "8"])
    return str(Path(cli.run_dir, "checkpoints", "last.ckpt"))


# ---------------------------------------------------------------------------------------------- CycleGAN data
CELEBA_ATTRIBUTES = ("5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
                     "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee "
                     "Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard "
                     "Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair "
                     "Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young")


@pytest.fixture(scope="session")
def tiny_unpaired(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CycleGAN layout: trainA/ (6 PNGs of 40x40 and one broken file), trainB/ (5), testA/, testB/ (2 each)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("unpaired")
    gen = torch.Generator().manual_seed(0)
    for folder, count in (("trainA", 6), ("trainB", 5), ("testA", 2), ("testB", 2)):
        (root / folder).mkdir()
        for i in range(count):
            pixels = torch.randint(0, 256, (40, 40, 3), generator=gen, dtype=torch.uint8).numpy()
            Image.fromarray(pixels).save(root / folder / f"{folder}_{i}.png")
    (root / "trainA" / "broken.png").write_bytes(b"\x89PNG not really")
    return root


@pytest.fixture(scope="session")
def tiny_celeba_attributes(tmp_path_factory: pytest.TempPathFactory, tiny_celeba: Path) -> Path:
    """tiny_celeba's faces (linked) with a list_attr_celeba.txt in CelebA's own format: the 40 attribute names,
    values 1/-1; faces 2, 4, ..., 20 wear eyeglasses."""
    root = tmp_path_factory.mktemp("celeba_attributes")
    (root / "img_align_celeba").symlink_to(tiny_celeba / "img_align_celeba", target_is_directory=True)
    names = CELEBA_ATTRIBUTES.split()
    rows = [f"{i:06d}.jpg " + " ".join(f"{1 if (n == 'Eyeglasses' and i % 2 == 0) else -1:2d}" for n in names)
            for i in range(1, 22)]
    (root / "list_attr_celeba.txt").write_text("\n".join([str(len(rows)), " ".join(names), *rows]) + "\n")
    return root
