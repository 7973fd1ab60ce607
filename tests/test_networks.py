"""Network shapes, sizes and clear errors."""

import pytest
import torch
from torch import nn

from gan_modules.networks import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator
from gan_modules.networks.common import has_batch_norm


@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_shapes(size, channels):
    gen = DCGANGenerator(100, (channels, size, size), width=8)
    disc = DCGANDiscriminator((channels, size, size), width=8)
    x = gen(torch.randn(3, 100))
    assert x.shape == (3, channels, size, size)
    assert x.abs().max() <= 1.0  # tanh output
    assert disc(x).shape == (3,)


def test_dcgan64_matches_the_seed_notebook_layout():
    gen = DCGANGenerator(100, (3, 64, 64))
    convs = [m for m in gen.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [c.out_channels for c in convs] == [512, 256, 128, 64, 3]
    disc = DCGANDiscriminator((3, 64, 64))
    assert [c.out_channels for c in disc.modules() if isinstance(c, nn.Conv2d)] == [64, 128, 256, 512, 1]


def test_dcgan28_matches_the_lecture_mnist_layout():
    gen = DCGANGenerator(100, (1, 28, 28))
    convs = [m for m in gen.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(c.out_channels, c.kernel_size[0]) for c in convs] == [(128, 7), (64, 4), (1, 4)]


def test_critic_norm_choice():
    assert has_batch_norm(DCGANDiscriminator((1, 28, 28)))
    for norm in ("layer", "instance", "none"):
        assert not has_batch_norm(DCGANDiscriminator((1, 28, 28), norm=norm))


@pytest.mark.parametrize("shape, match", [((2,), "needs image data"), ((1, 28, 32), "square"),
                                          ((1, 30, 30), "4 to 7 times a power")])
def test_dcgan_rejects_sizes_it_cannot_make(shape, match):
    with pytest.raises(ValueError, match=match):
        DCGANGenerator(10, shape)


def test_mlp_handles_vectors_and_flattened_images():
    assert MLPGenerator(10, (1,), hidden=(50, 50))(torch.randn(5, 10)).shape == (5, 1)
    gen = MLPGenerator(100, (1, 28, 28), hidden=(256, 512, 1024), activation="leaky_relu", output="tanh")
    img = gen(torch.randn(5, 100))
    assert img.shape == (5, 1, 28, 28)
    disc = MLPDiscriminator((1, 28, 28), hidden=(1024, 512, 256), activation="leaky_relu", dropout=0.3)
    assert disc(img).shape == (5,)
