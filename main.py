"""GAN lab entry point: every run is one YAML config (Lightning's CLI).

    python main.py fit --config configs/wgan_gp_ring.yaml                   # 2-D toy, no download, CPU minutes
    python main.py fit --config configs/wgan_gp_ring.yaml --ckpt_path last  # resume the newest run of it
    python main.py fit --config configs/wgan_gp_ring.yaml --model.init_args.n_critic 3 --trainer.max_steps 800
    python main.py fit --config configs/wgan_gp_ring.yaml --config configs/debug/tiny_ring.yaml  # a 20 s smoke run
    python main.py fit --config configs/wgan_gp_ring.yaml --print_config    # the fully resolved config
    python main.py sample --ckpt_path runs/wgan_gp_ring/<run id>/checkpoints/last.ckpt --num_samples 64
    python main.py sample --ckpt_path last --config configs/wgan_gp_ring.yaml            # the newest run's last.ckpt
    python main.py sample --ckpt_path last --config configs/cgan_mnist.yaml --labels 3 3 7   # conditional: classes
    python main.py sample --ckpt_path last --config configs/cgan_mnist.yaml --per_class 8    # one grid row per class
    python main.py translate --ckpt_path <run folder>/checkpoints/last.ckpt --input in/ --direction AtoB --output out
    python main.py sample --ckpt_path last --config configs/stylegan_mnist.yaml --truncation 0.7  # StyleGAN only

Each run gets its own folder ``runs/<name>/<run id>/`` (``name`` defaults to the config file's stem) with the
resolved ``config.yaml``, ``checkpoints/`` (``last.ckpt`` always) and the W&B files.  W&B logs offline when no
credentials exist; the end of ``fit`` prints every path and the ``wandb sync`` command.

Every step count (``trainer.max_steps``, ``checkpoint.every_n_train_steps``, ``log_every_n_steps``, callbacks'
``every_n_steps``) means generator steps, whatever ``n_critic`` is (see ``gan_modules/base.py``).

A setting, file or checkpoint that cannot work stops the run before its first step with one ``error:`` line
(``GANLAB_TRACEBACK=1`` shows the traceback); ``cli_main`` (tests, benchmarks, notebooks) raises instead.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import logging
import os
import re
import shutil
import sys
import warnings
from argparse import ArgumentError
from pathlib import Path
from typing import Any

import jsonargparse
import yaml
from jsonargparse import ArgumentParser, Namespace
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from callbacks.checkpointing import AtomicCheckpointIO, GracefulStop, LastCheckpoint
from callbacks.runs import (
    RunInfo,
    check_checkpoint_belongs,
    check_checkpoint_file,
    check_checkpoint_fits_run,
    checkpoint_summary,
    flat,
    import_class,
    newest_last_checkpoint,
    plain,
    put_logger_in_run_folder,
    resume_changes,
    run_info_from_checkpoint,
    run_name,
    shared_run_id,
)
from callbacks.strategies import choose_strategy  # importing registers trainer.strategy: gan_ddp
from callbacks.wandb_logger import WandbLogger, configure_wandb, wandb_summary
from gan_modules import AdversarialModule
from gan_modules.base import check_precision

SAMPLE_HELP = "Write samples of a trained GAN to disk (one PNG each and a grid, or a CSV for vector data)."
#: Lightning's other subcommands: its validation/test/predict loops need a loss or outputs a GAN does not define.
UNSUPPORTED = ("validate", "test", "predict")

# Lightning 2.6 warns that a manual-optimization checkpoint holds the state *after* the optimizer step: that
# is the state (with the step counters) a resume must continue from, so the warning is noise here.
warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")
# Raised inside Lightning's own pytree helper under torch >= 2.10; nothing a user can act on.
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
# cli_main(args) from tests and benchmarks replaces sys.argv on purpose; Lightning warns when both exist.
warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended to run from within Python")
# jsonargparse 4.49 renamed skip_none to skip_unset; Lightning's CLI still passes the old name on every fit.
warnings.filterwarnings("ignore", message=r"(?s).*skip_none parameter was deprecated")
#: ``skip_unset=False`` (jsonargparse >= 4.49) or ``skip_none=False`` (older): keep null values when saving a config
KEEP_NULLS = {"skip_unset" if tuple(int(x) for x in re.findall(r"\d+", jsonargparse.__version__)[:2]) >= (4, 49)
              else "skip_none": False}


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
        parser._subcommands_action.add_subcommand("translate", translate_parser(), help=TRANSLATE_HELP)

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        """Lightning's parsing, with a clearer message for the errors users meet most, and the model config as
        the user wrote it (before Lightning merges a checkpoint's hyper-parameters into it)."""
        subparsers = getattr(self, "_subcommand_parsers", {})  # absent when run without a subcommand
        parsers, error = [parser, *subparsers.values()], None
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
            sub = argv[0] if isinstance(argv, list) and argv and argv[0] in subparsers else None
            failed, prog = subparsers.get(sub, parser), f"main.py {sub}" if sub else "main.py"
            # the message and a one-line usage, exit code 2 (argparse's usage of every option is 60 lines long)
            failed.exit(2, f"usage: {prog} --config CONFIG [--<section>.<option> VALUE ...]   (every option: "
                           f"{prog} --help)\nerror: {_suggest(error, failed, prog)}\n")
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
        # So do their classes (None: no labels); only conditional models take it (others have no such argument).
        parser.link_arguments("data", "model.init_args.num_classes", compute_fn=data_num_classes,
                              apply_on="instantiate")

    # ------------------------------------------------------------------ run folder and resume
    def _parse_ckpt_path(self) -> None:
        """Resolve ``--ckpt_path last`` to the newest run's last.ckpt, then let Lightning read its hparams.

        Lightning replaces the model settings with the checkpoint's; any the command line or config changed are
        named, and so is a changed batch size, which shifts the data order against the uninterrupted run.
        """
        sub = self.config.get("subcommand")
        cfg = self.config[sub] if sub else self.config
        cfg.name = run_name(cfg)
        ckpt_path = cfg.get("ckpt_path")
        if ckpt_path is not None and ckpt_path not in ("last", "best", "hpc", "registry"):
            check_checkpoint_file(ckpt_path)
        if ckpt_path == "last":
            found = newest_last_checkpoint(Path(cfg.runs_dir, cfg.name))
            if found:
                cfg.ckpt_path = str(found)
                rank_zero_info(f"Resuming from {cfg.ckpt_path}")
            else:
                rank_zero_warn(f"--ckpt_path last: no {cfg.runs_dir}/{cfg.name}/*/checkpoints/last.ckpt yet; "
                               "starting a new run.")
                cfg.ckpt_path = None
        if cfg.get("ckpt_path") and Path(cfg.ckpt_path).is_file():  # a foreign checkpoint: refused before the
            check_checkpoint_belongs(cfg.ckpt_path, self.user_model_config)  # resume warnings below
        model_before = flat(cfg.get("model"))
        super()._parse_ckpt_path()
        cfg = self.config[sub] if sub else self.config
        if cfg.get("ckpt_path") and Path(cfg.ckpt_path).is_file():
            for line in resume_changes(cfg, model_before, cfg.ckpt_path):
                rank_zero_warn(line)

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Callback]) -> Trainer:
        """``--trainer.enable_checkpointing false`` drops the ``checkpoint`` callback (Lightning refuses both)."""
        if config.get("enable_checkpointing") is False:
            callbacks = [c for c in callbacks if not isinstance(c, ModelCheckpoint)]
        return super()._instantiate_trainer(config, callbacks)

    def before_instantiate_classes(self) -> None:
        cfg = self.config[self.subcommand] if self.subcommand else self.config
        _check_start_up(cfg)
        run_id, run_dir = None, None
        ckpt = cfg.get("ckpt_path")
        if ckpt and Path(ckpt).is_file():
            run_id, run_dir = run_info_from_checkpoint(ckpt)
            # a resume writes into its own run's checkpoint folder on purpose
            warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
        run_id_from_ckpt = run_dir is not None
        if run_dir is None:
            run_id = shared_run_id()
            run_dir = str(Path(cfg.runs_dir, cfg.name, run_id))
            StartUp.new_run_dir = run_dir if not Path(run_dir).exists() else None
        self.run_id, self.run_dir = run_id, run_dir
        cfg.trainer.default_root_dir = run_dir
        _add_default_progress_bar(cfg.trainer)
        choose_strategy(cfg)
        if cfg.checkpoint.dirpath is None:
            cfg.checkpoint.dirpath = str(Path(run_dir, "checkpoints"))
        logger = cfg.trainer.logger
        for spec in logger if isinstance(logger, list) else [logger]:
            put_logger_in_run_folder(spec, run_dir)
        configure_wandb(cfg, run_id, run_dir, resumed_from=ckpt if run_id_from_ckpt else None)

    def after_instantiate_classes(self) -> None:
        cfg = self.config[self.subcommand] if self.subcommand else self.config
        _check_model_fits_data(self.user_model_config, self.datamodule)
        _check_model_classes_fit_data(self.user_model_config, self.datamodule)
        _drop_unused_link(self.model, "num_classes")
        if cfg.get("ckpt_path") and Path(cfg.ckpt_path).is_file():
            check_checkpoint_fits_run(cfg.ckpt_path, self.model, cfg)
        if self.trainer is not None:
            # first in line: GracefulStop must ask to stop before LastCheckpoint (always last) looks
            self.trainer.callbacks[:0] = [StartUp(), GracefulStop(), RunInfo(self.run_id, self.run_dir)]
            if type(self.trainer.strategy.checkpoint_io) is TorchCheckpointIO:  # not a user's own plugin
                self.trainer.strategy.checkpoint_io = AtomicCheckpointIO()

    def after_fit(self) -> None:
        """Say where everything landed."""
        trainer = self.trainer
        if not trainer.is_global_zero:
            return
        lines = [f"Run folder:  {self.run_dir}", f"Checkpoint:  {checkpoint_summary(trainer)}"]
        config_file = Path(self.run_dir, "config.yaml")  # SaveAndLogConfig writes it there, whatever the logger
        if config_file.exists():
            lines.append(f"Config:      {config_file}")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                lines += wandb_summary(logger, self.run_id)
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
            self.parser.save(self.config, str(run_dir / self.config_filename), overwrite=self.overwrite,
                             multifile=self.multifile, **KEEP_NULLS)
            self.save_config(trainer, pl_module, stage)
            self.already_saved = True
        self.already_saved = trainer.strategy.broadcast(self.already_saved)  # every rank skips later setups

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        config = yaml.safe_load(self.parser.dump(self.config, **KEEP_NULLS))
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.experiment.config.update({"config": config}, allow_val_change=True)


def _add_default_progress_bar(trainer_cfg: Any) -> None:
    """Use callbacks.ProgressBar (redraws by time) unless the config names a bar or turns it off."""
    callbacks = trainer_cfg.callbacks or []
    if trainer_cfg.enable_progress_bar is False or any("ProgressBar" in c.class_path for c in callbacks):
        return
    trainer_cfg.callbacks = [*callbacks, Namespace(class_path="callbacks.ProgressBar", init_args=Namespace())]


# ---------------------------------------------------------------------------------------------- start-up checks
def _check_start_up(cfg: Any) -> None:
    """Errors that need the whole config, raised before anything is written (run folder, config, W&B run)."""
    _check_no_lightning_optimizer(cfg)
    check_precision(cfg.trainer.get("precision"))
    ckpt = cfg.get("ckpt_path")
    resuming = bool(ckpt) and Path(ckpt).is_file()
    _check_runs_dir(cfg.runs_dir, writable=not resuming)  # a resumed checkpoint's run: checked in _parse_ckpt_path


def _check_no_lightning_optimizer(cfg: Any) -> None:
    """LightningCLI's ``--optimizer``/``--lr_scheduler`` set one optimizer for automatic optimization; a GAN
    module steps its own two and would fail inside training_step."""
    model_class = import_class(cfg.model.class_path) if cfg.get("model") and cfg.model.get("class_path") else None
    if not (isinstance(model_class, type) and issubclass(model_class, AdversarialModule)):
        return  # e.g. the digit classifier: Lightning's optimizer arguments work there
    for key in ("optimizer", "lr_scheduler"):
        if cfg.get(key) is not None:
            raise ValueError(
                f"--{key} does not apply to {model_class.__name__}: a GAN has two optimizers and steps them itself. "
                "Set them as model.init_args.g_optimizer and model.init_args.d_optimizer, e.g. "
                "--model.init_args.d_optimizer torch.optim.SGD --model.init_args.d_optimizer.lr 0.01"
                + ("; schedules likewise: model.init_args.g_scheduler and model.init_args.d_scheduler."
                   if key == "lr_scheduler" else "."))


def _check_runs_dir(runs_dir: str, writable: bool = True) -> None:
    """Name ``--runs_dir`` when run folders cannot be created under it (a file in the way, no permission)."""
    path = Path(runs_dir)
    existing = next(p for p in [path, *path.parents] if p.exists())  # "." or "/" at the latest
    if existing.exists() and not existing.is_dir():
        raise ValueError(f"--runs_dir {runs_dir}: {existing} is a file, not a folder, so no run folder can be "
                         "created there; choose another --runs_dir.")
    if writable and existing.exists() and not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--runs_dir {runs_dir}: {existing} is not writable; choose another --runs_dir.")


def _check_model_fits_data(user_model: Any, datamodule: Any) -> None:
    """``model.init_args.data_shape`` is linked from the data; a different explicit value would be dropped."""
    given = ((plain(user_model) or {}).get("init_args") or {}).get("data_shape")
    data_shape = getattr(datamodule, "data_shape", None)
    if given is not None and data_shape is not None and tuple(given) != tuple(data_shape):
        raise ValueError(
            f"model.init_args.data_shape={list(given)}, but the data ({type(datamodule).__name__}) give samples of "
            f"shape {list(data_shape)}. The data's shape is linked into the model and would replace yours: remove "
            "model.init_args.data_shape and change the datamodule's size instead (e.g. data.init_args.image_size).")


def data_num_classes(datamodule: Any) -> int | None:
    """The classes a data module's labels take, None when it yields none (or does not say)."""
    return getattr(datamodule, "num_classes", None)


def _check_model_classes_fit_data(user_model: Any, datamodule: Any) -> None:
    """``model.init_args.num_classes`` is linked from the data too; a different explicit value is refused."""
    given = ((plain(user_model) or {}).get("init_args") or {}).get("num_classes")
    classes = data_num_classes(datamodule)
    if given is not None and given != classes:
        raise ValueError(
            f"model.init_args.num_classes={given}, but the data ({type(datamodule).__name__}) have "
            f"{classes if classes is not None else 'no'} classes. The data's class count is linked into the model: "
            "remove model.init_args.num_classes (and give the data labels, e.g. data.init_args.labels: true).")


def _drop_unused_link(model: Any, name: str) -> None:
    """Forget a linked value the model's class does not take (the class count of an unconditional GAN).

    jsonargparse does not pass it to such a class, but Lightning records every applied link in the module's
    hyper-parameters, and ``load_from_checkpoint`` would then pass it and fail."""
    takes = any(name in inspect.signature(k.__init__).parameters for k in type(model).__mro__ if "__init__" in vars(k))
    if not takes:
        for hparams in (getattr(model, "_hparams", None), getattr(model, "_hparams_initial", None)):
            if hparams is not None and name in hparams:
                del hparams[name]


def _explain_parse_error(message: str) -> str:
    """A plain sentence for parser errors that name the cause badly, else the parser's own message."""
    abstract = re.search(r"but ([\w.]+) is abstract", message)
    if abstract:
        keys = re.findall(r'Parser key "([\w.]+)"', message[: abstract.start()])
        setting = ".init_args.".join(keys)
        base = import_class(abstract.group(1))
        choices = [f"{c.__module__}.{c.__name__}" for c in _concrete_subclasses(base)]
        return (f"{setting}: this config has no {keys[-1]} (it is null), so there is nothing for "
                f"{setting}.init_args to change. Choose one first, e.g. --{setting} {choices[0] if choices else '...'}"
                f" (then --{setting}.init_args.<name> <value>); choices: {', '.join(choices) or 'none found'}.")
    return message


def _suggest(message: str, parser: ArgumentParser, prog: str = "main.py") -> str:
    """A 'did you mean' for the misspellings users make most: an option a class does not take and a class path
    naming nothing (then in place of jsonargparse's report, which lists every type it tried), an option the
    parser does not know (after the message).  Other messages are returned as they are."""
    taken = re.search(r"class_path '([\w.]+)':\s*Option '(\w+)' is not accepted", message)
    missing = re.search(r"module '([\w.]+)' has no attribute '(\w+)'", message)
    unknown = re.search(r"unrecognized arguments: (--[\w.]+)", message)
    if taken:
        cls = import_class(taken.group(1))
        names = {n for k in cls.__mro__ if "__init__" in vars(k) for n in inspect.signature(k.__init__).parameters}
        names -= {"self", "args", "kwargs"}
        hint = _closest(taken.group(2), names, f"{cls.__name__} takes {len(names)} arguments")
        return f"{taken.group(1)} takes no argument '{taken.group(2)}'; {hint}" if hint else message
    if missing:
        module = sys.modules.get(missing.group(1))
        names = [n for n in dir(module) if not n.startswith("_")] if module else []
        hint = _closest(missing.group(2), names, f"{missing.group(1)} has {len(names)} names",
                        prefix=f"{missing.group(1)}.")
        return f"{missing.group(1)}.{missing.group(2)} does not exist; {hint}" if hint else message
    hint = _closest(unknown.group(1), parser._option_string_actions,
                    f"{prog} has {len(parser._option_string_actions)} options") if unknown else None
    return f"{message}\n{hint}" if hint else message


def _closest(word: str, names: Any, about: str, prefix: str = "") -> str | None:
    """'did you mean a or b? (about)' for the names closest to ``word``; None when none is close."""
    import difflib

    close = difflib.get_close_matches(word, sorted(names), n=3, cutoff=0.6)
    return f"did you mean {' or '.join(prefix + c for c in close)}? ({about})" if close else None


def _concrete_subclasses(base: type) -> list[type]:
    found = []
    for sub in base.__subclasses__():
        found += ([] if inspect.isabstract(sub) else [sub]) + _concrete_subclasses(sub)
    return found


# ---------------------------------------------------------------------------------------------- sample
def sample_parser() -> ArgumentParser:
    """The ``sample`` subcommand's arguments (also shown by ``python main.py --help``)."""
    parser = ArgumentParser(prog="main.py sample", description=SAMPLE_HELP)
    _add_checkpoint_arguments(parser)
    parser.add_argument("--num_samples", type=int, default=64, help="how many samples to write (>= 1)")
    parser.add_argument("--out_dir", type=str | None, default=None,
                        help="replaced as a whole; default: <run folder>/export/<checkpoint name>/")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise vectors")
    parser.add_argument("--no_ema", action="store_true",
                        help="use the raw generator even when an EMA exists")
    parser.add_argument("--labels", type=int, nargs="+", default=None,
                        help="conditional models: the class of each sample (e.g. --labels 3 3 7); replaces "
                             "--num_samples")
    parser.add_argument("--per_class", type=int | None, default=None,
                        help="conditional models: this many samples of every class, one grid row per class")
    parser.add_argument("--truncation", type=float | None, default=None,
                        help="StyleGAN's truncation psi: 1 none, 0.7 typical, 0 the average image (default: the "
                             "model's own setting)")
    return parser


def _add_checkpoint_arguments(parser: ArgumentParser) -> None:
    """``--ckpt_path`` (a file, or ``last`` with ``--config``/``--name``), shared by ``sample`` and ``translate``."""
    parser.add_argument("--ckpt_path", type=str, required=True,
                        help="a checkpoint written by `main.py fit`, or `last`: the newest run of --config/--name")
    parser.add_argument("--config", type=str | None, default=None,
                        help="with --ckpt_path last: the fit config whose runs to search (its name is the file's stem)")
    parser.add_argument("--name", type=str | None, default=None, help="with --ckpt_path last: the run name")
    parser.add_argument("--runs_dir", type=str, default="runs", help="with --ckpt_path last: where runs are")


def _load_for(parser: ArgumentParser, args: Namespace, load: Any) -> Any:
    """``load(checkpoint)`` for ``--ckpt_path`` (``last`` resolved); a checkpoint of the wrong kind is a usage
    error (one line, exit code 2), not a traceback."""
    if args.ckpt_path == "last":
        args.ckpt_path = str(_ckpt_last(parser, args))
    try:
        check_checkpoint_file(args.ckpt_path)
        return load(args.ckpt_path)
    except (TypeError, ValueError, OSError) as err:
        parser.error(str(err))


def sample_main(argv: list[str]) -> list[Path]:
    """``python main.py sample ...``: write samples of a trained generator into a fresh export folder."""
    from gan_modules.sampling import export_samples, load_gan, supports_truncation

    parser = sample_parser()
    args = parser.parse_args(argv)
    if args.num_samples < 1:
        parser.error(f"--num_samples {args.num_samples}: must be >= 1 (the number of samples to write).")
    module = _load_for(parser, args, load_gan)
    ckpt = Path(args.ckpt_path)
    out_dir = args.out_dir or (ckpt.parent.parent / "export" / ckpt.stem)
    if args.truncation is not None and not supports_truncation(module):
        parser.error(f"--truncation {args.truncation}: {type(module).__name__} has no truncation trick (only a "
                     "style-based generator, gan_modules.StyleGAN, has an average style to truncate towards); "
                     "drop --truncation.")
    labels = _sample_labels(parser, args, module.num_classes)
    num_samples = len(labels) if labels is not None else args.num_samples
    try:
        written = export_samples(module, out_dir, num_samples, args.seed, use_ema=not args.no_ema, labels=labels,
                                 nrow=args.per_class, truncation_psi=args.truncation)
    except FileExistsError as err:
        parser.error(str(err))
    print(f"wrote {len(written)} file{'s' * (len(written) != 1)} to {out_dir} (from {ckpt})")
    return written


def _sample_labels(parser: ArgumentParser, args: Namespace, num_classes: int | None) -> list[int] | None:
    """The classes asked for by ``--labels`` or ``--per_class``, checked against the model's class count."""
    if args.labels is None and args.per_class is None:
        return None
    if num_classes is None:
        parser.error("--labels/--per_class: this checkpoint's model is unconditional (it takes no labels).")
    if args.labels is not None and args.per_class is not None:
        parser.error("give either --labels or --per_class, not both")
    if args.per_class is not None:
        if args.per_class < 1:
            parser.error(f"--per_class {args.per_class}: must be >= 1")
        return [c for c in range(num_classes) for _ in range(args.per_class)]
    bad = sorted({c for c in args.labels if not 0 <= c < num_classes})
    if not args.labels or bad:
        parser.error(f"--labels: give at least one class in 0..{num_classes - 1} (this model has {num_classes} "
                     f"classes){f'; got {bad}' if bad else ''}.")
    return list(args.labels)


def _ckpt_last(parser: ArgumentParser, args: Namespace) -> Path:
    """``--ckpt_path last`` for sample and translate: the newest ``<runs_dir>/<name>/*/checkpoints/last.ckpt``,
    as fit finds it."""
    name = args.name
    if name is None and args.config:
        name = (yaml.safe_load(Path(args.config).read_text()) or {}).get("name") or Path(args.config).stem
    if name is None:
        parser.error("--ckpt_path last needs --config <the fit config> or --name <run name> to know which runs "
                     "to search.")
    found = newest_last_checkpoint(Path(args.runs_dir, name))
    if found is None:
        parser.error(f"--ckpt_path last: no {args.runs_dir}/{name}/*/checkpoints/last.ckpt; train first "
                     f"(python main.py fit --config ...) or give --runs_dir / --name / a checkpoint file.")
    return found


def _refuse_unsupported(subcommand: str) -> None:
    sys.exit(f"main.py {subcommand}: not supported. A GAN has no validation, test or prediction loss for Lightning's "
             f"{subcommand} loop; this lab measures during fit (callbacks such as callbacks.FID and SampleGrid) and "
             "writes samples with: python main.py sample --ckpt_path <run folder>/checkpoints/last.ckpt "
             "(or --ckpt_path last --config <the fit config>).")


# ---------------------------------------------------------------------------------------------- translate
TRANSLATE_HELP = "Translate images with a trained CycleGAN: one output image per input, under the same name."


def translate_parser() -> ArgumentParser:
    """The ``translate`` subcommand's arguments (also shown by ``python main.py --help``)."""
    parser = ArgumentParser(prog="main.py translate", description=TRANSLATE_HELP)
    _add_checkpoint_arguments(parser)
    parser.add_argument("--input", type=str, required=True,
                        help="an image, or a folder of images (those directly in it, not in its subfolders)")
    parser.add_argument("--direction", type=str, default="AtoB", help="AtoB (G: domain A to B) or BtoA (F)")
    parser.add_argument("--output", type=str, required=True,
                        help="folder for the translated images: new, empty, or an earlier translate output")
    return parser


def translate_main(argv: list[str]) -> list[Path]:
    """``python main.py translate ...``: translate every input image and write it under its own name."""
    from gan_modules.translation import check_output, direction_name, input_files, load_cyclegan, translate_files

    parser = translate_parser()
    args = parser.parse_args(argv)
    try:  # the arguments are checked before the checkpoint is loaded
        args.direction = direction_name(args.direction)
        check_output(input_files(args.input), args.output)
    except (ValueError, OSError) as err:
        parser.error(str(err))
    written = translate_files(_load_for(parser, args, load_cyclegan), args.input, args.direction, args.output)
    print(f"wrote {len(written)} image{'s' * (len(written) != 1)} ({args.direction}) to {args.output} "
          f"(from {args.ckpt_path})")
    return written


def cli_main(args: ArgsType = None, run: bool = True) -> GANLabCLI | list[Path]:
    """Run the CLI; ``args`` (a list of strings) replaces ``sys.argv[1:]``, so tests never read pytest's argv.

    ``sample`` is this lab's own subcommand (``main.py sample --ckpt_path ...``); the rest is LightningCLI.
    """
    argv = list(sys.argv[1:] if args is None else args) if not isinstance(args, dict) else None
    if argv and argv[0] == "sample":
        return sample_main(argv[1:])
    if argv and argv[0] == "translate":
        return translate_main(argv[1:])
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


class StartUp(Callback):
    """Where start-up ends: the training loop's start (after setup, the checkpoint's restore and the data
    loaders).  Until then an error is the user's setting, file or checkpoint, and ``main`` prints it as one line
    and removes the run folder this process made for it."""

    new_run_dir: str | None = None  # the run folder a fresh (not resumed) fit made, set before it is made
    over = False

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        type(self).over = True


#: Errors the lab raises for bad input (its checks name the setting and the fix); Lightning's for bad trainer flags
USER_ERRORS = (ValueError, TypeError, OSError, RuntimeError, ImportError, MisconfigurationException)


def main() -> None:
    """``python main.py``: cli_main, with a start-up error (a bad setting, file or checkpoint) printed as one
    ``error:`` line (exit code 1) and the empty run folder it left removed; a failure once training has begun,
    or any error with ``GANLAB_TRACEBACK=1``, keeps its traceback.  Tests call cli_main, which raises."""
    try:
        cli_main()
    except USER_ERRORS as err:
        if StartUp.over or os.environ.get("GANLAB_TRACEBACK"):
            raise
        _remove_unused_run_folder(StartUp.new_run_dir)
        sys.exit(f"error: {_user_message(err)}\n(the full traceback: GANLAB_TRACEBACK=1 python main.py ...)")


def _user_message(err: BaseException) -> str:
    """The lab's own message: jsonargparse wraps an error raised in a constructor in its own (whose text dumps the
    whole config), so unwrap to the cause."""
    while err.__cause__ is not None and f"{os.sep}jsonargparse{os.sep}" in _raised_in(err):
        err = err.__cause__
    ours = _raised_in(err).startswith(str(Path(__file__).resolve().parent)) and "site-packages" not in _raised_in(err)
    return f"{err}" if ours else f"{type(err).__name__}: {err}"  # the lab's messages name the setting themselves


def _raised_in(err: BaseException) -> str:
    """The file of the innermost frame of ``err``'s traceback ('' without one)."""
    frame = err.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    return frame.tb_frame.f_code.co_filename if frame is not None else ""


def _remove_unused_run_folder(run_dir: str | None) -> None:
    """Remove the run folder a failed start-up made (a config.yaml, W&B's first files), never one holding a
    checkpoint, and its ``runs/<name>`` parent when that is left empty; rank 0 only."""
    if run_dir is None or os.environ.get("RANK", "0") != "0" or not Path(run_dir).is_dir():
        return
    if any(Path(run_dir).rglob("*.ckpt")):
        return
    shutil.rmtree(run_dir, ignore_errors=True)
    with contextlib.suppress(OSError):
        Path(run_dir).parent.rmdir()  # only when empty


if __name__ == "__main__":
    main()
