"""Checkpoints that survive interruptions: atomic writes, an exact last.ckpt, a clean stop on Ctrl-C/SIGTERM."""

from __future__ import annotations

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
from lightning.pytorch.utilities import rank_zero_info


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
        with open(tmp, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)


class LastCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, plus ``last.ckpt`` written at the batch where training stops.

    Lightning otherwise writes the final ``last.ckpt`` in ``on_train_end``, after its loops have closed the
    epoch; resuming from that state at an epoch boundary runs one batch and skips the rest of the next
    epoch (measured: tests/test_resume.py).  A checkpoint taken in ``on_train_batch_end`` of the last
    batch (``max_steps`` reached, a stop requested, ``max_time`` up) restores exactly, like the periodic
    ``every_n_train_steps`` ones; the later end-of-epoch and end-of-training saves then see that this step
    is saved and skip.
    """

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        last_batch = trainer.should_stop or 0 <= trainer.max_steps <= trainer.global_step
        if self.save_last and last_batch and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


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
