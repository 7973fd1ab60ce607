"""Image grids of generated samples from fixed noise, on disk and in the logger."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor
from torchvision.utils import make_grid, save_image

from .base import GeneratorStepCallback
from .protocols import NoiseSampler, conditional
from .wandb_logger import STEP_METRIC, WandbLogger


def to_grid(images: Tensor, nrow: int) -> Tensor:
    """Images in [-1, 1] -> one (3, H, W) grid in [0, 1] (torchvision's make_grid)."""
    return make_grid(images.detach().float().cpu(), nrow=nrow, normalize=True, value_range=(-1, 1), padding=2)


def log_image(trainer: L.Trainer, key: str, image: Tensor, step: int, caption: str | None = None) -> None:
    """Send an image in [0, 1], (C, H, W), to every logger that takes images (W&B; TensorBoard's add_image)."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            import wandb

            array = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
            logger.log_metrics({key: wandb.Image(array, caption=caption), STEP_METRIC: step})  # _step = g step
        elif hasattr(getattr(logger, "experiment", None), "add_image"):
            logger.experiment.add_image(key, image, global_step=step)


class SampleGrid(GeneratorStepCallback):
    """A grid of samples from the same noise vectors for the whole run (resumes included), every
    ``every_n_steps`` generator steps and at the end; PNGs go to ``<run folder>/samples/``.

    For a conditional model the grid has one row per class, the same ``nrow`` noise vectors in every row, so a
    column shows one noise vector drawn as each class."""

    requires = NoiseSampler

    def __init__(
        self,
        every_n_steps: int = 500,  # generator steps between grids
        num_samples: int = 64,     # images in the grid
        nrow: int = 8,             # images per row
        seed: int = 1234,          # the fixed noise comes from its own generator, not the training RNG
        save_png: bool = True,     # also write samples/step_0000500.png
    ) -> None:
        super().__init__(every_n_steps)
        self.num_samples, self.nrow, self.seed, self.save_png = num_samples, nrow, seed, save_png
        self.noise: Tensor | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        self.fixed_noise(pl_module)  # drawn now, so even the first checkpoint carries it

    def fixed_noise(self, pl_module: Any) -> Tensor:
        if self.noise is None:
            gen = torch.Generator().manual_seed(self.seed)
            self.noise = torch.randn(self.num_samples, pl_module.latent_dim, generator=gen)
        return self.noise

    def run(self, trainer: L.Trainer, pl_module: Any) -> None:
        if len(pl_module.data_shape) != 3 or not trainer.is_global_zero:
            return  # images only (see ToyDataPlot for vectors); rank 0 draws
        step = pl_module.g_steps
        z, labels = self.fixed_noise(pl_module), None
        if conditional(pl_module):
            row, classes = z[: self.nrow], pl_module.num_classes
            z, labels = row.repeat(classes, 1), torch.arange(classes).repeat_interleave(len(row))
        grid = to_grid(pl_module.sample(z=z, labels=labels) if labels is not None else pl_module.sample(z=z),
                       self.nrow)
        log_image(trainer, "samples/grid", grid, step, caption=f"generator step {step}")
        if self.save_png:
            save_image(grid, self.output_path(trainer, "samples", step))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "noise": self.noise}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.noise = state_dict.get("noise")
