"""Image grids of generated samples from fixed noise, on disk and in the logger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor
from torchvision.utils import make_grid, save_image

from .wandb_logger import STEP_METRIC, WandbLogger


def to_grid(images: Tensor, nrow: int) -> Tensor:
    """Images in [-1, 1] -> one (3 or 1, H, W) grid in [0, 1] (torchvision's make_grid)."""
    return make_grid(images.detach().float().cpu(), nrow=nrow, normalize=True, value_range=(-1, 1), padding=2)


def log_image(trainer: L.Trainer, key: str, image: Tensor, step: int, caption: str | None = None) -> None:
    """Send an image in [0, 1] to every logger that takes images (W&B; TensorBoard-style ``add_image``)."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            import wandb

            array = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).squeeze(-1).numpy()
            logger.experiment.log({key: wandb.Image(array, caption=caption), STEP_METRIC: step})
        elif hasattr(getattr(logger, "experiment", None), "add_image"):
            logger.experiment.add_image(key, image, global_step=step)


class SampleGrid(Callback):
    """A grid of samples from the same noise vectors for the whole run (resumes included), every
    ``every_n_steps`` generator steps and at the end of training; PNGs go to ``<run folder>/samples/``."""

    def __init__(
        self,
        every_n_steps: int = 500,  # generator steps between grids
        num_samples: int = 64,     # images in the grid
        nrow: int = 8,             # images per row
        seed: int = 1234,          # the fixed noise is drawn from its own generator, not the training RNG
        save_png: bool = True,     # also write samples/step_000500.png
    ) -> None:
        if every_n_steps < 1:
            raise ValueError(f"SampleGrid.every_n_steps={every_n_steps} must be >= 1")
        self.every_n_steps, self.num_samples, self.nrow, self.seed, self.save_png = (
            every_n_steps, num_samples, nrow, seed, save_png)
        self.noise: Tensor | None = None
        self._last_step = -1

    def fixed_noise(self, pl_module: Any) -> Tensor:
        if self.noise is None:
            gen = torch.Generator().manual_seed(self.seed)
            self.noise = torch.randn(self.num_samples, pl_module.latent_dim, generator=gen)
        return self.noise

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        step = pl_module.g_steps
        if step % self.every_n_steps == 0 and step != self._last_step:
            self.draw(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        if pl_module.g_steps != self._last_step:
            self.draw(trainer, pl_module)

    def draw(self, trainer: L.Trainer, pl_module: Any) -> Path | None:
        """Make, save and log the grid for the current generator step; returns the PNG path (rank 0)."""
        self._last_step = step = pl_module.g_steps
        if len(pl_module.data_shape) != 3:
            return None  # not images: see ToyDataPlot for vectors
        images = pl_module.sample(z=self.fixed_noise(pl_module))  # every rank samples: cheap, keeps ranks in step
        if not trainer.is_global_zero:
            return None
        grid = to_grid(images, self.nrow)
        log_image(trainer, "samples/grid", grid, step, caption=f"generator step {step}")
        if not self.save_png:
            return None
        path = Path(trainer.default_root_dir, "samples", f"step_{step:07d}.png")
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, path)
        return path

    def state_dict(self) -> dict[str, Any]:
        return {"noise": self.noise, "last_step": self._last_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.noise, self._last_step = state_dict["noise"], state_dict["last_step"]
