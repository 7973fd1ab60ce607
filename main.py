"""GAN lab entry point: every run is one YAML config (Lightning's CLI).

    python main.py fit --config configs/wgan_gp_ring.yaml                   # 2-D toy, no download, CPU minutes
    python main.py fit --config configs/wgan_gp_ring.yaml --ckpt_path last  # resume the newest run of it
    python main.py fit --config configs/wgan_gp_ring.yaml --model.init_args.n_critic 3 --trainer.max_steps 800
    python main.py fit --config configs/wgan_gp_ring.yaml --config configs/debug/tiny_ring.yaml  # a 20 s smoke run
    python main.py fit --config configs/wgan_gp_ring.yaml --print_config    # the fully resolved config
    python main.py sample --ckpt_path runs/wgan_gp_ring/<run id>/checkpoints/last.ckpt --num_samples 64

Each run gets its own folder ``runs/<name>/<run id>/`` (``name`` defaults to the config file's stem) with the
resolved ``config.yaml``, ``checkpoints/`` (``last.ckpt`` always) and the W&B files.  W&B logs offline when no
credentials exist; the end of ``fit`` prints every path and the ``wandb sync`` command.

Every step count (``trainer.max_steps``, ``checkpoint.every_n_train_steps``, ``log_every_n_steps``, callbacks'
``every_n_steps``) means generator steps, whatever ``n_critic`` is (see ``gan_modules/base.py``).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import string
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import yaml
from jsonargparse import Namespace
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.strategies import DDPStrategy, StrategyRegistry
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from callbacks.checkpointing import AtomicCheckpointIO, GracefulStop, LastCheckpoint
from callbacks.wandb_logger import WandbLogger
from gan_modules import GANModule
from gan_modules.base import CHECKPOINT_KEY as GAN_STATE_KEY
from gan_modules.strategies import GANDDPStrategy  # importing registers trainer.strategy: gan_ddp

RUN_INFO_KEY = "gan_lab_run"
RUN_ID_ENV = "GAN_LAB_RUN_ID"

# Lightning 2.6 warns that a manual-optimization checkpoint holds the state *after* the optimizer step: that
# is the state (with the step counters) a resume must continue from, so the warning is noise here.
warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")
# Raised inside Lightning's own pytree helper under torch >= 2.10; nothing a user can act on.
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
# cli_main(args) from tests and benchmarks replaces sys.argv on purpose; Lightning warns when both exist.
warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended to run from within Python")


class _DropLightningTips(logging.Filter):
    """Lightning 2.6 prints an advertisement ("💡 Tip: ... litlogger") at every fit; it says nothing about the run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_DropLightningTips())


class GANLabCLI(LightningCLI):
    """LightningCLI plus run folders, a forced ``last.ckpt``, ``--ckpt_path last`` and the data-shape link."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument("--name", type=str | None, default=None,
                            help="Run name: folder runs/<name>/ and W&B run name (default: the config file's stem).")
        parser.add_argument("--runs_dir", type=str, default="runs", help="Where run folders are created.")
        parser.add_lightning_class_args(LastCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.save_last": True})
        # The data say their shape once; the networks are sized from it when the model is built.
        parser.link_arguments("data.data_shape", "model.init_args.data_shape", apply_on="instantiate")

    # ------------------------------------------------------------------ run folder and resume
    def _parse_ckpt_path(self) -> None:
        """Resolve ``--ckpt_path last`` to the newest run's last.ckpt, then let Lightning read its hparams.

        Lightning replaces the model settings with the checkpoint's; any the command line or config changed are
        named, and so is a changed batch size, which shifts the data order against the uninterrupted run.
        """
        sub = self.config.get("subcommand")
        cfg = self.config[sub] if sub else self.config
        cfg.name = _run_name(cfg)
        ckpt_path = cfg.get("ckpt_path")
        if ckpt_path and ckpt_path not in ("last", "best", "hpc", "registry"):
            _check_checkpoint_file(ckpt_path)
        if ckpt_path == "last":
            found = _newest_last_checkpoint(Path(cfg.runs_dir, cfg.name))
            if found:
                cfg.ckpt_path = str(found)
                rank_zero_info(f"Resuming from {cfg.ckpt_path}")
            else:
                rank_zero_warn(f"--ckpt_path last: no {cfg.runs_dir}/{cfg.name}/*/checkpoints/last.ckpt yet; "
                               "starting a new run.")
                cfg.ckpt_path = None
        model_before = _flat(cfg.get("model"))
        super()._parse_ckpt_path()
        cfg = self.config[sub] if sub else self.config
        if cfg.get("ckpt_path") and Path(cfg.ckpt_path).is_file():
            for line in _resume_changes(cfg, model_before, cfg.ckpt_path):
                rank_zero_warn(line)

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Callback]) -> Trainer:
        """``--trainer.enable_checkpointing false`` drops the ``checkpoint`` callback (Lightning refuses both)."""
        if config.get("enable_checkpointing") is False:
            callbacks = [c for c in callbacks if not isinstance(c, ModelCheckpoint)]
        return super()._instantiate_trainer(config, callbacks)

    def before_instantiate_classes(self) -> None:
        cfg = self.config[self.subcommand] if self.subcommand else self.config
        run_id, run_dir = None, None
        ckpt = cfg.get("ckpt_path")
        if ckpt and Path(ckpt).is_file():
            run_id, run_dir = _run_info_from_checkpoint(ckpt)
            # a resume writes into its own run's checkpoint folder on purpose
            warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
        run_id_from_ckpt = run_dir is not None
        if run_dir is None:
            run_id = _shared_run_id()
            run_dir = str(Path(cfg.runs_dir, cfg.name, run_id))
        self.run_id, self.run_dir = run_id, run_dir
        cfg.trainer.default_root_dir = run_dir
        _add_default_progress_bar(cfg.trainer)
        _choose_strategy(cfg)
        if cfg.checkpoint.dirpath is None:
            cfg.checkpoint.dirpath = str(Path(run_dir, "checkpoints"))
        _configure_wandb(cfg, run_id, run_dir, resumed_from=ckpt if run_id_from_ckpt else None)

    def after_instantiate_classes(self) -> None:
        if self.trainer is not None:
            # first in line: GracefulStop must ask to stop before LastCheckpoint (always last) looks
            self.trainer.callbacks[:0] = [GracefulStop(), _RunInfo(self.run_id, self.run_dir)]
            if type(self.trainer.strategy.checkpoint_io) is TorchCheckpointIO:  # not a user's own plugin
                self.trainer.strategy.checkpoint_io = AtomicCheckpointIO()

    def after_fit(self) -> None:
        """Say where everything landed."""
        trainer = self.trainer
        log_dir = trainer.log_dir  # a collective in multi-process runs: every rank must ask
        if not trainer.is_global_zero:
            return
        lines = [f"Run folder:  {self.run_dir}", f"Checkpoint:  {_checkpoint_summary(trainer)}"]
        config_file = Path(log_dir or self.run_dir, "config.yaml")
        if config_file.exists():
            lines.append(f"Config:      {config_file}")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                lines += _wandb_summary(logger, self.run_id)
            elif getattr(logger, "log_dir", None):
                lines.append(f"Logs:        {logger.log_dir}")
        print("\n" + "\n".join(lines), flush=True)


class SaveAndLogConfig(SaveConfigCallback):
    """Writes config.yaml into the run folder (Lightning's) and makes the same resolved config the W&B run's
    config, so a dashboard run shows every setting it was trained with."""

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        config = yaml.safe_load(self.parser.dump(self.config, skip_none=False))
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.experiment.config.update({"config": config}, allow_val_change=True)


class _RunInfo(Callback):
    """Stores the run's id and folder in every checkpoint so a resume continues the same run (and W&B run)."""

    def __init__(self, run_id: str, run_dir: str) -> None:
        self.run_id, self.run_dir = run_id, run_dir

    @property
    def state_key(self) -> str:
        return RUN_INFO_KEY

    def state_dict(self) -> dict[str, str]:
        return {"run_id": self.run_id, "run_dir": self.run_dir}

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Every rank takes rank 0's run: processes started by torchrun, srun or on other nodes chose their own."""
        chosen = self.run_dir
        self.run_id, self.run_dir = trainer.strategy.broadcast((self.run_id, self.run_dir), src=0)
        if chosen != self.run_dir:
            trainer._default_root_dir = self.run_dir  # set from the local choice before the process group existed
            with contextlib.suppress(OSError):
                Path(chosen).rmdir()  # the local choice's folder, if a logger created it and it stayed empty


def _newest_last_checkpoint(runs: Path) -> Path | None:
    """The last.ckpt written most recently among a run name's folders (a resumed older run counts as newest)."""
    found = list(runs.glob("*/checkpoints/last.ckpt"))
    return max(found, key=lambda p: (p.stat().st_mtime_ns, p.parent.parent.name)) if found else None


def _checkpoint_summary(trainer: Trainer) -> str:
    """The end-of-fit line about checkpoints: where last.ckpt is, or why none was written."""
    ckpt = trainer.checkpoint_callback
    if ckpt is None:
        return "none written (--trainer.enable_checkpointing false)"
    if trainer.fast_dev_run:
        return "none written (--trainer.fast_dev_run runs are smoke tests)"
    if ckpt.last_model_path and Path(ckpt.last_model_path).is_file():
        return f"{ckpt.last_model_path}   (resume: add --ckpt_path last)"
    if ckpt.best_model_path:
        return f"{ckpt.best_model_path}   (no last.ckpt: --checkpoint.save_last is false)"
    return "none written (see the warning at start-up about --checkpoint.save_last)"


def _flat(namespace: Any) -> dict[str, Any]:
    """A config subtree as {dotted key: value}."""
    return dict(namespace.items()) if isinstance(namespace, Namespace) else {}


def _resume_changes(cfg: Any, model_before: dict[str, Any], ckpt_path: str) -> list[str]:
    """Warnings for settings that differ between a resumed checkpoint and this run's config (unset ones, such as
    the linked ``data_shape``, are filled in from the checkpoint and are no change)."""
    lines = []
    after = _flat(cfg.get("model"))
    for key, given in model_before.items():
        if given is not None and key in after and after[key] != given and not isinstance(given, Namespace):
            lines.append(f"--ckpt_path {ckpt_path}: model.{key} is {given!r} in this config but {after[key]!r} in the "
                         f"checkpoint; a resume continues with the checkpoint's value (start a new run to change it).")
    saved = torch.load(ckpt_path, map_location="cpu", weights_only=True).get("gan_lab", {}).get("batch_size")
    data_args = cfg.get("data", {}).get("init_args") or {}
    batch_size = data_args.get("batch_size") if isinstance(data_args, (dict, Namespace)) else None
    if saved is not None and batch_size is not None and batch_size != saved:
        lines.append(f"--ckpt_path {ckpt_path}: data.init_args.batch_size is {batch_size} but the checkpoint was "
                     f"trained with {saved}. The resumed epoch skips the batches already used counted in the new "
                     f"size, so part of it is skipped or seen twice, and later epochs are split differently from an "
                     f"uninterrupted run. Resume with --data.init_args.batch_size {saved} to continue exactly.")
    return lines


def _add_default_progress_bar(trainer_cfg: Any) -> None:
    """Use callbacks.ProgressBar (redraws by time) unless the config names a bar or turns it off."""
    callbacks = trainer_cfg.callbacks or []
    if trainer_cfg.enable_progress_bar is False or any("ProgressBar" in c.class_path for c in callbacks):
        return
    trainer_cfg.callbacks = [*callbacks, Namespace(class_path="callbacks.ProgressBar", init_args=Namespace())]


def _choose_strategy(cfg: Any) -> None:
    """Data parallelism that works for GANs: ``gan_ddp`` when the config names no strategy but asks for several
    processes (Lightning would pick ``ddp``), and a start-up error for a DDP wrapper that a GAN step breaks."""
    trainer = cfg.trainer
    if trainer.strategy == "auto":
        if _process_count(trainer) > 1:
            trainer.strategy = "gan_ddp"
        return
    strategy, find_unused = _strategy_class(trainer.strategy)
    if (strategy is not None and issubclass(strategy, DDPStrategy) and not issubclass(strategy, GANDDPStrategy)
            and not find_unused and issubclass(_import(cfg.model.class_path) or object, GANModule)):
        name = trainer.strategy if isinstance(trainer.strategy, str) else strategy.__name__
        raise ValueError(
            f"--trainer.strategy {name} cannot train a GAN: DDP's wrapper stops with \"parameters that were not "
            "used in producing the loss\" because the discriminator step leaves the generator without gradients. "
            "Use --trainer.strategy gan_ddp (what the lab picks when no strategy is named), or "
            "ddp_find_unused_parameters_true (slower).")


def _process_count(trainer: Any) -> int:
    """Processes per run (devices x nodes), parsed as Lightning's accelerator connector will parse them."""
    from lightning.pytorch.accelerators import AcceleratorRegistry, CPUAccelerator, CUDAAccelerator, MPSAccelerator

    name = trainer.accelerator
    if name in ("auto", "gpu"):
        accelerator = next((a for a in (CUDAAccelerator, MPSAccelerator) if a.is_available()), CPUAccelerator)
    elif isinstance(name, str) and name in AcceleratorRegistry:
        accelerator = AcceleratorRegistry[name]["accelerator"]
    else:
        return 1  # a user's own accelerator: leave the choice to Lightning
    try:
        devices = (accelerator.auto_device_count() if trainer.devices == "auto"
                   else len(accelerator.get_parallel_devices(accelerator.parse_devices(trainer.devices))))
    except Exception:
        return 1  # an invalid device request: the Trainer raises its own, clearer error
    return devices * int(trainer.num_nodes or 1)


def _strategy_class(strategy: Any) -> tuple[type | None, bool]:
    """The class a strategy setting names (registry name, class_path or instance) and its find_unused_parameters."""
    if isinstance(strategy, str):
        if strategy not in StrategyRegistry:
            return None, False
        entry = StrategyRegistry[strategy]
        return entry["strategy"], bool(entry["init_params"].get("find_unused_parameters"))
    if isinstance(strategy, Namespace):
        return _import(strategy.class_path), bool((strategy.get("init_args") or {}).get("find_unused_parameters"))
    return type(strategy), bool(getattr(strategy, "_ddp_kwargs", {}).get("find_unused_parameters"))


def _import(class_path: str) -> type | None:
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None


def _configure_wandb(cfg: Any, run_id: str, run_dir: str, resumed_from: str | None) -> None:
    """Point every W&B logger at the run: files in the run folder, the run folder's id, the config's name.

    The id is always the run's (a config.yaml saved by an earlier run must not log into that run). A resume
    (``resumed_from``: a checkpoint of this run) gives the lab's logger the checkpoint's generator step, where
    it rewinds the W&B run or starts the next segment (callbacks/wandb_logger.py).
    """
    logger = cfg.trainer.logger
    for spec in logger if isinstance(logger, list) else [logger]:
        if not (hasattr(spec, "class_path") and spec.class_path.endswith("WandbLogger")):
            continue
        args = spec.init_args
        args.save_dir = run_dir if args.get("save_dir") in (None, ".") else args.save_dir
        args.name = args.get("name") or cfg.name
        args.id = run_id
        if issubclass(_import(spec.class_path) or object, WandbLogger):
            args.resume_step = _logged_step(resumed_from) if resumed_from else None


def _wandb_summary(logger: WandbLogger, run_id: str) -> list[str]:
    """Where the W&B run is and, offline, the one command that uploads every segment of the run."""
    wandb_dir = Path(logger.save_dir or ".", "wandb")
    where = f"run {logger.version} (group {run_id}) in {wandb_dir}"
    if not logger.offline:
        return [f"W&B:         {where}"]
    return [f"W&B (offline): {where}",
            f"  upload:      wandb sync {wandb_dir}   (every segment of this run not uploaded yet; one per resume)"]


def _logged_step(ckpt_path: str) -> int:
    """The step a checkpoint's last logged row carries: the generator step for GAN modules (what
    callbacks.WandbLogger logs as W&B's ``_step``), otherwise Lightning's logging step."""
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True, mmap=True)  # mmap: no full read
    if "g_steps" in ckpt.get(GAN_STATE_KEY, {}):
        return int(ckpt[GAN_STATE_KEY]["g_steps"])
    loop = ckpt.get("loops", {}).get("fit_loop", {}).get("epoch_loop.state_dict", {})
    return int(loop.get("_batches_that_stepped", ckpt.get("global_step", 0)))


def _run_name(cfg: Any) -> str:
    if cfg.get("name"):
        return cfg.name
    configs = [c for c in cfg.get("config") or [] if Path(str(c)).parent.name != "debug"]
    if configs:  # the experiment's config, not a debug preset composed after it
        return Path(str(configs[0])).stem
    return "run"


def _shared_run_id() -> str:
    """This process's choice of a new run id; in a multi-process run every rank adopts rank 0's at set-up.

    ``GAN_LAB_RUN_ID`` names the run when the user exports it.  Otherwise the id is new, except in the rank
    processes Lightning's launcher starts from this one: they inherit it through ``_HANDOFF_ENV`` and so never
    make a folder of their own.  Processes that an outside launcher starts on their own (torchrun, SLURM's
    srun, the other nodes of a multi-node run) cannot agree before a process group exists; ``_RunInfo.setup``
    gives them rank 0's id once it does.
    """
    if os.environ.get(RUN_ID_ENV):
        return os.environ[RUN_ID_ENV]
    inherited = os.environ.get(_HANDOFF_ENV)
    run_id = inherited if inherited and os.environ.get("LOCAL_RANK", "0") != "0" else _new_run_id()
    os.environ[_HANDOFF_ENV] = run_id  # read only by rank processes (LOCAL_RANK > 0), never by a later run here
    return run_id


_HANDOFF_ENV = "_GAN_LAB_LAUNCHER_RUN_ID"


def _new_run_id() -> str:
    """A sortable, readable id: date-time plus 4 random characters (valid as a W&B run id)."""
    alphabet = string.ascii_lowercase + string.digits
    suffix = "".join(alphabet[i] for i in torch.randint(len(alphabet), (4,), generator=torch.Generator().manual_seed(
        time.time_ns() % 2**63)).tolist())
    return time.strftime("%Y%m%d-%H%M%S-") + suffix


def _check_checkpoint_file(path: str) -> None:
    """A clear error, before anything starts, for a checkpoint that is missing, truncated or foreign."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"--ckpt_path {path}: no such file (use --ckpt_path last for the newest run)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"--ckpt_path {path} cannot be read ({type(err).__name__}: {str(err)[:200]}). The file is "
                         "truncated or not a PyTorch checkpoint; this lab writes last.ckpt atomically, so the run "
                         "folder's checkpoints/last.ckpt is intact.") from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "pytorch-lightning_version" not in ckpt:
        raise ValueError(f"--ckpt_path {path} is a PyTorch file but not a Lightning checkpoint of this lab "
                         "(no state_dict / pytorch-lightning_version).")


def _run_info_from_checkpoint(path: str) -> tuple[str | None, str | None]:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    info = ckpt.get("callbacks", {}).get(RUN_INFO_KEY)
    if info:
        return info["run_id"], info["run_dir"]
    return None, None


def cli_main(args: ArgsType = None, run: bool = True) -> GANLabCLI | list[Path]:
    """Run the CLI; ``args`` (a list of strings) replaces ``sys.argv[1:]``, so tests never read pytest's argv.

    ``sample`` is this lab's own subcommand (``main.py sample --ckpt_path ...``); the rest is LightningCLI.
    """
    argv = list(sys.argv[1:] if args is None else args) if not isinstance(args, dict) else None
    if argv and argv[0] == "sample":
        from gan_modules.sampling import sample_main

        return sample_main(argv[1:])
    return GANLabCLI(
        LightningModule,
        LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=0,
        save_config_callback=SaveAndLogConfig,
        save_config_kwargs={"overwrite": True},  # a resume writes its config into the same run folder
        trainer_defaults={
            "logger": {"class_path": "callbacks.WandbLogger"},
            "use_distributed_sampler": False,  # our samplers shard by rank themselves (datamodules/loader.py)
        },
        args=args,
        run=run,
    )


if __name__ == "__main__":
    cli_main()
