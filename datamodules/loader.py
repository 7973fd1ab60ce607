"""A data loader whose order depends only on (seed, epoch) and that resumes mid-epoch exactly.

Lightning saves a loader's ``state_dict()`` in checkpoints when the loader has one and hands it back on
resume; torch's DataLoader has none.  :class:`ResumableDataLoader` records how many batches of the current
epoch were consumed and, after a resume, skips that many batches of *indices* (no data is loaded for them),
so a resumed run sees the same batches as an uninterrupted one.  Shuffling uses its own seeded generator,
never the global RNG, and each rank of a distributed run reads its own shard.

Datasets with a ``__getitems__(indices)`` method (see :class:`TensorSampleSet`) are read one batch per call
instead of one sample per call, which matters for small models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler


class EpochBatchSampler(Sampler[list[int]]):
    """Batches of indices from a permutation seeded by (seed, epoch), this rank's shard only."""

    def __init__(self, size: int, batch_size: int, shuffle: bool = True, drop_last: bool = True, seed: int = 0,
                 rank: int = 0, world_size: int = 1) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1")
        per_rank = size // world_size
        if (drop_last and per_rank < batch_size) or per_rank == 0:
            raise ValueError(f"the data set has {size} samples, too few for one training step of {batch_size} "
                             f"samples (batch_size x n_critic) on each of {world_size} process(es); lower "
                             "data.batch_size or model.n_critic, or use more data.")
        self.size, self.batch_size, self.shuffle, self.drop_last = size, batch_size, shuffle, drop_last
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0
        self._skip: dict[int, int] = {}  # epoch -> batches to skip (set by a resume)

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch (through ``sampler`` below)."""
        self.epoch = epoch

    @property
    def sampler(self) -> EpochBatchSampler:
        # Lightning calls set_epoch on ``dataloader.batch_sampler.sampler``, as for torch's BatchSampler.
        return self

    def skip(self, epoch: int, batches: int) -> None:
        """Make the next pass over ``epoch`` start after its first ``batches`` batches."""
        self._skip = {epoch: batches}

    def __len__(self) -> int:
        per_rank = self.size // self.world_size
        return per_rank // self.batch_size if self.drop_last else -(-per_rank // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.size, generator=gen)
        else:
            order = torch.arange(self.size)
        # Equal shards: every rank takes the same number of batches, so collective ops never wait forever.
        order = order[: (self.size // self.world_size) * self.world_size][self.rank :: self.world_size]
        start = self._skip.pop(self.epoch, 0)
        for b in range(start, len(self)):
            yield order[b * self.batch_size : (b + 1) * self.batch_size].tolist()


class ResumableDataLoader(DataLoader):
    """A DataLoader over an :class:`EpochBatchSampler` that Lightning can checkpoint and restore mid-epoch."""

    def __init__(self, dataset: Dataset, batch_sampler: EpochBatchSampler, **kwargs: Any) -> None:
        kwargs.setdefault("collate_fn", _stack_or_collate(dataset))
        # Worker seeds come from this generator, not from the global RNG that training uses.
        kwargs.setdefault("generator", torch.Generator().manual_seed(batch_sampler.seed))
        super().__init__(dataset, batch_sampler=batch_sampler, **kwargs)
        self._consumed = 0

    def __iter__(self) -> Iterator[Any]:
        sampler: EpochBatchSampler = self.batch_sampler  # type: ignore[assignment]
        self._consumed = sampler._skip.get(sampler.epoch, 0)
        for batch in super().__iter__():
            self._consumed += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.batch_sampler.epoch, "consumed": self._consumed}  # type: ignore[union-attr]

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.batch_sampler.skip(state["epoch"], state["consumed"])  # type: ignore[union-attr]


class TensorSampleSet(Dataset):
    """Samples (and optional labels) held in tensors, read a whole batch at a time.

    ``transform`` runs on the gathered batch (e.g. uint8 images -> floats in [-1, 1]), so images can be kept
    compactly as uint8.
    """

    def __init__(self, samples: Tensor, labels: Tensor | None = None,
                 transform: Callable[[Tensor], Tensor] | None = None) -> None:
        if labels is not None and len(labels) != len(samples):
            raise ValueError(f"{len(samples)} samples but {len(labels)} labels")
        self.samples, self.labels, self.transform = samples, labels, transform

    def __len__(self) -> int:
        return len(self.samples)

    def to(self, device: torch.device | str) -> TensorSampleSet:
        """The same set held on ``device`` (batches are then gathered there: no host-to-device copies)."""
        labels = None if self.labels is None else self.labels.to(device)
        return TensorSampleSet(self.samples.to(device), labels, self.transform)

    def __getitem__(self, index: int) -> Any:
        batch = self.__getitems__([index])
        return batch[0] if self.labels is None else (batch[0][0], batch[1][0])

    def __getitems__(self, indices: list[int]) -> Tensor | tuple[Tensor, Tensor]:
        idx = torch.as_tensor(indices, device=self.samples.device)
        x = self.samples[idx]
        if self.transform is not None:
            x = self.transform(x)
        return x if self.labels is None else (x, self.labels[idx])


def _stack_or_collate(dataset: Dataset) -> Callable[[Any], Any]:
    """Batched datasets already return a batch; others go through torch's default collate."""
    if isinstance(dataset, TensorSampleSet):
        return _identity
    return torch.utils.data.default_collate


def _identity(batch: Any) -> Any:
    return batch


def sample_from(dataset: Dataset, n: int, seed: int = 0, labels: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """``n`` samples drawn from ``dataset`` without replacement, the same for the same seed; with ``labels``,
    ``(samples, labels)`` (the data set must yield labels)."""
    idx = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:n].tolist()
    if labels:
        batch = (dataset.__getitems__(idx) if hasattr(dataset, "__getitems__")
                 else torch.utils.data.default_collate([dataset[i] for i in idx]))
        if not isinstance(batch, (list, tuple)):
            raise ValueError("labeled real samples were asked for, but this data set yields no labels")
        return batch[0], batch[1]
    batch = dataset.__getitems__(idx) if hasattr(dataset, "__getitems__") else torch.stack(
        [_without_label(dataset[i]) for i in idx])
    return _without_label(batch)


def _without_label(item: Any) -> Tensor:
    return item[0] if isinstance(item, (list, tuple)) else item


def resumable_loader(dataset: Dataset, datamodule: Any, batch_size: int, seed: int, num_workers: int = 0,
                     pin_memory: bool = False, persistent_workers: bool = True,
                     data_on_device: bool = False) -> ResumableDataLoader:
    """The training loader every data module here uses: this rank's shard, seeded order, resumable.

    An in-memory set is read one gathered batch at a time (workers would only add copies); with
    ``data_on_device`` it is moved to the training device once and batches are gathered there, so no batch
    is copied from host memory (the fast path for data sets that fit on the GPU).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"data.batch_size={batch_size}: must be an integer >= 1 (samples per discriminator step)")
    trainer = datamodule.trainer
    rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
    per_step = batches_per_step(trainer)
    in_memory = isinstance(dataset, TensorSampleSet)
    if in_memory and data_on_device and trainer is not None:
        dataset, pin_memory = dataset.to(trainer.strategy.root_device), False
    settings: dict[str, Any] = {"num_workers": 0 if in_memory else num_workers,
                                "pin_memory": pin_memory and torch.cuda.is_available()}
    if settings["num_workers"] > 0:
        settings["persistent_workers"] = persistent_workers
    sampler = EpochBatchSampler(len(dataset), batch_size * per_step, seed=seed, rank=rank, world_size=world)
    return ResumableDataLoader(dataset, sampler, **settings)


def batches_per_step(trainer: Any) -> int:
    """How many real batches the model's training step consumes (a GAN's ``n_critic``; 1 for other models).

    One training step is one generator step, and each of its critic steps needs its own fresh real batch,
    so the loader serves ``batches_per_step x batch_size`` samples at once and the module splits them.
    """
    module = getattr(trainer, "lightning_module", None) if trainer is not None else None
    return int(getattr(module, "batches_per_step", 1))
