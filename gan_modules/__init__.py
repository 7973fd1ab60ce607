"""GAN variants as Lightning modules, and their parts (losses, penalties, networks).

``AdversarialModule`` (base.py) is the harness every family plugs into; ``GANModule`` (gan.py) is the
unconditional recipe that the named variants (variants.py) set up with their papers' defaults.
"""

from .base import AdversarialModule
from .began import BEGAN
from .bigan import BiGAN
from .conditional import ACGAN, CGAN, ConditionalGAN
from .cyclegan import CycleGAN
from .gan import GANModule
from .stylegan import StyleGAN
from .variants import DCGAN, DRAGAN, GAN, LSGAN, SAGAN, SNGAN, WGAN, WGANGP

__all__ = ["ACGAN", "BEGAN", "CGAN", "DCGAN", "DRAGAN", "GAN", "LSGAN", "SAGAN", "SNGAN", "WGAN", "WGANGP",
           "AdversarialModule", "BiGAN", "ConditionalGAN", "CycleGAN", "GANModule", "StyleGAN"]
