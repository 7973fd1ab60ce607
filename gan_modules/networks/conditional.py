"""Class-conditional networks: a generator ``G(z, y)`` and a discriminator ``D(x, y)`` for integer labels ``y``.

They keep the lab's convention (``(N, latent_dim)`` noise to a sample; a sample to raw scores ``(N,)``) and take
``num_classes`` after the data shape, which the conditional GAN module supplies from the data.

* concatenation (Mirza & Osindero 2014): the one-hot label joins the noise in G and the flattened sample in D;
* class-conditional batch norm in G (de Vries et al. 2017, Miyato & Koyama 2018): each class has its own scale
  and shift after a normalisation shared by all classes;
* the projection discriminator (Miyato & Koyama 2018): ``D(x, y) = psi(phi(x)) + <embed(y), phi(x)>``;
* the auxiliary classifier discriminator (Odena et al. 2017): one trunk, a source head and a class head.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import SelfAttention2d
from .common import Activation, Norm, dcgan_init_, numel
from .dcgan import DCGANDiscriminator, attention_index, dcgan_layout
from .mlp import MLPDiscriminator, MLPGenerator


def one_hot(y: Tensor, num_classes: int, like: Tensor) -> Tensor:
    """Labels ``(N,)`` as one-hot rows in ``like``'s dtype and device."""
    return F.one_hot(y.long(), num_classes).to(dtype=like.dtype, device=like.device)


class ConditionalMLPGenerator(nn.Module):
    """CGAN's generator (Mirza & Osindero 2014): ``[z, onehot(y)]`` -> hidden layers -> a sample."""

    def __init__(
        self,
        latent_dim: int,                          # size of z (given by the GAN module)
        data_shape: Sequence[int],                # shape of one sample (linked from the datamodule)
        num_classes: int,                         # label values 0..num_classes-1 (linked from the datamodule)
        hidden: Sequence[int] = (128, 128, 128),  # widths of the hidden layers
        activation: Activation = "relu",          # hidden activation
        norm: Norm = "none",                      # normalisation after each hidden linear layer
        output: Activation | None = None,         # final activation: "tanh" for images in [-1, 1]
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.mlp = MLPGenerator(latent_dim + num_classes, data_shape, hidden, activation, norm, output)

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        return self.mlp(torch.cat([z, one_hot(y, self.num_classes, z)], dim=1))


class ConditionalMLPDiscriminator(nn.Module):
    """CGAN's discriminator: ``[flatten(x), onehot(y)]`` -> hidden layers -> one raw score per sample."""

    def __init__(
        self,
        data_shape: Sequence[int],                # shape of one sample (linked from the datamodule)
        num_classes: int,                         # label values 0..num_classes-1 (linked from the datamodule)
        hidden: Sequence[int] = (128, 128, 128),  # widths of the hidden layers
        activation: Activation = "relu",          # hidden activation
        norm: Norm = "none",                      # normalisation after each hidden linear layer
        dropout: float = 0.0,                     # dropout after each hidden layer
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.mlp = MLPDiscriminator((numel(data_shape) + num_classes,), hidden, activation, norm, dropout)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.mlp(torch.cat([x.flatten(1), one_hot(y, self.num_classes, x)], dim=1))


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm without its own affine map, then a scale and shift chosen by the class: with one class it is
    ``nn.BatchNorm2d`` whose weight and bias are that class's rows."""

    spectral_norm_exempt = True  # per-class gains, not weights: apply_spectral_norm leaves them alone

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, affine=False)
        self.weight = nn.Embedding(num_classes, num_features)  # per-class scale, starts at 1
        self.bias = nn.Embedding(num_classes, num_features)    # per-class shift, starts at 0
        nn.init.ones_(self.weight.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        scale, shift = self.weight(y)[:, :, None, None], self.bias(y)[:, :, None, None]
        return self.bn(x) * scale + shift


class ConditionalDCGANGenerator(nn.Module):
    """The DCGAN generator (``gan_modules.networks.DCGANGenerator``'s layout) with class-conditional batch norm
    after every hidden layer, so the class shapes every scale of the image.

    Every class's scale and shift start equal (1 and 0) and Adam moves them about one learning rate per step,
    so batch norm alone tells the classes apart only after thousands of steps; ``label_input`` also feeds the
    one-hot class with z (CGAN's input, and AC-GAN's), which conditions the image from the first step."""

    def __init__(
        self,
        latent_dim: int,            # size of z (given by the GAN module)
        data_shape: Sequence[int],  # (C, H, W), linked from the datamodule
        num_classes: int,           # label values 0..num_classes-1 (linked from the datamodule)
        width: int = 64,            # channels of the last hidden layer; the first has width * 2**(k-1)
        dcgan_init: bool = True,    # DCGAN's N(0, 0.02) initialisation of the convolutions
        label_input: bool = True,   # also concatenate the one-hot class to z
        attention: int | None = None,  # side of the hidden feature maps given a self-attention block (SAGAN)
    ) -> None:
        super().__init__()
        channels, base, k = dcgan_layout(data_shape, type(self).__name__)
        widths = [width * 2**i for i in reversed(range(k))]
        self.num_classes, self.label_input = num_classes, label_input
        z_in = latent_dim + (num_classes if label_input else 0)
        self.convs = nn.ModuleList([nn.ConvTranspose2d(z_in, widths[0], base, 1, 0, bias=False)])
        self.convs.extend(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False) for c_in, c_out in pairwise(widths))
        self.norms = nn.ModuleList(ConditionalBatchNorm2d(w, num_classes) for w in widths)
        self.to_image = nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1)
        # after hidden layer `at` (the one whose maps have side `attention`), as in DCGANGenerator
        self.attention_at = attention_index(attention, [base * 2**i for i in range(k)], type(self).__name__)
        self.attention = None if self.attention_at is None else SelfAttention2d(widths[self.attention_at])
        if dcgan_init:
            dcgan_init_(self)

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        if self.label_input:
            z = torch.cat([z, one_hot(y, self.num_classes, z)], dim=1)
        h = z.view(z.shape[0], -1, 1, 1)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            h = F.relu(norm(conv(h), y))
            if i == self.attention_at:
                h = self.attention(h)
        return torch.tanh(self.to_image(h))


def _dcgan_trunk(data_shape: Sequence[int], width: int, norm: Norm, dcgan_init: bool,
                 attention: int | None = None) -> tuple[nn.Sequential, int]:
    """The DCGAN discriminator (with SAGAN's attention block if asked) without its last (scoring) convolution, and
    its output channels."""
    _, _, k = dcgan_layout(data_shape, "the conditional discriminator")
    net = DCGANDiscriminator(data_shape, width, norm, dcgan_init, attention).net
    return nn.Sequential(*list(net)[:-1]), width * 2 ** (k - 1)


class ProjectionDiscriminator(nn.Module):
    """Miyato & Koyama 2018: ``D(x, y) = psi(phi(x)) + <embed(y), phi(x)>``, with ``phi`` the DCGAN trunk's
    features summed over space (the paper's global sum pooling) and ``psi`` a linear layer.

    No batch norm by default: the paper's recipe is spectral norm (``model.init_args.spectral_norm: true``,
    which also normalises the embedding) with the hinge loss; use ``norm: layer`` or ``none`` under a gradient
    penalty."""

    def __init__(
        self,
        data_shape: Sequence[int],   # (C, H, W), linked from the datamodule
        num_classes: int,            # label values 0..num_classes-1 (linked from the datamodule)
        width: int = 64,             # channels of the first layer; doubled at every stride-2 layer
        norm: Norm = "none",         # after every layer but the first
        dcgan_init: bool = True,     # DCGAN's N(0, 0.02) initialisation of the convolutions
        attention: int | None = None,  # side of the hidden feature maps given a self-attention block (SAGAN)
    ) -> None:
        super().__init__()
        self.trunk, features = _dcgan_trunk(data_shape, width, norm, dcgan_init, attention)
        self.psi = nn.Linear(features, 1)
        self.embed = nn.Embedding(num_classes, features)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def features(self, x: Tensor) -> Tensor:
        """phi(x): the trunk's features summed over space, shape (N, features)."""
        return self.trunk(x).sum(dim=(2, 3))

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        phi = self.features(x)
        return self.psi(phi).view(-1) + (self.embed(y) * phi).sum(dim=1)


class ACGANDiscriminator(nn.Module):
    """Odena et al. 2017: the DCGAN trunk with two heads, the source score (real or generated) and class logits.

    ``forward(x, y)`` gives the source scores and ignores ``y`` (D does not see the label; it predicts it);
    ``classify(x)`` gives the class logits that the ACGAN module's classification loss reads."""

    def __init__(
        self,
        data_shape: Sequence[int],   # (C, H, W), linked from the datamodule
        num_classes: int,            # label values 0..num_classes-1 (linked from the datamodule)
        width: int = 64,             # channels of the first layer; doubled at every stride-2 layer
        norm: Norm = "batch",        # after every layer but the first
        dcgan_init: bool = True,     # DCGAN's N(0, 0.02) initialisation
        attention: int | None = None,  # side of the hidden feature maps given a self-attention block (SAGAN)
    ) -> None:
        super().__init__()
        self.trunk, features = _dcgan_trunk(data_shape, width, norm, dcgan_init, attention)
        _, base, _ = dcgan_layout(data_shape, type(self).__name__)
        self.source = nn.Linear(features * base * base, 1)
        self.classes = nn.Linear(features * base * base, num_classes)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return self.source(self.trunk(x).flatten(1)).view(-1)

    def classify(self, x: Tensor) -> Tensor:
        """Class logits, shape (N, num_classes)."""
        return self.classes(self.trunk(x).flatten(1))
