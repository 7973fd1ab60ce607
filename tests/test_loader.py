"""Seeded, sharded, resumable batches."""

import pytest
import torch

from datamodules.loader import EpochBatchSampler, ResumableDataLoader, TensorSampleSet


def batches(sampler):
    return [tuple(b) for b in sampler]


def test_order_depends_only_on_seed_and_epoch():
    a, b = EpochBatchSampler(100, 10, seed=1), EpochBatchSampler(100, 10, seed=1)
    assert batches(a) == batches(b)
    b.set_epoch(1)
    assert batches(a) != batches(b)
    assert sorted(i for batch in batches(b) for i in batch) == list(range(100))


def test_shards_are_disjoint_and_equal():
    shards = [batches(EpochBatchSampler(103, 5, seed=0, rank=r, world_size=3)) for r in range(3)]
    assert len({len(s) for s in shards}) == 1
    flat = [i for s in shards for b in s for i in b]
    assert len(flat) == len(set(flat))


def test_too_little_data_is_a_clear_error():
    # the loader serves one training step (n_critic x batch_size samples) at a time, and says so
    with pytest.raises(ValueError, match=r"has 10 samples, too few for one training step of 64 samples "
                                         r"\(batch_size x n_critic\)"):
        EpochBatchSampler(10, 64)


def test_loader_resumes_mid_epoch_with_the_same_batches():
    data = TensorSampleSet(torch.arange(50.0).view(50, 1), torch.arange(50))
    full = ResumableDataLoader(data, EpochBatchSampler(50, 5, seed=7))
    full.batch_sampler.set_epoch(2)
    expected = [x for x, _ in full]
    partial = ResumableDataLoader(data, EpochBatchSampler(50, 5, seed=7))
    partial.batch_sampler.set_epoch(2)
    it = iter(partial)
    for _ in range(4):
        next(it)
    state = partial.state_dict()
    assert state == {"epoch": 2, "consumed": 4}
    resumed = ResumableDataLoader(data, EpochBatchSampler(50, 5, seed=7))
    resumed.load_state_dict(state)
    resumed.batch_sampler.set_epoch(2)
    rest = [x for x, _ in resumed]
    assert len(rest) == 6
    for got, want in zip(rest, expected[4:], strict=True):
        assert torch.equal(got, want)
    assert resumed.state_dict()["consumed"] == 10


def test_lightning_advances_the_epoch_of_our_sampler():
    from lightning.fabric.utilities.data import _set_sampler_epoch

    loader = ResumableDataLoader(TensorSampleSet(torch.zeros(20, 1)), EpochBatchSampler(20, 5))
    _set_sampler_epoch(loader, 3)  # what Lightning's fit loop calls at the start of every epoch
    assert loader.batch_sampler.epoch == 3
