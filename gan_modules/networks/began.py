"""BEGAN's networks (Berthelot et al. 2017, figure 1): an autoencoder discriminator and a generator shaped like
its decoder.  3x3 convolutions with ELU, two per scale; down-sampling by stride-2 convolutions with widths
growing linearly (n, 2n, 3n, ...), up-sampling by nearest neighbour; a fully connected embedding h between.
Sizes follow the DCGAN rule (``dcgan_layout``): 28 = 7 * 2**2, 32 = 4 * 2**3, 64 = 4 * 2**4.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from torch import Tensor, nn

from .dcgan import dcgan_layout


def _conv(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride, 1), nn.ELU()]


class BEGANDecoder(nn.Module):
    """h (N, in_dim) -> fully connected to n x base x base -> [conv, conv, upsample] per scale -> image."""

    def __init__(self, in_dim: int, data_shape: Sequence[int], width: int = 64, tanh: bool = False) -> None:
        super().__init__()
        channels, base, k = dcgan_layout(data_shape, type(self).__name__)
        self.width, self.base = width, base
        self.fc = nn.Linear(in_dim, width * base * base)
        layers: list[nn.Module] = []
        for scale in range(k + 1):
            layers += _conv(width, width) + _conv(width, width)
            if scale < k:
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        layers.append(nn.Conv2d(width, channels, 3, 1, 1))
        if tanh:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, h: Tensor) -> Tensor:
        return self.net(self.fc(h).view(h.shape[0], self.width, self.base, self.base))


class BEGANEncoder(nn.Module):
    """image -> conv -> [conv, stride-2 conv] per scale (widths n, 2n, 3n, ...) -> fully connected h."""

    def __init__(self, data_shape: Sequence[int], out_dim: int, width: int = 64) -> None:
        super().__init__()
        channels, base, k = dcgan_layout(data_shape, type(self).__name__)
        layers: list[nn.Module] = _conv(channels, width)
        for scale in range(k + 1):
            c_in, c_out = width * (scale + 1), width * (scale + 2)
            layers += _conv(c_in, c_in)
            layers += _conv(c_in, c_out, stride=2) if scale < k else _conv(c_in, c_in)
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(width * (k + 1) * base * base, out_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class BEGANGenerator(nn.Module):
    """z -> BEGAN's decoder -> image, linear by default as in the paper (``BEGAN.sample`` clamps to [-1, 1]).

    A final tanh (``output: tanh``) saturates on MNIST: the autoencoder reconstructs black best and G drives
    every pixel to -1, where tanh's slope is ~0.002 (measured after 500 steps of ``began_mnist``: every sample
    pixel at -0.999, batch std 0.0002, with lambda_k 0.001 or 0.01; linear: -0.93, std 0.017).
    """

    def __init__(
        self,
        latent_dim: int,            # size of z (given by the GAN module)
        data_shape: Sequence[int],  # (C, H, W), linked from the datamodule
        width: int = 64,            # n: channels of every decoder convolution (the paper's 64 or 128)
        output: Literal["linear", "tanh"] = "linear",  # the paper's linear output, or a final tanh
    ) -> None:
        super().__init__()
        if output not in ("linear", "tanh"):
            raise ValueError(f"model.generator.output={output!r}: use 'linear' (BEGAN's, the default) or 'tanh'.")
        self.decoder = BEGANDecoder(latent_dim, data_shape, width, tanh=output == "tanh")

    def forward(self, z: Tensor) -> Tensor:
        return self.decoder(z)


class BEGANDiscriminator(nn.Module):
    """An autoencoder whose score for a sample is its L1 reconstruction error, shape (N,): low means "real".

    ``forward(x)`` is L(x) = mean |x - D(x)| per sample (the paper's loss with eta = 1), so the GAN module's
    one critic path and start-up checks apply unchanged; ``reconstruct(x)`` is the autoencoder's output.
    """

    def __init__(
        self,
        data_shape: Sequence[int],  # (C, H, W), linked from the datamodule
        width: int = 64,            # n: encoder widths n, 2n, 3n, ...; every decoder convolution has n
        hidden: int = 64,           # size of the embedding h (the paper's N_h = 64)
    ) -> None:
        super().__init__()
        self.encoder = BEGANEncoder(data_shape, hidden, width)
        self.decoder = BEGANDecoder(hidden, data_shape, width)

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))

    def forward(self, x: Tensor) -> Tensor:
        return (self.reconstruct(x) - x).abs().flatten(1).mean(1)


__all__ = ["BEGANDecoder", "BEGANDiscriminator", "BEGANEncoder", "BEGANGenerator"]
