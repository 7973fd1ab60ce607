"""A stopped-then-resumed run ends exactly where an uninterrupted run of the same length ends."""

from pathlib import Path

import pytest
from helpers import assert_same_counters, assert_same_training_state, last_checkpoint

# WGAN-GP with an EMA generator: counters, both networks, the EMA copy and both Adam states must all match.
# One training step is one generator step of n_critic 5 critic batches of 64 (320 ring samples): 1,280 samples
# are 4 generator steps an epoch, so the runs cross epoch boundaries.
ARGS = ["--data.init_args.num_samples", "1280", "--data.init_args.batch_size", "64",
        "--model.init_args.ema_decay", "0.9", "--checkpoint.every_n_train_steps", "0"]
TOTAL = 10  # generator steps (50 discriminator steps): two and a half epochs

# 640 samples in critic batches of 64: 2 generator steps an epoch, 3 epochs = 6 generator and 30 discriminator
# steps.
EPOCH_ARGS = ["--data.init_args.num_samples", "640", "--data.init_args.batch_size", "64",
              "--model.init_args.ema_decay", "0.9"]
EPOCHS = "3"
EPOCH_G_STEPS = 6  # 3 epochs x 2 generator steps


@pytest.mark.parametrize("stop_at", [8, 7], ids=["epoch-boundary", "mid-epoch"])
def test_resumed_run_equals_uninterrupted_run(run_fit, stop_at):
    # 8 generator steps (40 D steps) = exactly two epochs of 4; 7 = mid-epoch, 3 of the second epoch's 4 steps.
    # (Every step boundary is a generator-step boundary now: there is no stop between a D and a G step.)
    full = run_fit("wgan_gp_ring.yaml", "--trainer.max_steps", str(TOTAL), *ARGS)
    first = run_fit("wgan_gp_ring.yaml", "--trainer.max_steps", str(stop_at), *ARGS)
    stopped = last_checkpoint(first)  # read now: the resumed run writes into the same run folder
    assert stopped["global_step"] == first.model.g_steps == stop_at
    # where the stop lies: in epoch 1, after 4 of its 4 steps (epoch-boundary) or after 3 (mid-epoch)
    assert stopped["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [{"epoch": 1, "consumed": stop_at - 4}]
    assert stopped["loops"]["fit_loop"]["epoch_loop.batch_progress"]["is_last_batch"] == (stop_at == 8)
    resumed = run_fit("wgan_gp_ring.yaml", "--trainer.max_steps", str(TOTAL), *ARGS,
                      "--ckpt_path", f"{first.run_dir}/checkpoints/last.ckpt")
    assert resumed.model.g_steps == full.model.g_steps == TOTAL
    assert resumed.model.d_steps == full.model.d_steps == TOTAL * 5
    assert_same_training_state(last_checkpoint(full), last_checkpoint(resumed))
    assert_same_counters(last_checkpoint(full), last_checkpoint(resumed))


@pytest.mark.parametrize("bound", [[], ["--trainer.max_steps", "-1"]], ids=["max_steps-bounded", "epochs-only"])
def test_resume_after_max_epochs_equals_uninterrupted_run(run_fit, bound):
    """Stopped by max_epochs, its last.ckpt is written after the epoch closed; the next epoch trains whole."""
    full = run_fit("wgan_gp_ring.yaml", "--trainer.max_epochs", EPOCHS, *EPOCH_ARGS, *bound)
    first = run_fit("wgan_gp_ring.yaml", "--trainer.max_epochs", "1", *EPOCH_ARGS, *bound)
    assert first.model.g_steps == EPOCH_G_STEPS // int(EPOCHS)  # one whole epoch: 2 generator steps
    resumed = run_fit("wgan_gp_ring.yaml", "--trainer.max_epochs", EPOCHS, *EPOCH_ARGS, *bound,
                      "--ckpt_path", f"{first.run_dir}/checkpoints/last.ckpt")
    assert resumed.model.d_steps == full.model.d_steps == EPOCH_G_STEPS * 5
    assert resumed.model.g_steps == full.model.g_steps == resumed.trainer.global_step == EPOCH_G_STEPS
    assert_same_training_state(last_checkpoint(full), last_checkpoint(resumed))
    assert_same_counters(last_checkpoint(full), last_checkpoint(resumed))


@pytest.mark.parametrize("bound", [[], ["--trainer.max_steps", "-1"]], ids=["max_steps-bounded", "epochs-only"])
def test_resume_from_lightnings_epoch_end_save_equals_uninterrupted_run(run_fit, bound):
    """With no every_n_train_steps (gan_gaussian1d.yaml, classifier_mnist.yaml) Lightning saves at every epoch's
    end; a crash in the next epoch resumes from that save."""
    epoch_saves = ["--checkpoint.every_n_train_steps", "null", "--checkpoint.save_top_k", "-1"]
    full = run_fit("wgan_gp_ring.yaml", "--trainer.max_epochs", EPOCHS, *EPOCH_ARGS, *bound, *epoch_saves)
    after_first_epoch = Path(full.run_dir, "checkpoints", "epoch=0-step=2.ckpt")  # what last.ckpt held then
    resumed = run_fit("wgan_gp_ring.yaml", "--trainer.max_epochs", EPOCHS, *EPOCH_ARGS, *bound, *epoch_saves,
                      "--ckpt_path", str(after_first_epoch))
    assert resumed.model.d_steps == full.model.d_steps == EPOCH_G_STEPS * 5
    assert resumed.model.g_steps == full.model.g_steps == resumed.trainer.global_step == EPOCH_G_STEPS
    assert_same_training_state(last_checkpoint(full), last_checkpoint(resumed))
    assert_same_counters(last_checkpoint(full), last_checkpoint(resumed))
