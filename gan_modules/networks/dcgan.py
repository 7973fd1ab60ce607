"""DCGAN generator and discriminator (Radford et al. 2016) for square images of 28, 32, 64, ... pixels.

An image of side ``s`` is reached from a ``base x base`` seed by ``k`` stride-2 layers, ``s = base * 2**k``
with ``4 <= base <= 7``: 64 = 4 * 2**4 (DCGAN-64, Radford et al. 2016), 32 = 4 * 2**3, 28 = 7 * 2**2 (the
usual MNIST DCGAN).  Channel widths double at every stride-2 layer away from the image.

``attention: <side>`` puts a SAGAN self-attention block (``networks.attention``) after the hidden layer whose
feature maps have that side: 32 for 64 px images and 16 for 32 px (Zhang et al. 2019), 14 for 28 px MNIST.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from torch import Tensor, nn

from .attention import SelfAttention2d
from .common import Norm, dcgan_init_, norm2d


def dcgan_layout(data_shape: Sequence[int], network: str) -> tuple[int, int, int]:
    """(channels, base size, number of stride-2 layers) for an image shape, or a clear error."""
    if len(data_shape) != 3:
        raise ValueError(f"{network} needs image data of shape (C, H, W), got a sample shape {tuple(data_shape)}; "
                         "use MLPGenerator/MLPDiscriminator for vectors.")
    channels, height, width = data_shape
    if height != width:
        raise ValueError(f"{network} needs square images, got {height}x{width}; resize or crop in the datamodule.")
    k = 0
    while height % 2 ** (k + 1) == 0 and height // 2 ** (k + 1) >= 4:
        k += 1
    base = height // 2**k
    if k == 0 or base > 7:
        raise ValueError(f"{network} cannot make {height}x{height} images: the side must be 4 to 7 times a power "
                         "of two, at least 8 (e.g. 28, 32, 48, 64, 128).")
    return channels, base, k


def attention_index(side: int | None, sides: Sequence[int], network: str) -> int | None:
    """Which hidden layer (by its feature-map side) gets the self-attention block, or a clear error."""
    if side is None:
        return None
    if side not in sides:
        raise ValueError(f"{network}.attention={side}: no hidden feature map of that side here; choose one of "
                         f"{sorted(set(sides))} (SAGAN uses 32 for 64 px images, 16 for 32 px) or null for none.")
    return list(sides).index(side)


class DCGANGenerator(nn.Module):
    """z -> transposed convolutions -> image in [-1, 1] (tanh)."""

    def __init__(
        self,
        latent_dim: int,            # size of z (given by the GAN module)
        data_shape: Sequence[int],  # (C, H, W), linked from the datamodule
        width: int = 64,            # channels of the last hidden layer; the first has width * 2**(k-1)
        norm: Norm = "batch",       # normalisation after each hidden layer
        dcgan_init: bool = True,    # DCGAN's N(0, 0.02) initialisation
        attention: int | None = None,  # side of the hidden feature maps given a self-attention block (SAGAN)
    ) -> None:
        super().__init__()
        channels, base, k = dcgan_layout(data_shape, type(self).__name__)
        widths = [width * 2**i for i in reversed(range(k))]  # e.g. 512, 256, 128, 64 for 64x64
        at = attention_index(attention, [base * 2**i for i in range(k)], type(self).__name__)
        layers: list[nn.Module] = [nn.ConvTranspose2d(latent_dim, widths[0], base, 1, 0, bias=norm == "none"),
                                   norm2d(norm, widths[0]), nn.ReLU(True)]
        for i, (c_in, c_out) in enumerate(pairwise(widths)):
            layers += [SelfAttention2d(c_in)] if at == i else []
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=norm == "none"), norm2d(norm, c_out),
                       nn.ReLU(True)]
        layers += [SelfAttention2d(widths[-1])] if at == k - 1 else []
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        if dcgan_init:
            dcgan_init_(self)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))


class DCGANDiscriminator(nn.Module):
    """image -> strided convolutions with leaky ReLU -> one raw score per sample, shape (N,)."""

    def __init__(
        self,
        data_shape: Sequence[int],   # (C, H, W), linked from the datamodule
        width: int = 64,             # channels of the first layer; doubled at every stride-2 layer
        norm: Norm = "batch",        # after every layer but the first; use layer/none under a gradient penalty
        dcgan_init: bool = True,     # DCGAN's N(0, 0.02) initialisation
        attention: int | None = None,  # side of the hidden feature maps given a self-attention block (SAGAN)
    ) -> None:
        super().__init__()
        channels, base, k = dcgan_layout(data_shape, type(self).__name__)
        widths = [width * 2**i for i in range(k)]  # e.g. 64, 128, 256, 512 for 64x64
        at = attention_index(attention, [base * 2 ** (k - 1 - i) for i in range(k)], type(self).__name__)
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for i, (c_in, c_out) in enumerate(pairwise(widths)):
            layers += [SelfAttention2d(c_in)] if at == i else []
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=norm == "none"), norm2d(norm, c_out),
                       nn.LeakyReLU(0.2, True)]
        layers += [SelfAttention2d(widths[-1])] if at == k - 1 else []
        layers.append(nn.Conv2d(widths[-1], 1, base, 1, 0))
        self.net = nn.Sequential(*layers)
        if dcgan_init:
            dcgan_init_(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).view(-1)
