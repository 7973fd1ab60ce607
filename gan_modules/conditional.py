"""Class-conditional GANs: the unconditional recipe with labels passed to both players.

:class:`~gan_modules.gan.GANModule` already routes a condition through every generator and critic call
(``generate(z, y)``, ``critic(x, y)``, the penalties as a closure over ``critic``); it passes nothing.  The
conditional recipe only says where the condition comes from: the labels of the real batch (a generated sample
takes the label of the real sample it is scored beside, so both sides of the critic see the data's class
frequencies), ``sample(labels=...)`` when drawing, and ``num_classes`` (linked from the data by ``main.py``, as
the data shape is) to size the networks.

* :class:`ConditionalGAN`: any conditional networks with any loss and penalty (e.g. the projection
  discriminator with the hinge loss and spectral norm, Miyato & Koyama 2018);
* :class:`CGAN`: Mirza & Osindero 2014, MLPs with the one-hot label concatenated to the noise and to D's input;
* :class:`ACGAN`: Odena et al. 2017, D also predicts the class; both players add its cross-entropy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import ADAM_DCGAN, Metrics
from .config_types import ConditionalDiscriminatorFactory, ConditionalGeneratorFactory, OptimizerCallable, build, spec
from .gan import NON_SATURATING, GANModule
from .losses import AdversarialLoss

CGAN_G = spec("gan_modules.networks.ConditionalMLPGenerator")
CGAN_D = spec("gan_modules.networks.ConditionalMLPDiscriminator")
ACGAN_G = spec("gan_modules.networks.ConditionalDCGANGenerator")
ACGAN_D = spec("gan_modules.networks.ACGANDiscriminator")


class ConditionalGAN(GANModule):
    """A class-conditional GAN: ``G(z, y)`` and ``D(x, y)``; every other argument is :class:`GANModule`'s."""

    def __init__(
        self,
        generator: ConditionalGeneratorFactory = CGAN_G,          # (latent_dim, data_shape, num_classes) -> G(z, y)
        discriminator: ConditionalDiscriminatorFactory = CGAN_D,  # (data_shape, num_classes) -> D(x, y), scores (N,)
        num_classes: int | None = None,                           # labels 0..num_classes-1; linked from the data
        **kwargs: Any,
    ) -> None:
        _check_num_classes(num_classes, type(self).__name__)
        # built here with the conditional signatures (from Python); the hyper-parameters keep the specs
        super().__init__(generator=build(generator, ConditionalGeneratorFactory),
                         discriminator=build(discriminator, ConditionalDiscriminatorFactory), **kwargs)

    @property
    def num_classes(self) -> int:
        """How many classes the networks were sized for (saved with the hyper-parameters)."""
        return int(self.hparams["num_classes"])

    def condition(self, batch: Any) -> Tensor:
        """The real batch's labels: the class of every sample of this step, real and generated."""
        if not isinstance(batch, (list, tuple)) or len(batch) < 2:
            raise ValueError(f"{type(self).__name__} needs labeled batches (samples, labels), but the data "
                             "yield samples only; use labeled data (see README, Conditional GANs).")
        return batch[1].long()

    def sample_labels(self, n: int, labels: Tensor | Sequence[int] | None = None,
                      generator: torch.Generator | None = None) -> Tensor:
        """``labels`` checked against the class count, or ``n`` classes drawn uniformly (from ``generator``)."""
        if labels is None:
            drawn = torch.randint(self.num_classes, (n,), generator=generator,
                                  device="cpu" if generator is not None else self.device)
            return drawn.to(self.device)
        y = torch.as_tensor(labels, dtype=torch.long).reshape(-1).to(self.device)
        if len(y) != n:
            raise ValueError(f"{len(y)} labels for {n} samples: give one label per sample.")
        bad = sorted({c for c in y.tolist() if not 0 <= c < self.num_classes})
        if bad:
            raise ValueError(f"labels must lie in 0..{self.num_classes - 1} (this model has {self.num_classes} "
                             f"classes), got {bad}.")
        return y


class CGAN(ConditionalGAN):
    """Mirza & Osindero 2014: MLPs with the one-hot label concatenated to z and to D's input; non-saturating
    loss, Adam 2e-4 with betas (0.5, 0.999)."""

    def __init__(
        self,
        generator: ConditionalGeneratorFactory = CGAN_G,
        discriminator: ConditionalDiscriminatorFactory = CGAN_D,
        loss: AdversarialLoss = NON_SATURATING,
        g_optimizer: OptimizerCallable = ADAM_DCGAN,
        d_optimizer: OptimizerCallable = ADAM_DCGAN,
        **kwargs: Any,
    ) -> None:
        super().__init__(generator=generator, discriminator=discriminator, loss=loss, g_optimizer=g_optimizer,
                         d_optimizer=d_optimizer, **kwargs)


class ACGAN(ConditionalGAN):
    """Odena et al. 2017: D scores the source and predicts the class; the class's cross-entropy on real and
    generated samples is added to D's loss, and on generated samples to G's (both players want a generated
    sample read as the class it was drawn for).

    The discriminator needs a ``classify(x) -> (N, num_classes)`` method besides its source scores
    (``gan_modules.networks.ACGANDiscriminator``)."""

    def __init__(
        self,
        generator: ConditionalGeneratorFactory = ACGAN_G,
        discriminator: ConditionalDiscriminatorFactory = ACGAN_D,
        loss: AdversarialLoss = NON_SATURATING,
        class_weight: float = 1.0,                  # weight of the classification loss for both players
        latent_dim: int = 100,
        **kwargs: Any,
    ) -> None:
        if class_weight < 0:
            raise ValueError(f"model.class_weight={class_weight}: must be >= 0 (Odena et al. 2017 use 1).")
        super().__init__(generator=generator, discriminator=discriminator, loss=loss, latent_dim=latent_dim,
                         **kwargs)
        if not callable(getattr(self.discriminator, "classify", None)):
            raise ValueError(f"ACGAN's discriminator ({type(self.discriminator).__name__}) has no classify(x) "
                             "method for the class head; use gan_modules.networks.ACGANDiscriminator.")
        self.class_weight = class_weight

    def critic_loss(self, real: Tensor, fake: Tensor, y: Tensor | None = None) -> tuple[Tensor, Metrics]:
        loss, metrics = super().critic_loss(real, fake, y)
        real_ce = F.cross_entropy(self.discriminator.classify(real), y)
        fake_ce = F.cross_entropy(self.discriminator.classify(fake), y)
        metrics |= {"train/class_loss_real": real_ce.detach(), "train/class_loss_fake": fake_ce.detach()}
        return loss + self.class_weight * (real_ce + fake_ce), metrics

    def fooling_loss(self, fake: Tensor, y: Tensor | None = None) -> tuple[Tensor, Metrics]:
        loss, metrics = super().fooling_loss(fake, y)
        fake_ce = F.cross_entropy(self.discriminator.classify(fake), y)
        return loss + self.class_weight * fake_ce, {**metrics, "train/g_class_loss": fake_ce.detach()}


def _check_num_classes(num_classes: int | None, name: str) -> None:
    if num_classes is None:
        raise ValueError(f"{name} needs labeled data: model.num_classes is missing. main.py links it from the data "
                         "module (MNIST; Ring2D/Grid2D with labels: true; ImageFolderDataModule with labels: true; "
                         "CelebA with attributes: [...]); from Python pass num_classes=datamodule.num_classes.")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"model.num_classes={num_classes}: a conditional GAN needs an integer >= 2.")


__all__ = ["ACGAN", "CGAN", "ConditionalGAN"]
