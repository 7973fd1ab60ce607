"""Several processes: gan_ddp for automatic- and manual-optimization modules, the default strategy for
``--trainer.devices N``, and one run id across nodes."""

from __future__ import annotations

from pathlib import Path

import torch
from conftest import CONFIGS
from test_faults import main_py


def rank_weights(run_dir: Path) -> list[dict]:
    """The final state each rank wrote (tests/helpers.py SaveRankWeights)."""
    return [torch.load(run_dir / f"rank{r}.pt", weights_only=True) for r in (0, 1)]


def assert_ranks_identical(ranks: list[dict]) -> None:
    assert ranks[0]["state"].keys() == ranks[1]["state"].keys()
    for name, value in ranks[0]["state"].items():
        torch.testing.assert_close(ranks[1]["state"][name], value, rtol=0, atol=0, msg=name)


def test_gan_ddp_keeps_an_automatic_optimization_module_identical(tmp_path, tiny_mnist):
    """The digit classifier steps through Lightning's closure: its fresh gradients must be the ones averaged."""
    proc = main_py(tmp_path, "--config", str(CONFIGS / "classifier_mnist.yaml"), "--trainer.devices", "2",
                   "--trainer.accelerator", "cpu", "--trainer.strategy", "gan_ddp", "--trainer.max_steps", "4",
                   "--data.init_args.data_dir", str(tiny_mnist), "--data.init_args.batch_size", "4",
                   "--trainer.callbacks+=helpers.SaveRankWeights")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    (run_dir,) = (tmp_path / "runs" / "classifier_mnist").glob("*/")
    ranks = rank_weights(run_dir)
    assert ranks[0]["global_step"] == ranks[1]["global_step"] == 4
    assert_ranks_identical(ranks)
