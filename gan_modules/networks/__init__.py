"""Plain ``nn.Module`` networks.

Convention: a generator maps ``(N, latent_dim)`` to ``(N, *data_shape)`` (images in [-1, 1]); a
discriminator maps a sample batch to raw scores of shape ``(N,)`` (no sigmoid).  Generators take
``(latent_dim, data_shape, ...)`` and discriminators ``(data_shape, ...)`` as their first arguments: the GAN
module supplies those, the YAML config the rest.
"""

from .attention import SelfAttention2d
from .conditional import (
    ACGANDiscriminator,
    ConditionalBatchNorm2d,
    ConditionalDCGANGenerator,
    ConditionalMLPDiscriminator,
    ConditionalMLPGenerator,
    ProjectionDiscriminator,
)
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .mlp import MLPDiscriminator, MLPGenerator
from .stylegan import StyleGANDiscriminator, StyleGANGenerator

__all__ = ["ACGANDiscriminator", "ConditionalBatchNorm2d", "ConditionalDCGANGenerator", "ConditionalMLPDiscriminator",
           "ConditionalMLPGenerator", "DCGANDiscriminator", "DCGANGenerator", "MLPDiscriminator", "MLPGenerator",
           "ProjectionDiscriminator", "SelfAttention2d", "StyleGANDiscriminator", "StyleGANGenerator"]
