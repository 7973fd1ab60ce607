"""Differentiable augmentation of everything the discriminator sees, for training on little data.

A discriminator trained on a few thousand images memorises them and its feedback to the generator degrades.
Augmenting only the real images would teach the generator to draw the augmentations; both methods here instead
augment *every* input of D (real, generated, and the penalties' inputs) with differentiable operations, so the
generator's gradient flows back through them. :class:`~gan_modules.gan.GANModule` applies its ``augment``
inside ``critic(x)``, the one path from both players' losses and the penalties to D.

* :class:`DiffAugment` (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"):
  a fixed policy of colour, translation and cutout, applied to every sample at full strength.
* :class:`ADA` (Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data"): flips,
  90-degree rotations, integer translations and colour transforms, each applied to a sample with probability
  ``p``; ``p`` follows the overfitting heuristic r_t = E[sign(D(real))] toward a target (0.6) and is a buffer,
  so checkpoints keep it and a resume continues it.

All random draws use torch's global generator on the images' device, which the harness saves and restores.
The transforms are batched torch ops with one random parameter per sample. torchvision's ``transforms.v2``
functional ops are differentiable too, but take one parameter per call: per sample that is a Python loop, 84 ms
against 10 ms for a forward and backward of 64 MNIST digits with these ops (measured on one CPU thread).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Metrics = dict[str, Tensor]


class Augment(nn.Module, ABC):
    """A differentiable, per-sample random augmentation of a batch of images ``(N, C, H, W)``."""

    @abstractmethod
    def forward(self, x: Tensor) -> Tensor:
        """The batch augmented, each sample with its own random draw."""

    def observe(self, real_scores: Tensor, all_reduce: Callable[[Tensor], Tensor] | None = None) -> Metrics:
        """Called once per discriminator step with D's detached scores of the (augmented) real batch; returns
        values to log. ``all_reduce`` sums a tensor over the processes of a data-parallel run."""
        return {}

    def check_shape(self, data_shape: tuple[int, ...]) -> None:
        """Refuse data that is not an image, naming the setting."""
        if len(data_shape) != 3:
            raise ValueError(f"model.augment ({type(self).__name__}) transforms images of shape (C, H, W), but the "
                             f"data's samples have shape {data_shape}; set model.init_args.augment: null for "
                             "non-image data.")


# ---------------------------------------------------------------------------------------------- DiffAugment
def rand_brightness(x: Tensor) -> Tensor:
    """Add one value in [-0.5, 0.5) per sample (Zhao et al. 2020's ``rand_brightness``)."""
    return x + (torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device) - 0.5)


def rand_saturation(x: Tensor) -> Tensor:
    """Scale each pixel's distance from its channel mean by a factor in [0, 2) (identity on one channel)."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device) * 2) + mean


def rand_contrast(x: Tensor) -> Tensor:
    """Scale each image's distance from its mean by a factor in [0.5, 1.5)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device) + 0.5) + mean


def rand_translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    """Shift each image by a whole number of pixels up to ``ratio`` of its size, filling with zeros."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    tx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    b, gy, gx = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(h, device=x.device),
                               torch.arange(w, device=x.device), indexing="ij")
    gy = (gy + ty + 1).clamp(0, h + 1)  # index into the zero-padded image: 0 and h + 1 are the padding
    gx = (gx + tx + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])
    return padded.permute(0, 2, 3, 1)[b, gy, gx].permute(0, 3, 1, 2)


def rand_cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    """Zero one square of ``ratio`` of the image's size per sample, at a random centre (clipped at the edges)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    ox = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    b, gy, gx = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(ch, device=x.device),
                               torch.arange(cw, device=x.device), indexing="ij")
    gy = (gy + oy - ch // 2).clamp(0, h - 1)
    gx = (gx + ox - cw // 2).clamp(0, w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype, device=x.device)
    mask[b, gy, gx] = 0
    return x * mask.unsqueeze(1)


POLICIES: dict[str, list[Callable[[Tensor], Tensor]]] = {
    "color": [rand_brightness, rand_saturation, rand_contrast],
    "translation": [rand_translation],
    "cutout": [rand_cutout],
}


class DiffAugment(Augment):
    """Zhao et al. 2020: the same random colour, translation and cutout for every input of D, at full strength.

    The paper's recommendation with little data is the whole policy, ``color,translation,cutout``.
    """

    def __init__(
        self,
        policy: str = "color,translation,cutout",  # comma-separated parts, applied in this order
    ) -> None:
        super().__init__()
        self.policy = [p.strip() for p in policy.split(",") if p.strip()]
        unknown = [p for p in self.policy if p not in POLICIES]
        if unknown or not self.policy:
            raise ValueError(f"model.augment.policy={policy!r}: the parts must come from {sorted(POLICIES)}, "
                             "comma-separated, e.g. 'color,translation,cutout'.")

    def forward(self, x: Tensor) -> Tensor:
        for part in self.policy:
            for fn in POLICIES[part]:
                x = fn(x)
        return x


# ---------------------------------------------------------------------------------------------- ADA
def _chosen(n: int, p: Tensor, x: Tensor) -> Tensor:
    """Which samples a transform applies to: each with probability ``p``, shape ``(N,)``."""
    return torch.rand(n, device=x.device) < p


def _reflect(index: Tensor, size: int) -> Tensor:
    """Indices folded back into [0, size) by mirroring at the edges (reflect padding without the padding)."""
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    index = index.remainder(period)
    return torch.where(index < size, index, period - index)


class ADA(Augment):
    """Karras et al. 2020, adaptive discriminator augmentation with the paper's 'bgc' transforms that fit small
    images: x-flip, 90-degree rotations, integer translation (up to 0.125 of the size, reflected at the edges),
    brightness, contrast and (RGB only) saturation, each applied to a sample with probability ``p``.

    Every ``interval`` discriminator steps, r_t = E[sign(D(real))] over those steps is compared with ``target``
    and ``p`` moves by ``sign(r_t - target) * images / (speed_kimg * 1000)``, where ``images`` is the number of
    real images seen in the interval: p can go from 0 to 1 in ``speed_kimg`` thousand images (the paper's
    500k). ``p`` stays in [0, 1].
    """

    def __init__(
        self,
        target: float = 0.6,         # the r_t that p steers toward (the paper's 0.6)
        interval: int = 4,           # discriminator steps between adjustments of p
        speed_kimg: float = 500.0,   # thousands of real images for p to go from 0 to 1 (the paper's 500)
        initial_p: float = 0.0,      # p at the start of training
        fixed_p: bool = False,       # keep p at initial_p (no adaptation): the paper's fixed-p baseline
        translation: float = 0.125,  # largest integer translation, as a fraction of the image size
        brightness_std: float = 0.2,  # std of the added brightness
        contrast_std: float = 0.5,   # std of log2 of the contrast factor
        saturation_std: float = 1.0,  # std of log2 of the saturation factor (RGB only)
        xflip: bool = True,          # mirror images (off where a mirror image is another symbol: digits, text)
        rotate: bool = True,         # rotate by multiples of 90 degrees (off for digits, text, upright scenes)
    ) -> None:
        super().__init__()
        if not 0.0 < target < 1.0:
            raise ValueError(f"model.augment.target={target}: must lie in (0, 1); the paper uses 0.6.")
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f"model.augment.interval={interval}: must be an integer >= 1 (the paper adjusts every "
                             "4 discriminator steps).")
        if speed_kimg <= 0:
            raise ValueError(f"model.augment.speed_kimg={speed_kimg}: must be > 0 (the paper uses 500).")
        if not 0.0 <= initial_p <= 1.0:
            raise ValueError(f"model.augment.initial_p={initial_p}: must lie in [0, 1].")
        self.target, self.interval, self.speed_kimg, self.fixed_p = target, interval, speed_kimg, fixed_p
        self.translation, self.brightness_std = translation, brightness_std
        self.contrast_std, self.saturation_std = contrast_std, saturation_std
        self.xflip, self.rotate = xflip, rotate
        # buffers: in the state_dict, so checkpoints hold them and a resume continues the same adaptation
        self.register_buffer("p", torch.tensor(float(initial_p), dtype=torch.float64))
        self.register_buffer("rt", torch.tensor(0.0, dtype=torch.float64))  # the last r_t measured
        self.register_buffer("sign_sum", torch.tensor(0.0, dtype=torch.float64))  # sum of sign(D(real)) so far
        self.register_buffer("seen", torch.tensor(0.0, dtype=torch.float64))  # real scores in the interval so far
        self.steps = 0  # observations in the interval so far: a Python int (no device sync), extra state

    def check_shape(self, data_shape: tuple[int, ...]) -> None:
        super().check_shape(data_shape)
        if self.rotate and data_shape[1] != data_shape[2]:
            raise ValueError(f"model.augment (ADA) rotates by 90 degrees, which needs square images; the data's "
                             f"are {data_shape[1]}x{data_shape[2]}. Resize them, set rotate: false, or use "
                             "DiffAugment.")

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        p = self.p.to(x.device, torch.float32)
        # geometric: x-flip, rotation by a multiple of 90 degrees, integer translation
        flip = _chosen(n, p, x) & (torch.rand(n, device=x.device) < 0.5) & self.xflip
        x = torch.where(flip.view(n, 1, 1, 1), x.flip(3), x)
        quarter = torch.randint(0, 4, (n,), device=x.device) * (_chosen(n, p, x) & self.rotate)
        rotated = x
        for k in (1, 2, 3):
            rotated = torch.where((quarter == k).view(n, 1, 1, 1), torch.rot90(x, k, dims=(2, 3)), rotated)
        x = rotated
        moved = _chosen(n, p, x)
        shift = ((torch.rand(n, 2, device=x.device) * 2 - 1) * self.translation * torch.tensor([h, w], device=x.device))
        shift = shift.round().long() * moved.view(n, 1)
        rows = _reflect(torch.arange(h, device=x.device).view(1, h) - shift[:, :1], h)  # (N, H) source rows
        cols = _reflect(torch.arange(w, device=x.device).view(1, w) - shift[:, 1:], w)  # (N, W) source columns
        x = x.gather(2, rows.view(n, 1, h, 1).expand(n, c, h, w))
        x = x.gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w))
        # colour: brightness, contrast, saturation (around the per-pixel channel mean)
        ones = torch.ones(n, device=x.device, dtype=x.dtype)
        b = torch.randn(n, device=x.device, dtype=x.dtype) * self.brightness_std * _chosen(n, p, x)
        x = x + b.view(n, 1, 1, 1)
        cf = torch.where(_chosen(n, p, x), torch.exp2(torch.randn(n, device=x.device, dtype=x.dtype)
                                                      * self.contrast_std), ones)
        x = x * cf.view(n, 1, 1, 1)
        if c > 1:  # selected by where: mean + (x - mean) * 1 is not exactly x in floating point
            sf = torch.exp2(torch.randn(n, device=x.device, dtype=x.dtype) * self.saturation_std)
            mean = x.mean(dim=1, keepdim=True)
            x = torch.where(_chosen(n, p, x).view(n, 1, 1, 1), mean + (x - mean) * sf.view(n, 1, 1, 1), x)
        return x

    @torch.no_grad()
    def observe(self, real_scores: Tensor, all_reduce: Callable[[Tensor], Tensor] | None = None) -> Metrics:
        """Accumulate sign(D(real)); every ``interval`` calls, move ``p`` by the paper's rule."""
        self.sign_sum += real_scores.detach().sign().sum().to(self.sign_sum)
        self.seen += real_scores.numel()
        self.steps += 1
        if self.steps >= self.interval:
            totals = torch.stack([self.sign_sum, self.seen])
            if all_reduce is not None:  # every process then takes the same step, so p stays equal on all
                totals = all_reduce(totals)
            self.rt.copy_(totals[0] / totals[1])
            if not self.fixed_p:
                adjust = torch.sign(self.rt - self.target) * totals[1] / (self.speed_kimg * 1000)
                self.p.copy_((self.p + adjust).clamp(0.0, 1.0))
            self.sign_sum.zero_()
            self.seen.zero_()
            self.steps = 0
        return {"train/ada_p": self.p.float(), "train/ada_rt": self.rt.float()}

    def get_extra_state(self) -> Tensor:
        """The position inside the adjustment interval, saved with the buffers (a CPU tensor)."""
        return torch.tensor(self.steps)

    def set_extra_state(self, state: Tensor) -> None:
        self.steps = int(state)


__all__ = ["ADA", "POLICIES", "Augment", "DiffAugment"]
