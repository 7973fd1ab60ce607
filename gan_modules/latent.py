"""Walks through latent space: linear and spherical interpolation between noise vectors."""

from __future__ import annotations

import torch
from torch import Tensor


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation between rows of a and b at fractions t (White 2016), linear when parallel."""
    a_n, b_n = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def interpolation_latents(start: Tensor, end: Tensor, steps: int, spherical: bool) -> Tensor:
    """(rows * steps, latent_dim) latents walking from each start row to its end row."""
    t = torch.linspace(0, 1, steps).view(1, steps, 1)
    a, b = start.unsqueeze(1), end.unsqueeze(1)
    z = slerp(a.expand(-1, steps, -1), b.expand(-1, steps, -1), t) if spherical else (1 - t) * a + t * b
    return z.reshape(-1, start.shape[-1])
