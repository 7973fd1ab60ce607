"""Types for what a YAML config injects into a GAN module, and building them outside the CLI.

Defaults are written as ``{"class_path": ..., "init_args": ...}`` specs: the CLI dumps them into the saved
config as they are, so a run's ``config.yaml`` shows the paper's settings, and :func:`build` turns the same
spec into an object when a module is created from Python.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from jsonargparse import ArgumentParser
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

#: ``(params) -> optimizer``: Lightning's OptimizerCallable, e.g. ``torch.optim.Adam`` with init_args.
OptimizerCallable = Callable[[Iterable], Optimizer]
#: ``(optimizer) -> scheduler``: Lightning's LRSchedulerCallable, e.g. ``gan_modules.schedules.LinearDecay``.
LRSchedulerCallable = Callable[[Optimizer], LRScheduler]
#: ``(latent_dim, data_shape) -> generator``: a network class whose remaining arguments come from the config.
GeneratorFactory = Callable[[int, Sequence[int]], nn.Module]
#: ``(data_shape) -> discriminator``.
DiscriminatorFactory = Callable[[Sequence[int]], nn.Module]


def spec(class_path: str, **init_args: Any) -> dict[str, Any]:
    """A class_path/init_args spec, as a YAML config would write it."""
    return {"class_path": class_path, "init_args": init_args} if init_args else {"class_path": class_path}


def build(value: Any, type_: Any) -> Any:
    """Instantiate ``value`` if it is still a class_path spec (module made from Python); else return it."""
    if not (isinstance(value, dict) and "class_path" in value):
        return value
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--value", type=type_)
    return parser.instantiate(parser.parse_object({"value": value})).value
