"""Learning-rate schedules for the harness's ``g_scheduler`` / ``d_scheduler`` (stepped per generator step or per
epoch, see :class:`~gan_modules.base.AdversarialModule`)."""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


class LinearDecay(LRScheduler):
    """The learning rate constant for ``decay_start`` steps, then linearly down to zero at step ``total``.

    CycleGAN (Zhu et al. 2017) keeps 2e-4 for 100 epochs and decays it to zero over the next 100: ``total: 200,
    decay_start: 100`` with ``scheduler_interval: epoch``.  A step is one call of ``step()``: a generator step or
    an epoch, as the module's ``scheduler_interval`` says.  The factor is computed in closed form from the step
    count, so a restored state gives the same rate as an uninterrupted run.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        total: int,                          # steps (or epochs) after which the rate is zero
        decay_start: int | None = None,      # steps at the full rate before the decay begins; default total // 2
        last_epoch: int = -1,                # torch's argument: the step count to start from (-1: a fresh run)
    ) -> None:
        decay_start = total // 2 if decay_start is None else decay_start
        if total < 1 or not 0 <= decay_start < total:
            raise ValueError(f"LinearDecay(total={total}, decay_start={decay_start}): needs total >= 1 and "
                             "0 <= decay_start < total, e.g. total: 200, decay_start: 100 (CycleGAN's epochs).")
        self.total, self.decay_start = total, decay_start
        super().__init__(optimizer, last_epoch)

    def factor(self, step: int) -> float:
        """The multiplier of the base rate after ``step`` steps."""
        span = self.total - self.decay_start
        return 1.0 - min(max(step - self.decay_start, 0), span) / span

    def get_lr(self) -> list[float]:
        return [base * self.factor(self.last_epoch) for base in self.base_lrs]


__all__ = ["LinearDecay"]
