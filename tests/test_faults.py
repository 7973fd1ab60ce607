"""Faults and bad input: signals, kill -9 during a checkpoint write, NaN losses, mismatched or broken
checkpoints, secrets, mixed precision on the CPU, and two-process data parallelism."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import CONFIGS, ROOT, SMALL_RING, assert_same_training_state, last_checkpoint, main_py, two_process_ddp


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_signal_writes_a_checkpoint_exits_cleanly_and_resumes_exactly(tmp_path, run_fit, sig):
    total = "500"  # generator steps (3,000 optimizer steps at n_critic 5)
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
import io, os, sys, time, torch
sys.path.insert(0, {root!r})
from callbacks.checkpointing import AtomicCheckpointIO

class InPlace:  # the writer the test must catch: straight over the target
    def save_checkpoint(self, checkpoint, path):
        with open(path, "wb") as f:
            torch.save(checkpoint, f)

real_save = torch.save

def half_then_hang(obj, f, *args, **kwargs):
    # the real bytes, but only the first half reaches the file; then report and wait to be killed
    buf = io.BytesIO()
    real_save(obj, buf, *args, **kwargs)
    data = buf.getvalue()
    if isinstance(f, (str, os.PathLike)):
        f = open(f, "wb")
    f.write(data[: len(data) // 2])
    f.flush()
    os.fsync(f.fileno())
    print("writing", len(data) // 2, flush=True)
    time.sleep(600)

writer = AtomicCheckpointIO() if {atomic!r} else InPlace()
for version in (1, 2, 3):
    if version == 3:
        torch.save = half_then_hang  # the third save is cut off half-way through its bytes
    writer.save_checkpoint({{"version": version, "payload": torch.full((1_000_000,), float(version))}}, {path!r})
    print("saved", version, flush=True)
"""


def kill_9_mid_write(tmp_path: Path, atomic: bool) -> tuple[Path, int]:
    """Two complete saves of last.ckpt, then a third that has written half its bytes when it is killed with
    SIGKILL (deterministically: the writer reports "writing" and waits). Returns the target and the bytes written."""
    path = tmp_path / "last.ckpt"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT.format(root=str(ROOT), path=str(path), atomic=atomic)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline().strip() for _ in range(3)]
    finally:
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    assert lines[:2] == ["saved 1", "saved 2"], (lines, err[-3000:])
    assert lines[2].startswith("writing "), (lines, err[-3000:])  # killed in the middle of the third save
    assert proc.returncode == -signal.SIGKILL
    return path, int(lines[2].split()[1])


def test_kill_9_while_writing_never_corrupts_the_last_checkpoint(tmp_path):
    path, written = kill_9_mid_write(tmp_path, atomic=True)
    partial = [p for p in tmp_path.iterdir() if p.stat().st_size == written]  # the cut-off bytes: beside the target
    assert partial and path not in partial, sorted(p.name for p in tmp_path.iterdir())
    ckpt = torch.load(path, weights_only=True)  # never truncated: the previous complete version
    assert ckpt["version"] == 2
    assert torch.equal(ckpt["payload"], torch.full((1_000_000,), 2.0))


def test_kill_9_test_catches_a_writer_that_writes_in_place(tmp_path):
    """The same kill against a writer that saves straight over the target leaves it truncated: the test above
    would fail for it, so it cannot pass for a reason other than the atomic write."""
    path, written = kill_9_mid_write(tmp_path, atomic=False)
    assert path.stat().st_size == written
    with pytest.raises(Exception):  # noqa: B017 - whatever torch raises on half a zip file
        torch.load(path, weights_only=True)


def test_nan_loss_stops_with_the_loss_named_and_keeps_the_last_good_checkpoint(run_fit):
    with pytest.raises(FloatingPointError, match=r"train/d_loss.*NaN or infinite.*last good checkpoint"):
        run_fit("wgan_gp_ring.yaml", "--trainer.max_steps", "10", "--trainer.log_every_n_steps", "1",
                "--checkpoint.every_n_train_steps", "2", "--trainer.callbacks+=helpers.PoisonWeights",
                "--trainer.callbacks.at_g_step=3", *SMALL_RING)


def test_nan_run_leaves_a_finite_last_checkpoint(tmp_path):
    proc = main_py(tmp_path, "--config", str(CONFIGS / "wgan_gp_ring.yaml"), "--trainer.max_steps", "10",
                   "--trainer.log_every_n_steps", "1", "--checkpoint.every_n_train_steps", "2",
                   "--trainer.callbacks+=helpers.PoisonWeights", "--trainer.callbacks.at_g_step=3", *SMALL_RING)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "FloatingPointError" in out
    (ckpt_path,) = (tmp_path / "runs" / "wgan_gp_ring").glob("*/checkpoints/last.ckpt")
    ckpt = torch.load(ckpt_path, weights_only=True)
    assert ckpt["gan_lab"]["g_steps"] == ckpt["global_step"] == 2  # written at generator step 2, before the poison
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())


def test_resume_with_networks_that_do_not_fit_names_the_mismatch(run_fit):
    # 640 samples: two steps of n_critic 5 x batch 64
    first = run_fit("gan_gaussian1d.yaml", "--trainer.max_steps", "2", "--data.init_args.num_samples", "640")
    with pytest.raises(ValueError, match=r"trained on samples of shape \(1,\), these data have \(2,\)"):
        run_fit("gan_gaussian1d.yaml", "--trainer.max_steps", "4", "--data", "datamodules.Ring2D",
                "--data.init_args.num_samples", "1024", "--ckpt_path", f"{first.run_dir}/checkpoints/last.ckpt")


def test_truncated_and_foreign_checkpoints_are_clear_errors(run_fit, tmp_path):
    first = run_fit("wgan_gp_ring.yaml", "--trainer.max_steps", "2", *SMALL_RING)
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
    with pytest.raises(FileNotFoundError, match=r"--ckpt_path is empty: .*fit without --ckpt_path starts a new run"):
        run_fit("wgan_gp_ring.yaml", "--ckpt_path", "", *SMALL_RING)  # --ckpt_path "$CKPT" with CKPT unset


def test_no_secret_is_logged_or_saved(run_fit, monkeypatch):
    secret = "test-secret-0123456789abcdef0123456789abcdef01"
    monkeypatch.setenv("WANDB_API_KEY", secret)
    monkeypatch.setenv("WANDB_MODE", "offline")
    cli = run_fit("wgan_gp_ring.yaml", "--trainer.max_steps", "2", *SMALL_RING, logger=True)
    for path in Path(cli.run_dir).rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_bf16_mixed_precision_on_cpu(run_fit):
    cli = run_fit("wgan_gp_ring.yaml", "--trainer.max_steps", "20", "--trainer.precision", "bf16-mixed",
                  "--trainer.log_every_n_steps", "5", *SMALL_RING)
    assert cli.model.g_steps == cli.trainer.global_step == 20
    assert cli.model.d_steps == 100  # n_critic 5
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


def test_two_process_ddp_keeps_ranks_identical(tmp_path):
    _, ranks = two_process_ddp(tmp_path, "--trainer.max_steps", "10", *SMALL_RING)
    assert ranks[0]["g_steps"] == ranks[1]["g_steps"] == ranks[0]["global_step"] == 10


# Every other variant once: weight clipping (WGAN), spectral norm's power-iteration buffers (SNGAN), the
# DRAGAN and R1 penalties, batch-norm running statistics (DCGAN on images).
@pytest.mark.slow
@pytest.mark.parametrize("config", ["gan_ring", "wgan_ring", "lsgan_ring", "sngan_ring", "dragan_ring", "gan_r1_ring"])
def test_two_process_ddp_every_toy_variant(tmp_path, config):
    _, ranks = two_process_ddp(tmp_path, "--trainer.max_steps", "6", *SMALL_RING, config=config)
    assert ranks[0]["g_steps"] == 6


@pytest.mark.slow
def test_two_process_ddp_dcgan_with_batch_norm(tmp_path, tiny_mnist):
    # n_critic 1, batch 8: 20 digits per process, 2 steps an epoch
    _, ranks = two_process_ddp(tmp_path, "--trainer.max_steps", "4", "--data.init_args.data_dir", str(tiny_mnist),
                               "--data.init_args.batch_size", "8", config="dcgan_mnist")
    assert ranks[0]["g_steps"] == 4


@pytest.mark.slow
def test_two_process_ddp_learns(tmp_path):
    from datamodules import Ring2D
    from gan_modules import WGANGP

    run_dir, ranks = two_process_ddp(tmp_path, "--trainer.max_steps", "2500", "--data.init_args.batch_size", "128")
    assert ranks[0]["g_steps"] == 2500
    module = WGANGP.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    torch.manual_seed(0)
    assert Ring2D().score(module.sample(2500))["modes"] >= 6
