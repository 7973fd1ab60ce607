"""StyleGAN-lite: a style-based generator (Karras et al. 2019) with StyleGAN2's options (Karras et al. 2020).

Generator: a mapping network (8 fully connected layers, learning rate x 0.01) turns z into a style vector w;
the synthesis network starts from a learned 4x4 constant and, per resolution, upsamples and applies 3x3
convolutions, each followed by per-pixel noise with a learned per-channel strength and the layer's style.
Styles enter by AdaIN (``modulation: adain``, the 2019 form) or by weight modulation and demodulation
(``modulation: demod``, StyleGAN2).  ``w_avg``, a moving average of mapped latents kept as a buffer (so it is
in checkpoints), is the centre of the truncation trick.

Discriminator: residual blocks (StyleGAN2's "resnet" D) down to 4x4, minibatch standard deviation, then a
convolution and two fully connected layers.  Every weight in both networks uses the equalized learning rate
(Karras et al. 2018): stored as N(0, 1) and scaled by He's constant at run time, so Adam's step is the same
relative size in every layer.  Images are square, 8 pixels or more, a power of two (32 for padded/resized
MNIST, 64 for CelebA); the generator's output is linear, as in StyleGAN (``StyleGAN.sample`` clamps to
[-1, 1]).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Modulation = Literal["adain", "demod"]
NoiseMode = Literal["random", "const", "none"]
#: leaky ReLU slope and the gain that keeps activations' scale (StyleGAN's "lrelu" with gain sqrt 2)
LRELU_SLOPE, LRELU_GAIN = 0.2, math.sqrt(2.0)


def lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, LRELU_SLOPE) * LRELU_GAIN


def stylegan_layout(data_shape: Sequence[int], network: str) -> tuple[int, int]:
    """(channels, number of doublings from 4x4) for an image shape, or a clear error."""
    if len(data_shape) != 3:
        raise ValueError(f"{network} needs image data of shape (C, H, W), got a sample shape {tuple(data_shape)}.")
    channels, height, width = data_shape
    log2 = math.log2(height) if height > 0 else 0.0
    if height != width or height < 8 or log2 != int(log2):
        raise ValueError(f"{network} makes square images whose side is a power of two >= 8 (32, 64, ...), but the "
                         f"data are {height}x{width}; set the datamodule's image_size (e.g. "
                         "data.init_args.image_size: 32 for MNIST).")
    return channels, int(log2) - 2


def widths(size: int, width: int, max_channels: int) -> dict[int, int]:
    """Channels per resolution: ``width`` at full size, doubling as the resolution halves, capped."""
    return {4 * 2**i: min(max_channels, width * size // (4 * 2**i)) for i in range(int(math.log2(size)) - 1)}


# ---------------------------------------------------------------------------------------- equalized learning rate
class EqualLinear(nn.Module):
    """A linear layer with the equalized learning rate: weights stored as N(0, 1/lr_mul), used times
    lr_mul/sqrt(fan_in); the bias stored divided by lr_mul.  ``lr_mul`` < 1 slows the layer down (the mapping
    network's 0.01) without changing its initial function."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activation: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), bias_init / lr_mul)) if bias else None
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.lr_mul, self.activation = lr_mul, activation

    def effective_weight(self) -> Tensor:
        return self.weight * self.weight_gain

    def forward(self, x: Tensor) -> Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        x = F.linear(x, self.effective_weight(), bias)
        return lrelu(x) if self.activation else x


class EqualConv2d(nn.Module):
    """A convolution (stride 1, same padding) with the equalized learning rate: N(0, 1) weights used times
    1/sqrt(fan_in)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.weight_gain, self.bias, padding=self.weight.shape[-1] // 2)


# ---------------------------------------------------------------------------------------- style injection
def adain(x: Tensor, scale: Tensor, bias: Tensor, eps: float = 1e-8) -> Tensor:
    """Adaptive instance norm (Huang & Belongie 2017; StyleGAN 2019): each sample's channel normalised to mean
    0 and std 1 over (H, W), then given the style's std ``scale`` and mean ``bias`` (both (N, C))."""
    x = x - x.mean((2, 3), keepdim=True)
    x = x * torch.rsqrt(x.square().mean((2, 3), keepdim=True) + eps)
    return x * scale[:, :, None, None] + bias[:, :, None, None]


def modulated_weight(weight: Tensor, styles: Tensor, demodulate: bool = True, eps: float = 1e-8) -> Tensor:
    """StyleGAN2's per-sample weights: ``weight`` (O, I, k, k) scaled per input channel by ``styles`` (N, I),
    then, with ``demodulate``, each output channel's weights divided by their L2 norm (so unit-variance inputs
    give unit-variance outputs, replacing AdaIN's normalisation of the activations).  Returns (N, O, I, k, k)."""
    w = weight.unsqueeze(0) * styles[:, None, :, None, None]
    if demodulate:
        w = w * torch.rsqrt(w.square().sum((2, 3, 4), keepdim=True) + eps)
    return w


def upsample2x(x: Tensor) -> Tensor:
    """Bilinear 2x upsampling (smooth, in place of StyleGAN's nearest + blur)."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class NoiseInjection(nn.Module):
    """Per-pixel Gaussian noise, one map per sample, scaled by a learned per-channel strength (zero at first).

    ``noise_mode``: ``random`` draws fresh noise (training), ``const`` uses a fixed map kept as a buffer (the
    same image for the same latent; comparisons such as truncation strips use it), ``none`` adds nothing."""

    def __init__(self, channels: int, resolution: int) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(channels))
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))

    def forward(self, x: Tensor, noise_mode: NoiseMode = "random") -> Tensor:
        if noise_mode == "none":
            return x
        if noise_mode == "const":
            noise = self.noise_const
        else:
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        return x + noise * self.strength.view(1, -1, 1, 1)


class StyledConv(nn.Module):
    """(upsample) 3x3 conv -> noise -> bias, lrelu, with the style w injected by AdaIN after it or by
    modulating the convolution's weights."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, modulation: Modulation,
                 upsample: bool = False, kernel_size: int = 3) -> None:
        super().__init__()
        self.modulation, self.upsample = modulation, upsample
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise = NoiseInjection(out_channels, resolution)
        if modulation == "adain":  # style -> (std, mean) per output channel; std starts at 1
            self.affine = EqualLinear(w_dim, 2 * out_channels, bias_init=0.0)
            with torch.no_grad():
                self.affine.bias[:out_channels] = 1.0
        elif modulation == "demod":  # style -> scale per input channel, starting at 1
            self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        else:
            raise ValueError(f"modulation={modulation!r}: choose adain (StyleGAN) or demod (StyleGAN2).")

    def forward(self, x: Tensor, w: Tensor, noise_mode: NoiseMode = "random") -> Tensor:
        if self.upsample:
            x = upsample2x(x)
        weight = self.weight * self.weight_gain
        if self.modulation == "demod":
            x = modulated_conv2d(x, weight, self.affine(w), demodulate=True)
        else:
            x = F.conv2d(x, weight, padding=weight.shape[-1] // 2)
        x = lrelu(self.noise(x, noise_mode) + self.bias.view(1, -1, 1, 1))
        if self.modulation == "adain":
            scale, bias = self.affine(w).chunk(2, dim=1)
            x = adain(x, scale, bias)
        return x


def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, demodulate: bool, eps: float = 1e-8) -> Tensor:
    """A convolution with each sample's modulated (and demodulated) weights, computed as scale inputs ->
    shared convolution -> scale outputs: the same maths as convolving with :func:`modulated_weight`'s per-sample
    weights (StyleGAN2's ``fused_modconv=False`` path), and much faster on a CPU than a grouped convolution."""
    x = F.conv2d(x * styles[:, :, None, None], weight, padding=weight.shape[-1] // 2)
    if demodulate:  # 1 / ||w_o * s||, per sample and output channel
        coefficients = torch.rsqrt(torch.einsum("oikl,ni->no", weight.square(), styles.square()) + eps)
        x = x * coefficients[:, :, None, None]
    return x


class ToRGB(nn.Module):
    """1x1 convolution to image channels: plain under AdaIN, modulated without demodulation under StyleGAN2."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, modulation: Modulation) -> None:
        super().__init__()
        self.modulated = modulation == "demod"
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.weight_gain = 1 / math.sqrt(in_channels)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        if self.modulated:
            self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)

    def forward(self, x: Tensor, w: Tensor | None) -> Tensor:
        weight = self.weight * self.weight_gain
        x = modulated_conv2d(x, weight, self.affine(w), demodulate=False) if self.modulated else F.conv2d(x, weight)
        return x + self.bias.view(1, -1, 1, 1)


# ---------------------------------------------------------------------------------------- generator
class MappingNetwork(nn.Module):
    """z -> pixel norm -> ``layers`` fully connected layers with leaky ReLU -> w, at ``lr_mul`` x the learning rate."""

    def __init__(self, latent_dim: int, w_dim: int, layers: int = 8, lr_mul: float = 0.01) -> None:
        super().__init__()
        sizes = [latent_dim] + [w_dim] * layers
        self.net = nn.Sequential(*[EqualLinear(a, b, lr_mul=lr_mul, activation=True)
                                   for a, b in pairwise(sizes)])

    def forward(self, z: Tensor) -> Tensor:
        z = z * torch.rsqrt(z.square().mean(1, keepdim=True) + 1e-8)  # pixel norm: z on the sphere
        return self.net(z)


class StyleGANGenerator(nn.Module):
    """z -> mapping -> w (one per styled layer) -> synthesis from a learned 4x4 constant -> image."""

    def __init__(
        self,
        latent_dim: int,                      # size of z (given by the GAN module)
        data_shape: Sequence[int],            # (C, H, W), H = W a power of two >= 8; linked from the datamodule
        w_dim: int = 128,                     # size of the style vector w (StyleGAN: 512)
        mapping_layers: int = 8,              # fully connected layers of the mapping network
        mapping_lr_mul: float = 0.01,         # the mapping network's learning-rate multiplier
        width: int = 32,                      # channels at full resolution, doubling per halving ...
        max_channels: int = 128,              # ... up to this many
        modulation: Modulation = "adain",     # how styles enter: adain (StyleGAN) or demod (StyleGAN2)
    ) -> None:
        super().__init__()
        channels, doublings = stylegan_layout(data_shape, type(self).__name__)
        size = 4 * 2**doublings
        ch = widths(size, width, max_channels)
        self.w_dim, self.modulation = w_dim, modulation
        self.mapping = MappingNetwork(latent_dim, w_dim, mapping_layers, mapping_lr_mul)
        self.const = nn.Parameter(torch.randn(1, ch[4], 4, 4))
        layers = [StyledConv(ch[4], ch[4], w_dim, 4, modulation)]
        for i in range(1, doublings + 1):
            r = 4 * 2**i
            layers += [StyledConv(ch[r // 2], ch[r], w_dim, r, modulation, upsample=True),
                       StyledConv(ch[r], ch[r], w_dim, r, modulation)]
        self.layers = nn.ModuleList(layers)
        self.to_rgb = ToRGB(ch[size], channels, w_dim, modulation)
        #: styles one image takes: one per styled convolution, plus one for the modulated ToRGB
        self.num_ws = len(layers) + (1 if modulation == "demod" else 0)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                noise_mode: NoiseMode = "random") -> Tensor:
        ws = self.truncate(self.broadcast(self.mapping(z)), truncation_psi, truncation_cutoff)
        return self.synthesis(ws, noise_mode)

    def broadcast(self, w: Tensor) -> Tensor:
        """(N, w_dim) -> (N, num_ws, w_dim): the same style for every layer."""
        return w.unsqueeze(1).expand(-1, self.num_ws, -1)

    def truncate(self, ws: Tensor, psi: float = 1.0, cutoff: int | None = None) -> Tensor:
        """The truncation trick: w_avg + psi (w - w_avg) in the first ``cutoff`` layers (all when None)."""
        if psi == 1.0:
            return ws
        n = self.num_ws if cutoff is None else cutoff
        truncated = self.w_avg + psi * (ws[:, :n] - self.w_avg)
        return torch.cat([truncated.to(ws.dtype), ws[:, n:]], dim=1)  # under autocast ws may be bf16/fp16

    @torch.no_grad()
    def update_w_avg(self, w: Tensor, beta: float) -> None:
        """Move ``w_avg`` towards the mean of a batch of mapped latents: w_avg <- beta w_avg + (1 - beta) mean(w)."""
        self.w_avg.copy_(w.detach().float().mean(0).lerp(self.w_avg, beta))  # float: w is bf16/fp16 under autocast

    def synthesis(self, ws: Tensor, noise_mode: NoiseMode = "random") -> Tensor:
        """(N, num_ws, w_dim) styles -> images."""
        assert ws.shape[1:] == (self.num_ws, self.w_dim), f"ws of shape {tuple(ws.shape)}"
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        for i, layer in enumerate(self.layers):
            x = layer(x, ws[:, i], noise_mode)
        return self.to_rgb(x, ws[:, -1] if self.modulation == "demod" else None)


# ---------------------------------------------------------------------------------------- discriminator
def minibatch_stddev(x: Tensor, group_size: int = 4, eps: float = 1e-8) -> Tensor:
    """Append one feature map: the standard deviation of each feature over a group of samples, averaged over
    features and pixels (Karras et al. 2018), so D can see a batch's lack of variety.  The group is the largest
    divisor of the batch size that is <= ``group_size``; sample i falls in group i mod (N / G)."""
    n, c, h, w = x.shape
    g = min(group_size, n)
    while n % g:
        g -= 1
    y = x.reshape(g, -1, c, h, w)
    y = (y - y.mean(0)).square().mean(0).add(eps).sqrt()  # (N/G, C, H, W)
    y = y.mean((1, 2, 3)).view(-1, 1, 1, 1).repeat(g, 1, h, w)
    return torch.cat([x, y], dim=1)


class DiscriminatorBlock(nn.Module):
    """Residual block (StyleGAN2): two 3x3 convs and a 2x average pool, plus a 1x1 skip, summed / sqrt 2."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = EqualConv2d(in_channels, in_channels, 3)
        self.conv2 = EqualConv2d(in_channels, out_channels, 3)
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        skip = self.skip(F.avg_pool2d(x, 2))
        x = F.avg_pool2d(lrelu(self.conv2(lrelu(self.conv1(x)))), 2)
        return (x + skip) / math.sqrt(2.0)


class StyleGANDiscriminator(nn.Module):
    """image -> 1x1 from-RGB -> residual blocks down to 4x4 -> minibatch std -> conv, fc, fc -> score (N,)."""

    def __init__(
        self,
        data_shape: Sequence[int],  # (C, H, W), H = W a power of two >= 8; linked from the datamodule
        width: int = 32,            # channels at full resolution, doubling per halving ...
        max_channels: int = 128,    # ... up to this many
        mbstd_group: int = 4,       # samples per minibatch-std group (0: no minibatch std)
    ) -> None:
        super().__init__()
        channels, doublings = stylegan_layout(data_shape, type(self).__name__)
        size = 4 * 2**doublings
        ch = widths(size, width, max_channels)
        self.mbstd_group = mbstd_group
        self.from_rgb = EqualConv2d(channels, ch[size], 1)
        self.blocks = nn.Sequential(*[DiscriminatorBlock(ch[r], ch[r // 2])
                                      for r in (size // 2**i for i in range(doublings))])
        self.conv = EqualConv2d(ch[4] + (1 if mbstd_group else 0), ch[4], 3)
        self.fc = EqualLinear(ch[4] * 16, ch[4], activation=True)
        self.out = EqualLinear(ch[4], 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.blocks(lrelu(self.from_rgb(x)))
        if self.mbstd_group:
            x = minibatch_stddev(x, self.mbstd_group)
        x = lrelu(self.conv(x))
        return self.out(self.fc(x.flatten(1))).view(-1)


__all__ = ["EqualConv2d", "EqualLinear", "MappingNetwork", "StyleGANDiscriminator", "StyleGANGenerator", "adain",
           "minibatch_stddev", "modulated_weight"]
