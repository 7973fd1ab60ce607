"""What a callback needs from the module it observes, as ``typing.Protocol``s checked at start-up.

A callback that cannot apply to a module (a grid from fixed noise on a model that takes no noise, a critic
contour on a model without a critic) says so when ``fit`` starts, naming what is missing, instead of failing
mid-run.  Any module with these attributes qualifies: the lab's own, or yours.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn


@runtime_checkable
class Observable(Protocol):
    """Every module a GeneratorStepCallback watches: a generator-step counter and a way to log numbers."""

    g_steps: int

    def log_metrics(self, values: dict[str, float]) -> dict[str, float]: ...


@runtime_checkable
class NoiseSampler(Observable, Protocol):
    """A generator driven by noise: ``sample(n)`` or ``sample(z=...)`` gives samples of ``data_shape``."""

    latent_dim: int
    data_shape: tuple[int, ...]

    def sample(self, n: int | None = None, z: Tensor | None = None, use_ema: bool = True) -> Tensor: ...


@runtime_checkable
class CriticSampler(NoiseSampler, Protocol):
    """A noise-driven generator and a critic scoring samples (the toy plot draws its contour)."""

    discriminator: nn.Module


@runtime_checkable
class ConditionalSampler(NoiseSampler, Protocol):
    """A class-conditional generator: ``sample(z=..., labels=...)`` draws each sample of its asked class."""

    num_classes: int

    def sample(self, n: int | None = None, z: Tensor | None = None, use_ema: bool = True,
               labels: Tensor | None = None) -> Tensor: ...


def conditional(module: Any) -> bool:
    """Whether a module draws samples of chosen classes (callbacks then show and judge each class)."""
    return getattr(module, "num_classes", None) is not None
class Reconstructor(Observable, Protocol):
    """A model that maps real samples back to data space: ``reconstruct(x)`` (BiGAN's G(E(x)), BEGAN's
    autoencoder discriminator D(x))."""

    data_shape: tuple[int, ...]

    def reconstruct(self, x: Tensor) -> Tensor: ...
class StyleSampler(NoiseSampler, Protocol):
    """A style-based generator: ``num_ws`` styles, ``sample(..., truncation_psi=...)`` and ``style_mix(...)``."""

    # (one line above: callbacks quote it in their start-up error) truncation_psi pulls styles towards the average
    # one; style_mix(z_coarse, z_fine, crossover) styles the first crossover layers by one latent, the rest by another

    num_ws: int

    def style_mix(self, z_coarse: Tensor, z_fine: Tensor, crossover: int) -> Tensor: ...


def missing_members(module: Any, protocol: type) -> list[str]:
    """The attributes ``protocol`` asks for that ``module`` lacks."""
    names = [n for klass in protocol.__mro__ if klass not in (object, Protocol, Any)
             for n in getattr(klass, "__annotations__", {})]
    names += [n for klass in protocol.__mro__ if getattr(klass, "_is_protocol", False)
              for n, v in vars(klass).items() if callable(v) and not n.startswith("_")]
    return sorted({n for n in names if not hasattr(module, n)})
