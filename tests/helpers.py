"""Callbacks used only by tests, importable by class_path in configs (tests/ is on sys.path)."""

from __future__ import annotations

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
    """Fills the discriminator's first weight with NaN at a given generator step, to test the NaN stop."""

    def __init__(self, at_g_step: int = 3) -> None:
        self.at_g_step = at_g_step

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if pl_module.g_steps == self.at_g_step:
            with torch.no_grad():
                next(pl_module.discriminator.parameters()).fill_(float("nan"))


class RecordMetric(Callback):
    """Records ``trainer.callback_metrics[key]`` after every generator step at which it changed."""

    def __init__(self, key: str = "val/fid") -> None:
        self.key, self.values = key, {}

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        value = trainer.callback_metrics.get(self.key)
        if value is not None and float(value) not in self.values.values():
            self.values[pl_module.g_steps] = float(value)
