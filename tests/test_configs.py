"""Every shipped config starts and reaches a generator step, so no config can rot."""

import pytest
import yaml
from helpers import CONFIGS

CONFIG_NAMES = sorted(p.name for p in CONFIGS.glob("*.yaml"))
# Small data so each config runs in seconds; image configs get tiny files in the real formats.
SMALL_DATA = {
    "Gaussian1D": ["--data.init_args.num_samples", "640"],
    "Ring2D": ["--data.init_args.num_samples", "2560"],
    "Grid2D": ["--data.init_args.num_samples", "2560"],
}


def data_class(config: str) -> str:
    for line in (CONFIGS / config).read_text().splitlines():
        if "class_path: datamodules." in line:
            return line.split("datamodules.")[1].strip()
    raise AssertionError(f"{config} names no datamodule")


def test_there_are_configs():
    assert len(CONFIG_NAMES) >= 8


@pytest.mark.parametrize("config", CONFIG_NAMES)
def test_config_reaches_a_generator_step(run_fit, config, tiny_mnist, tiny_celeba, tiny_unpaired,
                                        tiny_celeba_attributes, request):
    small = {**SMALL_DATA,
             "MNISTDataModule": ["--data.init_args.data_dir", str(tiny_mnist), "--data.init_args.batch_size", "8"],
             "StackedMNIST": ["--data.init_args.data_dir", str(tiny_mnist), "--data.init_args.batch_size", "8",
                              "--data.init_args.num_samples", "200"],
             "CelebADataModule": ["--data.init_args.data_dir", str(tiny_celeba), "--data.init_args.batch_size", "4",
                                  "--data.init_args.num_workers", "0"],
             # CycleGAN: small crops, so the paper-sized networks take two steps in seconds
             "UnpairedImageDataModule": ["--data.init_args.data_dir", str(tiny_unpaired), "--data.init_args.load_size",
                                         "36", "--data.init_args.crop_size", "32", "--data.init_args.num_workers", "0"],
             "celeba_attributes.CelebAAttributeDataModule": [
                 "--data.init_args.data_dir", str(tiny_celeba_attributes), "--data.init_args.load_size", "36",
                 "--data.init_args.crop_size", "32", "--data.init_args.num_test", "2", "--data.init_args.batch_size",
                 "2", "--data.init_args.num_workers", "0"],
             "DigitsDataModule": ["--data.init_args.data_dir", str(tiny_mnist), "--data.init_args.batch_size", "4"],
             "UCIDigitsDataModule": ["--data.init_args.unlabeled_mnist", str(tiny_mnist)]}  # UCI: offline, small
    extra = small[data_class(config)]
    if "semantic_classifier:" in (CONFIGS / config).read_text():  # a classifier of domain A, trained by a fixture
        extra = [*extra, "--model.init_args.semantic_classifier", request.getfixturevalue("digit_classifier")]
    cli = run_fit(config, "--trainer.max_steps", "2", *extra)  # two generator steps
    if hasattr(cli.model, "g_steps"):
        assert (cli.model.g_steps, cli.model.d_steps) == (2, 2 * cli.model.n_critic)
    else:  # the digit classifier that FID uses
        assert cli.trainer.global_step >= 1


@pytest.mark.parametrize("config", CONFIG_NAMES)
def test_learning_rate_schedule_ends_where_the_run_ends(config):
    """A shipped LinearDecay reaches zero at the config's own stopping point (max_steps, or max_epochs for an
    epoch schedule): a total edited without the stopping rule would stop training at a high rate, or leave it
    at zero for the rest of the run."""
    cfg = yaml.safe_load((CONFIGS / config).read_text())
    model = cfg.get("model", {}).get("init_args") or {}
    per_epoch = model.get("scheduler_interval") == "epoch"
    stop = cfg.get("trainer", {}).get("max_epochs" if per_epoch else "max_steps")
    for key in ("g_scheduler", "d_scheduler"):
        if (model.get(key) or {}).get("class_path") == "gan_modules.schedules.LinearDecay":
            assert model[key]["init_args"]["total"] == stop, f"{config}: {key}.total != {stop}"
