"""Adversarial losses, written on raw discriminator scores (logits).

Every loss is a pair of small pure functions (easy to check against values
known on paper) plus a tiny class so that a YAML config can pick one by
``class_path``.  Discriminators return raw scores of shape ``(N,)``; the BCE
family uses the logits form, which is the same maths as
``Sigmoid + BCELoss`` but does not overflow.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import Tensor


# --------------------------------------------------------------------------- pure functions
def bce_discriminator_loss(real: Tensor, fake: Tensor, real_label: float = 1.0, fake_label: float = 0.0) -> Tensor:
    """-[t log D(x) + (1-t) log(1-D(x))] averaged over real and fake, summed (``d_real + d_fake``).

    ``real_label=0.9`` is one-sided label smoothing (Salimans et al. 2016 recommend one-sided);
    ``fake_label=0.1`` makes it two-sided.
    """
    real_t = torch.full_like(real, real_label)
    fake_t = torch.full_like(fake, fake_label)
    return F.binary_cross_entropy_with_logits(real, real_t) + F.binary_cross_entropy_with_logits(fake, fake_t)


def non_saturating_generator_loss(fake: Tensor, target: float = 1.0) -> Tensor:
    """-log D(G(z)) (Goodfellow et al. 2014, section 3): strong gradients early in training."""
    return F.binary_cross_entropy_with_logits(fake, torch.full_like(fake, target))


def minimax_generator_loss(fake: Tensor) -> Tensor:
    """log(1 - D(G(z))), the saturating form of the original minimax game: log(1 - sigmoid(l)) = -softplus(l)."""
    return -F.softplus(fake).mean()


def wasserstein_discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """E[D(G(z))] - E[D(x)]: the critic maximises its estimate of the Wasserstein-1 distance."""
    return fake.mean() - real.mean()


def wasserstein_generator_loss(fake: Tensor) -> Tensor:
    """-E[D(G(z))]."""
    return -fake.mean()


def hinge_discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """E[relu(1 - D(x))] + E[relu(1 + D(G(z)))] (Lim & Ye 2017; Miyato et al. 2018)."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def least_squares_discriminator_loss(real: Tensor, fake: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2] (Mao et al. 2017, eq. 2)."""
    return 0.5 * ((real - b) ** 2).mean() + 0.5 * ((fake - a) ** 2).mean()


def least_squares_generator_loss(fake: Tensor, c: float = 1.0) -> Tensor:
    """1/2 E[(D(G(z)) - c)^2]."""
    return 0.5 * ((fake - c) ** 2).mean()


# --------------------------------------------------------------------------- classes for configs
class AdversarialLoss(ABC):
    """A discriminator loss and the matching generator loss, both on raw scores."""

    #: True for losses whose critic estimates a distance (WGAN family): the module then logs ``train/wasserstein``.
    is_wasserstein = False

    @abstractmethod
    def discriminator(self, real: Tensor, fake: Tensor) -> Tensor:
        """Loss the discriminator minimises, from its scores on a real and a generated batch."""

    @abstractmethod
    def generator(self, fake: Tensor) -> Tensor:
        """Loss the generator minimises, from the discriminator's scores on a generated batch."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class NonSaturatingLoss(AdversarialLoss):
    """BCE for the discriminator, -log D(G(z)) for the generator; optional label smoothing."""

    def __init__(
        self,
        real_label: float = 1.0,  # discriminator target for real samples (0.9: one-sided smoothing)
        fake_label: float = 0.0,  # discriminator target for generated samples (0.1: two-sided smoothing)
        generator_target: float = 1.0,  # generator's target for D(G(z)); 0.9 reuses the smoothed target
    ) -> None:
        for name, value in (("real_label", real_label), ("fake_label", fake_label),
                            ("generator_target", generator_target)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"NonSaturatingLoss.{name}={value} must lie in [0, 1] (it is a BCE target).")
        self.real_label, self.fake_label, self.generator_target = real_label, fake_label, generator_target

    def discriminator(self, real: Tensor, fake: Tensor) -> Tensor:
        return bce_discriminator_loss(real, fake, self.real_label, self.fake_label)

    def generator(self, fake: Tensor) -> Tensor:
        return non_saturating_generator_loss(fake, self.generator_target)


class MinimaxLoss(NonSaturatingLoss):
    """The original saturating game: the generator minimises log(1 - D(G(z)))."""

    def __init__(
        self,
        real_label: float = 1.0,        # discriminator target for real samples (0.9: one-sided smoothing)
        fake_label: float = 0.0,        # discriminator target for generated samples (0.1: two-sided smoothing)
        generator_target: float = 1.0,  # must stay 1: log(1 - D(G(z))) has no target to smooth
    ) -> None:
        if generator_target != 1.0:
            raise ValueError(f"MinimaxLoss.generator_target={generator_target}: the minimax generator loss "
                             "log(1 - D(G(z))) has no target to smooth. Use gan_modules.losses.NonSaturatingLoss "
                             "for a smoothed generator target, or leave generator_target at 1.0.")
        super().__init__(real_label, fake_label)

    def generator(self, fake: Tensor) -> Tensor:
        return minimax_generator_loss(fake)


class WassersteinLoss(AdversarialLoss):
    """WGAN critic and generator losses (Arjovsky et al. 2017)."""

    is_wasserstein = True

    def discriminator(self, real: Tensor, fake: Tensor) -> Tensor:
        return wasserstein_discriminator_loss(real, fake)

    def generator(self, fake: Tensor) -> Tensor:
        return wasserstein_generator_loss(fake)


class HingeLoss(AdversarialLoss):
    """Hinge loss for the discriminator, -E[D(G(z))] for the generator (SNGAN, SAGAN, BigGAN)."""

    def discriminator(self, real: Tensor, fake: Tensor) -> Tensor:
        return hinge_discriminator_loss(real, fake)

    def generator(self, fake: Tensor) -> Tensor:
        return wasserstein_generator_loss(fake)


class LeastSquaresLoss(AdversarialLoss):
    """LSGAN with the a-b-c coding of Mao et al. (a=0 fake, b=1 real, c=1 generator target)."""

    def __init__(self, a: float = 0.0, b: float = 1.0, c: float = 1.0) -> None:
        self.a, self.b, self.c = a, b, c

    def discriminator(self, real: Tensor, fake: Tensor) -> Tensor:
        return least_squares_discriminator_loss(real, fake, self.a, self.b)

    def generator(self, fake: Tensor) -> Tensor:
        return least_squares_generator_loss(fake, self.c)
