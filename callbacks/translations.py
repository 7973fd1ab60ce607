"""CycleGAN's sample rows: fixed test images of each domain, their translation and its reconstruction."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import lightning as L
import torch
from torch import Tensor
from torchvision.utils import save_image

from .base import GeneratorStepCallback
from .protocols import Observable
from .samples import log_image, to_grid


@runtime_checkable
class Translator(Observable, Protocol):
    """An image-to-image model: ``translate(images, direction)`` with direction ``AtoB`` or ``BtoA``."""

    def translate(self, images: Tensor, direction: str = "AtoB") -> Tensor: ...


class TranslationGrid(GeneratorStepCallback):
    """Rows real A | G(A) | F(G(A)) (``samples/AtoB``) and real B | F(B) | G(F(B)) (``samples/BtoA``) for the
    data module's fixed test images (``test_images(domain, n)``), every ``every_n_steps`` generator steps and at
    the end; PNGs go to ``<run folder>/samples/AtoB/`` and ``samples/BtoA/``."""

    requires = Translator

    def __init__(
        self,
        every_n_steps: int = 1000,  # generator steps between grids
        num_images: int = 8,        # test images (rows) per direction
        save_png: bool = True,      # also write samples/AtoB/step_0001000.png
    ) -> None:
        super().__init__(every_n_steps)
        self.num_images, self.save_png = num_images, save_png

    def setup(self, trainer: L.Trainer, pl_module: Any, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if not hasattr(trainer.datamodule, "test_images"):
            raise TypeError(f"TranslationGrid needs a data module with test_images(domain, n) (an unpaired one, "
                            f"datamodules.unpaired), not {type(trainer.datamodule).__name__}.")

    def rows(self, trainer: L.Trainer, pl_module: Any, source: str) -> Tensor:
        """(3n, C, H, W): for each test image of ``source``, the image, its translation, its reconstruction."""
        there, back = ("AtoB", "BtoA") if source == "A" else ("BtoA", "AtoB")
        real = trainer.datamodule.test_images(source, self.num_images).to(pl_module.device)
        translated = pl_module.translate(real, there)
        reconstructed = pl_module.translate(translated, back)
        return torch.stack([real, translated, reconstructed], dim=1).flatten(0, 1)

    def run(self, trainer: L.Trainer, pl_module: Any) -> None:
        if not trainer.is_global_zero:
            return
        step = pl_module.g_steps
        for source, name in (("A", "AtoB"), ("B", "BtoA")):
            grid = to_grid(self.rows(trainer, pl_module, source), nrow=3)
            log_image(trainer, f"samples/{name}", grid, step, caption=f"{name}: real | translated | reconstructed, "
                      f"generator step {step}")
            if self.save_png:
                save_image(grid, self.output_path(trainer, f"samples/{name}", step))


__all__ = ["TranslationGrid", "Translator"]
