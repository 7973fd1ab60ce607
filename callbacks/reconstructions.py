"""Fixed real images beside the model's reconstructions of them (BiGAN's G(E(x)), BEGAN's autoencoder)."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torchvision.utils import save_image

from .base import GeneratorStepCallback, real_samples
from .protocols import Reconstructor
from .samples import log_image, to_grid


class Reconstructions(GeneratorStepCallback):
    """Pairs of rows, originals above their reconstructions, from the same real images for the whole run, every
    ``every_n_steps`` generator steps and at the end; PNGs go to ``<run folder>/reconstructions/``.

    For BiGAN (Donahue et al. 2017) a reconstruction that keeps the digit's class shows that the encoder
    inverts the generator; for BEGAN it shows what the autoencoder discriminator has learnt of real data.
    """

    requires = Reconstructor

    def __init__(
        self,
        every_n_steps: int = 1000,  # generator steps between pictures
        num_images: int = 32,       # real images shown (each with its reconstruction)
        nrow: int = 8,              # images per row
        seed: int = 0,              # which real images: the datamodule's fixed draw for this seed
        save_png: bool = True,      # also write reconstructions/step_0001000.png
    ) -> None:
        super().__init__(every_n_steps)
        if num_images < 1 or num_images % nrow:
            raise ValueError(f"Reconstructions.num_images={num_images} must be a positive multiple of nrow={nrow}, "
                             "so that every row of originals sits above its row of reconstructions.")
        self.num_images, self.nrow, self.seed, self.save_png = num_images, nrow, seed, save_png

    def run(self, trainer: L.Trainer, pl_module: Any) -> None:
        if len(pl_module.data_shape) != 3 or not trainer.is_global_zero:
            return  # images only; rank 0 draws
        real = real_samples(trainer, self.num_images, self.seed).to(pl_module.device)
        with torch.no_grad():
            rebuilt = pl_module.reconstruct(real)
        n = len(real) - len(real) % self.nrow  # a datamodule with fewer images than asked gives whole rows only
        rows = torch.stack([real[:n].unflatten(0, (-1, self.nrow)), rebuilt[:n].unflatten(0, (-1, self.nrow))], 1)
        step = pl_module.g_steps
        grid = to_grid(rows.flatten(0, 2), self.nrow)  # (rows, 2, nrow, C, H, W): original row, then its rebuild
        log_image(trainer, "samples/reconstructions", grid, step,
                  caption=f"generator step {step}: real (odd rows) and reconstructed (even rows)")
        if self.save_png:
            save_image(grid, self.output_path(trainer, "reconstructions", step))
