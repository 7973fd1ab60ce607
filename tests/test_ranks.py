"""What each rank of a multi-process run does on its own and what the ranks must agree on: per-rank noise
after a resume, restoring RNG states on fewer GPUs, the NaN stop, and SIGTERM under ``gan_ddp``.

Multi-process cases run two CPU processes (gloo) through ``main.py``, as a user would.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import torch
from helpers import CONFIGS, SMALL_RING, assert_same_training_state, main_py, two_process_ddp

TWO_CPU_PROCESSES = ["--trainer.devices", "2", "--trainer.accelerator", "cpu", "--trainer.strategy", "gan_ddp"]


def finish(proc, timeout: float = 300) -> str:
    """Wait for a ``main_py`` process (both ranks: they share its output pipe); fail instead of hanging."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()  # rank 0; the other ranks then fail on the closed connection and exit
        out, _ = proc.communicate()
        pytest.fail(f"the run hung for {timeout} s; its output ends with:\n{out[-3000:]}")
    return out


@pytest.mark.slow
def test_ranks_draw_different_noise_after_resuming_a_one_process_checkpoint(tmp_path, run_fit):
    single = run_fit("wgan_gp_ring.yaml", "--trainer.max_steps", "2", *SMALL_RING)
    proc = main_py(tmp_path, "--config", str(CONFIGS / "wgan_gp_ring.yaml"), "--trainer.max_steps", "6",
                   *SMALL_RING, *TWO_CPU_PROCESSES, "--trainer.callbacks+=helpers.RecordRNG",
                   "--ckpt_path", str(Path(single.run_dir, "checkpoints", "last.ckpt")))
    out = finish(proc)
    assert proc.returncode == 0, out[-3000:]
    rank0, rank1 = (torch.load(Path(single.run_dir, f"rng{r}.pt"), weights_only=True) for r in (0, 1))
    assert len(rank0) == len(rank1) == 4  # 4 more generator steps, one training batch each
    for step, (a, b) in enumerate(zip(rank0, rank1, strict=True)):
        assert not torch.equal(a, b), f"both ranks hold the same RNG state at batch {step} of the resumed run"


def test_cuda_states_restore_only_on_the_gpus_that_are_visible():
    from gan_modules.base import _restore_cuda_states

    saved = [torch.full((16,), i, dtype=torch.uint8) for i in range(4)]  # a checkpoint from a 4-GPU machine
    restored: list[tuple[int, torch.Tensor]] = []
    _restore_cuda_states(saved, visible=1, set_state=lambda state, device: restored.append((device, state)))
    assert [device for device, _ in restored] == [0]
    assert torch.equal(restored[0][1], saved[0])
    restored.clear()  # a checkpoint from one GPU on a 2-GPU machine: the second keeps its own state
    _restore_cuda_states(saved[:1], visible=2, set_state=lambda state, device: restored.append((device, state)))
    assert [device for device, _ in restored] == [0]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_rng_states_from_a_machine_with_more_gpus_restore():
    from gan_modules.base import _rng_states, _set_rng_states

    torch.cuda.manual_seed_all(3)
    states = _rng_states()
    visible = torch.cuda.device_count()
    states["cuda"] = [states["cuda"][0]] * (visible + 3)  # as if saved where 3 more GPUs were visible
    expected = torch.cuda.get_rng_state(0)
    torch.cuda.manual_seed_all(4)
    _set_rng_states(states)
    assert torch.equal(torch.cuda.get_rng_state(0), expected)



def fp16_with_nan_steps(first: int, last: int) -> list[str]:
    """fp16 (GradScaler) at n_critic 1, logging every 4 generator steps, a checkpoint every 5 generator steps,
    and every loss NaN in the batches that start at generator steps ``first``..``last``."""
    from test_mixed_precision import FP16_ON_CPU

    return ["--trainer.max_steps", "12", "--model.init_args.n_critic", "1", "--trainer.log_every_n_steps", "4",
            "--checkpoint.every_n_train_steps", "5", "--checkpoint.save_top_k", "-1", *FP16_ON_CPU, *SMALL_RING,
            "--trainer.callbacks+=helpers.NonFiniteSteps", f"--trainer.callbacks.first={first}",
            f"--trainer.callbacks.last={last}"]


def test_fp16_nan_window_is_the_whole_logging_interval_across_a_checkpoint_save(run_fit):
    from helpers import NonFiniteSteps

    # generator steps 5 and 6 skipped by the scaler, 7 and 8 fine: the interval 4..8 recovered; the save at
    # step 5 falls inside it and must neither stop the run nor restart the interval
    cli = run_fit("wgan_gp_ring.yaml", *fp16_with_nan_steps(4, 5))
    (nan,) = [c for c in cli.trainer.callbacks if isinstance(c, NonFiniteSteps)]
    assert (nan.batches, cli.model.g_steps, cli.trainer.global_step) == (2, 12, 12)
    assert sorted(p.name for p in Path(cli.run_dir, "checkpoints").glob("*.ckpt")) == [
        "epoch=0-step=10.ckpt", "epoch=0-step=5.ckpt", "last.ckpt"]  # step = generator step
    # non-finite over the whole interval 4..8 still stops, naming the loss and the interval
    with pytest.raises(FloatingPointError, match=r"NaN or infinite at every step between generator steps 4 and 8"):
        run_fit("wgan_gp_ring.yaml", *fp16_with_nan_steps(4, 7))


@pytest.mark.slow
def test_nan_on_one_rank_stops_every_rank_with_a_clear_error(tmp_path):
    # fp16: rank 1's NaN gradients are averaged into rank 0's, both GradScalers skip every step, so only
    # rank 1's losses are NaN; rank 0 alone would carry on into the next collective and wait for rank 1
    from test_mixed_precision import FP16_ON_CPU

    proc = main_py(tmp_path, "--config", str(CONFIGS / "wgan_gp_ring.yaml"), "--trainer.max_steps", "10",
                   "--trainer.log_every_n_steps", "1", "--checkpoint.every_n_train_steps", "0", *FP16_ON_CPU,
                   *SMALL_RING, *TWO_CPU_PROCESSES, "--trainer.callbacks+=helpers.PoisonWeights",
                   "--trainer.callbacks.at_g_step=3", "--trainer.callbacks.rank=1")
    out = finish(proc, timeout=240)
    assert proc.returncode != 0
    errors = [line for line in out.splitlines() if re.match(r"(\[rank\d\]: )?FloatingPointError:", line)]
    assert len(errors) == 2, out[-4000:]
    assert any("train/d_loss" in e and "on rank 1 " in e for e in errors), errors
    assert any("on another rank" in e and "this is rank 0" in e for e in errors), errors



TOTAL = "20"  # generator steps
NO_PERIODIC_SAVE = ["--checkpoint.every_n_train_steps", "0", *SMALL_RING]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """last.ckpt of a two-process run of TOTAL generator steps without a signal."""
    run_dir, _ = two_process_ddp(tmp_path_factory.mktemp("uninterrupted"), "--trainer.max_steps", TOTAL,
                                 *NO_PERIODIC_SAVE)
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)


@pytest.mark.slow
@pytest.mark.parametrize("ranks", [[0, 1], [0], [1]], ids=["every-rank", "rank-0-alone", "rank-1-alone"])
def test_sigterm_under_gan_ddp_stops_every_rank_and_resumes_exactly(tmp_path, uninterrupted, ranks):
    proc = main_py(tmp_path, "--config", str(CONFIGS / "wgan_gp_ring.yaml"), "--trainer.max_steps", "100000",
                   *NO_PERIODIC_SAVE, *TWO_CPU_PROCESSES, "--trainer.callbacks+=helpers.SendSignal",
                   "--trainer.callbacks.at_g_step=6", f"--trainer.callbacks.ranks={ranks}")
    out = finish(proc, timeout=180)
    assert proc.returncode == 0, out[-3000:]
    reason = "SIGTERM" if 0 in ranks else "a signal on another rank"  # rank 0 alone prints
    assert f"Stopped by {reason} at generator step" in out and "--ckpt_path last" in out, out[-3000:]
    (run_dir,) = (tmp_path / "runs" / "wgan_gp_ring").glob("*/")
    stopped = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert stopped["gan_lab"]["g_steps"] in (6, 7), stopped["gan_lab"]["g_steps"]  # the step the signal hit

    two_process_ddp(tmp_path, "--trainer.max_steps", TOTAL, *NO_PERIODIC_SAVE,  # both ranks stay identical
                    "--ckpt_path", str(run_dir / "checkpoints" / "last.ckpt"))
    assert_same_training_state(uninterrupted, torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True))


def test_each_rank_restores_its_own_saved_torch_state():
    from gan_modules.base import _rng_states, _set_rng_states

    states = _rng_states()
    rows = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        rows.append(torch.get_rng_state())
    states["torch_per_rank"] = torch.stack(rows)  # as all_gather returns them: rank 1's row is a view at an offset
    for rank in (0, 1):
        torch.manual_seed(9)
        assert _set_rng_states(states, rank)
        assert torch.equal(torch.get_rng_state(), rows[rank])
    assert not _set_rng_states(states, 2)  # a third rank has no saved state of its own
    assert torch.equal(torch.get_rng_state(), states["torch"])


def test_sigterm_only_sets_a_flag_in_lightnings_signal_handling():
    # GracefulStop replaces a private part of Lightning (Trainer._signal_connector._sigterm_notifier_fn): this
    # fails loudly when a Lightning release renames it or stops calling it for SIGTERM
    import os
    import signal

    import lightning as L

    from callbacks.checkpointing import GracefulStop

    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    stop = GracefulStop()
    stop.on_fit_start(trainer, None)  # what fit does: the callback's hook, then Lightning registers its handlers
    trainer._signal_connector.register_signal_handlers()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        assert (stop.reason, trainer.received_sigterm) == ("SIGTERM", False)
    finally:
        trainer._signal_connector.teardown()
        stop.on_fit_end(trainer, None)

    from types import SimpleNamespace

    from callbacks.checkpointing import replace_lightning_sigterm_handler

    with pytest.raises(RuntimeError, match=r"no longer has Trainer._signal_connector._sigterm_notifier_fn"):
        replace_lightning_sigterm_handler(SimpleNamespace(_signal_connector=object()), stop._on_sigterm)
