"""Callbacks used only by tests, importable by class_path in configs (tests/ is on sys.path)."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback


class SaveRankWeights(Callback):
    """Every rank writes its final state_dict to <run folder>/rank<r>.pt (rank 0 alone writes checkpoints)."""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        state = {k: v.detach().cpu() for k, v in pl_module.state_dict().items()}
        path = Path(trainer.default_root_dir) / f"rank{trainer.global_rank}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"state": state, "g_steps": getattr(pl_module, "g_steps", None), "global_step": trainer.global_step},
                   path)


class PoisonWeights(Callback):
    """Fills the discriminator's first weight with NaN at a given generator step (on one rank, or all when
    ``rank`` is None), to test the NaN stop."""

    def __init__(self, at_g_step: int = 3, rank: int | None = None) -> None:
        self.at_g_step, self.rank = at_g_step, rank

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if pl_module.g_steps == self.at_g_step and self.rank in (None, trainer.global_rank):
            with torch.no_grad():
                next(pl_module.discriminator.parameters()).fill_(float("nan"))


class RecordRNG(Callback):
    """Every rank writes the torch RNG state it had at the start of each batch to <run folder>/rng<r>.pt."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.states: list[torch.Tensor] = []

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self.states.append(torch.get_rng_state())

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        torch.save(torch.stack(self.states), Path(trainer.default_root_dir) / f"rng{trainer.global_rank}.pt")


class NonFiniteSteps(Callback):
    """Makes every loss NaN for the batches that start at generator steps ``first`` to ``last`` (inclusive),
    then puts the weights back: under fp16's GradScaler those steps are skipped, as after an overflow."""

    def __init__(self, first: int = 4, last: int = 5) -> None:
        self.first, self.last, self.batches = first, last, 0
        self._saved: torch.Tensor | None = None

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if self.first <= pl_module.g_steps <= self.last:
            weight = next(pl_module.discriminator.parameters())
            self._saved = weight.detach().clone()
            with torch.no_grad():
                weight.fill_(float("nan"))
            self.batches += 1

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self._saved is not None:
            with torch.no_grad():
                next(pl_module.discriminator.parameters()).copy_(self._saved)
            self._saved = None


class SendSignal(Callback):
    """Sends this process a signal from another thread once, a moment into the batch that starts at a given
    generator step, on the listed ranks: it lands wherever the step is then (often inside a collective), as a
    scheduler's or a user's signal would."""

    def __init__(self, at_g_step: int = 3, ranks: list[int] | None = None, signum: str = "SIGTERM",
                 delay: float = 0.002) -> None:
        self.at_g_step, self.ranks, self.delay = at_g_step, ranks, delay
        self.signum = signal.Signals[signum]
        self.sent = False

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if self.sent or pl_module.g_steps != self.at_g_step:
            return
        self.sent = True
        if self.ranks is None or trainer.global_rank in self.ranks:
            threading.Timer(self.delay, os.kill, (os.getpid(), self.signum)).start()


class RecordMetric(Callback):
    """Records ``trainer.callback_metrics[key]`` after every generator step at which it changed."""

    def __init__(self, key: str = "val/fid") -> None:
        self.key, self.values = key, {}

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        value = trainer.callback_metrics.get(self.key)
        if value is not None and float(value) not in self.values.values():
            self.values[pl_module.g_steps] = float(value)
