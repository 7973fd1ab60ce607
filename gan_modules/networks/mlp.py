"""Fully connected generator and discriminator for vectors (1-D, 2-D toys) and flattened images."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from torch import Tensor, nn

from .common import Activation, Norm, make_activation, norm1d, numel


def _hidden_layers(sizes: Sequence[int], act: Activation, norm: Norm, dropout: float) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for n_in, n_out in pairwise(sizes):
        layers += [nn.Linear(n_in, n_out), norm1d(norm, n_out), make_activation(act)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    return layers


class MLPGenerator(nn.Module):
    """z (N, latent_dim) -> hidden layers -> a sample of ``data_shape``; images are made flat and reshaped."""

    def __init__(
        self,
        latent_dim: int,                          # size of z (given by the GAN module)
        data_shape: Sequence[int],                # shape of one sample (linked from the datamodule)
        hidden: Sequence[int] = (128, 128, 128),  # widths of the hidden layers
        activation: Activation = "relu",          # hidden activation
        norm: Norm = "none",                      # normalisation after each hidden linear layer
        output: Activation | None = None,         # final activation: "tanh" for images in [-1, 1]
    ) -> None:
        super().__init__()
        self.data_shape = tuple(data_shape)
        sizes = [latent_dim, *hidden]
        layers = [*_hidden_layers(sizes, activation, norm, 0.0), nn.Linear(sizes[-1], numel(self.data_shape))]
        if output is not None:
            layers.append(make_activation(output))
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(z.shape[0], *self.data_shape)


class MLPDiscriminator(nn.Module):
    """A sample (flattened) -> hidden layers -> one raw score per sample, shape (N,)."""

    def __init__(
        self,
        data_shape: Sequence[int],                # shape of one sample (linked from the datamodule)
        hidden: Sequence[int] = (128, 128, 128),  # widths of the hidden layers
        activation: Activation = "relu",          # hidden activation
        norm: Norm = "none",                      # normalisation after each hidden linear layer
        dropout: float = 0.0,                     # dropout after each hidden layer (a common MNIST MLP uses 0.3)
    ) -> None:
        super().__init__()
        sizes = [numel(data_shape), *hidden]
        self.net = nn.Sequential(nn.Flatten(), *_hidden_layers(sizes, activation, norm, dropout),
                                 nn.Linear(sizes[-1], 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).view(-1)
