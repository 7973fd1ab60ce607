"""Where SAGAN's generator attends: for one query position, its attention map over the feature map."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.utils import save_image

from gan_modules.networks.attention import SelfAttention2d

from .base import GeneratorStepCallback
from .protocols import NoiseSampler
from .samples import log_image, to_grid


class AttentionMap(GeneratorStepCallback):
    """Samples from fixed noise (top row) and, below each, the generator's first self-attention block's map for
    one query position (red, the query marked in green), as in Zhang et al. 2019's figure 5; every
    ``every_n_steps`` generator steps and at the end, PNGs in ``<run folder>/attention/``."""

    requires = NoiseSampler

    def __init__(
        self,
        every_n_steps: int = 1000,                  # generator steps between pictures
        num_samples: int = 8,                       # samples shown
        query: tuple[float, float] = (0.5, 0.5),    # the query position as fractions of (height, width)
        seed: int = 4321,                           # the fixed noise's own generator
        save_png: bool = True,                      # also write attention/step_0001000.png
    ) -> None:
        super().__init__(every_n_steps)
        if not all(0.0 <= q <= 1.0 for q in query):
            raise ValueError(f"AttentionMap.query={query}: both fractions must lie in [0, 1]")
        self.num_samples, self.query, self.seed, self.save_png = num_samples, tuple(query), seed, save_png

    def setup(self, trainer: L.Trainer, pl_module: Any, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        generator = getattr(pl_module, "generator", None)
        if not isinstance(generator, nn.Module) or not any(isinstance(m, SelfAttention2d) for m in generator.modules()):
            raise TypeError(f"AttentionMap: {type(pl_module).__name__}'s generator has no SelfAttention2d block; give "
                            "it one (model.init_args.generator.init_args.attention: <side>) or remove the callback.")

    def run(self, trainer: L.Trainer, pl_module: Any) -> None:
        if len(pl_module.data_shape) != 3 or not trainer.is_global_zero:
            return
        block = next(m for m in pl_module.generator.modules() if isinstance(m, SelfAttention2d))
        maps: list[tuple[Tensor, int, int]] = []  # beta and the feature map's (H, W)
        handle = block.register_forward_hook(
            lambda module, inputs, output: maps.append((module.attention(inputs[0]), *inputs[0].shape[2:])))
        try:
            noise = torch.randn(self.num_samples, pl_module.latent_dim,
                                generator=torch.Generator().manual_seed(self.seed))
            images = pl_module.sample(z=noise, use_ema=False).float().cpu()  # the hooked network, not an EMA copy
        finally:
            handle.remove()
        beta, h, w = maps[0]
        row, col = (min(int(q * s), s - 1) for q, s in zip(self.query, (h, w), strict=True))
        heat = beta[:, row * w + col].float().cpu().view(-1, 1, h, w)
        heat = heat / heat.amax((2, 3), keepdim=True).clamp_min(1e-12)
        size = images.shape[-2:]
        heat = F.interpolate(heat, size=size, mode="nearest")[:, 0]
        gray = ((images + 1) / 2).mean(1)
        overlay = torch.stack([0.4 * gray + 0.6 * heat, 0.4 * gray, 0.4 * gray], 1)
        y, x = (min(int(q * s), s - 1) for q, s in zip(self.query, size, strict=True))
        overlay[:, :, y, x] = torch.tensor([0.0, 1.0, 0.0]).view(1, 3)
        pictures = torch.cat([((images + 1) / 2).expand(-1, 3, -1, -1), overlay]) * 2 - 1
        step = pl_module.g_steps
        grid = to_grid(pictures, self.num_samples)
        log_image(trainer, "samples/attention", grid, step,
                  caption=f"generator step {step}: samples, and where position {self.query} attends ({h}x{w})")
        if self.save_png:
            save_image(grid, self.output_path(trainer, "attention", step))
