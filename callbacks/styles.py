"""Pictures of a style-based generator: a truncation strip and a style-mixing grid (Karras et al. 2019, figures
3 and 8), on disk and in the logger."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torchvision.utils import save_image

from .base import GeneratorStepCallback
from .protocols import StyleSampler
from .samples import log_image, to_grid


def truncation_strip(module: Any, z: Tensor, psis: Sequence[float]) -> Tensor:
    """One row per latent, one column per psi, constant noise: (rows * len(psis), C, H, W) images."""
    columns = [module.sample(z=z, truncation_psi=psi, noise_mode="const").float().cpu() for psi in psis]
    return torch.stack(columns, 1).flatten(0, 1)


def style_mixing_grid(module: Any, z_rows: Tensor, z_columns: Tensor, crossover: int) -> Tensor:
    """A (rows + 1) x (columns + 1) grid: the column latents' own images along the top, the row latents' down the
    left, and in cell (r, c) coarse styles (layers < crossover) from row r with the rest from column c."""
    rows, columns = len(z_rows), len(z_columns)
    top = module.style_mix(z_columns, z_columns, 0).float().cpu()
    left = module.style_mix(z_rows, z_rows, 0).float().cpu()
    cells = module.style_mix(z_rows.repeat_interleave(columns, 0), z_columns.repeat(rows, 1), crossover).float().cpu()
    blank = torch.full_like(top[:1], -1.0)  # black corner
    grid = [torch.cat([blank, top])]
    for r in range(rows):
        grid.append(torch.cat([left[r : r + 1], cells[r * columns : (r + 1) * columns]]))
    return torch.cat(grid)


class TruncationStrip(GeneratorStepCallback):
    """The same latents at psi 1, 0.7, 0.5 and 0 (rows: latents, columns: psi), every ``every_n_steps`` generator
    steps and at the end: ``samples/truncation`` and ``<run folder>/truncation/step_*.png``."""

    requires = StyleSampler

    def __init__(
        self,
        every_n_steps: int = 1000,                              # generator steps between strips
        psis: Sequence[float] = (1.0, 0.7, 0.5, 0.0),           # one column each
        rows: int = 6,                                          # latents, one row each
        seed: int = 2024,                                       # the latents come from their own generator
    ) -> None:
        super().__init__(every_n_steps)
        self.psis, self.rows, self.seed = list(psis), rows, seed

    def run(self, trainer: L.Trainer, pl_module: Any) -> None:
        if not trainer.is_global_zero:
            return
        z = torch.randn(self.rows, pl_module.latent_dim, generator=torch.Generator().manual_seed(self.seed))
        grid = to_grid(truncation_strip(pl_module, z, self.psis), len(self.psis))
        step = pl_module.g_steps
        log_image(trainer, "samples/truncation", grid, step, caption=f"psi {self.psis} (columns), step {step}")
        save_image(grid, self.output_path(trainer, "truncation", step))


class StyleMixingGrid(GeneratorStepCallback):
    """Coarse styles from each row's latent, the rest from each column's, every ``every_n_steps`` generator steps
    and at the end: ``samples/style_mixing`` and ``<run folder>/style_mixing/step_*.png``."""

    requires = StyleSampler

    def __init__(
        self,
        every_n_steps: int = 1000,   # generator steps between grids
        rows: int = 4,               # latents giving the coarse styles
        columns: int = 6,            # latents giving the fine styles
        crossover: int = 3,          # layers < crossover are coarse (3: the 4x4 and 8x8 layers)
        seed: int = 2025,            # the latents come from their own generator
    ) -> None:
        super().__init__(every_n_steps)
        if crossover < 0:
            raise ValueError(f"StyleMixingGrid.crossover={crossover}: must be >= 0.")
        self.rows, self.columns, self.crossover, self.seed = rows, columns, crossover, seed

    def setup(self, trainer: L.Trainer, pl_module: Any, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if self.crossover > pl_module.num_ws:
            raise ValueError(f"StyleMixingGrid.crossover={self.crossover}: this generator takes {pl_module.num_ws} "
                             f"styles; choose a crossover in [0, {pl_module.num_ws}].")

    def run(self, trainer: L.Trainer, pl_module: Any) -> None:
        if not trainer.is_global_zero:
            return
        gen = torch.Generator().manual_seed(self.seed)
        z_rows = torch.randn(self.rows, pl_module.latent_dim, generator=gen)
        z_columns = torch.randn(self.columns, pl_module.latent_dim, generator=gen)
        grid = to_grid(style_mixing_grid(pl_module, z_rows, z_columns, self.crossover), self.columns + 1)
        step = pl_module.g_steps
        log_image(trainer, "samples/style_mixing", grid, step,
                  caption=f"coarse (layers < {self.crossover}) from rows, fine from columns, step {step}")
        save_image(grid, self.output_path(trainer, "style_mixing", step))
