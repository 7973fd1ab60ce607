"""Checkpoints that survive interruptions: atomic writes, an exact last.ckpt, a clean stop on Ctrl-C/SIGTERM."""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes ``<name>.tmp`` beside the target, fsyncs it, then renames it over the target.

    A rename within one folder is atomic, so a process killed mid-write (kill -9, power loss) leaves the
    previous checkpoint intact and never a truncated one.  Lightning's own writer stages the file in the
    system's temporary folder, and moving it from there into a run folder on another file system is a copy,
    which a kill can cut short.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException as err:
            tmp.unlink(missing_ok=True)  # never leave a partial file beside the checkpoints
            full = _disk_full_error(err)
            if full is not None:
                raise OSError(full.errno, f"no space left on the disk of {target.parent} while writing "
                                         f"{target.name}; the previous checkpoint there is intact. Free some space "
                                         "(or set checkpoint.dirpath / --runs_dir to another disk) and resume with "
                                         "--ckpt_path last.") from err
            raise


def _disk_full_error(err: BaseException | None) -> OSError | None:
    """The "disk full" (or quota) OSError in an exception's chain: torch's zip writer may wrap it."""
    while err is not None:
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            return err
        err = err.__cause__ or err.__context__
    return None


class LastCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, with one ``last.ckpt`` per run that always holds the newest state and resumes
    exactly.

    * ``last.ckpt`` is written at the batch where training stops (``max_steps``, a requested stop), and any
      checkpoint taken at an epoch's end (``max_epochs``, ``every_n_epochs``) is read back as "epoch
      finished" (:func:`resume_after_finished_epoch`), so every resume continues exactly.
    * ``last.ckpt`` is overwritten, never versioned: Lightning writes ``last-v1.ckpt`` beside an existing
      ``last.ckpt`` when the callback's settings changed on resume, and ``--ckpt_path last`` would then pick
      the stale one.
    * ``fast_dev_run`` writes no checkpoint at all (Lightning's own end-of-training save ignores it), and the
      end of every other run saves its newest state (Lightning's only when nothing was saved all run).
    * A run that can write no checkpoint (``save_last`` off, no periodic save within ``max_steps``) says so
      at start-up.
    """

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        if not trainer.fast_dev_run:
            warning = self._no_checkpoint_warning(trainer)
            if warning:
                rank_zero_warn(warning)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        last_batch = trainer.should_stop or 0 <= trainer.max_steps <= trainer.global_step
        if self.save_last and last_batch and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(trainer, pl_module, checkpoint)
        fit_loop = checkpoint.get("loops", {}).get("fit_loop")
        if fit_loop is not None:
            resume_after_finished_epoch(fit_loop)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning saves here only when no checkpoint was written all run (and even under fast_dev_run); a stop
        # decided after the last batch (by an epoch-end hook) must still leave the newest state in last.ckpt.
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_last_checkpoint(self, trainer: L.Trainer, monitor_candidates: dict[str, Any]) -> None:
        versioning, self._enable_version_counter = self._enable_version_counter, False
        try:  # overwrite last.ckpt: one file per run, always the newest state
            super()._save_last_checkpoint(trainer, monitor_candidates)
        finally:
            self._enable_version_counter = versioning


    def _no_checkpoint_warning(self, trainer: L.Trainer) -> str | None:
        """Why this run will end without any checkpoint, or None when one will be written."""
        if self.save_last:
            return None
        reason = None
        if self.save_top_k == 0:
            reason = "--checkpoint.save_top_k 0 turns the periodic saves off"
        elif self._train_time_interval is None and not self._periodic_save_in_reach(trainer):
            reason = (f"--checkpoint.every_n_train_steps {self._every_n_train_steps or 0} and --checkpoint."
                      f"every_n_epochs {self._every_n_epochs or 0} save nothing before --trainer.max_steps "
                      f"{trainer.max_steps} / --trainer.max_epochs {trainer.max_epochs}")
        if reason is None:
            return None
        return (f"This run will write no checkpoint: --checkpoint.save_last is false and {reason}. Set "
                "--checkpoint.save_last true (or a reachable --checkpoint.every_n_train_steps) to be able to resume.")

    def _periodic_save_in_reach(self, trainer: L.Trainer) -> bool:
        every_steps, every_epochs = self._every_n_train_steps, self._every_n_epochs
        next_step_save = (trainer.global_step // every_steps + 1) * every_steps if every_steps >= 1 else None
        max_epochs = trainer.max_epochs if trainer.max_epochs is not None else -1
        return bool((next_step_save is not None and (trainer.max_steps < 0 or next_step_save <= trainer.max_steps))
                    or (every_epochs >= 1 and (max_epochs < 0 or every_epochs <= max_epochs)))

def resume_after_finished_epoch(fit_loop: dict[str, Any]) -> None:
    """Rewrite a fit loop's saved progress taken at the end of an epoch as "epoch finished, next one not begun".

    Lightning saves at an epoch's end in three places: after its last batch (``on_train_batch_end``), in
    ``on_train_epoch_end`` and in ``on_train_end``; each leaves the progress counters half-advanced.  When
    training is bounded by ``max_steps`` (every config here), Lightning resumes such a state as an unfinished
    epoch: it trains one batch of the next epoch and skips the rest (the batch counter still says the epoch's
    batches were all used), or it skips the next epoch's ``on_train_epoch_start`` and miscounts epochs.  With
    the counters of a finished epoch, the resumed run starts the next epoch at its first batch, exactly as an
    uninterrupted run does.  Mid-epoch states are left alone.
    """
    epoch, batch = fit_loop["epoch_progress"], fit_loop["epoch_loop.batch_progress"]
    cur = epoch["current"]
    after_last_batch = (batch["is_last_batch"] and cur["processed"] == cur["started"] - 1
                        and batch["current"]["completed"] == batch["current"]["processed"] - 1)
    after_epoch_end = batch["is_last_batch"] and cur["ready"] == cur["started"] == cur["processed"]
    if not (after_last_batch or after_epoch_end):
        return
    if after_last_batch:  # what the end of the last batch and of the epoch would have counted
        batch["total"]["completed"] += 1
        fit_loop["epoch_loop.state_dict"]["_batches_that_stepped"] += 1
        for part in ("total", "current"):
            epoch[part]["processed"] += 1
    for part in ("total", "current"):
        epoch[part]["completed"] = epoch[part]["processed"]
    # the next epoch's counters start from zero, as Lightning's reset at the start of an epoch leaves them
    batch["current"] = dict.fromkeys(batch["current"], 0)
    batch["is_last_batch"] = False
    for key in ("epoch_loop.scheduler_progress", "epoch_loop.automatic_optimization.optim_progress"):
        _zero_current(fit_loop.get(key, {}))


def _zero_current(progress: dict[str, Any]) -> None:
    """Set every ``current`` counter in a nested progress dict to zero (``total`` counters are kept)."""
    for key, value in progress.items():
        if key == "current":
            progress[key] = dict.fromkeys(value, 0)
        elif isinstance(value, dict):
            _zero_current(value)


class GracefulStop(Callback):
    """On Ctrl-C or SIGTERM: finish the current step, save ``last.ckpt`` there, and end ``fit`` normally.

    It asks the trainer to stop at the end of the current batch; :class:`LastCheckpoint` (which runs after
    every other callback) then writes ``last.ckpt`` at that batch boundary, so resuming continues exactly,
    mid-epoch included.  A second Ctrl-C aborts at once.  In a multi-process run a signal on any rank stops
    all ranks at the same step: the signal handlers only set a flag, and the ranks agree on stopping in
    ``on_train_batch_end``, where every rank makes the same collective call.
    """

    def __init__(self) -> None:
        self.reason: str | None = None
        self._previous_handler: Any = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.reason = None
        replace_lightning_sigterm_handler(trainer, self._on_sigterm)
        try:
            self._previous_handler = signal.signal(signal.SIGINT, self._on_sigint)
        except ValueError:  # not the main thread (e.g. a notebook worker): keep Python's default
            self._previous_handler = None

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.reason is not None:
            raise KeyboardInterrupt
        self.reason = "Ctrl-C"
        print("\nCtrl-C: stopping after this step and saving a checkpoint (Ctrl-C again aborts at once)", flush=True)

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self.reason = self.reason or "SIGTERM"

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        stop = self.reason is not None
        if trainer.world_size > 1:
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if stop and not trainer.should_stop:
            trainer.should_stop = True
            self.reason = self.reason or "a signal on another rank"

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.reason is not None:
            ckpt = trainer.checkpoint_callback
            where = getattr(ckpt, "last_model_path", "") or "the run's checkpoints/ folder"
            rank_zero_info(f"Stopped by {self.reason} at generator step {getattr(pl_module, 'g_steps', '?')}; "
                           f"checkpoint: {where} (resume with --ckpt_path last)")

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore_sigint()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._restore_sigint()

    def _restore_sigint(self) -> None:
        if self._previous_handler is not None:
            signal.signal(signal.SIGINT, self._previous_handler)
            self._previous_handler = None


def replace_lightning_sigterm_handler(trainer: L.Trainer, handler: Callable[[int, Any], None]) -> None:
    """Make the SIGTERM handler that Lightning installs at the start of ``fit`` call ``handler`` instead.

    Lightning's own (``_SignalConnector._sigterm_notifier_fn``, a private API of Lightning 2.x) runs a
    ``dist.broadcast`` inside the signal handler, i.e. at whatever point the signal interrupts: a rank
    signalled while the others sit in a gradient all-reduce waits forever.  It also forwards the signal to
    the launched processes and makes the loops raise ``SIGTERMException`` without a checkpoint.  Only its
    SIGTERM notifier is replaced; the rest of its signal handling (SLURM requeue, restoring the previous
    handlers after ``fit``) stays.  Call before ``fit`` registers the handlers (``on_fit_start`` is).
    """
    connector = getattr(trainer, "_signal_connector", None)
    if not callable(getattr(connector, "_sigterm_notifier_fn", None)):
        raise RuntimeError(
            f"lightning {L.__version__} no longer has Trainer._signal_connector._sigterm_notifier_fn, which "
            "callbacks.checkpointing.GracefulStop replaces so that SIGTERM only sets a flag (the ranks of a "
            "multi-process run then agree on stopping). Install a Lightning version that has it (2.6 does), or "
            "adapt callbacks.checkpointing.replace_lightning_sigterm_handler to the new signal handling.")
    connector._sigterm_notifier_fn = handler
