"""Penalties that keep a discriminator smooth, and weight clipping.

The penalties share one building block, :func:`input_gradient_norms`, which
differentiates the critic's scores with respect to its input and keeps the
graph (double backprop).  Under fp16 mixed precision the mean score is
multiplied by the GradScaler's scale before differentiating and the gradients
divided by it inside the graph, as in PyTorch's AMP notes ("gradient penalty"),
so small gradients do not underflow in half precision; pass that scale as
``scale``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor, nn

#: Added under the square root of a gradient norm: d||g||/dg is 0/0 (NaN) where g = 0.
NORM_EPS = 1e-12


def input_gradient_norms(critic: nn.Module, x: Tensor, scale: Tensor | None = None) -> Tensor:
    """||d critic(x_i) / d x_i||_2 for every sample, shape ``(N,)``, differentiable w.r.t. the critic.

    With ``scale`` (fp16), the *mean* score is scaled, in fp32, as the AMP recipe scales a loss: every score
    then receives the gradient ``scale / N`` (1,024 for 65,536 and 64 samples), large enough to keep small
    gradients from underflowing yet far from fp16's overflow at 65,504, which scaling each score by the
    full scale would hit at once.
    """
    x = x.detach().requires_grad_(True)
    scores = critic(x)
    if scale is None:
        (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
    else:
        factor = scale / scores.numel()
        (grad,) = torch.autograd.grad(scores.float().sum() * factor, x, create_graph=True)
        grad = grad / factor
    return torch.sqrt(grad.flatten(1).float().pow(2).sum(1) + NORM_EPS)


def gradient_penalty(
    critic: nn.Module, real: Tensor, fake: Tensor, target: float = 1.0,
    alpha: Tensor | None = None, scale: Tensor | None = None,
) -> Tensor:
    """E[(||grad D(x_hat)|| - target)^2] at random interpolates x_hat = a x + (1-a) G(z) (Gulrajani et al. 2017)."""
    if alpha is None:
        alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    interpolates = alpha * real.detach() + (1 - alpha) * fake.detach()
    return ((input_gradient_norms(critic, interpolates, scale) - target) ** 2).mean()


def dragan_penalty(
    critic: nn.Module, real: Tensor, perturbation: float = 0.5, scale: Tensor | None = None,
) -> Tensor:
    """E[(||grad D(x_hat)|| - 1)^2] around the real data (Kodali et al. 2017).

    x_hat lies between a real sample and the same sample pushed by ``perturbation * std(real) * U[0, 1)``
    noise, as in the authors' code.
    """
    real = real.detach()
    noise = perturbation * real.std() * torch.rand_like(real)
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    return ((input_gradient_norms(critic, real + alpha * noise, scale) - 1.0) ** 2).mean()


def r1_penalty(critic: nn.Module, real: Tensor, scale: Tensor | None = None) -> Tensor:
    """E[||grad D(x)||^2] on real data (Mescheder et al. 2018); the gamma/2 factor is the caller's weight."""
    return (input_gradient_norms(critic, real, scale) ** 2).mean()


@torch.no_grad()
def clip_weights_(module: nn.Module, bound: float) -> None:
    """Clamp every parameter of ``module`` into [-bound, bound] in place (the original WGAN's Lipschitz bound)."""
    torch._foreach_clamp_min_(params := list(module.parameters()), -bound)
    torch._foreach_clamp_max_(params, bound)


# --------------------------------------------------------------------------- classes for configs
class Penalty(ABC):
    """A regulariser added to the discriminator's loss as ``weight * value``, every ``interval`` D steps.

    With ``interval > 1`` (lazy regularisation, StyleGAN2) the value is multiplied by ``interval`` so the
    penalty's average strength does not change.
    """

    def __init__(self, weight: float, interval: int = 1) -> None:
        if weight < 0:
            raise ValueError(f"{type(self).__name__}: weight={weight} is negative; a penalty weight must be >= 0 "
                             "(use 0, or remove the penalty, to switch it off).")
        if interval < 1:
            raise ValueError(f"{type(self).__name__}: interval={interval} must be >= 1 (1 = every D step).")
        self.weight, self.interval = weight, interval

    @abstractmethod
    def __call__(self, critic: nn.Module, real: Tensor, fake: Tensor, scale: Tensor | None = None) -> Tensor:
        """The unweighted penalty value (a scalar with a graph back to the critic's parameters)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in vars(self).items())})"


class GradientPenalty(Penalty):
    """WGAN-GP's two-sided penalty on interpolates; the paper's weight (lambda) is 10."""

    def __init__(self, weight: float = 10.0, target: float = 1.0, interval: int = 1) -> None:
        super().__init__(weight, interval)
        self.target = target  # the gradient norm the critic is pushed towards

    def __call__(self, critic: nn.Module, real: Tensor, fake: Tensor, scale: Tensor | None = None) -> Tensor:
        return gradient_penalty(critic, real, fake, self.target, scale=scale)


class DRAGANPenalty(Penalty):
    """DRAGAN's penalty on perturbed real data; the paper uses weight 10 and perturbation 0.5."""

    def __init__(self, weight: float = 10.0, perturbation: float = 0.5, interval: int = 1) -> None:
        super().__init__(weight, interval)
        self.perturbation = perturbation  # noise scale, in units of the real batch's standard deviation

    def __call__(self, critic: nn.Module, real: Tensor, fake: Tensor, scale: Tensor | None = None) -> Tensor:
        return dragan_penalty(critic, real, self.perturbation, scale)


class R1Penalty(Penalty):
    """R1: gamma/2 E||grad D(x)||^2 on real data; ``interval=16`` is StyleGAN2's lazy schedule."""

    def __init__(self, gamma: float = 10.0, interval: int = 1) -> None:
        super().__init__(gamma / 2, interval)
        self.gamma = gamma

    def __call__(self, critic: nn.Module, real: Tensor, fake: Tensor, scale: Tensor | None = None) -> Tensor:
        return r1_penalty(critic, real, scale)
