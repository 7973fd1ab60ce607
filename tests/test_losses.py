"""Losses against values known on paper."""

import math

import pytest
import torch
from torch.testing import assert_close

from gan_modules.losses import (
    HingeLoss,
    LeastSquaresLoss,
    MinimaxLoss,
    NonSaturatingLoss,
    WassersteinLoss,
)

ZERO = torch.zeros(4)
LOG2 = torch.tensor(math.log(2.0))


def logit(p: float) -> torch.Tensor:
    return torch.full((4,), math.log(p / (1 - p)))


def test_bce_at_logit_zero_is_log2_per_term():
    loss = NonSaturatingLoss()
    assert_close(loss.discriminator(ZERO, ZERO), 2 * LOG2)
    assert_close(loss.generator(ZERO), LOG2)          # -log D(G(z)) at D = 1/2
    assert_close(MinimaxLoss().generator(ZERO), -LOG2)  # log(1 - D(G(z))) at D = 1/2


def test_bce_matches_sigmoid_plus_bce_of_the_seeds():
    real, fake = torch.randn(16), torch.randn(16)
    expected = torch.nn.functional.binary_cross_entropy(torch.sigmoid(real), torch.ones(16)) + \
        torch.nn.functional.binary_cross_entropy(torch.sigmoid(fake), torch.zeros(16))
    assert_close(NonSaturatingLoss().discriminator(real, fake), expected)


def test_two_sided_label_smoothing_minimum_is_twice_the_entropy_of_the_targets():
    # With targets 0.9 / 0.1 the best discriminator outputs exactly 0.9 and 0.1; its loss is then 2 H(0.9).
    loss = NonSaturatingLoss(real_label=0.9, fake_label=0.1)
    entropy = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    assert_close(loss.discriminator(logit(0.9), logit(0.1)), torch.tensor(2 * entropy))
    # ... and any other output costs more
    assert loss.discriminator(logit(0.99), logit(0.01)) > 2 * entropy


def test_label_outside_unit_interval_is_rejected():
    with pytest.raises(ValueError, match="real_label"):
        NonSaturatingLoss(real_label=1.5)


def test_wasserstein_losses_are_mean_differences():
    real, fake = torch.tensor([2.0, 4.0]), torch.tensor([1.0, 1.0])
    assert_close(WassersteinLoss().discriminator(real, fake), torch.tensor(-2.0))
    assert_close(WassersteinLoss().generator(fake), torch.tensor(-1.0))


def test_hinge_is_zero_beyond_the_margins_and_two_at_zero():
    loss = HingeLoss()
    assert_close(loss.discriminator(torch.tensor([1.0, 3.0]), torch.tensor([-1.0, -5.0])), torch.tensor(0.0))
    assert_close(loss.discriminator(ZERO, ZERO), torch.tensor(2.0))
    assert_close(loss.generator(torch.tensor([0.5, 1.5])), torch.tensor(-1.0))


def test_least_squares_zero_at_optimum():
    loss = LeastSquaresLoss()
    assert_close(loss.discriminator(torch.ones(4), torch.zeros(4)), torch.tensor(0.0))
    assert_close(loss.generator(torch.ones(4)), torch.tensor(0.0))
    # swapped outputs: 1/2 * 1 + 1/2 * 1
    assert_close(loss.discriminator(torch.zeros(4), torch.ones(4)), torch.tensor(1.0))
    # the -1/1/0 coding of Mao et al. has its own optimum
    assert_close(LeastSquaresLoss(a=-1, b=1, c=0).discriminator(torch.ones(4), -torch.ones(4)), torch.tensor(0.0))


def test_minimax_refuses_a_generator_target_it_cannot_use():
    # log(1 - D(G(z))) has no target: a smoothed one would be silently ignored
    with pytest.raises(ValueError, match=r"generator_target=0.9.*NonSaturatingLoss"):
        MinimaxLoss(generator_target=0.9)
    smoothed = MinimaxLoss(real_label=0.9, fake_label=0.1)  # the discriminator's labels still smooth
    assert_close(smoothed.discriminator(logit(0.9), logit(0.1)),
                 NonSaturatingLoss(real_label=0.9, fake_label=0.1).discriminator(logit(0.9), logit(0.1)))
    assert_close(smoothed.generator(ZERO), -LOG2)
