"""One last.ckpt per run, always the newest; `--ckpt_path last` never picks a stale or smoke-test checkpoint;
settings that write no checkpoint or that change the data order on resume are reported at start-up."""

import os
import warnings
from pathlib import Path

import pytest
from helpers import last_checkpoint

# 2 generator steps; 2,560 ring samples are 2 steps an epoch (n_critic 5 x batch 256 = 1,280 samples a step)
FAST = ["--trainer.max_steps", "2", "--data.init_args.num_samples", "2560"]
LONGER = ["--trainer.max_steps", "4", "--data.init_args.num_samples", "2560"]  # the resumed runs: 2 steps more


def checkpoint_files(run_dir: str) -> list[str]:
    return sorted(p.name for p in Path(run_dir).rglob("*.ckpt"))


def test_enable_checkpointing_false_writes_no_checkpoint_and_says_so(run_fit, capsys):
    cli = run_fit("wgan_gp_ring.yaml", *FAST, "--trainer.enable_checkpointing", "false")
    assert cli.model.g_steps == 2
    assert checkpoint_files(cli.run_dir) == []
    assert "Checkpoint:  none written (--trainer.enable_checkpointing false)" in capsys.readouterr().out


def test_resume_with_another_interval_overwrites_the_one_last_ckpt(run_fit):
    first = run_fit("wgan_gp_ring.yaml", *FAST, "--checkpoint.every_n_train_steps", "1")
    resumed = run_fit("wgan_gp_ring.yaml", *LONGER, "--checkpoint.every_n_train_steps", "3", "--ckpt_path", "last")
    assert resumed.run_dir == first.run_dir
    assert [name for name in checkpoint_files(first.run_dir) if name.startswith("last")] == ["last.ckpt"]
    assert last_checkpoint(resumed)["global_step"] == 4


def test_fast_dev_run_writes_no_checkpoint_and_last_resumes_the_real_run(run_fit, tmp_path):
    real = run_fit("wgan_gp_ring.yaml", *FAST)
    smoke = run_fit("wgan_gp_ring.yaml", *FAST, "--trainer.fast_dev_run", "true")
    assert smoke.run_dir != real.run_dir and checkpoint_files(smoke.run_dir) == []
    resumed = run_fit("wgan_gp_ring.yaml", *LONGER, "--ckpt_path", "last")
    assert resumed.run_dir == real.run_dir and last_checkpoint(resumed)["global_step"] == 4


def test_ckpt_path_last_takes_the_most_recently_written_checkpoint(tmp_path):
    from callbacks.runs import newest_last_checkpoint as _newest_last_checkpoint

    runs = tmp_path / "wgan_gp_ring"
    older_run, newer_run = (runs / name / "checkpoints" / "last.ckpt" for name in ("20250101-000000-aaaa",
                                                                                      "20250102-000000-bbbb"))
    for path, mtime in ((older_run, 2_000_000_000), (newer_run, 1_000_000_000)):  # the older run was resumed
        path.parent.mkdir(parents=True)
        path.write_bytes(b"")
        os.utime(path, (mtime, mtime))
    assert _newest_last_checkpoint(runs) == older_run


@pytest.mark.parametrize("interval", ["0", "100"], ids=["no-interval", "beyond-max_steps"])
def test_save_last_false_with_no_reachable_save_warns_at_start_up(run_fit, interval):
    with pytest.warns(UserWarning, match=r"write no checkpoint: --checkpoint.save_last is false and "
                                         rf"--checkpoint.every_n_train_steps {interval}"):
        cli = run_fit("wgan_gp_ring.yaml", *FAST, "--checkpoint.save_last", "false",
                      "--checkpoint.every_n_train_steps", interval)
    assert checkpoint_files(cli.run_dir) == []


def test_save_last_false_with_a_reachable_save_does_not_warn(run_fit):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cli = run_fit("wgan_gp_ring.yaml", *FAST, "--checkpoint.save_last", "false",
                      "--checkpoint.every_n_train_steps", "1")
    assert [str(w.message) for w in caught if "write no checkpoint" in str(w.message)] == []
    assert checkpoint_files(cli.run_dir) == ["epoch=0-step=2.ckpt"]  # saved at steps 1 and 2, the newest kept


def test_resume_with_another_batch_size_or_n_critic_says_so(run_fit):
    first = run_fit("wgan_gp_ring.yaml", *FAST)
    saved = last_checkpoint(first)["gan_lab"]
    assert (saved["batch_size"], saved["n_critic"]) == (256, 5)
    with pytest.warns(UserWarning) as caught:
        run_fit("wgan_gp_ring.yaml", *LONGER, "--data.init_args.batch_size", "128", "--model.init_args.n_critic", "3",
                "--ckpt_path", "last")
    messages = "\n".join(str(w.message) for w in caught)
    assert "data.init_args.batch_size is 128 but the checkpoint was trained with 256" in messages
    assert "model.init_args.n_critic is 3 in this config but 5 in the checkpoint" in messages


def test_plain_resume_reports_no_changed_setting(run_fit):
    run_fit("wgan_gp_ring.yaml", *FAST)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_fit("wgan_gp_ring.yaml", *LONGER, "--ckpt_path", "last")
    assert [str(w.message) for w in caught if "the checkpoint" in str(w.message)] == []


def test_a_checkpoint_from_before_the_generator_step_unit_is_refused_for_resume(run_fit, tmp_path):
    import torch

    first = run_fit("gan_ring.yaml", "--trainer.max_steps", "2", "--data.init_args.num_samples", "2560")
    ckpt = torch.load(Path(first.run_dir, "checkpoints", "last.ckpt"), weights_only=True)
    for key in ("n_critic", "batch_size"):  # what the earlier format did not hold
        del ckpt["gan_lab"][key]
    old = tmp_path / "old.ckpt"
    torch.save(ckpt, old)
    with pytest.raises(ValueError, match="earlier version of the lab, which counted optimizer steps"):
        run_fit("gan_ring.yaml", "--trainer.max_steps", "4", "--data.init_args.num_samples", "2560",
                "--ckpt_path", str(old))
