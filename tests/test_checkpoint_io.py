"""Checkpoint writing when the disk is full, and settings that fight each other."""

import errno
import warnings

import pytest
import torch

from callbacks.checkpointing import AtomicCheckpointIO
from gan_modules import GAN
from gan_modules.regularizers import GradientPenalty


def test_full_disk_is_named_and_leaves_no_tmp_file(tmp_path, monkeypatch):
    target = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"step": 1}, target)
    before = target.read_bytes()

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("callbacks.checkpointing.torch.save", full_disk)
    with pytest.raises(OSError, match=r"no space left on the disk of .* while writing last.ckpt") as err:
        AtomicCheckpointIO().save_checkpoint({"step": 2}, target)
    assert err.value.errno == errno.ENOSPC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
    assert target.read_bytes() == before
    assert torch.load(target, weights_only=True) == {"step": 1}


def test_other_write_errors_pass_unchanged_and_leave_no_tmp_file(tmp_path, monkeypatch):
    def fails(obj, f, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("callbacks.checkpointing.torch.save", fails)
    with pytest.raises(PermissionError, match="Permission denied"):
        AtomicCheckpointIO().save_checkpoint({"step": 1}, tmp_path / "last.ckpt")
    assert list(tmp_path.iterdir()) == []


def test_weight_clipping_with_a_gradient_penalty_warns():
    with pytest.warns(UserWarning, match=r"model.weight_clip=0.01 and model.penalty \(GradientPenalty\)"):
        GAN(data_shape=(2,), weight_clip=0.01, penalty=GradientPenalty())
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*weight_clip")
        GAN(data_shape=(2,), weight_clip=0.01)
        GAN(data_shape=(2,), penalty=GradientPenalty())
