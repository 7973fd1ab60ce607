"""The mode-coverage protocol and 1-D scores on inputs with known answers."""

import math

import torch
from torch.testing import assert_close

from datamodules import Gaussian1D, Grid2D, Ring2D
from datamodules.scoring import gaussian_1d_scores, mixture_scores


def test_real_ring_and_grid_score_as_published():
    for dm, modes in ((Ring2D(), 8), (Grid2D(), 25)):
        s = dm.score(dm.draw(2500, torch.Generator().manual_seed(3)))
        assert s["modes"] == modes
        assert abs(s["high_quality"] - (1 - math.exp(-4.5))) < 0.01  # 98.9% of a 2-D Gaussian within 3 sigma
        assert s["reverse_kl"] < 0.02


def test_seed_ring_geometry():
    ring = Ring2D()
    assert_close(ring.means.norm(dim=1), torch.full((8,), 2 / 1.414))
    assert abs(ring.std - 0.02 / 1.414) < 1e-9


def test_collapsed_and_lost_samples():
    means = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    one_mode = mixture_scores(torch.zeros(100, 2), means, std=0.1)
    assert one_mode == {"modes": 1.0, "high_quality": 1.0, "reverse_kl": math.log(2)}
    lost = mixture_scores(torch.full((100, 2), 5.0), means, std=0.1)
    assert lost["modes"] == 0 and lost["high_quality"] == 0 and lost["reverse_kl"] == math.inf


def test_gaussian_1d_scores():
    gen = torch.Generator().manual_seed(0)
    good = gaussian_1d_scores(torch.randn(20000, generator=gen))
    assert good["w1"] < 0.02 and good["ks"] < 0.02
    shifted = gaussian_1d_scores(torch.randn(20000, generator=gen) + 1.0)
    assert abs(shifted["w1"] - 1.0) < 0.03  # W1 between N(1,1) and N(0,1) is exactly 1
    assert abs(shifted["mean"] - 1.0) < 0.03
    assert Gaussian1D(mean=2.0, std=0.5).score(2.0 + 0.5 * torch.randn(5000, 1, generator=gen))["w1"] < 0.03
