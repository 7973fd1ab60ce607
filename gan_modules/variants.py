"""The named GAN variants: each one is the base module with its paper's defaults.

Every argument stays overridable from YAML (``model.init_args.<name>``); ``**kwargs`` passes the rest of
:class:`~gan_modules.gan.GANModule`'s arguments through, and the CLI reads them from there.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.utilities import rank_zero_warn

from .base import ADAM_DCGAN
from .config_types import DiscriminatorFactory, GeneratorFactory, OptimizerCallable, spec
from .gan import NON_SATURATING, GANModule
from .losses import AdversarialLoss
from .networks.attention import SelfAttention2d
from .regularizers import Penalty

ADAM_WGAN_GP = spec("torch.optim.Adam", lr=1e-4, betas=(0.0, 0.9))
ADAM_SAGAN_D = spec("torch.optim.Adam", lr=4e-4, betas=(0.0, 0.9))
RMSPROP_WGAN = spec("torch.optim.RMSprop", lr=5e-5)
DCGAN_G = spec("gan_modules.networks.DCGANGenerator")
DCGAN_D = spec("gan_modules.networks.DCGANDiscriminator")
WASSERSTEIN = spec("gan_modules.losses.WassersteinLoss")
HINGE = spec("gan_modules.losses.HingeLoss")
LEAST_SQUARES = spec("gan_modules.losses.LeastSquaresLoss")
GRADIENT_PENALTY = spec("gan_modules.regularizers.GradientPenalty", weight=10.0)
DRAGAN_PENALTY = spec("gan_modules.regularizers.DRAGANPenalty", weight=10.0)


class GAN(GANModule):
    """Goodfellow et al. 2014 with the non-saturating generator loss; MLP networks."""

    def __init__(self, loss: AdversarialLoss = NON_SATURATING, **kwargs: Any) -> None:
        super().__init__(loss=loss, **kwargs)


class DCGAN(GANModule):
    """Radford et al. 2016: convolutional networks with batch norm, Adam 2e-4 with betas (0.5, 0.999)."""

    def __init__(
        self,
        generator: GeneratorFactory = DCGAN_G,
        discriminator: DiscriminatorFactory = DCGAN_D,
        loss: AdversarialLoss = NON_SATURATING,
        g_optimizer: OptimizerCallable = ADAM_DCGAN,
        d_optimizer: OptimizerCallable = ADAM_DCGAN,
        latent_dim: int = 100,
        **kwargs: Any,
    ) -> None:
        super().__init__(generator=generator, discriminator=discriminator, loss=loss, g_optimizer=g_optimizer,
                         d_optimizer=d_optimizer, latent_dim=latent_dim, **kwargs)


class WGAN(GANModule):
    """Arjovsky et al. 2017: Wasserstein critic, weights clipped to 0.01, RMSprop 5e-5, n_critic 5."""

    def __init__(
        self,
        loss: AdversarialLoss = WASSERSTEIN,
        weight_clip: float | None = 0.01,
        n_critic: int = 5,
        g_optimizer: OptimizerCallable = RMSPROP_WGAN,
        d_optimizer: OptimizerCallable = RMSPROP_WGAN,
        **kwargs: Any,
    ) -> None:
        super().__init__(loss=loss, weight_clip=weight_clip, n_critic=n_critic, g_optimizer=g_optimizer,
                         d_optimizer=d_optimizer, **kwargs)


class WGANGP(GANModule):
    """Gulrajani et al. 2017: gradient penalty 10, n_critic 5, Adam 1e-4 with betas (0, 0.9), no batch norm
    in the critic (the MLP default has none; give a DCGAN critic ``norm: layer``)."""

    def __init__(
        self,
        loss: AdversarialLoss = WASSERSTEIN,
        penalty: Penalty = GRADIENT_PENALTY,  # not Optional: a None default in the base would win (jsonargparse)
        n_critic: int = 5,
        g_optimizer: OptimizerCallable = ADAM_WGAN_GP,
        d_optimizer: OptimizerCallable = ADAM_WGAN_GP,
        **kwargs: Any,
    ) -> None:
        super().__init__(loss=loss, penalty=penalty, n_critic=n_critic, g_optimizer=g_optimizer,
                         d_optimizer=d_optimizer, **kwargs)


class LSGAN(GANModule):
    """Mao et al. 2017: least-squares losses with a=0, b=1, c=1; Adam 2e-4 with betas (0.5, 0.999)."""

    def __init__(self, loss: AdversarialLoss = LEAST_SQUARES, **kwargs: Any) -> None:
        super().__init__(loss=loss, **kwargs)


class SNGAN(GANModule):
    """Miyato et al. 2018: hinge loss and a spectrally normalised discriminator; Adam 2e-4, betas (0.5, 0.999)."""

    def __init__(
        self,
        loss: AdversarialLoss = HINGE,
        spectral_norm: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(loss=loss, spectral_norm=spectral_norm, **kwargs)


class DRAGAN(GANModule):
    """Kodali et al. 2017: non-saturating GAN with a gradient penalty around the real data (weight 10)."""

    def __init__(
        self,
        loss: AdversarialLoss = NON_SATURATING,
        penalty: Penalty = DRAGAN_PENALTY,
        **kwargs: Any,
    ) -> None:
        super().__init__(loss=loss, penalty=penalty, **kwargs)


class SAGAN(GANModule):
    """Zhang et al. 2019: self-attention in both networks (give them ``attention: <side>``), spectral norm in
    both, hinge loss, two time-scale learning rates (Adam, G 1e-4, D 4e-4, betas (0, 0.9)), n_critic 1."""

    def __init__(
        self,
        generator: GeneratorFactory = DCGAN_G,
        discriminator: DiscriminatorFactory = DCGAN_D,
        loss: AdversarialLoss = HINGE,
        spectral_norm: bool = True,
        generator_spectral_norm: bool = True,
        n_critic: int = 1,
        g_optimizer: OptimizerCallable = ADAM_WGAN_GP,
        d_optimizer: OptimizerCallable = ADAM_SAGAN_D,
        latent_dim: int = 128,
        **kwargs: Any,
    ) -> None:
        super().__init__(generator=generator, discriminator=discriminator, loss=loss, spectral_norm=spectral_norm,
                         generator_spectral_norm=generator_spectral_norm, n_critic=n_critic, g_optimizer=g_optimizer,
                         d_optimizer=d_optimizer, latent_dim=latent_dim, **kwargs)
        for name in ("generator", "discriminator"):
            if not any(isinstance(m, SelfAttention2d) for m in getattr(self, name).modules()):
                rank_zero_warn(f"SAGAN: model.{name} has no self-attention block, so this is a spectrally normalised "
                               f"hinge GAN without SAGAN's attention; give it one, e.g. model.init_args.{name}."
                               "init_args.attention: 16 for 32 px images (the side of a hidden feature map).")
