"""Everything the Trainer is handed besides the model and the data.

* callbacks that observe training and never change it (``SampleGrid``, ``FID``, ``ToyDataPlot``, ...;
  ``base.py``, ``protocols.py`` say what they share and what they need from a module);
* the W&B logger (``wandb_logger.py``), the ``gan_ddp`` strategy (``strategies.py``), checkpoint writing
  and stopping (``checkpointing.py``: atomic checkpoint IO, the exact ``last.ckpt``, Ctrl-C/SIGTERM);
* run folders and checkpoint reading (``runs.py``): run ids, ``--ckpt_path last``, and the checks that a
  checkpoint belongs to the run it resumes.

Model code (``gan_modules``) never imports from here.
"""

from .attention import AttentionMap
from .conditional import ConditionalFID
from .fid import FID
from .monitors import CriticMonitor, ModeCollapseWatch, Throughput
from .progress import ProgressBar
from .reconstructions import Reconstructions
from .samples import SampleGrid
from .styles import StyleMixingGrid, TruncationStrip
from .translations import TranslationGrid
from .views import LatentInterpolation, ToyDataPlot
from .wandb_logger import WandbLogger

__all__ = ["FID", "CriticMonitor", "LatentInterpolation", "ModeCollapseWatch", "ProgressBar", "SampleGrid",
           "Throughput", "ToyDataPlot", "WandbLogger"]
__all__ += ["AttentionMap", "ConditionalFID", "Reconstructions", "StyleMixingGrid", "TranslationGrid",
            "TruncationStrip"]
