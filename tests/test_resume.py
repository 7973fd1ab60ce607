"""A stopped-then-resumed run ends exactly where an uninterrupted run of the same length ends."""

import pytest
import torch
from conftest import last_checkpoint

# WGAN-GP with an EMA generator: counters, both networks, the EMA copy and both Adam states must all match.
# 1,024 ring samples in batches of 64: 16 batches an epoch, so the runs cross epoch boundaries.
ARGS = ["--data.init_args.num_samples", "1024", "--data.init_args.batch_size", "64",
        "--model.init_args.ema_decay", "0.9", "--checkpoint.every_n_train_steps", "0"]
TOTAL = 60  # optimizer steps: 10 generator steps


def assert_same_training_state(a: dict, b: dict) -> None:
    assert a["gan_lab"]["d_steps"] == b["gan_lab"]["d_steps"]
    assert a["gan_lab"]["g_steps"] == b["gan_lab"]["g_steps"]
    assert a["global_step"] == b["global_step"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for name, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][name]), name
    for opt_a, opt_b in zip(a["optimizer_states"], b["optimizer_states"], strict=True):
        for key, state in opt_a["state"].items():
            for field, value in state.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(opt_b["state"][key][field])), field


@pytest.mark.parametrize("stop_at", [38, 34], ids=["epoch-boundary", "mid-epoch"])
def test_resumed_run_equals_uninterrupted_run(run_fit, stop_at):
    # 38 optimizer steps = 32 D + 6 G steps: exactly two epochs; 34 = 29 D + 5 G: mid-epoch, between G steps
    full = run_fit("wgan_gp_ring.yaml", "--trainer.max_steps", str(TOTAL), *ARGS)
    first = run_fit("wgan_gp_ring.yaml", "--trainer.max_steps", str(stop_at), *ARGS)
    resumed = run_fit("wgan_gp_ring.yaml", "--trainer.max_steps", str(TOTAL), *ARGS,
                      "--ckpt_path", f"{first.run_dir}/checkpoints/last.ckpt")
    assert resumed.model.g_steps == full.model.g_steps == TOTAL // 6
    assert_same_training_state(last_checkpoint(full), last_checkpoint(resumed))
