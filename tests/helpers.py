"""What tests share besides fixtures (those are in conftest.py): paths, checkpoint comparisons, and callbacks
used only by tests, importable by class_path in configs (tests/ is on sys.path)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
QUIET = CONFIGS / "debug" / "quiet.yaml"  # no progress bar, model summary or logger

# 1024 samples, batch 64: at n_critic 5 a training (generator) step takes 320 samples, so 3 steps an epoch on one
# process and 1 on each of two
SMALL_RING = ["--data.init_args.num_samples", "1024", "--data.init_args.batch_size", "64"]


def main_py(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``python main.py fit`` in its own process (quiet, no logger), tests/ importable for helper callbacks;
    ``env``: more environment variables."""
    # same thread count as the test process: results must match runs made in-process bit for bit
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'tests'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": str(torch.get_num_threads()), **(env or {})}
    cmd = [sys.executable, str(ROOT / "main.py"), "fit", "--runs_dir", str(tmp_path / "runs"), *args, "--config",
           str(QUIET)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def two_process_ddp(tmp_path: Path, *args: str, config: str = "wgan_gp_ring") -> tuple[Path, list[dict]]:
    """Train with 2 CPU processes (gloo) and gan_ddp; return the run folder and each rank's final weights."""
    proc = main_py(tmp_path, "--config", str(CONFIGS / f"{config}.yaml"), "--trainer.devices", "2",
                   "--trainer.accelerator", "cpu", "--trainer.strategy", "gan_ddp",
                   "--trainer.callbacks+=helpers.SaveRankWeights", *args)
    out, _ = proc.communicate(timeout=1500)
    assert proc.returncode == 0, out[-3000:]
    (run_dir,) = (tmp_path / "runs" / config).glob("*/")
    ranks = [torch.load(run_dir / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for name, value in ranks[0]["state"].items():
        assert torch.equal(value, ranks[1]["state"][name]), name  # both networks identical on both ranks
    return run_dir, ranks


def last_checkpoint(cli: Any) -> dict:
    """The run's last.ckpt, loaded as Lightning would on resume."""
    return torch.load(Path(cli.run_dir, "checkpoints", "last.ckpt"), map_location="cpu", weights_only=True)


def assert_same_training_state(a: dict, b: dict) -> None:
    assert a["gan_lab"]["d_steps"] == b["gan_lab"]["d_steps"]
    assert a["gan_lab"]["g_steps"] == b["gan_lab"]["g_steps"]
    assert a["global_step"] == b["global_step"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for name, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][name]), name
    for opt_a, opt_b in zip(a["optimizer_states"], b["optimizer_states"], strict=True):
        assert opt_a["state"].keys() == opt_b["state"].keys()
        for key, state in opt_a["state"].items():
            for field, value in state.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(opt_b["state"][key][field])), field


def assert_same_counters(a: dict, b: dict) -> None:
    """Epoch, every loop counter Lightning keeps (epochs, batches, optimizer steps), loader position, RNG."""
    assert a["epoch"] == b["epoch"]
    assert a["loops"] == b["loops"]
    assert a["gan_lab"]["rng"].keys() == b["gan_lab"]["rng"].keys()
    for name, state in a["gan_lab"]["rng"].items():
        assert same(state, b["gan_lab"]["rng"][name]), name


def same(a: object, b: object) -> bool:
    """Exact equality of nested RNG states (tensors, numpy arrays, tuples)."""
    if isinstance(a, (torch.Tensor, np.ndarray)):
        return torch.equal(torch.as_tensor(a), torch.as_tensor(b))
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


class SaveRankWeights(Callback):
    """Every rank writes its final state_dict to <run folder>/rank<r>.pt (rank 0 alone writes checkpoints)."""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        state = {k: v.detach().cpu() for k, v in pl_module.state_dict().items()}
        path = Path(trainer.default_root_dir) / f"rank{trainer.global_rank}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"state": state, "g_steps": getattr(pl_module, "g_steps", None), "global_step": trainer.global_step},
                   path)


class PoisonWeights(Callback):
    """Fills the discriminator's first weight with NaN at a given generator step (on one rank, or all when
    ``rank`` is None), to test the NaN stop."""

    def __init__(self, at_g_step: int = 3, rank: int | None = None) -> None:
        self.at_g_step, self.rank = at_g_step, rank

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if pl_module.g_steps == self.at_g_step and self.rank in (None, trainer.global_rank):
            with torch.no_grad():
                next(pl_module.discriminator.parameters()).fill_(float("nan"))


class RecordRNG(Callback):
    """Every rank writes the torch RNG state it had at the start of each batch to <run folder>/rng<r>.pt."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.states: list[torch.Tensor] = []

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self.states.append(torch.get_rng_state())

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        torch.save(torch.stack(self.states), Path(trainer.default_root_dir) / f"rng{trainer.global_rank}.pt")


class NonFiniteSteps(Callback):
    """Makes every loss NaN for the batches that start at generator steps ``first`` to ``last`` (inclusive),
    then puts the weights back: under fp16's GradScaler those steps are skipped, as after an overflow."""

    def __init__(self, first: int = 4, last: int = 5) -> None:
        self.first, self.last, self.batches = first, last, 0
        self._saved: torch.Tensor | None = None

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if self.first <= pl_module.g_steps <= self.last:
            weight = next(pl_module.discriminator.parameters())
            self._saved = weight.detach().clone()
            with torch.no_grad():
                weight.fill_(float("nan"))
            self.batches += 1

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self._saved is not None:
            with torch.no_grad():
                next(pl_module.discriminator.parameters()).copy_(self._saved)
            self._saved = None


class SendSignal(Callback):
    """Sends this process a signal from another thread once, a moment into the batch that starts at a given
    generator step, on the listed ranks: it lands wherever the step is then (often inside a collective), as a
    scheduler's or a user's signal would."""

    def __init__(self, at_g_step: int = 3, ranks: list[int] | None = None, signum: str = "SIGTERM",
                 delay: float = 0.002) -> None:
        self.at_g_step, self.ranks, self.delay = at_g_step, ranks, delay
        self.signum = signal.Signals[signum]
        self.sent = False

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if self.sent or pl_module.g_steps != self.at_g_step:
            return
        self.sent = True
        if self.ranks is None or trainer.global_rank in self.ranks:
            threading.Timer(self.delay, os.kill, (os.getpid(), self.signum)).start()


class RecordMetric(Callback):
    """Records ``trainer.callback_metrics[key]`` after every generator step at which it changed."""

    def __init__(self, key: str = "val/fid") -> None:
        self.key, self.values = key, {}

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        value = trainer.callback_metrics.get(self.key)
        if value is not None and float(value) not in self.values.values():
            self.values[pl_module.g_steps] = float(value)
