"""The command line: clear errors at start-up, run folders, resume by `last`, W&B offline by default."""

import os
import re
from pathlib import Path

import pytest
from helpers import CONFIGS, last_checkpoint, main_py

from main import cli_main

# 2 generator steps; the ring's batch 256 x n_critic 5 = 1280 samples a step, so 2560 samples = 2 steps an epoch
FAST = ["--trainer.max_steps", "2", "--data.init_args.num_samples", "2560"]


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


def test_main_prints_a_start_up_error_as_one_line_and_removes_its_run_folder(tmp_path):
    # n_critic fails while the model is built; bf16-true once the run folder and its config.yaml exist
    for args, message in ((["--model.init_args.n_critic", "0"], "error: model.n_critic=0: must be"),
                          (["--trainer.precision", "bf16-true"], "error: trainer.precision=bf16-true: half")):
        proc = main_py(tmp_path, "--config", str(CONFIGS / "wgan_gp_ring.yaml"), *args)
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 1 and message in out and "Traceback" not in out, out
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*"))
    proc = main_py(tmp_path, "--config", str(CONFIGS / "wgan_gp_ring.yaml"), "--model.init_args.n_critic", "0",
                   env={"GANLAB_TRACEBACK": "1"})
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1 and "Traceback" in out and "model.n_critic=0" in out


@pytest.mark.parametrize("args, suggestion", [
    (["--model.init_args.n_critc", "3"], "did you mean n_critic"),
    (["--model", "gan_modules.WGANGPP"], "did you mean gan_modules.WGANGP"),
    (["--trainer.max_stepz", "3"], "did you mean --trainer.max_steps"),
])
def test_a_misspelled_option_or_class_gets_a_short_error_with_a_suggestion(run_fit, capsys, args, suggestion):
    with pytest.raises(SystemExit) as stop:
        run_fit("wgan_gp_ring.yaml", *FAST, *args)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and suggestion in err and len(err.splitlines()) <= 3, err


def test_run_folder_holds_config_and_checkpoint_and_last_resumes(run_fit, tmp_path, capsys):
    first = run_fit("wgan_gp_ring.yaml", *FAST)
    run_dir = Path(first.run_dir)
    assert run_dir.parent == tmp_path / "runs" / "wgan_gp_ring"
    assert (run_dir / "config.yaml").is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()
    printed = capsys.readouterr().out
    assert "Checkpoint:" in printed and "last.ckpt" in printed and "Config:" in printed
    resumed = run_fit("wgan_gp_ring.yaml", "--trainer.max_steps", "4", "--data.init_args.num_samples", "2560",
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


def _folder_contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("config, extra", [
    ("dcgan_mnist.yaml", ["--data.init_args.data_dir", "{mnist}", "--trainer.max_steps", "2"]),  # another class
    ("wgan_gp_grid.yaml", FAST),                                                                 # other data
])
def test_foreign_checkpoint_is_refused_before_its_run_folder_is_touched(run_fit, tiny_mnist, monkeypatch, config,
                                                                        extra):
    monkeypatch.setenv("WANDB_MODE", "offline")
    ring = run_fit("wgan_gp_ring.yaml", *FAST)
    before = _folder_contents(Path(ring.run_dir))
    ckpt = str(Path(ring.run_dir, "checkpoints", "last.ckpt"))
    with pytest.raises(ValueError, match="belongs to the run") as err:
        run_fit(config, *[a.format(mnist=tiny_mnist) for a in extra], "--ckpt_path", ckpt, logger=True)
    message = str(err.value)
    assert f"--config {ring.run_dir}/config.yaml --ckpt_path {ckpt}" in message  # how to resume it
    assert _folder_contents(Path(ring.run_dir)) == before  # no config.yaml rewritten, no W&B run opened


def test_penalty_setting_on_a_config_without_penalty_names_the_fix(run_fit, capsys):
    with pytest.raises(SystemExit):
        run_fit("gan_ring.yaml", *FAST, "--model.init_args.penalty.init_args.weight", "5")
    err = capsys.readouterr().err
    assert "model.init_args.penalty: this config has no penalty" in err
    assert "--model.init_args.penalty gan_modules.regularizers.GradientPenalty" in err


def test_explicit_data_shape_that_the_data_would_replace_is_refused(run_fit):
    with pytest.raises(ValueError, match=r"model.init_args.data_shape=\[3\], but the data \(Ring2D\)"):
        run_fit("gan_ring.yaml", *FAST, "--model.init_args.data_shape", "[3]")


@pytest.mark.parametrize("args", [
    ["--optimizer", "torch.optim.SGD", "--optimizer.lr", "0.1"],
    ["--optimizer", "torch.optim.SGD", "--optimizer.lr", "0.1", "--lr_scheduler", "torch.optim.lr_scheduler.StepLR",
     "--lr_scheduler.step_size", "1"],
    ["--lr_scheduler", "torch.optim.lr_scheduler.StepLR", "--lr_scheduler.step_size", "1"],
])
def test_lightning_optimizer_arguments_point_to_the_gan_optimizers(run_fit, args):
    with pytest.raises(ValueError, match=r"model.init_args.g_optimizer and model.init_args.d_optimizer"):
        run_fit("gan_ring.yaml", *FAST, *args)


def test_runs_dir_under_a_file_is_named(run_fit, tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(ValueError, match=r"--runs_dir .*a_file is a file, not a folder"):
        run_fit("gan_ring.yaml", *FAST, "--runs_dir", str(tmp_path / "a_file" / "runs"))


def test_help_lists_fit_and_sample_only(capsys, monkeypatch):
    monkeypatch.setattr("sys.argv", ["main.py"])
    with pytest.raises(SystemExit) as exit_:
        cli_main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert re.search(r"\{fit,sample,translate\}", out) and "validate" not in out and "predict" not in out


@pytest.mark.parametrize("subcommand", ["validate", "test", "predict"])
def test_unsupported_subcommands_point_to_sample(subcommand, monkeypatch):
    monkeypatch.setattr("sys.argv", ["main.py"])
    with pytest.raises(SystemExit) as exit_:
        cli_main([subcommand, "--config", "configs/gan_ring.yaml"])
    assert f"main.py {subcommand}: not supported" in str(exit_.value.code)
    assert "python main.py sample --ckpt_path" in str(exit_.value.code)


def test_csv_logger_and_config_land_in_the_run_folder(run_fit, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = run_fit("gan_ring.yaml", *FAST, "--trainer.logger", "CSVLogger", "--trainer.log_every_n_steps", "1",
                  logger=True)
    run_dir = Path(cli.run_dir)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]  # nothing in the current folder
    assert (run_dir / "config.yaml").is_file()
    assert [p.relative_to(run_dir).as_posix() for p in run_dir.rglob("metrics.csv")] == ["version_0/metrics.csv"]
