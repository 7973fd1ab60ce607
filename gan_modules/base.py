"""The harness: what every adversarial method shares, so a GAN family only writes its losses.

:class:`AdversarialModule` owns the mechanics (manual optimization, the ``n_critic`` schedule on its own
counters, zero_grad/backward/step with each player's optimizer toggled, finite checks and the NaN stop,
logging, and counters and RNG states in checkpoints).  A recipe (the unconditional GAN in
``gan_modules.gan``, a conditional GAN, CycleGAN, ...) subclasses it and answers a few hooks:

* ``generator_loss(batch) -> (loss, metrics)`` and ``discriminator_loss(batch) -> (loss, metrics)``;
* ``generator_parameters()`` / ``discriminator_parameters()``: what each optimizer updates (default: the
  ``generator`` and ``discriminator`` attributes; CycleGAN chains its two of each);
* ``after_generator_step()`` / ``after_discriminator_step()``: EMA, weight clipping, ...

**Learning-rate schedules.**  Each side may have a scheduler (``g_scheduler``, ``d_scheduler``: Lightning's
LRSchedulerCallable, injected like the optimizers), or a recipe's ``configure_optimizers`` may return
schedulers in Lightning's dict form.  Under manual optimization Lightning leaves the stepping to the module
(its manual-optimization docs); the harness steps every scheduler Lightning collected: after each generator
step for ``interval: "step"``, at each epoch boundary for ``"epoch"``.  Lightning saves and restores their
states with the optimizers', so a resumed schedule continues exactly.

**One unit of time: the generator step.**  One Lightning training step is one generator step: its batch
holds ``n_critic`` fresh real batches (the lab's data modules serve ``n_critic x batch_size`` samples, see
``datamodules.loader``), the critic takes one step on each (WGAN-GP, Algorithm 1) and the generator one
step at the end.  Only the generator's optimizer step is counted by Lightning, so ``trainer.global_step``,
``max_steps``, checkpoint intervals, ``log_every_n_steps``, callbacks and the W&B x-axis all count
generator steps.  Lazy regularisers read ``d_steps`` / ``g_steps``.

The condition convention: a batch is whatever the data module yields (a tensor, or ``(samples, labels)``,
or ``(domain_a, domain_b)``), split along its first dimension into the critic's batches; the recipe unpacks
it.  Penalties take a critic *callable*, so a penalty on ``D(x, y)`` is a closure.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from torch.nn import Parameter

from .config_types import LRSchedulerCallable, OptimizerCallable, build, spec

ADAM_DCGAN = spec("torch.optim.Adam", lr=2e-4, betas=(0.5, 0.999))
CHECKPOINT_KEY = "gan_lab"
_PROGRESS_BAR = ("train/d_loss", "train/g_loss", "train/g_step")
SCHEDULER_INTERVALS = ("step", "epoch")

Metrics = dict[str, Tensor]


def check_precision(precision: Any) -> None:
    """Refuse half-precision weights: the samplers, callbacks and FID feed float32 inputs, so such a run would
    train and then fail at its first sample grid (main.py checks it before the run starts, fit again here)."""
    if str(precision) in ("16-true", "bf16-true"):
        raise ValueError(f"trainer.precision={precision}: half-precision weights are not supported by the GAN lab; "
                         "use bf16-mixed (or 16-mixed on a GPU), which keeps float32 weights.")


class AdversarialModule(L.LightningModule, ABC):
    """Manual optimization of a generator side and a discriminator side; subclasses supply the losses."""

    def __init__(
        self,
        n_critic: int = 1,                                 # discriminator steps per generator step
        g_optimizer: OptimizerCallable = ADAM_DCGAN,       # optimizer of the generator side
        d_optimizer: OptimizerCallable = ADAM_DCGAN,       # optimizer of the discriminator side
        g_scheduler: LRSchedulerCallable | None = None,    # learning-rate schedule of the generator side
        d_scheduler: LRSchedulerCallable | None = None,    # learning-rate schedule of the discriminator side
        scheduler_interval: str = "step",                  # schedulers step per generator "step" or per "epoch"
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        if not isinstance(n_critic, int) or n_critic < 1:
            raise ValueError(f"model.n_critic={n_critic}: must be an integer >= 1 (discriminator steps per "
                             "generator step; WGAN and WGAN-GP use 5).")
        if scheduler_interval not in SCHEDULER_INTERVALS:
            raise ValueError(f"model.scheduler_interval={scheduler_interval!r}: must be 'step' (once per generator "
                             "step) or 'epoch' (once per epoch).")
        self.n_critic = n_critic
        self.g_optimizer_factory = build(g_optimizer, OptimizerCallable)
        self.d_optimizer_factory = build(d_optimizer, OptimizerCallable)
        self.g_scheduler_factory = build(g_scheduler, LRSchedulerCallable | None)
        self.d_scheduler_factory = build(d_scheduler, LRSchedulerCallable | None)
        self.scheduler_interval = scheduler_interval
        self.d_steps = 0  # discriminator steps taken; saved in checkpoints
        self.g_steps = 0  # generator steps taken; saved in checkpoints
        self._rng_to_restore: dict[str, Any] | None = None
        self.latest_metrics: dict[str, float] = {}  # the last values sent to the loggers
        self._finite: dict[str, Tensor] = {}  # loss name -> "finite at every step since the last check"
        self._some_finite: dict[str, Tensor] = {}  # loss name -> "finite at some step since the last check"
        self._last_finite_step = 0
        self._warned_split = False

    # ------------------------------------------------------------------ hooks for recipes
    @abstractmethod
    def discriminator_loss(self, batch: Any) -> tuple[Tensor, Metrics]:
        """The discriminator side's loss on one real batch, and detached metrics to log."""

    @abstractmethod
    def generator_loss(self, batch: Any) -> tuple[Tensor, Metrics]:
        """The generator side's loss (``batch`` is the step's last real batch), and detached metrics."""

    def generator_parameters(self) -> Iterable[Parameter]:
        """What the generator optimizer updates."""
        return self.generator.parameters()

    def discriminator_parameters(self) -> Iterable[Parameter]:
        """What the discriminator optimizer updates."""
        return self.discriminator.parameters()

    def after_discriminator_step(self) -> None:
        """Runs after every discriminator update (weight clipping, ...)."""

    def after_generator_step(self) -> None:
        """Runs after every generator update (EMA, ...)."""

    @property
    def batches_per_step(self) -> int:
        """Real batches one training step consumes; the lab's loaders serve that many at once."""
        return self.n_critic

    # ------------------------------------------------------------------ training
    def configure_optimizers(self) -> list[Any]:
        """The generator's optimizer first, the discriminator's second, each with its scheduler if it has one."""
        g_opt = self.g_optimizer_factory(self.generator_parameters())
        d_opt = self.d_optimizer_factory(self.discriminator_parameters())
        if self.g_scheduler_factory is None and self.d_scheduler_factory is None:
            return [g_opt, d_opt]
        sides = []
        for opt, factory in ((g_opt, self.g_scheduler_factory), (d_opt, self.d_scheduler_factory)):
            side: dict[str, Any] = {"optimizer": opt}
            if factory is not None:
                side["lr_scheduler"] = {"scheduler": factory(opt), "interval": self.scheduler_interval}
            sides.append(side)
        return sides

    def training_step(self, batch: Any, batch_idx: int) -> None:
        """One generator step: ``n_critic`` critic updates, each on its own fresh real batch, then G."""
        g_opt, d_opt = self.optimizers()
        batches = self.split_batch(batch)
        metrics: Metrics = {}
        for real in batches:
            metrics.update(self.optimize(d_opt, self.discriminator_loss, real, "train/d_loss", counted=False))
            self.d_steps += 1
            self.after_discriminator_step()
        metrics.update(self.optimize(g_opt, self.generator_loss, batches[-1], "train/g_loss", counted=True))
        self.g_steps += 1
        self.after_generator_step()
        self.step_schedulers("step", self.g_steps)
        if self.g_steps % max(self.trainer.log_every_n_steps, 1) == 0:
            metrics.update(self.learning_rates())
            self.log_step_metrics(metrics)

    def on_train_epoch_start(self) -> None:
        # An epoch schedule steps at the start of every epoch after the first: the same as at the end of the one
        # before, and also right after a resume from a checkpoint taken after an epoch's last batch, where the
        # ended epoch's end hooks never ran (callbacks.checkpointing.resume_after_finished_epoch).
        # Lightning skips this hook when it resumes mid-epoch, so a resumed epoch is not stepped twice.
        if self.current_epoch > 0:
            self.step_schedulers("epoch", self.current_epoch)

    def step_schedulers(self, interval: str, count: int) -> None:
        """Step every scheduler of this ``interval`` whose ``frequency`` divides ``count`` (generator steps or
        epochs so far).  Lightning steps schedulers only under automatic optimization."""
        for config in self.trainer.lr_scheduler_configs:
            if config.interval == interval and count % config.frequency == 0:
                config.scheduler.step()

    def learning_rates(self) -> Metrics:
        """``train/lr_g`` and ``train/lr_d`` (first parameter group) when a schedule changes them, else nothing."""
        if not self.trainer.lr_scheduler_configs:
            return {}
        g_opt, d_opt = self.optimizers()
        return {f"train/lr_{side}": torch.tensor(float(opt.param_groups[0]["lr"]), device=self.device)
                for side, opt in (("g", g_opt), ("d", d_opt))}

    def optimize(self, optimizer: Any, loss_fn: Any, batch: Any, name: str, counted: bool) -> Metrics:
        """zero_grad, backward and step one side, the other side's parameters frozen meanwhile.

        Only the generator's step goes through ``LightningOptimizer.step`` and so adds one to
        ``trainer.global_step``; a discriminator step goes straight to the strategy (the same precision
        plugin, GradScaler and gradient averaging, not counted).  That is what makes every Lightning step
        count a generator step (tests/test_schedule.py fails if Lightning changes it).
        """
        self.toggle_optimizer(optimizer)
        try:
            loss, metrics = loss_fn(batch)
            optimizer.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            if counted:
                optimizer.step()
            else:
                self.trainer.strategy.optimizer_step(optimizer.optimizer, _no_closure, self)
        finally:
            self.untoggle_optimizer(optimizer)
        metrics[name] = loss.detach()
        self._track_finite(name, metrics[name])
        return metrics

    def split_batch(self, batch: Any) -> list[Any]:
        """The step's batch as ``batches_per_step`` batches along dim 0 (tensors, or tuples of tensors)."""
        n = self.batches_per_step
        first = samples_of(batch)
        if len(first) % n and not self._warned_split:
            self._warned_split = True
            rank_zero_warn(f"a training batch of {len(first)} samples does not split into {n} equal critic "
                           f"batches; the lab's data modules serve n_critic x batch_size samples per step.")
        if n == 1:
            return [batch]
        if isinstance(batch, (list, tuple)):
            return list(zip(*(t.tensor_split(n) for t in batch), strict=True))
        return list(batch.tensor_split(n))

    def log_step_metrics(self, metrics: dict[str, Tensor]) -> None:
        """Send this step's values to the loggers and the progress bar.

        Called every ``trainer.log_every_n_steps`` generator steps.  It bypasses ``self.log``, which costs
        about a millisecond per value on every step and would outweigh a toy model's whole step; the one
        ``tolist()`` here is the only host-device sync of the training loop.
        """
        names = list(metrics)
        values = dict(zip(names, torch.stack([metrics[k].float() for k in names]).tolist(), strict=True))
        self.check_finite()
        self.latest_metrics = self.log_metrics(values)
        bar = {k.removeprefix("train/"): v for k, v in self.latest_metrics.items() if k in _PROGRESS_BAR}
        self.log_dict(bar, prog_bar=True, logger=False, on_step=True, on_epoch=False)

    def log_metrics(self, values: dict[str, float]) -> dict[str, float]:
        """Send plain numbers to every logger with ``train/g_step``, the x-axis of every panel (callbacks use
        this too), and into ``trainer.callback_metrics``, where ``ModelCheckpoint(monitor=...)`` and
        ``EarlyStopping`` look (``val/fid``, ``val/modes``, ...)."""
        values = {**values, "train/g_step": self.g_steps}
        if self._trainer is not None:
            for logger in self.loggers:
                logger.log_metrics(values, step=self.global_step)
            self.trainer.callback_metrics.update({k: torch.tensor(float(v)) for k, v in values.items()})
        return values

    def _track_finite(self, name: str, loss: Tensor) -> None:
        """Remember, without a GPU sync, whether a loss was NaN/inf at some step and at every step."""
        ok = torch.isfinite(loss)
        if name not in self._finite:
            self._finite[name], self._some_finite[name] = ok, ok
        else:
            self._finite[name], self._some_finite[name] = self._finite[name] & ok, self._some_finite[name] | ok

    def check_finite(self) -> None:
        """Stop with the loss named if it has been NaN/inf since the last check (one sync, at log time).

        Under fp16's GradScaler an occasional inf is normal: the scaler skips that optimizer step (the weights
        stay finite) and lowers its scale. There the run stops only when a loss was non-finite at *every* step
        since the last check, which the scaler cannot recover from. Every rank checks at the same generator
        step and the ranks agree before raising, so all stop together.
        """
        bad = self._nonfinite_losses()
        self._stop_on_every_rank(self._nonfinite_message(bad) if bad else None)
        self._finite.clear()
        self._some_finite.clear()
        self._last_finite_step = self.g_steps

    def _nonfinite_losses(self) -> list[str]:
        """Losses that were NaN/inf since the last check (at every step of it, under a GradScaler)."""
        seen = self._some_finite if self._scaler() is not None else self._finite
        return [name for name, ok in seen.items() if not bool(ok)]

    def _nonfinite_message(self, bad: list[str]) -> str:
        ckpt = getattr(self.trainer.checkpoint_callback, "last_model_path", "") if self._trainer else ""
        every = " at every step" if self._scaler() is not None else ""
        return (f"{', '.join(bad)} was NaN or infinite{every}{self._on_rank()} between generator steps "
                f"{self._last_finite_step} and {self.g_steps} (D step {self.d_steps}); stopping. The last good "
                f"checkpoint is kept{': ' + ckpt if ckpt else ''}. Lower the learning rates, check the data range, "
                "or add a penalty.")

    def _stop_on_every_rank(self, problem: str | None) -> None:
        """Raise ``problem`` on every rank when any rank has one.

        One boolean all-reduce, made by every rank at the same point: a rank that raised alone would leave the
        others waiting in their next collective (a hang on GPUs).
        """
        stop = problem is not None
        if self._trainer is not None and self.trainer.world_size > 1:
            stop = self.trainer.strategy.reduce_boolean_decision(stop, all=False)
        if stop:
            raise FloatingPointError(problem or (
                f"a NaN or infinite value was found on another rank (this is rank {self.trainer.global_rank}) at "
                f"generator step {self.g_steps}; every rank stops, and that rank's error names the value."))

    def _on_rank(self) -> str:
        return f" on rank {self.trainer.global_rank}" if self._trainer and self.trainer.world_size > 1 else ""

    def _scaler(self) -> Any | None:
        """fp16's enabled GradScaler, or None (fp32, bf16, no trainer)."""
        scaler = getattr(self.trainer.precision_plugin, "scaler", None) if self._trainer is not None else None
        return scaler if scaler is not None and scaler.is_enabled() else None

    def _grad_scale(self) -> Tensor | None:
        """The fp16 GradScaler's current scale as a tensor (no GPU sync), or None without a scaler."""
        scaler = self._scaler()
        return None if scaler is None else scaler.scale(torch.ones((), device=self.device))

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Raising here, before anything is written, keeps the last good checkpoint on disk.
        self._stop_on_every_rank(self._problem_at_save())
        rng = _rng_states()
        if self._trainer is not None and self.trainer.world_size > 1:
            # every rank draws its own noise: keep each rank's torch (and CUDA) generator state
            rng["torch_per_rank"] = self.all_gather(rng["torch"].to(self.device)).cpu()
            if "cuda" in rng:
                rng["cuda_per_rank"] = self.all_gather(torch.cuda.get_rng_state().to(self.device)).cpu()
        checkpoint[CHECKPOINT_KEY] = {"d_steps": self.d_steps, "g_steps": self.g_steps, "rng": rng,
                                      # what the data order depends on: a resume that changes it is reported
                                      "n_critic": self.n_critic, "batch_size": _critic_batch_size(self)}

    def _problem_at_save(self) -> str | None:
        """Why this state must not be saved, or None.

        The losses' window is not restarted here, and under a GradScaler not judged either: a save one step after
        a log would turn one skipped step into a stop. The scaler's skipped steps leave the weights finite,
        which is checked instead, and ``check_finite`` judges the whole logging interval at log time.
        """
        bad = [] if self._scaler() is not None else self._nonfinite_losses()
        if bad:
            return self._nonfinite_message(bad)
        bad = [name for name, p in self.state_dict().items() if p.is_floating_point() and not bool(p.isfinite().all())]
        if bad:
            return (f"not saving a checkpoint at generator step {self.g_steps}{self._on_rank()}: {bad[0]} (and "
                    f"{len(bad) - 1} more) hold NaN or infinite values; the last good one is kept.")
        return None

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._check_checkpoint_fits(checkpoint)
        state = checkpoint.get(CHECKPOINT_KEY, {})
        self.d_steps, self.g_steps = state.get("d_steps", 0), state.get("g_steps", 0)
        self._last_finite_step = self.g_steps
        # Applied when training resumes, not here: a script that only loads weights keeps its own RNG.
        self._rng_to_restore = state.get("rng")

    def on_fit_start(self) -> None:
        check_precision(self.trainer.precision)
        for config in self.trainer.lr_scheduler_configs:
            if isinstance(config.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau) or config.interval not in \
                    SCHEDULER_INTERVALS:
                raise ValueError(f"{type(config.scheduler).__name__} (interval {config.interval!r}) cannot be "
                                 "stepped by the GAN harness: it steps schedules by generator 'step' or 'epoch' and "
                                 "has no metric to give ReduceLROnPlateau; use a schedule of steps or epochs.")
        if self.trainer.world_size > 1 and self._rng_to_restore is None:
            # Lightning seeds every rank alike; offset so ranks draw different noise and penalty points.
            _seed_for_rank(torch.initial_seed(), self.trainer.global_rank)

    def on_train_start(self) -> None:
        if self._rng_to_restore is not None:
            own = _set_rng_states(self._rng_to_restore, self.trainer.global_rank)
            if self.trainer.world_size > 1 and not own:
                # a checkpoint from fewer processes holds no state for this rank: all such ranks got the one
                # saved state, so derive this rank's own from it (deterministic, distinct per rank)
                _seed_for_rank(int(torch.randint(2**62, (), dtype=torch.int64)), self.trainer.global_rank)
            self._rng_to_restore = None

    def _check_checkpoint_fits(self, checkpoint: dict[str, Any]) -> None:
        """A clear error when a checkpoint's networks differ from the ones this config builds."""
        saved = checkpoint.get("state_dict")
        if saved is None:
            raise ValueError("this checkpoint holds no 'state_dict': it was not written by Lightning (or this lab)")
        own = self.state_dict()
        missing = sorted(set(own) - set(saved))
        unexpected = sorted(set(saved) - set(own))
        shapes = [f"{k}: checkpoint {tuple(saved[k].shape)} vs config {tuple(own[k].shape)}"
                  for k in own if k in saved and tuple(saved[k].shape) != tuple(own[k].shape)]
        if missing or unexpected or shapes:
            data_shape = checkpoint.get("hyper_parameters", {}).get("data_shape")
            own_shape = self.hparams.get("data_shape")
            lines = [f"the checkpoint's networks do not match this config's ({type(self).__name__}):"]
            if data_shape is not None and own_shape is not None and tuple(data_shape) != tuple(own_shape):
                lines.append(f"  it was trained on samples of shape {tuple(data_shape)}, these data have "
                             f"{tuple(own_shape)}")
            classes = checkpoint.get("hyper_parameters", {}).get("num_classes")
            own_classes = self.hparams.get("num_classes")
            if classes is not None and own_classes is not None and classes != own_classes:
                lines.append(f"  it was trained with {classes} classes, these data have {own_classes}")
            lines += [f"  shape of {s}" for s in shapes[:5]]
            lines += [f"  in this config only: {', '.join(missing[:5])}"] if missing else []
            lines += [f"  in the checkpoint only: {', '.join(unexpected[:5])}"] if unexpected else []
            lines.append("Resume with the config the run was trained with (its run folder holds config.yaml).")
            raise ValueError("\n".join(lines))


def samples_of(batch: Any) -> Tensor:
    """The samples of a batch: the batch itself, or its first element when it carries labels or domains."""
    return batch[0] if isinstance(batch, (list, tuple)) else batch


def _no_closure() -> None:
    """Manual optimization: backward already ran; the optimizer step needs no closure."""


def _rng_states() -> dict[str, Any]:
    """Every global RNG state, in types that load with ``torch.load(weights_only=True)``."""
    np_state = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict[str, Any], rank: int = 0) -> bool:
    """Restore the saved RNG states; True when the checkpoint held this rank's own torch state."""
    per_rank = states.get("torch_per_rank")
    own = per_rank is not None and rank < len(per_rank)
    # a copy of the row: torch.set_rng_state crashes (segfault, torch 2.14) on a view with a storage offset
    torch.set_rng_state(per_rank[rank].clone() if own else states["torch"])
    name, keys, *rest = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        _restore_cuda_states(states["cuda"], torch.cuda.device_count())
        per_rank = states.get("cuda_per_rank")
        if per_rank is not None and rank < len(per_rank):
            torch.cuda.set_rng_state(per_rank[rank].clone())
    return own


def _restore_cuda_states(saved: Sequence[Tensor], visible: int,
                         set_state: Callable[[Tensor, int], None] = torch.cuda.set_rng_state) -> None:
    """Give each visible GPU its saved state; saved GPUs this machine does not have are skipped.

    A checkpoint holds one state per GPU its machine had (``torch.cuda.get_rng_state_all``), and
    ``set_rng_state_all`` raises IndexError when fewer are visible, e.g. a 4-GPU run resumed on one.
    """
    for device, state in enumerate(saved[:visible]):
        set_state(state, device)


def _seed_for_rank(base: int, rank: int) -> None:
    """Seed torch (CPU and every GPU) with ``base`` offset by the rank, so each rank draws its own noise."""
    torch.manual_seed((base + 7919 * rank) % 2**63)


def _critic_batch_size(module: AdversarialModule) -> int | None:
    """One critic batch's per-process size (the loader serves ``batches_per_step`` of them at once), or None
    where there is no loader (or no trainer)."""
    trainer = module._trainer
    loader = getattr(trainer, "train_dataloader", None) if trainer is not None else None
    size = getattr(getattr(loader, "batch_sampler", None), "batch_size", None) or getattr(loader, "batch_size", None)
    return size // module.batches_per_step if isinstance(size, int) else None


__all__ = ["AdversarialModule", "samples_of"]
