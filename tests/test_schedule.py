"""The n_critic schedule: counted by the module, across epochs and resumes."""

from conftest import last_checkpoint

TINY_1D = ["--data.init_args.num_samples", "192", "--data.init_args.batch_size", "64"]  # 3 batches an epoch


def test_k_generator_steps_after_k_times_n_critic_batches_across_epochs(run_fit):
    # n_critic 5 with 3 batches an epoch: batch_idx-based scheduling would never reach a G step.
    cli = run_fit("gan_gaussian1d.yaml", "--trainer.max_steps", "24", *TINY_1D)  # 24 = 4 x (5 + 1)
    assert (cli.model.d_steps, cli.model.g_steps) == (20, 4)
    assert cli.trainer.current_epoch >= 6
    assert cli.trainer.global_step == 24  # Lightning counts optimizer steps
    assert last_checkpoint(cli)["gan_lab"]["g_steps"] == 4


def test_schedule_continues_across_a_resume_between_generator_steps(run_fit):
    first = run_fit("gan_gaussian1d.yaml", "--trainer.max_steps", "8", *TINY_1D)  # D x5, G, D, D
    assert (first.model.d_steps, first.model.g_steps) == (7, 1)
    ckpt = str(first.run_dir) + "/checkpoints/last.ckpt"
    resumed = run_fit("gan_gaussian1d.yaml", "--trainer.max_steps", "24", "--ckpt_path", ckpt, *TINY_1D)
    assert (resumed.model.d_steps, resumed.model.g_steps) == (20, 4)
    assert resumed.run_dir == first.run_dir  # a resume continues the same run folder
