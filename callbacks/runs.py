"""Run folders and checkpoint reading: run ids and names, the newest ``last.ckpt``, and the checks that a
checkpoint is readable and belongs to the run it is resumed into (all before anything is written)."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import string
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from jsonargparse import Namespace
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback

from gan_modules.base import CHECKPOINT_KEY as GAN_STATE_KEY

RUN_INFO_KEY = "gan_lab_run"
RUN_ID_ENV = "GAN_LAB_RUN_ID"
_HANDOFF_ENV = "_GAN_LAB_LAUNCHER_RUN_ID"
#: Model settings that decide the networks' parameters: a checkpoint that differs in one comes from another run.
NETWORK_SETTINGS = ("generator", "discriminator", "latent_dim", "spectral_norm", "pack", "generator_spectral_norm",
                    "encoder")


class RunInfo(Callback):
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


def run_name(cfg: Any) -> str:
    if cfg.get("name"):
        return cfg.name
    configs = [c for c in cfg.get("config") or [] if Path(str(c)).parent.name != "debug"]
    if configs:  # the experiment's config, not a debug preset composed after it
        return Path(str(configs[0])).stem
    return "run"


def shared_run_id() -> str:
    """This process's choice of a new run id; in a multi-process run every rank adopts rank 0's at set-up.

    ``GAN_LAB_RUN_ID`` names the run when the user exports it.  Otherwise the id is new, except in the rank
    processes Lightning's launcher starts from this one: they inherit it through ``_HANDOFF_ENV`` and so never
    make a folder of their own.  Processes that an outside launcher starts on their own (torchrun, SLURM's
    srun, the other nodes of a multi-node run) cannot agree before a process group exists; ``RunInfo.setup``
    gives them rank 0's id once it does.
    """
    if os.environ.get(RUN_ID_ENV):
        return os.environ[RUN_ID_ENV]
    inherited = os.environ.get(_HANDOFF_ENV)
    run_id = inherited if inherited and os.environ.get("LOCAL_RANK", "0") != "0" else new_run_id()
    os.environ[_HANDOFF_ENV] = run_id  # read only by rank processes (LOCAL_RANK > 0), never by a later run here
    return run_id


def new_run_id() -> str:
    """A sortable, readable id: date-time plus 4 random characters (valid as a W&B run id)."""
    alphabet = string.ascii_lowercase + string.digits
    suffix = "".join(alphabet[i] for i in torch.randint(len(alphabet), (4,), generator=torch.Generator().manual_seed(
        time.time_ns() % 2**63)).tolist())
    return time.strftime("%Y%m%d-%H%M%S-") + suffix


def newest_last_checkpoint(runs: Path) -> Path | None:
    """The last.ckpt written most recently among a run name's folders (a resumed older run counts as newest)."""
    found = list(runs.glob("*/checkpoints/last.ckpt"))
    return max(found, key=lambda p: (p.stat().st_mtime_ns, p.parent.parent.name)) if found else None


def check_checkpoint_file(path: str) -> None:
    """A clear error, before anything starts, for a checkpoint that is missing, truncated or foreign."""
    if not path.strip():  # e.g. --ckpt_path "$CKPT" with CKPT unset
        raise FileNotFoundError("--ckpt_path is empty: give a checkpoint file, or `last` for the newest run of the "
                                "config (fit without --ckpt_path starts a new run).")
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


def run_info_from_checkpoint(path: str) -> tuple[str | None, str | None]:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    info = ckpt.get("callbacks", {}).get(RUN_INFO_KEY)
    if info:
        return info["run_id"], info["run_dir"]
    return None, None


def checkpoint_run_dir(ckpt: dict[str, Any]) -> str | None:
    return (ckpt.get("callbacks", {}).get(RUN_INFO_KEY) or {}).get("run_dir")


def check_checkpoint_belongs(ckpt_path: str, user_model: Any) -> None:
    """Refuse a checkpoint of another run before its run folder is touched (config.yaml, W&B run)."""
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    differences = model_differences(ckpt.get("hyper_parameters") or {}, plain(user_model) or {})
    if differences:
        raise ValueError(foreign_checkpoint_message(ckpt_path, checkpoint_run_dir(ckpt), differences))
    state = ckpt.get(GAN_STATE_KEY)
    if state is not None and "n_critic" not in state:
        raise ValueError(
            f"--ckpt_path {ckpt_path} was written by an earlier version of the lab, which counted optimizer steps "
            "(one batch per critic step); this version counts generator steps (n_critic batches per step), so its "
            "step counters and data position cannot be continued exactly. Its weights still load for sampling "
            "(python main.py sample --ckpt_path ...); to train on, start a new run.")


def check_checkpoint_fits_run(ckpt_path: str, model: LightningModule, cfg: Any) -> None:
    """The networks built from this config against the checkpoint's tensors, and the data against the
    checkpoint's run, before fit writes anything."""
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    run_dir = checkpoint_run_dir(ckpt)
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
        if theirs and import_class(theirs) is not import_class(cfg.data.class_path):
            raise ValueError(foreign_checkpoint_message(
                ckpt_path, run_dir, [f"data: checkpoint's run {theirs}, this config {cfg.data.class_path}"]))


def model_differences(hparams: dict[str, Any], mine: dict[str, Any]) -> list[str]:
    """The module class and network-sizing settings in which a checkpoint differs from this config."""
    theirs, ours = hparams.get("_class_path"), mine.get("class_path")
    if not theirs or not ours:
        return []
    if import_class(theirs) is not import_class(ours):
        return [f"model class: checkpoint {theirs}, this config {ours}"]
    args = mine.get("init_args") or {}
    return [f"model.init_args.{key}: checkpoint {plain(hparams[key])}, this config {plain(args[key])}"
            for key in NETWORK_SETTINGS if key in hparams and key in args and plain(hparams[key]) != plain(args[key])]


def foreign_checkpoint_message(ckpt_path: str, run_dir: str | None, differences: list[str]) -> str:
    where = f"the run {run_dir} (its config: {Path(run_dir, 'config.yaml')})" if run_dir else "another run"
    resume = (f"python main.py fit --config {Path(run_dir, 'config.yaml')} --ckpt_path {ckpt_path}" if run_dir
              else "the config that run was trained with")
    return "\n".join([f"--ckpt_path {ckpt_path} belongs to {where}, not to this config; they differ in:",
                      *(f"  {d}" for d in differences[:6]),
                      "Nothing was written. To resume that run: " + resume,
                      "To train this config from scratch, leave out --ckpt_path (--ckpt_path last resumes its own "
                      "newest run)."])


def resume_changes(cfg: Any, model_before: dict[str, Any], ckpt_path: str) -> list[str]:
    """Warnings for settings that differ between a resumed checkpoint and this run's config (unset ones, such as
    the linked ``data_shape``, are filled in from the checkpoint and are no change)."""
    lines = []
    after = flat(cfg.get("model"))
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


def flat(namespace: Any) -> dict[str, Any]:
    """A config subtree as {dotted key: value}."""
    return dict(namespace.items()) if isinstance(namespace, Namespace) else {}


def logged_step(ckpt_path: str) -> int:
    """The step a checkpoint's last logged row carries: the generator step for GAN modules (what
    callbacks.WandbLogger logs as W&B's ``_step``), otherwise Lightning's logging step."""
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True, mmap=True)  # mmap: no full read
    if "g_steps" in ckpt.get(GAN_STATE_KEY, {}):
        return int(ckpt[GAN_STATE_KEY]["g_steps"])
    loop = ckpt.get("loops", {}).get("fit_loop", {}).get("epoch_loop.state_dict", {})
    return int(loop.get("_batches_that_stepped", ckpt.get("global_step", 0)))


def checkpoint_summary(trainer: Trainer) -> str:
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


def put_logger_in_run_folder(spec: Any, run_dir: str) -> None:
    """A logger whose folder is unset (or the current directory) writes into the run folder."""
    if not hasattr(spec, "class_path"):
        return
    if spec.get("init_args") is None:
        spec.init_args = Namespace()
    params = inspect.signature((import_class(spec.class_path) or object).__init__).parameters
    for key in ("save_dir", "root_dir"):
        if key in params and spec.init_args.get(key) in (None, "", ".", "./"):
            setattr(spec.init_args, key, run_dir)


def plain(value: Any) -> Any:
    """A config value as plain dicts and lists (jsonargparse Namespaces and tuples compare unequal to them)."""
    if isinstance(value, Namespace):
        value = value.as_dict()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def import_class(class_path: str) -> type | None:
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None

