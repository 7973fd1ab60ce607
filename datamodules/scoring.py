"""Scores for samples of the synthetic sets, by the protocols papers report.

Mixtures of Gaussians follow VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018): draw 2,500
samples; a sample is *high quality* when it lies within 3 standard deviations of its nearest mean; a mode is
*covered* when at least one high-quality sample has it as its nearest mean; the *reverse KL* is
KL(p_model || uniform) of the nearest-mean histogram of the high-quality samples.  Real data score about
98.9% high quality on the 2-D sets (a 2-D Gaussian puts 1 - exp(-4.5) of its mass within 3 sigma).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

PROTOCOL_SAMPLES = 2_500


def mixture_scores(samples: Tensor, means: Tensor, std: float, sigmas: float = 3.0) -> dict[str, float]:
    """Modes covered, fraction of high-quality samples and reverse KL for samples of a Gaussian mixture."""
    samples = samples.detach().float().reshape(len(samples), -1).cpu()
    dist, nearest = torch.cdist(samples, means.float().cpu()).min(dim=1)
    good = dist <= sigmas * std
    counts = torch.bincount(nearest[good], minlength=len(means)).double()
    if counts.sum() == 0:
        reverse_kl = math.inf  # no high-quality sample at all: the model distribution puts no mass on any mode
    else:
        p = counts[counts > 0] / counts.sum()
        reverse_kl = float((p * torch.log(p * len(means))).sum())
    return {"modes": float((counts > 0).sum()), "high_quality": float(good.double().mean()), "reverse_kl": reverse_kl}


def gaussian_1d_scores(samples: Tensor, mean: float = 0.0, std: float = 1.0) -> dict[str, float]:
    """Wasserstein-1 distance and Kolmogorov-Smirnov statistic to N(mean, std^2), and the fitted mean and std."""
    x = torch.sort(samples.detach().double().reshape(-1).cpu()).values
    n = len(x)
    # W1 between the empirical and the target distribution: the integral of |F_n^-1(u) - F^-1(u)| over u,
    # evaluated at the midpoints of the n quantile bins.
    u = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    w1 = float((x - (mean + std * torch.special.ndtri(u))).abs().mean())
    cdf = 0.5 * (1 + torch.erf((x - mean) / (std * math.sqrt(2))))
    steps = torch.arange(n + 1, dtype=torch.float64) / n
    ks = float(torch.maximum((steps[1:] - cdf).abs(), (cdf - steps[:-1]).abs()).max())
    return {"w1": w1, "ks": ks, "mean": float(x.mean()), "std": float(x.std())}



def own_mode_shares(samples: Tensor, labels: Tensor, means: Tensor, std: float, sigmas: float = 3.0) -> list[float]:
    """For a conditional model: per class (the mode's index), the share of its samples within ``sigmas`` std of
    its *own* mode (NaN for a class with no samples)."""
    samples = samples.detach().float().reshape(len(samples), -1).cpu()
    labels = labels.detach().long().cpu()
    good = (samples - means.float().cpu()[labels]).norm(dim=1) <= sigmas * std
    return [float(good[labels == c].double().mean()) if bool((labels == c).any()) else math.nan
            for c in range(len(means))]


def own_mode_scores(samples: Tensor, labels: Tensor, means: Tensor, std: float) -> dict[str, float]:
    """``own_mode_min`` (the worst class's share of samples on its own mode) and ``own_mode_mean``."""
    shares = [v for v in own_mode_shares(samples, labels, means, std) if not math.isnan(v)]
    return {"own_mode_min": min(shares), "own_mode_mean": sum(shares) / len(shares)}
