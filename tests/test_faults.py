"""Faults and bad input: signals, kill -9 during a checkpoint write, NaN losses, mismatched or broken
checkpoints, secrets, mixed precision on the CPU, and two-process data parallelism."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import CONFIGS, ROOT, last_checkpoint
from test_resume import assert_same_training_state

SMALL_RING = ["--data.init_args.num_samples", "1024", "--data.init_args.batch_size", "64"]


def main_py(tmp_path: Path, *args: str) -> subprocess.Popen:
    """``python main.py fit`` in its own process (quiet, no logger), tests/ importable for helper callbacks."""
    # same thread count as the test process: results must match runs made in-process bit for bit
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'tests'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": str(torch.get_num_threads())}
    cmd = [sys.executable, str(ROOT / "main.py"), "fit", "--runs_dir", str(tmp_path / "runs"), "--trainer.logger",
           "false", "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false", *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_signal_writes_a_checkpoint_exits_cleanly_and_resumes_exactly(tmp_path, run_fit, sig):
    total = "3000"
    proc = main_py(tmp_path, "--config", str(CONFIGS / "wgan_gp_ring.yaml"), "--trainer.max_steps", "100000",
                   "--checkpoint.every_n_train_steps", "0", *SMALL_RING)
    deadline = time.time() + 120
    while not list((tmp_path / "runs").glob("wgan_gp_ring/*/config.yaml")) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(2.0)  # well into training
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out[-3000:]
    assert "Stopped by" in out and "--ckpt_path last" in out
    (run_dir,) = (tmp_path / "runs" / "wgan_gp_ring").glob("*/")
    stopped = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert 0 < stopped["global_step"] < int(total), stopped["global_step"]

    resumed = run_fit("wgan_gp_ring.yaml", "--trainer.max_steps", total, "--checkpoint.every_n_train_steps", "0",
                      "--ckpt_path", str(run_dir / "checkpoints" / "last.ckpt"), *SMALL_RING)
    full = run_fit("wgan_gp_ring.yaml", "--trainer.max_steps", total, "--checkpoint.every_n_train_steps", "0",
                   *SMALL_RING)
    assert_same_training_state(last_checkpoint(full), last_checkpoint(resumed))


KILL_SCRIPT = """
import sys, torch
sys.path.insert(0, {root!r})
from callbacks.checkpointing import AtomicCheckpointIO
io, i = AtomicCheckpointIO(), 0
while True:
    i += 1
    io.save_checkpoint({{"version": i, "payload": torch.full((4_000_000,), float(i))}}, {path!r})
    print(i, flush=True)
"""


def test_kill_9_while_writing_never_corrupts_the_last_checkpoint(tmp_path):
    path = tmp_path / "last.ckpt"
    for delay in (0.5, 0.9, 1.3):
        proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT.format(root=str(ROOT), path=str(path))],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "1" or path.exists()  # at least one complete write
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        ckpt = torch.load(path, weights_only=True)  # never truncated
        assert torch.equal(ckpt["payload"], torch.full((4_000_000,), float(ckpt["version"])))


def test_nan_loss_stops_with_the_loss_named_and_keeps_the_last_good_checkpoint(run_fit):
    with pytest.raises(FloatingPointError, match=r"train/d_loss.*NaN or infinite.*last good checkpoint"):
        run_fit("wgan_gp_ring.yaml", "--trainer.max_steps", "60", "--trainer.log_every_n_steps", "1",
                "--checkpoint.every_n_train_steps", "12", "--trainer.callbacks+=helpers.PoisonWeights",
                "--trainer.callbacks.at_g_step=3", *SMALL_RING)


def test_nan_run_leaves_a_finite_last_checkpoint(tmp_path):
    proc = main_py(tmp_path, "--config", str(CONFIGS / "wgan_gp_ring.yaml"), "--trainer.max_steps", "60",
                   "--trainer.log_every_n_steps", "1", "--checkpoint.every_n_train_steps", "12",
                   "--trainer.callbacks+=helpers.PoisonWeights", "--trainer.callbacks.at_g_step=3", *SMALL_RING)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "FloatingPointError" in out
    (ckpt_path,) = (tmp_path / "runs" / "wgan_gp_ring").glob("*/checkpoints/last.ckpt")
    ckpt = torch.load(ckpt_path, weights_only=True)
    assert ckpt["gan_lab"]["g_steps"] == 2  # written at optimizer step 12, before the poison
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())


def test_resume_with_networks_that_do_not_fit_names_the_mismatch(run_fit):
    first = run_fit("gan_gaussian1d.yaml", "--trainer.max_steps", "12", "--data.init_args.num_samples", "256")
    with pytest.raises(ValueError, match=r"trained on samples of shape \(1,\), these data have \(2,\)"):
        run_fit("gan_gaussian1d.yaml", "--trainer.max_steps", "24", "--data", "datamodules.Ring2D",
                "--data.init_args.num_samples", "1024", "--ckpt_path", f"{first.run_dir}/checkpoints/last.ckpt")


def test_truncated_and_foreign_checkpoints_are_clear_errors(run_fit, tmp_path):
    first = run_fit("wgan_gp_ring.yaml", "--trainer.max_steps", "12", *SMALL_RING)
    good = Path(first.run_dir, "checkpoints", "last.ckpt").read_bytes()
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match=r"cannot be read.*truncated or not a PyTorch checkpoint"):
        run_fit("wgan_gp_ring.yaml", "--ckpt_path", str(truncated), *SMALL_RING)
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(ValueError, match="not a Lightning checkpoint"):
        run_fit("wgan_gp_ring.yaml", "--ckpt_path", str(foreign), *SMALL_RING)
    with pytest.raises(FileNotFoundError, match="no such file"):
        run_fit("wgan_gp_ring.yaml", "--ckpt_path", str(tmp_path / "missing.ckpt"), *SMALL_RING)


def test_no_secret_is_logged_or_saved(run_fit, monkeypatch):
    secret = "test-secret-0123456789abcdef0123456789abcdef01"
    monkeypatch.setenv("WANDB_API_KEY", secret)
    monkeypatch.setenv("WANDB_MODE", "offline")
    cli = run_fit("wgan_gp_ring.yaml", "--trainer.max_steps", "12", *SMALL_RING, logger=True)
    for path in Path(cli.run_dir).rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_bf16_mixed_precision_on_cpu(run_fit):
    cli = run_fit("wgan_gp_ring.yaml", "--trainer.max_steps", "120", "--trainer.precision", "bf16-mixed",
                  "--trainer.log_every_n_steps", "5", *SMALL_RING)
    assert cli.model.g_steps == 20
    assert all(torch.isfinite(torch.tensor(v)) for v in cli.model.latest_metrics.values())


def test_penalty_under_bf16_autocast_matches_fp32():
    from gan_modules.networks import MLPDiscriminator
    from gan_modules.regularizers import gradient_penalty

    torch.manual_seed(0)
    critic = MLPDiscriminator((2,), hidden=(64, 64))
    real, fake, alpha = torch.randn(256, 2), torch.randn(256, 2), torch.rand(256, 1)
    fp32 = gradient_penalty(critic, real, fake, alpha=alpha)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = gradient_penalty(critic, real, fake, alpha=alpha)
    torch.testing.assert_close(bf16.float(), fp32, rtol=0.05, atol=1e-3)


def two_process_ddp(tmp_path: Path, *args: str, config: str = "wgan_gp_ring") -> tuple[Path, list[dict]]:
    """Train with 2 CPU processes (gloo) and gan_ddp; return the run folder and each rank's final weights."""
    proc = main_py(tmp_path, "--config", str(CONFIGS / f"{config}.yaml"), "--trainer.devices", "2",
                   "--trainer.accelerator", "cpu", "--trainer.strategy", "gan_ddp",
                   "--trainer.callbacks+=helpers.SaveRankWeights", *args)
    out, _ = proc.communicate(timeout=1500)
    assert proc.returncode == 0, out[-3000:]
    (run_dir,) = (tmp_path / "runs" / config).glob("*/")
    ranks = [torch.load(run_dir / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for name, value in ranks[0]["state"].items():
        assert torch.equal(value, ranks[1]["state"][name]), name  # both networks identical on both ranks
    return run_dir, ranks


def test_two_process_ddp_keeps_ranks_identical(tmp_path):
    _, ranks = two_process_ddp(tmp_path, "--trainer.max_steps", "60", *SMALL_RING)
    assert ranks[0]["g_steps"] == ranks[1]["g_steps"] == 10


# Every other variant once: weight clipping (WGAN), spectral norm's power-iteration buffers (SNGAN), the
# DRAGAN and R1 penalties, batch-norm running statistics (DCGAN on images).
@pytest.mark.slow
@pytest.mark.parametrize("config", ["gan_ring", "wgan_ring", "lsgan_ring", "sngan_ring", "dragan_ring", "gan_r1_ring"])
def test_two_process_ddp_every_toy_variant(tmp_path, config):
    _, ranks = two_process_ddp(tmp_path, "--trainer.max_steps", "40", *SMALL_RING, config=config)
    assert ranks[0]["g_steps"] > 0


@pytest.mark.slow
def test_two_process_ddp_dcgan_with_batch_norm(tmp_path, tiny_mnist):
    _, ranks = two_process_ddp(tmp_path, "--trainer.max_steps", "8", "--data.init_args.data_dir", str(tiny_mnist),
                               "--data.init_args.batch_size", "8", config="dcgan_mnist")
    assert ranks[0]["g_steps"] == 4


@pytest.mark.slow
def test_two_process_ddp_learns(tmp_path):
    from datamodules import Ring2D
    from gan_modules import WGANGP

    run_dir, ranks = two_process_ddp(tmp_path, "--trainer.max_steps", "15000", "--data.init_args.batch_size", "128")
    assert ranks[0]["g_steps"] == 2500
    module = WGANGP.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    torch.manual_seed(0)
    assert Ring2D().score(module.sample(2500))["modes"] >= 6
