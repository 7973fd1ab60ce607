"""BiGAN/ALI networks (Donahue et al. 2017; Dumoulin et al. 2017): an encoder x -> z and a discriminator that
scores joint pairs (x, z).  Encoders take ``(data_shape, latent_dim, ...)``, joint discriminators the same."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .common import Activation, Norm, numel
from .mlp import _hidden_layers


class MLPEncoder(nn.Module):
    """A sample (flattened) -> hidden layers -> a latent code of ``latent_dim`` values (no output activation)."""

    def __init__(
        self,
        data_shape: Sequence[int],                # shape of one sample (linked from the datamodule)
        latent_dim: int,                          # size of z (given by the BiGAN module)
        hidden: Sequence[int] = (1024, 1024),     # widths of the hidden layers (Donahue et al.'s MNIST: 1024, 1024)
        activation: Activation = "leaky_relu",    # hidden activation
        norm: Norm = "batch",                     # normalisation after each hidden linear layer
    ) -> None:
        super().__init__()
        sizes = [numel(data_shape), *hidden]
        self.net = nn.Sequential(nn.Flatten(), *_hidden_layers(sizes, activation, norm, 0.0),
                                 nn.Linear(sizes[-1], latent_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class JointMLPDiscriminator(nn.Module):
    """(x, z) -> one raw score per pair, shape (N,): the MLP sees ``[flatten(x), z]``, x's values first."""

    def __init__(
        self,
        data_shape: Sequence[int],                # shape of one sample (linked from the datamodule)
        latent_dim: int,                          # size of z (given by the BiGAN module)
        hidden: Sequence[int] = (1024, 1024),     # widths of the hidden layers
        activation: Activation = "leaky_relu",    # hidden activation
        norm: Norm = "none",                      # normalisation after each hidden linear layer
        dropout: float = 0.2,                     # dropout after each hidden layer
    ) -> None:
        super().__init__()
        sizes = [numel(data_shape) + latent_dim, *hidden]
        self.net = nn.Sequential(*_hidden_layers(sizes, activation, norm, dropout), nn.Linear(sizes[-1], 1))

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        return self.net(torch.cat([x.flatten(1), z.flatten(1)], 1)).view(-1)


__all__ = ["JointMLPDiscriminator", "MLPEncoder"]
