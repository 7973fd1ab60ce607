"""Callbacks that observe training (they never train), and the W&B logger."""

from .fid import FID
from .monitors import CriticMonitor, ModeCollapseWatch, Throughput
from .progress import ProgressBar
from .samples import SampleGrid
from .views import LatentInterpolation, ToyDataPlot
from .wandb_logger import WandbLogger

__all__ = ["FID", "CriticMonitor", "LatentInterpolation", "ModeCollapseWatch", "ProgressBar", "SampleGrid",
           "Throughput", "ToyDataPlot", "WandbLogger"]
