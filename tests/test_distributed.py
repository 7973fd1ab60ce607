"""Several processes: gan_ddp for automatic- and manual-optimization modules, the default strategy for
``--trainer.devices N``, and one run id across nodes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import CONFIGS, ROOT, SMALL_RING, main_py, two_process_ddp
from lightning.pytorch.strategies import DDPStrategy, SingleDeviceStrategy

from callbacks.strategies import GANDDPStrategy
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
                   "--trainer.accelerator", "cpu", "--trainer.max_steps", "2",
                   "--trainer.callbacks+=helpers.SaveRankWeights", *SMALL_RING)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    (run_dir,) = (tmp_path / "runs" / "wgan_gp_ring").glob("*/")
    ranks = rank_weights(run_dir)
    assert ranks[0]["g_steps"] == ranks[1]["g_steps"] == 2
    assert_ranks_identical(ranks)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_under_torchrun_share_one_run_folder_wandb_run_and_weights(tmp_path):
    """torchrun starts every process itself, so each makes its own run id; they must end up in rank 0's."""
    port, runs = free_port(), tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'tests'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    env.pop("GAN_LAB_RUN_ID", None)
    nodes = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1", "--node_rank",
         str(node), "--master_addr", "127.0.0.1", "--master_port", str(port), str(ROOT / "main.py"), "fit",
         "--config", str(CONFIGS / "wgan_gp_ring.yaml"), "--runs_dir", str(runs), "--trainer.num_nodes", "2",
         "--trainer.accelerator", "cpu", "--trainer.max_steps", "2", "--trainer.enable_progress_bar", "false",
         "--trainer.callbacks+=helpers.SaveRankWeights", *SMALL_RING],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for node in (0, 1)]
    for proc in nodes:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out[-3000:]
    (run_dir,) = (runs / "wgan_gp_ring").iterdir()  # one run folder, none left behind by node 1
    ranks = rank_weights(run_dir)  # both ranks wrote into it
    assert ranks[0]["g_steps"] == ranks[1]["g_steps"] == 2
    assert_ranks_identical(ranks)
    (wandb_run,) = runs.rglob("offline-run-*")  # one W&B run, under the run's id
    assert wandb_run.parent == run_dir / "wandb" and wandb_run.name.endswith(f"-{run_dir.name}")
    info = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["callbacks"]["gan_lab_run"]
    assert info == {"run_id": run_dir.name, "run_dir": str(run_dir)}


def test_an_exported_run_id_names_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["main.py"])
    monkeypatch.setenv("GAN_LAB_RUN_ID", "job-4711")
    cli = build("wgan_gp_ring.yaml", tmp_path)
    assert Path(cli.run_dir) == tmp_path / "runs" / "wgan_gp_ring" / "job-4711"


@pytest.mark.slow
def test_gan_ddp_under_fp16_grad_scaler_keeps_ranks_identical(tmp_path):
    """Averaged before the scaler unscales, so every rank sees the same inf/NaN check and skips the same steps."""
    fp16 = '{"class_path": "lightning.pytorch.plugins.MixedPrecision", "init_args": {"precision": "16-mixed", ' \
           '"device": "cpu"}}'
    run_dir, ranks = two_process_ddp(tmp_path, "--trainer.max_steps", "4", "--trainer.plugins", fp16, *SMALL_RING)
    assert ranks[0]["g_steps"] == 4
    scaler = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["MixedPrecision"]
    assert scaler["scale"] < 2.0**16  # the scaler did skip steps (the case where ranks could disagree)
