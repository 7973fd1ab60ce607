"""Weights & Biases logger that never waits for a login, with the generator step as every panel's x-axis."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lightning.pytorch.loggers import WandbLogger as _LightningWandbLogger
from lightning.pytorch.utilities import rank_zero_info

#: Every training curve is plotted against this logged value (see PITFALLS.md on Lightning's global_step).
STEP_METRIC = "train/g_step"


def wandb_credentials_available() -> bool:
    """Whether wandb could log in without asking: an API key in the environment or in ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


class WandbLogger(_LightningWandbLogger):
    """Lightning's W&B logger, offline automatically when no credentials exist (or ``WANDB_MODE=offline``).

    Offline runs are written under ``<save_dir>/wandb/offline-run-*``; ``wandb sync <that folder>`` uploads
    them later.
    """

    def __init__(
        self,
        project: str = "gan-lab",      # W&B project
        name: str | None = None,       # run name shown in the dashboard (main.py: the config's name)
        save_dir: str = ".",           # where wandb writes its files (main.py: the run's folder)
        offline: bool | None = None,   # None: offline exactly when no credentials are found
        log_model: bool | str = False,  # upload checkpoints as W&B artifacts (True: at the end, "all": each)
        **kwargs: Any,
    ) -> None:
        if offline is None:
            mode = os.environ.get("WANDB_MODE", "")
            offline = mode in ("offline", "dryrun") or (mode != "online" and not wandb_credentials_available())
        if offline and log_model:
            rank_zero_info("W&B is offline: checkpoints are not uploaded as artifacts (log_model ignored).")
            log_model = False
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        super().__init__(name=name, save_dir=save_dir, offline=offline, project=project, log_model=log_model,
                         **kwargs)

    @property
    def offline(self) -> bool:
        return self._offline

    @property
    def experiment(self) -> Any:
        created = self._experiment is None
        run = super().experiment
        if created and hasattr(run, "define_metric"):
            # Replaces Lightning's "*" -> trainer/global_step, which counts D and G optimizer steps together.
            run.define_metric(STEP_METRIC)
            run.define_metric("*", step_metric=STEP_METRIC, step_sync=True)
        return run

    def finalize(self, status: str) -> None:
        super().finalize(status)
        if self._experiment is not None:
            # Close the run so a later fit in the same process (tests, notebooks) starts its own run.
            self._experiment.finish(exit_code=0 if status == "success" else 1)
            self._experiment = None
