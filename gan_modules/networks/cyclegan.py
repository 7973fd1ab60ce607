"""CycleGAN's networks (Zhu et al. 2017, appendix 7.2): the ResNet generator of Johnson et al. 2016 and the
70x70 PatchGAN discriminator of Isola et al. 2017.

Unlike the noise-driven networks of this package, both map images to images: the generator an image of one
domain to one of the other (same size), the discriminator an image to a grid of raw scores, one per
overlapping patch (no sigmoid; least-squares loss).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


def _norm(channels: int) -> nn.Module:
    """Instance norm without affine parameters or running statistics, the official code's ``norm='instance'``."""
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResidualBlock(nn.Module):
    """R<c>: two 3x3 convolutions with reflection padding and instance norm, added to the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(channels), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(channels))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """c7s1-64, d128, d256, R256 x n_blocks, u128, u64, c7s1-C, tanh (the paper's widths at ``width: 64``).

    Sides must be divisible by 4 (two stride-2 downsamplings); the paper uses 9 blocks at 256 px and 6 at 128
    px and below.
    """

    def __init__(
        self,
        data_shape: Sequence[int],      # (channels, height, width) of both domains' images; linked from the data
        n_blocks: int = 9,              # residual blocks at the lowest resolution
        width: int = 64,                # channels of the first layer (c7s1-<width>); doubled by each downsampling
    ) -> None:
        super().__init__()
        channels = int(data_shape[0])
        if n_blocks < 0 or width < 1:
            raise ValueError(f"ResnetGenerator(n_blocks={n_blocks}, width={width}): needs n_blocks >= 0, width >= 1")
        if len(data_shape) != 3 or data_shape[1] % 4 or data_shape[2] % 4:
            raise ValueError(f"ResnetGenerator needs images whose sides are divisible by 4, got data shape "
                             f"{tuple(data_shape)}; change the datamodule's crop_size.")
        w = width
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(channels, w, 7), _norm(w), nn.ReLU(True)]
        for mult in (1, 2):  # d128, d256
            layers += [nn.Conv2d(w * mult, w * mult * 2, 3, stride=2, padding=1), _norm(w * mult * 2), nn.ReLU(True)]
        layers += [ResidualBlock(w * 4) for _ in range(n_blocks)]
        for mult in (4, 2):  # u128, u64
            layers += [nn.ConvTranspose2d(w * mult, w * mult // 2, 3, stride=2, padding=1, output_padding=1),
                       _norm(w * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(w, channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """C64-C128-C256-C512 then a 1-channel convolution: one raw score per 70x70 patch (at ``n_layers: 3``).

    4x4 convolutions, LeakyReLU 0.2, instance norm on all but the first; the first ``n_layers`` halve the size,
    the C512 layer and the output keep stride 1.  Returns ``(N, H', W')``: 30x30 scores at 256 px.
    ``n_layers: 2`` gives 34x34 patches, for small images.
    """

    def __init__(
        self,
        data_shape: Sequence[int],      # (channels, height, width) of the images it judges; linked from the data
        n_layers: int = 3,              # stride-2 layers (3: the 70x70 PatchGAN)
        width: int = 64,                # channels of the first layer; doubled per layer, at most 8x
    ) -> None:
        super().__init__()
        if n_layers < 1 or width < 1:
            raise ValueError(f"PatchDiscriminator(n_layers={n_layers}, width={width}): needs both >= 1")
        channels = int(data_shape[0])
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(width * prev, width * mult, 4, stride=stride, padding=1), _norm(width * mult),
                       nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(width * mult, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)


__all__ = ["PatchDiscriminator", "ResidualBlock", "ResnetGenerator"]
