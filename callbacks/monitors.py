"""Numbers about training itself: gradient norms, learning rates, throughput, memory, sample diversity."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from gan_modules.base import samples_of

from .base import GeneratorStepCallback, real_samples
from .protocols import NoiseSampler


class CriticMonitor(GeneratorStepCallback):
    """Gradient norms of both networks and both learning rates, every ``every_n_steps`` generator steps.

    The module already logs ``train/gp``, ``train/wasserstein`` (the critic's estimate), ``train/d_real`` and
    ``train/d_fake`` every ``trainer.log_every_n_steps`` generator steps; this adds what only the optimizer
    steps see.  Norms are taken just before the optimizer steps of the generator step that is due to be
    logged (and of the discriminator steps just before it), kept as tensors, and read once when logged, so
    there is no per-step GPU sync.
    """

    def __init__(self, every_n_steps: int = 50) -> None:
        super().__init__(every_n_steps, at_end=False)
        self._norms: dict[str, Tensor] = {}

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: Any, optimizer: torch.optim.Optimizer) -> None:
        if (pl_module.g_steps + 1) % self.every_n_steps != 0:
            return
        g_opt, d_opt = trainer.optimizers[:2]
        name = "generator" if optimizer is g_opt else "discriminator" if optimizer is d_opt else None
        if name is None:
            return
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if grads:
            self._norms[f"train/grad_norm_{name}"] = torch.linalg.vector_norm(
                torch.stack(torch._foreach_norm(grads)))

    def run(self, trainer: L.Trainer, pl_module: Any) -> None:
        values = {k: float(v) for k, v in self._norms.items()}
        for name, opt in zip(("generator", "discriminator"), trainer.optimizers[:2], strict=False):
            values[f"train/lr_{name}"] = opt.param_groups[0]["lr"]
        self._norms.clear()
        pl_module.log_metrics(values)


class Throughput(GeneratorStepCallback):
    """Generator steps and real samples per second, and peak GPU memory, every ``every_n_steps`` G steps."""

    def __init__(self, every_n_steps: int = 100) -> None:
        super().__init__(every_n_steps, at_end=False)
        self._start: tuple[float, int, int] | None = None
        self._samples = 0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        x = samples_of(batch)
        self._samples += len(x)
        if self._start is None:
            self._start = (time.perf_counter(), pl_module.g_steps, self._samples)
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def run(self, trainer: L.Trainer, pl_module: Any) -> None:
        assert self._start is not None
        t0, g0, s0 = self._start
        elapsed = time.perf_counter() - t0
        values = {"perf/g_steps_per_s": (pl_module.g_steps - g0) / elapsed,
                  "perf/samples_per_s": (self._samples - s0) * trainer.world_size / elapsed}
        if pl_module.device.type == "cuda":
            values["perf/gpu_mem_peak_gib"] = torch.cuda.max_memory_allocated(pl_module.device) / 2**30
        self._start = (time.perf_counter(), pl_module.g_steps, self._samples)
        pl_module.log_metrics(values)


def mean_pairwise_distance(x: Tensor) -> float:
    """Average Euclidean distance between the flattened samples (a simple mode-collapse check)."""
    flat = x.detach().float().reshape(len(x), -1)
    n = len(flat)
    return float(torch.cdist(flat, flat).sum() / (n * (n - 1)))


class ModeCollapseWatch(GeneratorStepCallback):
    """Compares the diversity of generated samples with that of real ones and warns when it drops.

    Logs ``val/diversity`` (mean pairwise distance of ``num_samples`` generated samples), the same for real
    data (``val/diversity_real``, computed once) and their ratio; a ratio under ``warn_below`` is a likely
    mode collapse (an absolute threshold such as 0.1 depends on the data's scale; a ratio does not).
    """

    requires = NoiseSampler

    def __init__(self, every_n_steps: int = 500, num_samples: int = 1000, warn_below: float = 0.5) -> None:
        super().__init__(every_n_steps)
        self.num_samples, self.warn_below = num_samples, warn_below
        self._real: float | None = None
        self.history: list[tuple[int, float]] = []

    def run(self, trainer: L.Trainer, pl_module: Any) -> None:
        if self._real is None:
            self._real = mean_pairwise_distance(real_samples(trainer, self.num_samples))
        fake = mean_pairwise_distance(pl_module.sample(self.num_samples))
        ratio = fake / max(self._real, 1e-12)
        self.history.append((pl_module.g_steps, ratio))
        pl_module.log_metrics({"val/diversity": fake, "val/diversity_real": self._real, "val/diversity_ratio": ratio})
        if ratio < self.warn_below:
            rank_zero_warn(f"possible mode collapse at generator step {pl_module.g_steps}: generated samples are "
                           f"{ratio:.2f}x as spread out as real ones (mean pairwise distance {fake:.3g} vs "
                           f"{self._real:.3g}).")
