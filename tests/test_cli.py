"""The command line: clear errors at start-up, run folders, resume by `last`, W&B offline by default."""

import os
from pathlib import Path

import pytest
from conftest import last_checkpoint

FAST = ["--trainer.max_steps", "12", "--data.init_args.num_samples", "1024"]


@pytest.mark.parametrize("args, message", [
    (["--model.init_args.n_critic", "0"], "model.n_critic=0"),
    (["--model.init_args.penalty.init_args.weight", "-1"], "weight=-1.0 is negative"),
    (["--model.init_args.generator", "gan_modules.networks.DCGANGenerator"], "needs image data"),
])
def test_bad_settings_fail_at_start_up_with_the_setting_named(run_fit, args, message):
    with pytest.raises(ValueError, match=message):
        run_fit("wgan_gp_ring.yaml", *FAST, *args)


def test_unknown_loss_is_a_parser_error_naming_the_setting(run_fit, capsys):
    with pytest.raises(SystemExit):
        run_fit("wgan_gp_ring.yaml", *FAST, "--model.init_args.loss", "gan_modules.losses.NoSuchLoss")
    err = capsys.readouterr().err
    assert "loss" in err and "NoSuchLoss" in err


def test_run_folder_holds_config_and_checkpoint_and_last_resumes(run_fit, tmp_path, capsys):
    first = run_fit("wgan_gp_ring.yaml", *FAST)
    run_dir = Path(first.run_dir)
    assert run_dir.parent == tmp_path / "runs" / "wgan_gp_ring"
    assert (run_dir / "config.yaml").is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()
    printed = capsys.readouterr().out
    assert "Checkpoint:" in printed and "last.ckpt" in printed and "Config:" in printed
    resumed = run_fit("wgan_gp_ring.yaml", "--trainer.max_steps", "24", "--data.init_args.num_samples", "1024",
                      "--ckpt_path", "last")
    assert resumed.run_dir == first.run_dir
    assert resumed.model.g_steps == 4 and last_checkpoint(resumed)["gan_lab"]["g_steps"] == 4


def test_checkpoint_loads_with_no_extra_arguments(run_fit):
    from gan_modules import WGANGP

    cli = run_fit("wgan_gp_ring.yaml", *FAST)
    module = WGANGP.load_from_checkpoint(f"{cli.run_dir}/checkpoints/last.ckpt")
    assert module.g_steps == 2 and module.sample(5).shape == (5, 2)


def test_wandb_is_offline_without_credentials_and_never_asks(run_fit, tmp_path, monkeypatch, capsys):
    for var in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    with open(os.devnull) as no_input:
        monkeypatch.setattr("sys.stdin", no_input)  # a login prompt would read EOF and fail, not hang
        cli = run_fit("wgan_gp_ring.yaml", *FAST, logger=True)
    offline_runs = list(Path(cli.run_dir, "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1 and offline_runs[0].name.endswith(cli.run_id)
    assert "wandb sync" in capsys.readouterr().out
