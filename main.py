"""GAN lab entry point: every run is one YAML config (Lightning's CLI).

    python main.py fit --config configs/wgan_gp_ring.yaml                   # 2-D toy, no download, CPU minutes
    python main.py fit --config configs/wgan_gp_ring.yaml --ckpt_path last  # resume the newest run of it
    python main.py fit --config configs/wgan_gp_ring.yaml --model.init_args.n_critic 3 --trainer.max_steps 800
    python main.py fit --config configs/wgan_gp_ring.yaml --config configs/debug/tiny_ring.yaml  # a 20 s smoke run
    python main.py fit --config configs/wgan_gp_ring.yaml --print_config    # the fully resolved config
    python main.py sample --ckpt_path runs/wgan_gp_ring/<run id>/checkpoints/last.ckpt --num_samples 64
    python main.py sample --ckpt_path last --config configs/wgan_gp_ring.yaml            # the newest run's last.ckpt

Each run gets its own folder ``runs/<name>/<run id>/`` (``name`` defaults to the config file's stem) with the
resolved ``config.yaml``, ``checkpoints/`` (``last.ckpt`` always) and the W&B files.  W&B logs offline when no
credentials exist; the end of ``fit`` prints every path and the ``wandb sync`` command.

Every step count (``trainer.max_steps``, ``checkpoint.every_n_train_steps``, ``log_every_n_steps``, callbacks'
``every_n_steps``) means generator steps, whatever ``n_critic`` is (see ``gan_modules/base.py``).
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import inspect
import logging
import os
import re
import string
import sys
import time
import warnings
from argparse import ArgumentError
from pathlib import Path
from typing import Any

import torch
import yaml
from jsonargparse import ArgumentParser, Namespace
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.strategies import DDPStrategy, StrategyRegistry
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from callbacks.checkpointing import AtomicCheckpointIO, GracefulStop, LastCheckpoint
from callbacks.wandb_logger import WandbLogger
from gan_modules import AdversarialModule
from gan_modules.base import CHECKPOINT_KEY as GAN_STATE_KEY
from gan_modules.strategies import GANDDPStrategy  # importing registers trainer.strategy: gan_ddp

RUN_INFO_KEY = "gan_lab_run"
RUN_ID_ENV = "GAN_LAB_RUN_ID"
SAMPLE_HELP = "Write samples of a trained GAN to disk (one PNG each and a grid, or a CSV for vector data)."
#: Lightning's other subcommands: its validation/test/predict loops need a loss or outputs a GAN does not define.
UNSUPPORTED = ("validate", "test", "predict")
#: Model settings that decide the networks' parameters: a checkpoint that differs in one comes from another run.
NETWORK_SETTINGS = ("generator", "discriminator", "latent_dim", "spectral_norm")

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

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """Only ``fit``: a GAN has no validation or test loss for Lightning's other loops (see UNSUPPORTED)."""
        return {"fit": LightningCLI.subcommands()["fit"]}

    def _add_subcommands(self, parser: LightningArgumentParser, **kwargs: Any) -> None:
        """Lightning's subcommands, plus ``sample`` (run by cli_main itself) so that ``--help`` lists it."""
        super()._add_subcommands(parser, **kwargs)
        parser._subcommands_action.add_subcommand("sample", sample_parser(), help=SAMPLE_HELP)

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        """Lightning's parsing, with a clearer message for the errors users meet most, and the model config as
        the user wrote it (before Lightning merges a checkpoint's hyper-parameters into it)."""
        parsers, error = [parser, *self._subcommand_parsers.values()], None
        try:
            for p in parsers:
                p.exit_on_error = False  # raise, so the message can be explained before it is printed
            super().parse_arguments(parser, args)
        except ArgumentError as err:
            error = _explain_parse_error(str(err))
        finally:
            for p in parsers:
                p.exit_on_error = True
        if error is not None:
            argv = sys.argv[1:] if args is None else args
            sub = argv[0] if isinstance(argv, list) and argv and argv[0] in self._subcommand_parsers else None
            self._subcommand_parsers.get(sub, parser).error(error)  # usage, the message, exit code 2
        sub = self.config.get("subcommand")
        self.user_model_config = copy.deepcopy((self.config[sub] if sub else self.config).get("model"))

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
        _check_start_up(cfg, self.user_model_config)
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
        logger = cfg.trainer.logger
        for spec in logger if isinstance(logger, list) else [logger]:
            _put_logger_in_run_folder(spec, run_dir)
        _configure_wandb(cfg, run_id, run_dir, resumed_from=ckpt if run_id_from_ckpt else None)

    def after_instantiate_classes(self) -> None:
        cfg = self.config[self.subcommand] if self.subcommand else self.config
        _check_model_fits_data(self.user_model_config, self.datamodule)
        if cfg.get("ckpt_path") and Path(cfg.ckpt_path).is_file():
            _check_checkpoint_fits_run(cfg.ckpt_path, self.model, cfg)
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
    """Writes config.yaml into the run folder and makes the same resolved config the W&B run's config, so a
    dashboard run shows every setting it was trained with.

    Lightning writes it into ``trainer.log_dir``, which for a CSV or TensorBoard logger is that logger's
    ``version_N`` folder; the run folder (``trainer.default_root_dir``, set by GANLabCLI) is where a user and
    a resume look for it.
    """

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.already_saved:
            return
        if trainer.is_global_zero:
            run_dir = Path(trainer.default_root_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
            # keep null values: a null that overrides a non-null default must survive a reload
            keep_nulls = {"skip_unset" if "skip_unset" in inspect.signature(self.parser.save).parameters
                          else "skip_none": False}  # jsonargparse renamed it in 4.49
            self.parser.save(self.config, str(run_dir / self.config_filename), overwrite=self.overwrite,
                             multifile=self.multifile, **keep_nulls)
            self.save_config(trainer, pl_module, stage)
            self.already_saved = True
        self.already_saved = trainer.strategy.broadcast(self.already_saved)  # every rank skips later setups

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
            and not find_unused and issubclass(_import(cfg.model.class_path) or object, AdversarialModule)):
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


# ---------------------------------------------------------------------------------------------- start-up checks
def _check_start_up(cfg: Any, user_model: Any) -> None:
    """Errors that need the whole config, raised before anything is written (run folder, config, W&B run)."""
    _check_no_lightning_optimizer(cfg)
    ckpt = cfg.get("ckpt_path")
    resuming = bool(ckpt) and Path(ckpt).is_file()
    _check_runs_dir(cfg.runs_dir, writable=not resuming)
    if resuming:
        _check_checkpoint_belongs(ckpt, user_model)


def _check_no_lightning_optimizer(cfg: Any) -> None:
    """LightningCLI's ``--optimizer``/``--lr_scheduler`` set one optimizer for automatic optimization; a GAN
    module steps its own two and would fail inside training_step."""
    model_class = _import(cfg.model.class_path) if cfg.get("model") and cfg.model.get("class_path") else None
    if not (isinstance(model_class, type) and issubclass(model_class, AdversarialModule)):
        return  # e.g. the digit classifier: Lightning's optimizer arguments work there
    for key in ("optimizer", "lr_scheduler"):
        if cfg.get(key) is not None:
            raise ValueError(
                f"--{key} does not apply to {model_class.__name__}: a GAN has two optimizers and steps them itself. "
                "Set them as model.init_args.g_optimizer and model.init_args.d_optimizer, e.g. "
                "--model.init_args.d_optimizer torch.optim.SGD --model.init_args.d_optimizer.lr 0.01"
                + ("; learning-rate schedules are not supported for GAN modules." if key == "lr_scheduler" else "."))


def _check_runs_dir(runs_dir: str, writable: bool = True) -> None:
    """Name ``--runs_dir`` when run folders cannot be created under it (a file in the way, no permission)."""
    path = Path(runs_dir)
    existing = next(p for p in [path, *path.parents] if p.exists())  # "." or "/" at the latest
    if existing.exists() and not existing.is_dir():
        raise ValueError(f"--runs_dir {runs_dir}: {existing} is a file, not a folder, so no run folder can be "
                         "created there; choose another --runs_dir.")
    if writable and existing.exists() and not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--runs_dir {runs_dir}: {existing} is not writable; choose another --runs_dir.")


def _check_checkpoint_belongs(ckpt_path: str, user_model: Any) -> None:
    """Refuse a checkpoint of another run before its run folder is touched (config.yaml, W&B run)."""
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    differences = _model_differences(ckpt.get("hyper_parameters") or {}, _plain(user_model) or {})
    if differences:
        raise ValueError(_foreign_checkpoint_message(ckpt_path, _checkpoint_run_dir(ckpt), differences))


def _check_checkpoint_fits_run(ckpt_path: str, model: LightningModule, cfg: Any) -> None:
    """The networks built from this config against the checkpoint's tensors, and the data against the
    checkpoint's run, before fit writes anything."""
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    run_dir = _checkpoint_run_dir(ckpt)
    check = getattr(model, "_check_checkpoint_fits", None)
    try:
        if check is not None:
            check(ckpt)
    except ValueError as err:
        raise ValueError(f"--ckpt_path {ckpt_path} does not fit this config; it belongs to "
                         f"{run_dir or 'another run'}. Nothing was written.\n{err}") from err
    saved_config = Path(run_dir, "config.yaml") if run_dir else None
    if saved_config is not None and saved_config.is_file() and cfg.get("data") is not None:
        theirs = ((yaml.safe_load(saved_config.read_text()) or {}).get("data") or {}).get("class_path")
        if theirs and _import(theirs) is not _import(cfg.data.class_path):
            raise ValueError(_foreign_checkpoint_message(
                ckpt_path, run_dir, [f"data: checkpoint's run {theirs}, this config {cfg.data.class_path}"]))


def _checkpoint_run_dir(ckpt: dict[str, Any]) -> str | None:
    return (ckpt.get("callbacks", {}).get(RUN_INFO_KEY) or {}).get("run_dir")


def _model_differences(hparams: dict[str, Any], mine: dict[str, Any]) -> list[str]:
    """The module class and network-sizing settings in which a checkpoint differs from this config."""
    theirs, ours = hparams.get("_class_path"), mine.get("class_path")
    if not theirs or not ours:
        return []
    if _import(theirs) is not _import(ours):
        return [f"model class: checkpoint {theirs}, this config {ours}"]
    args = mine.get("init_args") or {}
    return [f"model.init_args.{key}: checkpoint {_plain(hparams[key])}, this config {_plain(args[key])}"
            for key in NETWORK_SETTINGS if key in hparams and key in args and _plain(hparams[key]) != _plain(args[key])]


def _foreign_checkpoint_message(ckpt_path: str, run_dir: str | None, differences: list[str]) -> str:
    where = f"the run {run_dir} (its config: {Path(run_dir, 'config.yaml')})" if run_dir else "another run"
    resume = (f"python main.py fit --config {Path(run_dir, 'config.yaml')} --ckpt_path {ckpt_path}" if run_dir
              else "the config that run was trained with")
    return "\n".join([f"--ckpt_path {ckpt_path} belongs to {where}, not to this config; they differ in:",
                      *(f"  {d}" for d in differences[:6]),
                      "Nothing was written. To resume that run: " + resume,
                      "To train this config from scratch, leave out --ckpt_path (--ckpt_path last resumes its own "
                      "newest run)."])


def _check_model_fits_data(user_model: Any, datamodule: Any) -> None:
    """``model.init_args.data_shape`` is linked from the data; a different explicit value would be dropped."""
    given = ((_plain(user_model) or {}).get("init_args") or {}).get("data_shape")
    data_shape = getattr(datamodule, "data_shape", None)
    if given is not None and data_shape is not None and tuple(given) != tuple(data_shape):
        raise ValueError(
            f"model.init_args.data_shape={list(given)}, but the data ({type(datamodule).__name__}) give samples of "
            f"shape {list(data_shape)}. The data's shape is linked into the model and would replace yours: remove "
            "model.init_args.data_shape and change the datamodule's size instead (e.g. data.init_args.image_size).")


def _explain_parse_error(message: str) -> str:
    """A plain sentence for parser errors that name the cause badly, else the parser's own message."""
    abstract = re.search(r"but ([\w.]+) is abstract", message)
    if abstract:
        keys = re.findall(r'Parser key "([\w.]+)"', message[: abstract.start()])
        setting = ".init_args.".join(keys)
        base = _import(abstract.group(1))
        choices = [f"{c.__module__}.{c.__name__}" for c in _concrete_subclasses(base)]
        return (f"{setting}: this config has no {keys[-1]} (it is null), so there is nothing for "
                f"{setting}.init_args to change. Choose one first, e.g. --{setting} {choices[0] if choices else '...'}"
                f" (then --{setting}.init_args.<name> <value>); choices: {', '.join(choices) or 'none found'}.")
    return message


def _concrete_subclasses(base: type) -> list[type]:
    found = []
    for sub in base.__subclasses__():
        found += ([] if inspect.isabstract(sub) else [sub]) + _concrete_subclasses(sub)
    return found


def _put_logger_in_run_folder(spec: Any, run_dir: str) -> None:
    """A logger whose folder is unset (or the current directory) writes into the run folder."""
    if not hasattr(spec, "class_path"):
        return
    if spec.get("init_args") is None:
        spec.init_args = Namespace()
    params = inspect.signature((_import(spec.class_path) or object).__init__).parameters
    for key in ("save_dir", "root_dir"):
        if key in params and spec.init_args.get(key) in (None, "", ".", "./"):
            setattr(spec.init_args, key, run_dir)


def _plain(value: Any) -> Any:
    """A config value as plain dicts and lists (jsonargparse Namespaces and tuples compare unequal to them)."""
    if isinstance(value, Namespace):
        value = value.as_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------- sample
def sample_parser() -> ArgumentParser:
    """The ``sample`` subcommand's arguments (also shown by ``python main.py --help``)."""
    parser = ArgumentParser(prog="main.py sample", description=SAMPLE_HELP)
    parser.add_argument("--ckpt_path", type=str, required=True,
                        help="a checkpoint written by `main.py fit`, or `last`: the newest run of --config/--name")
    parser.add_argument("--config", type=str | None, default=None,
                        help="with --ckpt_path last: the fit config whose runs to search (its name is the file's stem)")
    parser.add_argument("--name", type=str | None, default=None, help="with --ckpt_path last: the run name")
    parser.add_argument("--runs_dir", type=str, default="runs", help="with --ckpt_path last: where runs are")
    parser.add_argument("--num_samples", type=int, default=64, help="how many samples to write (>= 1)")
    parser.add_argument("--out_dir", type=str | None, default=None,
                        help="replaced as a whole; default: <run folder>/export/<checkpoint name>/")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise vectors")
    parser.add_argument("--no_ema", action="store_true",
                        help="use the raw generator even when an EMA exists")
    return parser


def sample_main(argv: list[str]) -> list[Path]:
    """``python main.py sample ...``: write samples of a trained generator into a fresh export folder."""
    from gan_modules.sampling import export_samples, load_gan

    parser = sample_parser()
    args = parser.parse_args(argv)
    if args.num_samples < 1:
        parser.error(f"--num_samples {args.num_samples}: must be >= 1 (the number of samples to write).")
    if args.ckpt_path == "last":
        args.ckpt_path = str(_sample_ckpt_last(parser, args))
    _check_checkpoint_file(args.ckpt_path)
    ckpt = Path(args.ckpt_path)
    out_dir = args.out_dir or (ckpt.parent.parent / "export" / ckpt.stem)
    written = export_samples(load_gan(ckpt), out_dir, args.num_samples, args.seed, use_ema=not args.no_ema)
    print(f"wrote {len(written)} files to {out_dir} (from {ckpt})")
    return written


def _sample_ckpt_last(parser: ArgumentParser, args: Namespace) -> Path:
    """``--ckpt_path last`` for sample: the newest ``<runs_dir>/<name>/*/checkpoints/last.ckpt``, as fit finds it."""
    name = args.name
    if name is None and args.config:
        name = (yaml.safe_load(Path(args.config).read_text()) or {}).get("name") or Path(args.config).stem
    if name is None:
        parser.error("--ckpt_path last needs --config <the fit config> or --name <run name> to know which runs "
                     "to search.")
    found = _newest_last_checkpoint(Path(args.runs_dir, name))
    if found is None:
        parser.error(f"--ckpt_path last: no {args.runs_dir}/{name}/*/checkpoints/last.ckpt; train first "
                     f"(python main.py fit --config ...) or give --runs_dir / --name / a checkpoint file.")
    return found


def _refuse_unsupported(subcommand: str) -> None:
    sys.exit(f"main.py {subcommand}: not supported. A GAN has no validation, test or prediction loss for Lightning's "
             f"{subcommand} loop; this lab measures during fit (callbacks such as callbacks.FID and SampleGrid) and "
             "writes samples with: python main.py sample --ckpt_path <run folder>/checkpoints/last.ckpt "
             "(or --ckpt_path last --config <the fit config>).")


def cli_main(args: ArgsType = None, run: bool = True) -> GANLabCLI | list[Path]:
    """Run the CLI; ``args`` (a list of strings) replaces ``sys.argv[1:]``, so tests never read pytest's argv.

    ``sample`` is this lab's own subcommand (``main.py sample --ckpt_path ...``); the rest is LightningCLI.
    """
    argv = list(sys.argv[1:] if args is None else args) if not isinstance(args, dict) else None
    if argv and argv[0] == "sample":
        return sample_main(argv[1:])
    if argv and argv[0] in UNSUPPORTED:
        _refuse_unsupported(argv[0])
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
