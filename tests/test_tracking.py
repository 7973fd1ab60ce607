"""Experiment tracking: W&B offline read back from disk, callbacks, FID cache, sampling from checkpoints."""

import math
import os
from pathlib import Path
from urllib.parse import urlparse

import pytest
import torch
import wandb
from click.testing import CliRunner
from helpers import CONFIGS, assert_same_training_state, last_checkpoint
from wandb.cli import cli as wandb_cli
from wandb_records import offline_run_contents, offline_runs

from callbacks.fid import FID, class_coverage
from callbacks.monitors import mean_pairwise_distance
from callbacks.wandb_logger import WandbLogger, wandb_credentials_available
from gan_modules.latent import interpolation_latents, slerp
from main import cli_main

# 20 generator steps; 2560 samples = 2 training steps of batch 256 x n_critic 5 an epoch
RING = ["--trainer.max_steps", "20", "--data.init_args.num_samples", "2560", "--trainer.log_every_n_steps", "5"]
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


G_STEPS_3 = ["--trainer.max_steps", "3", "--trainer.log_every_n_steps", "1",  # 3 generator steps at n_critic 5
             "--data.init_args.num_samples", "2560"]


def logged_steps(run: dict) -> list[tuple[int, int]]:
    """(W&B _step, train/g_step) of every history row."""
    return [(int(row["_step"]), int(row["train/g_step"])) for row in run["history"]]


def test_offline_resume_is_a_new_wandb_run_in_the_run_group_keeping_every_point(run_fit, offline_wandb, capsys):
    first = run_fit("wgan_gp_ring.yaml", *G_STEPS_3, logger=True)
    resumed = run_fit("wgan_gp_ring.yaml", *G_STEPS_3, "--trainer.max_steps", "6", "--ckpt_path", "last",
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
    run_fit("wgan_gp_ring.yaml", *G_STEPS_3, "--trainer.max_steps", "6", "--ckpt_path",
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
    # max_steps counts generator steps: 4 (DCGAN, n_critic 1), the grid at the end, strips at steps 2 and 4
    cli = run_fit("dcgan_mnist.yaml", "--trainer.max_steps", "4", "--data.init_args.data_dir", str(tiny_mnist),
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


def test_fid_uses_the_cache_and_orders_real_before_noise(run_fit, tiny_mnist, digit_classifier, tmp_path,
                                                        monkeypatch):
    cli = run_fit("dcgan_mnist.yaml", "--trainer.max_steps", "1", "--data.init_args.data_dir", str(tiny_mnist),
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
    cli = run_fit("dcgan_mnist.yaml", "--trainer.max_steps", "1", "--data.init_args.data_dir", str(tiny_mnist),
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


# ------------------------------------------------------------------ observing never changes training
def every_callback(every: int, *extra: str) -> list[str]:
    """Every observing callback, each due every ``every`` generator steps (small sample counts: fast)."""
    args = []
    for name, settings in [("SampleGrid", []), ("LatentInterpolation", []), ("CriticMonitor", []),
                           ("Throughput", []), ("ToyDataPlot", ["num_samples=64", "contour=true"]),
                           ("ModeCollapseWatch", ["num_samples=32"])]:
        args += [f"--trainer.callbacks+=callbacks.{name}", f"--trainer.callbacks.every_n_steps={every}",
                 *(f"--trainer.callbacks.{s}" for s in settings)]
    return [*args, *extra]


def assert_observing_leaves_training_identical(run_fit, config: str, args: list[str], callbacks: list[str]) -> None:
    """The same run without and with every callback: weights, buffers, optimizers, counters and the saved RNG
    states are bit-identical."""
    plain = run_fit(config, *args, "--trainer.callbacks", "[]")
    observed = run_fit(config, *args, *callbacks)
    assert plain.model.g_steps == observed.model.g_steps > 0
    a, b = last_checkpoint(plain), last_checkpoint(observed)
    assert_same_training_state(a, b)
    assert torch.equal(a["gan_lab"]["rng"]["torch"], b["gan_lab"]["rng"]["torch"])  # no draw from training's RNG


# 20 generator steps (n_critic 1), 16 steps an epoch: training crosses an epoch boundary
SMALL = ["--trainer.max_steps", "20", "--data.init_args.num_samples", "1024", "--data.init_args.batch_size", "64"]
BATCH_NORM = ["--model.init_args.generator.init_args.norm", "batch",
              "--model.init_args.discriminator.init_args.norm", "batch"]


@pytest.mark.parametrize(("config", "args"), [("sngan_ring.yaml", SMALL), ("gan_ring.yaml", SMALL + BATCH_NORM)],
                         ids=["spectral-norm", "batch-norm"])
def test_observing_callbacks_leave_toy_training_bit_identical(run_fit, config, args):
    # the critic's contour runs the critic: in train mode that steps spectral norm's power iteration and moves
    # batch norm's running statistics; sampling and the diversity watch draw noise
    assert_observing_leaves_training_identical(run_fit, config, args, every_callback(3))


def test_observing_callbacks_leave_image_training_bit_identical(run_fit, tiny_mnist, digit_classifier, tmp_path):
    # 8 generator steps (n_critic 1) over 40 digits in batches of 8: 5 steps an epoch, so one epoch boundary
    args = ["--trainer.max_steps", "8", "--data.init_args.data_dir", str(tiny_mnist), "--data.init_args.batch_size",
            "8", "--model.init_args.generator.init_args.width", "8",
            "--model.init_args.discriminator.init_args.width", "8"]  # DCGAN networks: batch norm in both
    fid = ["--trainer.callbacks+=callbacks.FID", "--trainer.callbacks.every_n_steps=3",
           "--trainer.callbacks.feature=classifier", f"--trainer.callbacks.weights_path={digit_classifier}",
           "--trainer.callbacks.num_samples=40", "--trainer.callbacks.kid_subset_size=20",
           "--trainer.callbacks.batch_size=20", f"--trainer.callbacks.cache_dir={tmp_path / 'fid'}"]
    assert_observing_leaves_training_identical(run_fit, "dcgan_mnist.yaml", args, every_callback(3, *fid))
    assert list((tmp_path / "fid").glob("*.pt"))  # FID did run


def test_observing_restores_each_submodule_mode_and_every_rng():
    import random

    import numpy as np

    from callbacks.base import observing
    from gan_modules import DCGAN

    module = DCGAN(data_shape=(1, 28, 28))
    module.generator.eval()  # a mixed state must come back as it was
    modes = [m.training for m in module.modules()]
    states = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    with observing(module):
        assert not any(m.training for m in module.modules())
        torch.randn(3), np.random.rand(), random.random()
    assert [m.training for m in module.modules()] == modes
    assert torch.equal(torch.get_rng_state(), states[0])
    assert np.array_equal(np.random.get_state()[1], states[1]) and random.getstate() == states[2]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_observing_restores_the_cuda_rng():
    from callbacks.base import observing

    torch.zeros(1, device="cuda")  # CUDA in use, as in a GPU run
    before = torch.cuda.get_rng_state_all()
    with observing(torch.nn.Linear(2, 2).cuda()):
        torch.randn(1000, device="cuda")
    for a, b in zip(before, torch.cuda.get_rng_state_all(), strict=True):
        assert torch.equal(a, b)


def readme_yaml_with(text: str) -> str:
    """The README's YAML example that contains ``text``."""
    readme = (CONFIGS.parent / "README.md").read_text()
    (block,) = [b.split("\n", 1)[1] for b in readme.split("```")[1::2] if b.startswith("yaml") and text in b]
    return block


def test_readme_fid_example_parses_and_builds_the_callback(tiny_mnist, tmp_path, monkeypatch):
    snippet = readme_yaml_with("callbacks.FID").replace("runs/classifier_mnist/<id>/checkpoints/last.ckpt",
                                                         str(tmp_path / "classifier.ckpt"))
    (tmp_path / "fid.yaml").write_text(snippet)
    monkeypatch.setattr("sys.argv", ["main.py"])
    cli = cli_main(["--config", str(CONFIGS / "dcgan_mnist.yaml"), "--config", str(tmp_path / "fid.yaml"),
                    "--runs_dir", str(tmp_path / "runs"), "--trainer.logger", "false",
                    "--data.init_args.data_dir", str(tiny_mnist)], run=False)
    (fid,) = [c for c in cli.trainer.callbacks if isinstance(c, FID)]
    assert (fid.every_n_steps, fid.feature, fid.weights_path) == (1000, "classifier", str(tmp_path / "classifier.ckpt"))


# ------------------------------------------------------------------ FID and KID across processes
class PointFeatures(torch.nn.Module):
    """A fixed random projection of 2-D points: a feature extractor for FID/KID on the ring."""

    num_features, source = 8, "test:point-features"

    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(2, 8)
        with torch.no_grad():
            self.proj.weight.copy_(torch.linspace(-1, 1, 16).view(8, 2))
            self.proj.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.proj(x))


def fid_on_ring(cache_dir: str, rank: int, world: int, fakes: torch.Tensor) -> dict[str, float]:
    """FID.evaluate as a ``world``-process run's rank ``rank`` calls it, ``fakes`` being this rank's samples."""
    from types import SimpleNamespace

    from datamodules import Ring2D

    fid = FID(feature="inception", num_samples=40, kid_subset_size=20, batch_size=10, cache_dir=cache_dir)
    fid.extractor = PointFeatures()
    trainer = SimpleNamespace(datamodule=Ring2D(num_samples=256), is_global_zero=rank == 0, world_size=world,
                              global_rank=rank)
    chunks = iter(fakes.split(10))
    module = SimpleNamespace(device=torch.device("cpu"), sample=lambda n: next(chunks))
    return fid.evaluate(trainer, module)


def rank_fakes(rank: int) -> torch.Tensor:
    return torch.randn(20, 2, generator=torch.Generator().manual_seed(100 + rank))


def _fid_rank(rank: int, port: int, folder: str) -> None:
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    try:
        torch.manual_seed(rank)  # every rank's training RNG differs, as in a gan_ddp run
        scores = fid_on_ring(folder, rank, 2, rank_fakes(rank))
        torch.save(scores, Path(folder, f"rank{rank}.pt"))
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow  # two processes: about 40 s on 2 busy CPU cores
def test_fid_and_kid_under_two_processes_agree_on_both_ranks_and_with_one_process(tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_fid_rank, args=(port, str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    # one process given both ranks' samples, in the order torchmetrics gathers KID's list state: entry by entry
    # (batch 1 of every rank, then batch 2), and the real features in rank order
    (a1, a2), (b1, b2) = rank_fakes(0).split(10), rank_fakes(1).split(10)
    single = fid_on_ring(str(tmp_path), 0, 1, torch.cat([a1, b1, a2, b2]))
    for key in ("val/fid", "val/kid", "val/kid_std"):
        assert ranks[0][key] == ranks[1][key], key
        assert ranks[0][key] == pytest.approx(single[key], rel=1e-5, abs=1e-7), key


def test_inception_features_use_the_reference_resize(tmp_path, monkeypatch):
    # torchmetrics resizes with antialias=True unless told otherwise; published FIDs use TF1's bilinear resize
    from callbacks.fid import InceptionFeatures

    made = {}

    class FakeInception(torch.nn.Module):
        def __init__(self, **kwargs) -> None:
            super().__init__()
            made.update(kwargs)

    monkeypatch.setattr("torchmetrics.utilities.imports._TORCH_FIDELITY_AVAILABLE", True)
    monkeypatch.setattr("torchmetrics.image.fid.NoTrainInceptionV3", FakeInception)
    (tmp_path / "inception.pth").write_bytes(b"weights")
    reference = InceptionFeatures(weights_path=str(tmp_path / "inception.pth"))
    assert made["antialias"] is False and made["feature_extractor_weights_path"] == str(tmp_path / "inception.pth")
    smooth = InceptionFeatures(weights_path=str(tmp_path / "inception.pth"), antialias=True)
    assert made["antialias"] is True
    assert reference.antialias != smooth.antialias  # part of the cache key: two resizes never share a cache
