"""GAN variants as Lightning modules, and their parts (losses, penalties, networks).

``AdversarialModule`` (base.py) is the harness every family plugs into; ``GANModule`` (gan.py) is the
unconditional recipe that the named variants (variants.py) set up with their papers' defaults.
"""

from .base import AdversarialModule
from .gan import GANModule
from .stylegan import StyleGAN
from .variants import DCGAN, DRAGAN, GAN, LSGAN, SNGAN, WGAN, WGANGP

__all__ = ["DCGAN", "DRAGAN", "GAN", "LSGAN", "SNGAN", "WGAN", "WGANGP", "AdversarialModule", "GANModule", "StyleGAN"]
