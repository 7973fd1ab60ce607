"""Experiment tracking: W&B offline read back from disk, callbacks, FID cache, sampling from checkpoints."""

import math
import os
from pathlib import Path
from urllib.parse import urlparse

import pytest
import torch
import wandb
from click.testing import CliRunner
from conftest import CONFIGS
from wandb.cli import cli as wandb_cli
from wandb_records import offline_run_contents, offline_runs

from callbacks.fid import FID, class_coverage
from callbacks.monitors import mean_pairwise_distance
from callbacks.views import interpolation_latents, slerp
from callbacks.wandb_logger import WandbLogger, wandb_credentials_available
from main import cli_main

RING = ["--trainer.max_steps", "120", "--data.init_args.num_samples", "1024", "--trainer.log_every_n_steps", "5"]
REAL_WANDB_INIT = wandb.init
TOY_CALLBACKS = ["--trainer.callbacks+=callbacks.ToyDataPlot", "--trainer.callbacks.every_n_steps=10",
                 "--trainer.callbacks+=callbacks.CriticMonitor", "--trainer.callbacks.every_n_steps=5",
                 "--trainer.callbacks+=callbacks.ModeCollapseWatch", "--trainer.callbacks.every_n_steps=10",
                 "--trainer.callbacks.num_samples=200",
                 "--trainer.callbacks+=callbacks.Throughput", "--trainer.callbacks.every_n_steps=10"]


@pytest.fixture
def fresh_wandb():
    """wandb reads its settings files and environment once per process; start and end with a fresh read."""
    wandb.teardown()
    yield
    wandb.teardown()


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch, fresh_wandb):
    for var in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))


def test_offline_wandb_run_holds_scalars_images_and_config(run_fit, offline_wandb):
    cli = run_fit("wgan_gp_ring.yaml", *RING, *TOY_CALLBACKS, logger=True)
    run = offline_run_contents(Path(cli.run_dir))
    assert run["run_id"] == cli.run_id
    for key in ("train/d_loss", "train/g_loss", "train/gp", "train/wasserstein", "train/d_real", "train/d_fake",
                "train/g_step", "train/grad_norm_generator", "train/grad_norm_discriminator", "train/lr_generator",
                "val/modes", "val/high_quality", "val/reverse_kl", "val/diversity_ratio", "perf/g_steps_per_s"):
        assert key in run["history_keys"], key
    assert "samples/toy/_type" in run["history_keys"]  # an image: W&B stores its fields under the key
    assert run["metrics"]["*"] == "train/g_step"  # every panel's x-axis is the generator step
    assert {"config", "n_critic", "penalty"} <= run["config_keys"]  # the resolved config and the model's hparams
    assert any(name.startswith("samples") or "toy" in name for name in run["media"])
    assert sorted(Path(cli.run_dir, "toy").glob("*.png"))


G_STEPS_3 = ["--trainer.max_steps", "18", "--trainer.log_every_n_steps", "1",  # 3 generator steps at n_critic 5
             "--data.init_args.num_samples", "1024"]


def logged_steps(run: dict) -> list[tuple[int, int]]:
    """(W&B _step, train/g_step) of every history row."""
    return [(int(row["_step"]), int(row["train/g_step"])) for row in run["history"]]


def test_offline_resume_is_a_new_wandb_run_in_the_run_group_keeping_every_point(run_fit, offline_wandb, capsys):
    first = run_fit("wgan_gp_ring.yaml", *G_STEPS_3, logger=True)
    resumed = run_fit("wgan_gp_ring.yaml", *G_STEPS_3, "--trainer.max_steps", "36", "--ckpt_path", "last",
                      logger=True)
    assert resumed.run_id == first.run_id
    runs = offline_runs(Path(first.run_dir))
    # wandb cannot continue an offline run: a second folder with the same id restarts _step at 0, and syncing
    # it overwrites the first one's history on the server. Each segment is its own run, grouped by the run id.
    assert [(r["run_id"], r["group"]) for r in runs] == [(first.run_id, first.run_id),
                                                         (f"{first.run_id}-resume1", first.run_id)]
    assert [logged_steps(r) for r in runs] == [[(1, 1), (2, 2), (3, 3)], [(4, 4), (5, 5), (6, 6)]]
    # the printed upload command takes every segment
    wandb_dir = Path(first.run_dir, "wandb")
    assert f"wandb sync {wandb_dir}" in capsys.readouterr().out
    dry_run = CliRunner().invoke(wandb_cli.cli, ["sync", "--dry-run", str(wandb_dir)])
    assert "Would sync 2 run(s)" in dry_run.output, dry_run.output


def test_an_offline_fit_leaves_wandb_mode_of_the_process_alone(run_fit, offline_wandb, monkeypatch):
    run_fit("wgan_gp_ring.yaml", *G_STEPS_3, logger=True)
    assert "WANDB_MODE" not in os.environ  # Lightning's own logger sets WANDB_MODE=dryrun for the whole process
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)  # logged in now: the next fit in this process goes online
    assert WandbLogger(save_dir=str(Path(os.environ["HOME"], "next")))._wandb_init["mode"] == "online"


def test_online_resume_rewinds_the_wandb_run_to_the_checkpoint_generator_step(run_fit, offline_wandb,
                                                                              monkeypatch):
    first = run_fit("wgan_gp_ring.yaml", *G_STEPS_3)  # checkpoint at generator step 3
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)  # credentials: online; wandb.init is replaced (no network)
    calls = []
    monkeypatch.setattr(wandb, "init", lambda **kwargs: calls.append(kwargs) or _offline_run(kwargs))
    run_fit("wgan_gp_ring.yaml", *G_STEPS_3, "--trainer.max_steps", "36", "--ckpt_path",
            f"{first.run_dir}/checkpoints/last.ckpt", logger=True)
    (kwargs,) = calls
    assert {k: kwargs[k] for k in ("id", "group", "resume", "resume_from", "mode")} == {
        "id": first.run_id, "group": first.run_id, "resume": None, "resume_from": f"{first.run_id}?_step=3",
        "mode": "online"}
    moment = wandb.Settings(run_id=kwargs["id"], resume_from=kwargs["resume_from"]).resume_from  # wandb's parse
    assert (moment.run, moment.metric, moment.value) == (first.run_id, "_step", 3)


def test_a_refused_rewind_logs_the_resume_as_the_next_segment(tmp_path, offline_wandb, monkeypatch):
    from wandb.errors import CommError

    def init(**kwargs):
        if "resume_from" in kwargs:
            raise CommError("failed to rewind run: run not found")
        return _offline_run(kwargs)

    monkeypatch.setattr(wandb, "init", init)
    logger = WandbLogger(save_dir=str(tmp_path), id="abc", resume_step=7, offline=False)
    with pytest.warns(UserWarning, match="could not rewind run abc to generator step 7"):
        run = logger.experiment
    assert (run.id, run.group, logger.version) == ("abc-resume1", "abc", "abc-resume1")
    logger.finalize("success")


def _offline_run(kwargs: dict):
    """The real wandb.init, offline and without the rewind (which needs the server)."""
    return REAL_WANDB_INIT(**{**kwargs, "mode": "offline", "resume_from": None})


def test_wandb_credentials_are_found_wherever_wandb_itself_looks(tmp_path, offline_wandb, monkeypatch):
    with open(os.devnull) as no_input:
        monkeypatch.setattr("sys.stdin", no_input)  # a prompt would read EOF, not hang
        assert not wandb_credentials_available()
    config = Path(os.environ["WANDB_CONFIG_DIR"])
    config.mkdir()
    (config / "settings").write_text(f"[default]\napi_key = {'k' * 40}\n")  # a key in wandb's settings file
    wandb.teardown()  # wandb reads its settings once per process
    assert wandb_credentials_available()
    (config / "settings").unlink()
    wandb.teardown()
    assert not wandb_credentials_available()
    token = tmp_path / "token.jwt"
    token.write_text("header.payload.signature")
    monkeypatch.setenv("WANDB_IDENTITY_TOKEN_FILE", str(token))  # workload identity (OIDC) instead of a key
    assert wandb_credentials_available()
    monkeypatch.delenv("WANDB_IDENTITY_TOKEN_FILE")
    host = urlparse(wandb.Settings().base_url).hostname  # wandb 0.31's default server is not api.wandb.ai
    Path(os.environ["NETRC"]).write_text(f"machine {host}\n  login user\n  password {'k' * 40}\n")
    assert wandb_credentials_available()


def test_image_callbacks_write_grids_and_strips(run_fit, tiny_mnist):
    cli = run_fit("dcgan_mnist.yaml", "--trainer.max_steps", "8", "--data.init_args.data_dir", str(tiny_mnist),
                  "--data.init_args.batch_size", "8", "--model.init_args.generator.init_args.width", "8",
                  "--model.init_args.discriminator.init_args.width", "8",
                  "--trainer.callbacks+=callbacks.LatentInterpolation", "--trainer.callbacks.every_n_steps=2")
    run = Path(cli.run_dir)
    assert [p.name for p in sorted((run / "samples").glob("*.png"))] == ["step_0000004.png"]  # at the end
    strips = sorted(p.name for p in (run / "interpolation").glob("*.png"))
    assert strips == ["step_0000002_linear.png", "step_0000002_slerp.png", "step_0000004_linear.png",
                      "step_0000004_slerp.png"]
    # the fixed noise is in the checkpoint, so a resumed run draws the same grid
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    (grid_state,) = [v for k, v in ckpt["callbacks"].items() if k.startswith("SampleGrid")]
    assert grid_state["noise"].shape == (64, 100)


def test_slerp_and_interpolation_endpoints():
    a, b = torch.randn(3, 8), torch.randn(3, 8)
    for spherical in (False, True):
        z = interpolation_latents(a, b, 5, spherical).view(3, 5, 8)
        torch.testing.assert_close(z[:, 0], a)
        torch.testing.assert_close(z[:, -1], b)
    # spherical interpolation of two orthogonal unit vectors stays on the unit circle
    e1, e2 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    mid = slerp(e1, e2, torch.tensor(0.5))
    torch.testing.assert_close(mid.norm(), torch.tensor(1.0))


def test_diversity_and_class_coverage_figures():
    assert mean_pairwise_distance(torch.zeros(10, 3)) == 0.0
    assert abs(mean_pairwise_distance(torch.tensor([[0.0], [2.0]])) - 2.0) < 1e-6
    assert class_coverage(torch.arange(10).repeat(5), 10) == {"val/classes": 10.0, "val/class_kl": 0.0}
    one = class_coverage(torch.zeros(50, dtype=torch.long), 10)
    assert one["val/classes"] == 1 and abs(one["val/class_kl"] - math.log(10)) < 1e-12


@pytest.fixture(scope="module")
def digit_classifier(tmp_path_factory, tiny_mnist):
    """A DigitClassifier trained for a few steps through the CLI on the tiny MNIST files."""
    runs = tmp_path_factory.mktemp("clf")
    with pytest.MonkeyPatch.context() as m:
        m.setattr("sys.argv", ["main.py"])  # the CLI must not see pytest's own arguments
        cli = cli_main(["fit", "--config", str(CONFIGS / "classifier_mnist.yaml"), "--runs_dir", str(runs),
                        "--trainer.logger", "false", "--trainer.enable_progress_bar", "false", "--trainer.max_epochs",
                        "2", "--data.init_args.data_dir", str(tiny_mnist), "--data.init_args.batch_size", "8"])
    return str(Path(cli.run_dir, "checkpoints", "last.ckpt"))


def test_fid_uses_the_cache_and_orders_real_before_noise(run_fit, tiny_mnist, digit_classifier, tmp_path,
                                                        monkeypatch):
    cli = run_fit("dcgan_mnist.yaml", "--trainer.max_steps", "2", "--data.init_args.data_dir", str(tiny_mnist),
                  "--data.init_args.batch_size", "8", "--trainer.callbacks", "[]")
    fid = FID(feature="classifier", weights_path=digit_classifier, num_samples=40, kid_subset_size=20,
              batch_size=20, cache_dir=str(tmp_path / "fid"))
    trainer, module = cli.trainer, cli.model
    first = fid.evaluate(trainer, module)
    assert len(list((tmp_path / "fid").glob("*.pt"))) == 1

    with monkeypatch.context() as m:  # a second evaluation must not touch the real data again
        m.setattr("callbacks.fid.real_samples", lambda *a: pytest.fail("real features recomputed"))
        second = fid.evaluate(trainer, module)
    assert first.keys() == second.keys()

    # real data against itself is near 0; blank images are far; KID agrees in direction
    chunks = iter(trainer.datamodule.real_samples(40).split(20))  # exactly the cached real samples, in order
    monkeypatch.setattr(module, "sample", lambda n=None, z=None, use_ema=True: next(chunks))
    same = fid.evaluate(trainer, module)
    monkeypatch.setattr(module, "sample", lambda n=None, z=None, use_ema=True: -torch.rand(n, 1, 28, 28) ** 8)
    blank = fid.evaluate(trainer, module)
    assert same["val/fid"] < 0.01 * blank["val/fid"]
    assert blank["val/kid"] > same["val/kid"]
    assert {"val/classes", "val/class_kl"} <= blank.keys()


def test_sample_command_writes_pngs_grid_and_strips(run_fit, tiny_mnist, tmp_path, capsys):
    cli = run_fit("dcgan_mnist.yaml", "--trainer.max_steps", "2", "--data.init_args.data_dir", str(tiny_mnist),
                  "--data.init_args.batch_size", "8", "--trainer.callbacks", "[]")
    written = cli_main(["sample", "--ckpt_path", f"{cli.run_dir}/checkpoints/last.ckpt", "--num_samples", "9",
                        "--out_dir", str(tmp_path / "out")])
    names = sorted(p.name for p in written)
    assert names[:3] == ["grid.png", "interpolation_linear.png", "interpolation_slerp.png"]
    assert len([n for n in names if n.startswith("sample_")]) == 9
    assert all(p.is_file() for p in written)
    assert "wrote 12 files" in capsys.readouterr().out


def test_inception_without_torch_fidelity_or_weights_is_a_clear_error(tmp_path):
    from torchmetrics.utilities.imports import _TORCH_FIDELITY_AVAILABLE

    from callbacks.fid import InceptionFeatures

    expected = FileNotFoundError if _TORCH_FIDELITY_AVAILABLE else ModuleNotFoundError
    with pytest.raises(expected, match=r"torch-fidelity|does not exist"):
        InceptionFeatures(weights_path=str(tmp_path / "missing.pth"))
