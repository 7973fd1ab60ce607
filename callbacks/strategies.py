"""Data-parallel training for GANs: gradients are averaged per optimizer step instead of by a DDP wrapper.

Lightning's DDP wraps the whole LightningModule in one ``DistributedDataParallel``.  A GAN step breaks that
wrapper's assumptions: the discriminator step leaves the generator without gradients and the generator
step the discriminator, one training step runs two backward passes, and the gradient penalty adds a
double backward through the critic.  DDP then stops with "parameters that were not used in producing
loss" (Lightning issues 20328, 20685, 20866; pytorch 47562), and ``find_unused_parameters=True`` does not
help a step with two backward passes.

:class:`GANDDPStrategy` keeps Lightning's process launching, distributed sampler-free data sharding and
collectives, but wraps nothing.  At each optimizer step, once backward has run (inside Lightning's closure
under automatic optimization, before it under manual optimization) and before fp16's GradScaler unscales
and steps, it averages the gradients of *that optimizer's* parameters across ranks in one flat all-reduce;
after the step it broadcasts the module's buffers (batch-norm statistics, spectral-norm vectors) from rank
0, as DDP does at every forward.  This is what stylegan2-ada-pytorch does by hand.  Parameters start
identical (broadcast from rank 0 at set-up), receive identical averaged gradients and so stay identical,
which the tests check with two CPU processes.

Use it with ``trainer.strategy: gan_ddp`` (registered here; main.py imports this module) and
``trainer.devices: N``.
The effective batch size is ``data.batch_size * N``: every rank reads its own shard of each batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import torch
import torch.distributed as dist
from jsonargparse import Namespace
from lightning.pytorch.strategies import DDPStrategy, StrategyRegistry
from torch import nn
from torch.optim import Optimizer

from gan_modules.base import AdversarialModule

from .runs import import_class


class GANDDPStrategy(DDPStrategy):
    """DDP without the wrapper: per-optimizer gradient averaging, buffers broadcast from rank 0."""

    def configure_ddp(self) -> None:
        assert isinstance(self.model, L.LightningModule)
        self.broadcast_module(self.model)  # every rank starts from rank 0's weights, as DDP's wrapper ensures

    def optimizer_step(self, optimizer: Optimizer, closure: Callable[[], Any],
                       model: L.LightningModule | nn.Module | None = None, **kwargs: Any) -> Any:
        if self.world_size > 1:
            closure = _averaging_closure(closure, optimizer, self.world_size)
        output = super().optimizer_step(optimizer, closure, model, **kwargs)
        if self.world_size > 1:
            self.broadcast_buffers(self.model)
        return output

    @staticmethod
    def broadcast_module(module: nn.Module) -> None:
        with torch.no_grad():
            for tensor in [*module.parameters(), *module.buffers()]:
                dist.broadcast(tensor.data, src=0)

    @staticmethod
    def broadcast_buffers(module: nn.Module) -> None:
        buffers = [b for b in module.buffers() if b.numel() > 0]
        if buffers:
            flat = torch.cat([b.detach().reshape(-1).to(torch.float64) for b in buffers])
            dist.broadcast(flat, src=0)
            offset = 0
            for b in buffers:
                b.copy_(flat[offset : offset + b.numel()].view_as(b))
                offset += b.numel()


def _averaging_closure(closure: Callable[[], Any], optimizer: Optimizer, world_size: int) -> Callable[[], Any]:
    """The closure followed by the gradient average.

    The precision plugin runs the closure inside ``optimizer_step`` and only then unscales (fp16's GradScaler),
    calls ``on_before_optimizer_step``/clipping and steps.  Under automatic optimization the closure is what
    runs ``training_step`` and ``backward``, so averaging any earlier would average the previous step's
    gradients; under manual optimization backward already ran and the closure does nothing.  Averaging right
    after it covers both, and every rank still sees the same (averaged) gradients when deciding to skip an
    fp16 step.
    """

    def run_then_average() -> Any:
        output = closure()
        average_gradients(optimizer, world_size)
        return output

    return run_then_average


def average_gradients(optimizer: Optimizer, world_size: int) -> None:
    """All-reduce (mean) the gradients of the optimizer's parameters in one flat buffer per dtype."""
    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for g in grads:
        by_dtype.setdefault(g.dtype, []).append(g)
    for same in by_dtype.values():
        flat = torch.cat([g.reshape(-1) for g in same])
        dist.all_reduce(flat)
        flat /= world_size
        offset = 0
        for g in same:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()


StrategyRegistry.register("gan_ddp", GANDDPStrategy, description="DDP for GANs: per-optimizer gradient averaging",
                          override=True)


def choose_strategy(cfg: Any) -> None:
    """Data parallelism that works for GANs: ``gan_ddp`` when the config names no strategy but asks for several
    processes (Lightning would pick ``ddp``), and a start-up error for a DDP wrapper that a GAN step breaks."""
    trainer = cfg.trainer
    if trainer.strategy == "auto":
        if process_count(trainer) > 1:
            trainer.strategy = "gan_ddp"
        return
    strategy, find_unused = strategy_class(trainer.strategy)
    if (strategy is not None and issubclass(strategy, DDPStrategy) and not issubclass(strategy, GANDDPStrategy)
            and not find_unused and issubclass(import_class(cfg.model.class_path) or object, AdversarialModule)):
        name = trainer.strategy if isinstance(trainer.strategy, str) else strategy.__name__
        raise ValueError(
            f"--trainer.strategy {name} cannot train a GAN: DDP's wrapper stops with \"parameters that were not "
            "used in producing the loss\" because the discriminator step leaves the generator without gradients. "
            "Use --trainer.strategy gan_ddp (what the lab picks when no strategy is named), or "
            "ddp_find_unused_parameters_true (slower).")


def process_count(trainer: Any) -> int:
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


def strategy_class(strategy: Any) -> tuple[type | None, bool]:
    """The class a strategy setting names (registry name, class_path or instance) and its find_unused_parameters."""
    if isinstance(strategy, str):
        if strategy not in StrategyRegistry:
            return None, False
        entry = StrategyRegistry[strategy]
        return entry["strategy"], bool(entry["init_params"].get("find_unused_parameters"))
    if isinstance(strategy, Namespace):
        return import_class(strategy.class_path), bool((strategy.get("init_args") or {}).get("find_unused_parameters"))
    return type(strategy), bool(getattr(strategy, "_ddp_kwargs", {}).get("find_unused_parameters"))

