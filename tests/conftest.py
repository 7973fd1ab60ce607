"""Shared helpers: run the CLI in a temporary folder, quietly, without reading pytest's argv."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from main import GANLabCLI, cli_main

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


@pytest.fixture
def run_fit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., GANLabCLI]:
    """``run_fit(config_name, *extra_args, logger=False)``: ``main.py fit`` into ``tmp_path/runs``."""

    def run(config: str, *args: str, logger: bool = False) -> GANLabCLI:
        monkeypatch.setattr(sys, "argv", ["main.py"])  # the CLI must not see pytest's own arguments
        argv = ["fit", "--config", str(CONFIGS / config), "--runs_dir", str(tmp_path / "runs"),
                "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false", *args]
        if not logger:
            argv += ["--trainer.logger", "false"]
        return cli_main(argv)

    return run


def last_checkpoint(cli: GANLabCLI) -> dict:
    """The run's last.ckpt, loaded as Lightning would on resume."""
    return torch.load(Path(cli.run_dir, "checkpoints", "last.ckpt"), map_location="cpu", weights_only=True)
