"""Callbacks that observe training (they never train), and the W&B logger."""

from .progress import ProgressBar
from .samples import SampleGrid
from .wandb_logger import WandbLogger

__all__ = ["ProgressBar", "SampleGrid", "WandbLogger"]
