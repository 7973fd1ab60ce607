"""What every observing callback shares: a schedule in generator steps, real samples, logging, and the
guarantee that observing never changes training."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.seed import isolate_rng
from torch import Tensor, nn

from gan_modules.base import samples_of

from .protocols import Observable, missing_members


@contextmanager
def observing(module: nn.Module) -> Iterator[None]:
    """Eval mode for every submodule and an isolated RNG, both restored on exit.

    In train mode a forward pass steps spectral norm's power iteration and updates batch-norm statistics, and
    any draw from the global RNG (noise for samples, KID's subsets, a sampler's seed) shifts the noise every
    later training step sees; either would make a run with a callback train differently from one without.
    ``isolate_rng`` restores the torch, numpy and Python states, and every CUDA device's once CUDA is in use.
    """
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        with isolate_rng(include_cuda=torch.cuda.is_initialized()):
            yield
    finally:
        for m, training in modes:
            m.training = training  # the flag itself: some modules override train() (torchmetrics' Inception)



class GeneratorStepCallback(Callback, ABC):
    """Calls :meth:`run` every ``every_n_steps`` generator steps, and once more at the end of training.

    Subclasses implement ``run(trainer, pl_module)``.  Every rank calls it (so collective metrics stay in
    step); writing files and images is left to rank 0 (see :meth:`output_path`).  ``run`` is always called
    inside :func:`observing`, so training continues bit for bit as if the callback were absent.
    """

    #: what the observed module must offer (a Protocol from callbacks.protocols), checked at start-up
    requires: type = Observable

    def __init__(self, every_n_steps: int, at_end: bool = True) -> None:
        if every_n_steps < 1:
            raise ValueError(f"{type(self).__name__}.every_n_steps={every_n_steps} must be >= 1")
        self.every_n_steps, self.at_end = every_n_steps, at_end
        self._last_step = -1

    @abstractmethod
    def run(self, trainer: L.Trainer, pl_module: Any) -> None:
        """Observe the model at the current generator step."""

    def setup(self, trainer: L.Trainer, pl_module: Any, stage: str) -> None:
        if not isinstance(pl_module, self.requires):
            raise TypeError(f"{type(self).__name__} cannot observe {type(pl_module).__name__}: it needs "
                            f"{_lower_first(self.requires.__doc__.strip().rstrip('.'))} (missing: "
                            f"{', '.join(missing_members(pl_module, self.requires))}). Remove it from "
                            "trainer.callbacks for this model.")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        step = pl_module.g_steps
        if step > 0 and step % self.every_n_steps == 0 and step != self._last_step:
            self._last_step = step
            self.observe(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        if self.at_end and pl_module.g_steps != self._last_step:
            self._last_step = pl_module.g_steps
            self.observe(trainer, pl_module)

    def observe(self, trainer: L.Trainer, pl_module: Any) -> None:
        """:meth:`run` in eval mode with an isolated RNG (see :func:`observing`)."""
        with observing(pl_module):
            self.run(trainer, pl_module)

    @property
    def state_key(self) -> str:
        # unique per settings, so two such callbacks (a grid every 100 and one every 1000 steps) can coexist
        return self._generate_state_key(every_n_steps=self.every_n_steps)

    @staticmethod
    def output_path(trainer: L.Trainer, folder: str, step: int, suffix: str = ".png") -> Path:
        """``<run folder>/<folder>/step_0001000.png``, its folder created."""
        path = Path(trainer.default_root_dir, folder, f"step_{step:07d}{suffix}")
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def state_dict(self) -> dict[str, Any]:
        return {"last_step": self._last_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._last_step = state_dict.get("last_step", -1)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def real_samples(trainer: L.Trainer, n: int, seed: int = 0) -> Tensor:
    """``n`` real samples in data space from the run's datamodule, the same ones every call."""
    dm = trainer.datamodule
    if hasattr(dm, "real_samples"):
        return dm.real_samples(n, seed)
    batches, count = [], 0  # any other datamodule: the first batches of its training loader
    for batch in dm.train_dataloader():
        x = samples_of(batch)
        batches.append(x)
        count += len(x)
        if count >= n:
            break
    return torch.cat(batches)[:n]
