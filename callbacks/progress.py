"""A progress bar that redraws by time, not by batch."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar


class ProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar, redrawn at most every ``interval`` seconds.

    The stock bar redraws after every batch (``refresh_rate=1``): on the 2-D toys that costs about a third of
    the training speed, while a fixed ``refresh_rate`` large enough for them leaves a DCGAN on a CPU without
    a redraw for minutes.  A time interval suits both.
    """

    def __init__(self, interval: float = 0.5, leave: bool = False) -> None:
        super().__init__(refresh_rate=1, leave=leave)
        self.interval = interval
        self._last_draw = 0.0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        now = time.monotonic()
        total = self.train_progress_bar.total
        if now - self._last_draw < self.interval and (total is None or batch_idx + 1 < total):
            return
        self._last_draw = now
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
