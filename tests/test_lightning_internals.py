"""Private Lightning (and jsonargparse) names the lab relies on: if an upgrade renames one, this fails first,
naming what to adapt, instead of a run failing later in a confusing way.

Behaviour that rests on Lightning internals is tested where it matters: the generator-step count
(tests/test_schedule.py: only LightningOptimizer.step is counted), resume from each kind of saved fit-loop
state (tests/test_resume.py), SIGTERM handling (tests/test_faults.py).
"""

import inspect

import pytest
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import WandbLogger

USED = [
    (LightningCLI, "_add_subcommands", "main.GANLabCLI lists `sample` among the subcommands"),
    (LightningCLI, "_parse_ckpt_path", "main.GANLabCLI resolves --ckpt_path last and reports resume changes"),
    (LightningCLI, "_instantiate_trainer", "main.GANLabCLI honours --trainer.enable_checkpointing false"),
    (ModelCheckpoint, "_save_last_checkpoint", "callbacks.checkpointing.LastCheckpoint writes last.ckpt"),
    (ModelCheckpoint, "_should_skip_saving_checkpoint", "LastCheckpoint"),
    (ModelCheckpoint, "_monitor_candidates", "LastCheckpoint"),
    (Callback, "_generate_state_key", "callbacks.base.GeneratorStepCallback.state_key"),
]


@pytest.mark.parametrize("owner, name, where", USED, ids=[f"{o.__name__}.{n}" for o, n, _ in USED])
def test_private_method_still_exists(owner, name, where):
    assert callable(getattr(owner, name, None)), f"Lightning no longer has {owner.__name__}.{name}; adapt {where}"


def test_private_attributes_still_exist(tmp_path):
    trainer = Trainer(default_root_dir=str(tmp_path), logger=False, enable_progress_bar=False)
    assert hasattr(trainer, "_default_root_dir")  # callbacks.runs.RunInfo adopts rank 0's run folder
    assert hasattr(trainer, "_signal_connector")  # callbacks.checkpointing.GracefulStop
    checkpoint = ModelCheckpoint(every_n_train_steps=3)
    for name in ("_every_n_train_steps", "_every_n_epochs", "_train_time_interval"):  # LastCheckpoint's warning
        assert hasattr(checkpoint, name), name
    assert hasattr(LightningModule(), "_trainer")  # the harness and callbacks ask whether a trainer is attached
    assert "_wandb_init" in inspect.getsource(WandbLogger.__init__)  # callbacks.wandb_logger.WandbLogger
    from lightning.fabric.utilities.logger import _add_prefix  # noqa: F401  (callbacks.wandb_logger)


def test_cli_subcommand_internals_exist():
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_subcommands()
    assert hasattr(parser, "_subcommands_action")  # main.GANLabCLI._add_subcommands adds `sample` through it
    assert "_subcommand_parsers" in inspect.getsource(LightningCLI)  # main.GANLabCLI.parse_arguments
