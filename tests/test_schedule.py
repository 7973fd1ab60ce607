"""The one step unit: a Lightning step is a generator step, fed n_critic fresh real batches."""

import pytest
import torch
from helpers import last_checkpoint

# 960 samples of batch 64 at n_critic 5: 3 generator steps an epoch (each takes 5 x 64 samples)
TINY_1D = ["--data.init_args.num_samples", "960", "--data.init_args.batch_size", "64"]


def test_max_steps_counts_generator_steps_across_epochs(run_fit):
    cli = run_fit("gan_gaussian1d.yaml", "--trainer.max_steps", "7", *TINY_1D)
    assert (cli.model.d_steps, cli.model.g_steps) == (35, 7)
    # Lightning's counter agrees: only the generator's optimizer step is counted (gan_modules/base.py). If a
    # Lightning upgrade counts the discriminator's direct strategy step too, this fails.
    assert cli.trainer.global_step == 7
    assert last_checkpoint(cli)["gan_lab"]["g_steps"] == 7
    assert last_checkpoint(cli)["global_step"] == 7


def test_every_critic_step_sees_its_own_fresh_real_batch(run_fit, monkeypatch):
    from gan_modules.gan import GANModule

    seen = []
    original = GANModule.discriminator_loss

    def spy(self, batch):
        seen.append(batch.detach().clone())
        return original(self, batch)

    monkeypatch.setattr(GANModule, "discriminator_loss", spy)
    cli = run_fit("gan_gaussian1d.yaml", "--trainer.max_steps", "3", *TINY_1D)
    assert len(seen) == 15 and all(b.shape == (64, 1) for b in seen)
    # one epoch: the 15 critic batches are 15 disjoint slices of the training set, together all of it
    torch.testing.assert_close(torch.cat(seen).sort(0).values, cli.datamodule.data.sort(0).values)


def test_fast_dev_run_takes_one_whole_generator_step(run_fit):
    cli = run_fit("wgan_gp_ring.yaml", "--trainer.fast_dev_run", "true", "--data.init_args.num_samples", "2048")
    assert (cli.model.d_steps, cli.model.g_steps) == (5, 1)


@pytest.mark.parametrize("config, n_critic", [("gan_ring.yaml", 1), ("wgan_gp_ring.yaml", 5)])
def test_checkpoint_interval_counts_generator_steps(run_fit, config, n_critic, tmp_path):
    # an odd interval with n_critic 1 used to save only at even multiples (global_step grew by 2 per G step)
    cli = run_fit(config, "--trainer.max_steps", "9", "--checkpoint.every_n_train_steps", "3",
                  "--checkpoint.save_top_k", "-1", "--checkpoint.filename", "{step}",
                  "--data.init_args.num_samples", "4096")
    names = sorted(p.name for p in (tmp_path / "runs").glob("*/*/checkpoints/step=*.ckpt"))
    assert names == ["step=3.ckpt", "step=6.ckpt", "step=9.ckpt"]
    assert cli.model.d_steps == 9 * n_critic


def test_resume_continues_the_generator_step_count(run_fit):
    first = run_fit("gan_gaussian1d.yaml", "--trainer.max_steps", "4", *TINY_1D)
    ckpt = str(first.run_dir) + "/checkpoints/last.ckpt"
    resumed = run_fit("gan_gaussian1d.yaml", "--trainer.max_steps", "7", "--ckpt_path", ckpt, *TINY_1D)
    assert (resumed.model.d_steps, resumed.model.g_steps, resumed.trainer.global_step) == (35, 7, 7)
    assert resumed.run_dir == first.run_dir  # a resume continues the same run folder
