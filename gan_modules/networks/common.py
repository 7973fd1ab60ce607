"""Small helpers shared by the networks: normalisation choice, activations, spectral norm, init."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from torch import nn
from torch.nn.utils.parametrize import is_parametrized

Norm = Literal["batch", "layer", "instance", "none"]
Activation = Literal["relu", "leaky_relu", "elu", "silu", "tanh"]


def numel(shape: Sequence[int]) -> int:
    """Number of values in one sample of this shape."""
    return math.prod(shape)


def make_activation(name: Activation) -> nn.Module:
    """The activation module for a config name; leaky ReLU uses DCGAN's slope 0.2."""
    layers = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.2), "elu": nn.ELU, "silu": nn.SiLU,
              "tanh": nn.Tanh}
    if name not in layers:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(layers)}")
    return layers[name]()


def norm2d(kind: Norm, channels: int) -> nn.Module:
    """Normalisation for (N, C, H, W) features.

    ``layer`` normalises each sample over (C, H, W) (GroupNorm with one group), the choice of the WGAN-GP
    paper for critics: unlike batch norm it does not mix samples, which a per-sample gradient penalty needs.
    """
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; choose one of batch, layer, instance, none")


def norm1d(kind: Norm, features: int) -> nn.Module:
    """Normalisation for (N, F) features; ``instance`` has no meaning there."""
    if kind == "batch":
        return nn.BatchNorm1d(features)
    if kind == "layer":
        return nn.LayerNorm(features)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm {kind!r} is not available for fully connected layers; choose batch, layer or none")


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Put torch's spectral-norm parametrisation on every linear and convolutional layer (Miyato et al. 2018), and
    on class embeddings (a projection discriminator's, Miyato & Koyama 2018).

    The layers inside a module marked ``spectral_norm_exempt`` (a class-conditional norm's per-class scales and
    shifts) are left alone: they are gains, not weight matrices (SAGAN and BigGAN do not normalise them), and a
    shift table starts at zero, whose spectral norm is 0: dividing by it gives NaN at the first step."""
    exempt = {id(m) for owner in module.modules() if getattr(owner, "spectral_norm_exempt", False)
              for m in owner.modules()}
    for layer in list(module.modules()):
        if (isinstance(layer, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Embedding))
                and not is_parametrized(layer) and id(layer) not in exempt):
            nn.utils.parametrizations.spectral_norm(layer)
    return module


def has_batch_norm(module: nn.Module) -> bool:
    """Whether any layer normalises across the batch (which breaks per-sample gradient penalties)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def dcgan_init_(module: nn.Module) -> None:
    """DCGAN's initialisation (Radford et al. 2016): conv weights N(0, 0.02), norm scales N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
