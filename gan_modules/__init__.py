"""GAN variants as Lightning modules, and their parts (losses, penalties, networks)."""

from .base import GANModule
from .variants import DCGAN, DRAGAN, GAN, LSGAN, SNGAN, WGAN, WGANGP

__all__ = ["DCGAN", "DRAGAN", "GAN", "LSGAN", "SNGAN", "WGAN", "WGANGP", "GANModule"]
