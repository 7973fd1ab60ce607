"""Several processes: gan_ddp for automatic- and manual-optimization modules, the default strategy for
``--trainer.devices N``, and one run id across nodes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from conftest import CONFIGS
from lightning.pytorch.strategies import DDPStrategy, SingleDeviceStrategy
from test_faults import SMALL_RING, main_py

from gan_modules.strategies import GANDDPStrategy
from main import cli_main


def rank_weights(run_dir: Path) -> list[dict]:
    """The final state each rank wrote (tests/helpers.py SaveRankWeights)."""
    return [torch.load(run_dir / f"rank{r}.pt", weights_only=True) for r in (0, 1)]


def assert_ranks_identical(ranks: list[dict]) -> None:
    assert ranks[0]["state"].keys() == ranks[1]["state"].keys()
    for name, value in ranks[0]["state"].items():
        torch.testing.assert_close(ranks[1]["state"][name], value, rtol=0, atol=0, msg=name)


def test_gan_ddp_keeps_an_automatic_optimization_module_identical(tmp_path, tiny_mnist):
    """The digit classifier steps through Lightning's closure: its fresh gradients must be the ones averaged."""
    proc = main_py(tmp_path, "--config", str(CONFIGS / "classifier_mnist.yaml"), "--trainer.devices", "2",
                   "--trainer.accelerator", "cpu", "--trainer.strategy", "gan_ddp", "--trainer.max_steps", "4",
                   "--data.init_args.data_dir", str(tiny_mnist), "--data.init_args.batch_size", "4",
                   "--trainer.callbacks+=helpers.SaveRankWeights")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    (run_dir,) = (tmp_path / "runs" / "classifier_mnist").glob("*/")
    ranks = rank_weights(run_dir)
    assert ranks[0]["global_step"] == ranks[1]["global_step"] == 4
    assert_ranks_identical(ranks)


def build(config: str, tmp_path: Path, *args: str):
    """The CLI with its trainer built but nothing run: what the strategy choice gives, at once."""
    return cli_main(["--config", str(CONFIGS / config), "--runs_dir", str(tmp_path / "runs"),
                     "--trainer.logger", "false", *args], run=False)


@pytest.mark.parametrize("devices", [["--trainer.devices", "2"], ["--trainer.num_nodes", "2"]],
                         ids=["devices", "nodes"])
def test_several_processes_and_no_strategy_named_use_gan_ddp(tmp_path, monkeypatch, devices):
    monkeypatch.setattr(sys, "argv", ["main.py"])
    cli = build("wgan_gp_ring.yaml", tmp_path, "--trainer.accelerator", "cpu", *devices)
    assert type(cli.trainer.strategy) is GANDDPStrategy
    single = build("wgan_gp_ring.yaml", tmp_path, "--trainer.accelerator", "cpu", "--name", "single")
    assert type(single.trainer.strategy) is SingleDeviceStrategy  # one process: no process group at all


@pytest.mark.parametrize("strategy", [
    ["ddp"], ["ddp_spawn"], ["ddp_find_unused_parameters_false"],
    ['{"class_path": "lightning.pytorch.strategies.DDPStrategy"}'],
], ids=["ddp", "ddp_spawn", "ddp_find_unused_false", "class_path"])
def test_plain_ddp_for_a_gan_is_refused_at_start_up_naming_gan_ddp(tmp_path, monkeypatch, strategy):
    monkeypatch.setattr(sys, "argv", ["main.py"])
    with pytest.raises(ValueError, match=r"cannot train a GAN.*--trainer.strategy gan_ddp"):
        build("wgan_gp_ring.yaml", tmp_path, "--trainer.devices", "2", "--trainer.strategy", *strategy)


def test_ddp_stays_available_where_it_works(tmp_path, monkeypatch, tiny_mnist):
    """DDP's wrapper is fine for the classifier (one loss, one backward) and, slower, for a GAN that
    asks it to find unused parameters."""
    monkeypatch.setattr(sys, "argv", ["main.py"])
    cli = build("classifier_mnist.yaml", tmp_path, "--trainer.devices", "2", "--trainer.accelerator", "cpu",
                "--trainer.strategy", "ddp", "--data.init_args.data_dir", str(tiny_mnist))
    assert type(cli.trainer.strategy) is DDPStrategy
    cli = build("wgan_gp_ring.yaml", tmp_path, "--trainer.devices", "2",
                "--trainer.strategy", "ddp_find_unused_parameters_true")
    assert type(cli.trainer.strategy) is DDPStrategy


@pytest.mark.slow
def test_devices_2_with_no_strategy_named_trains_two_identical_ranks(tmp_path):
    proc = main_py(tmp_path, "--config", str(CONFIGS / "wgan_gp_ring.yaml"), "--trainer.devices", "2",
                   "--trainer.accelerator", "cpu", "--trainer.max_steps", "12",
                   "--trainer.callbacks+=helpers.SaveRankWeights", *SMALL_RING)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    (run_dir,) = (tmp_path / "runs" / "wgan_gp_ring").glob("*/")
    ranks = rank_weights(run_dir)
    assert ranks[0]["g_steps"] == ranks[1]["g_steps"] == 2
    assert_ranks_identical(ranks)
