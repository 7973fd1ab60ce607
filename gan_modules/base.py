"""The one LightningModule that owns the GAN training schedule.

Manual optimisation: every dataloader batch is one discriminator (critic) step, so each critic step sees a
fresh real batch (WGAN-GP, Algorithm 1); after every ``n_critic`` discriminator steps comes one generator
step.  The schedule is driven by the module's own counters ``d_steps`` and ``g_steps``, saved in every
checkpoint, never by ``batch_idx`` (it restarts each epoch) or ``trainer.global_step``.

What ``trainer.max_steps`` means here: Lightning counts *optimizer* steps, so one generator step and its
``n_critic`` discriminator steps are ``n_critic + 1`` of them.  A run of ``k`` generator steps needs
``max_steps = k * (n_critic + 1)``; the configs say so next to the number, and ``train/g_step`` is logged.

Named variants (``gan_modules.variants``) only change the defaults of this class.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from .config_types import DiscriminatorFactory, GeneratorFactory, OptimizerCallable, build, spec
from .losses import AdversarialLoss
from .networks import MLPDiscriminator, MLPGenerator
from .networks.common import apply_spectral_norm, has_batch_norm
from .regularizers import GradientPenalty, Penalty, clip_weights_

ADAM_DCGAN = spec("torch.optim.Adam", lr=2e-4, betas=(0.5, 0.999))
NON_SATURATING = spec("gan_modules.losses.NonSaturatingLoss")
CHECKPOINT_KEY = "gan_lab"
_PROGRESS_BAR = ("train/d_loss", "train/g_loss", "train/g_step")


class GANModule(L.LightningModule):
    """An unconditional GAN: a generator, a discriminator, a loss, optional penalty, clipping and EMA."""

    def __init__(
        self,
        generator: GeneratorFactory = MLPGenerator,               # (latent_dim, data_shape) -> network
        discriminator: DiscriminatorFactory = MLPDiscriminator,   # (data_shape) -> network giving (N,) scores
        loss: AdversarialLoss = NON_SATURATING,                    # losses of both players, on raw scores
        penalty: Penalty | None = None,                            # gradient penalty / R1 / DRAGAN on the critic
        weight_clip: float | None = None,                          # clamp critic weights to [-c, c] (WGAN)
        spectral_norm: bool = False,                               # spectral norm on every critic layer (SNGAN)
        joint_critic: bool = False,                                # fast path: one critic call on real+fake
        channels_last: bool = False,                               # fast path: NHWC memory format (GPU convs)
        n_critic: int = 1,                                         # discriminator steps per generator step
        g_optimizer: OptimizerCallable = ADAM_DCGAN,               # generator optimizer
        d_optimizer: OptimizerCallable = ADAM_DCGAN,               # discriminator optimizer
        latent_dim: int = 64,                                      # size of the noise vector z
        ema_decay: float | None = None,                            # EMA of generator weights, used for sampling
        data_shape: Sequence[int] | None = None,                   # one sample's shape; linked from the data
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        _check_settings(n_critic=n_critic, latent_dim=latent_dim, weight_clip=weight_clip, ema_decay=ema_decay,
                        data_shape=data_shape, penalty=penalty)
        self.data_shape = tuple(int(s) for s in data_shape)  # type: ignore[union-attr]
        self.latent_dim, self.n_critic, self.weight_clip, self.ema_decay = latent_dim, n_critic, weight_clip, ema_decay
        self.loss: AdversarialLoss = build(loss, AdversarialLoss)
        self.penalty: Penalty | None = build(penalty, Penalty | None)
        self.g_optimizer_factory = build(g_optimizer, OptimizerCallable)
        self.d_optimizer_factory = build(d_optimizer, OptimizerCallable)
        self.generator = build(generator, GeneratorFactory)(latent_dim, self.data_shape)
        self.discriminator = build(discriminator, DiscriminatorFactory)(self.data_shape)
        if spectral_norm:
            apply_spectral_norm(self.discriminator)
        if joint_critic and has_batch_norm(self.discriminator):
            raise ValueError("model.joint_critic=true scores real and generated samples in one batch, which changes "
                             "what batch norm computes; give the discriminator norm: layer, instance or none, or "
                             "set joint_critic: false.")
        self.joint_critic, self.channels_last = joint_critic, channels_last
        if channels_last:
            self.generator.to(memory_format=torch.channels_last)
            self.discriminator.to(memory_format=torch.channels_last)
        self._check_networks()
        self.generator_ema: AveragedModel | None = None
        if ema_decay is not None:
            self.generator_ema = AveragedModel(self.generator, multi_avg_fn=get_ema_multi_avg_fn(ema_decay),
                                               use_buffers=True)
            self.generator_ema.requires_grad_(False)
        self._last_penalty: Tensor | None = None  # a lazy penalty's last value, logged on every row
        self.d_steps = 0  # discriminator steps taken; saved in checkpoints
        self.g_steps = 0  # generator steps taken; saved in checkpoints
        self._rng_to_restore: dict[str, Any] | None = None
        self.latest_metrics: dict[str, float] = {}  # the last values sent to the loggers
        self._finite: dict[str, Tensor] = {}  # loss name -> "finite at every step since the last check"
        self._some_finite: dict[str, Tensor] = {}  # loss name -> "finite at some step since the last check"
        self._last_finite_step = 0

    # ------------------------------------------------------------------ public API
    def sample_latent(self, n: int) -> Tensor:
        """n noise vectors z ~ N(0, I) on the module's device."""
        return torch.randn(n, self.latent_dim, device=self.device)

    @torch.no_grad()
    def sample(self, n: int | None = None, z: Tensor | None = None, use_ema: bool = True) -> Tensor:
        """``n`` samples in data space (or one per row of ``z``), from the EMA generator when there is one."""
        if z is None:
            if n is None:
                raise ValueError("sample() needs either n or z")
            z = self.sample_latent(n)
        net = self.generator_ema.module if (use_ema and self.generator_ema is not None) else self.generator
        was_training = net.training
        net.eval()
        try:
            return net(z.to(self.device))
        finally:
            net.train(was_training)

    def forward(self, z: Tensor) -> Tensor:
        return self.generator(z)

    # ------------------------------------------------------------------ training
    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [self.g_optimizer_factory(self.generator.parameters()),
                self.d_optimizer_factory(self.discriminator.parameters())]

    def training_step(self, batch: Any, batch_idx: int) -> None:
        real = batch[0] if isinstance(batch, (list, tuple)) else batch
        g_opt, d_opt = self.optimizers()
        metrics = self.discriminator_step(real, d_opt)
        self.d_steps += 1
        if self.d_steps % self.n_critic == 0:
            metrics.update(self.generator_step(real.shape[0], g_opt))
            self.g_steps += 1
            if self.g_steps % max(self.trainer.log_every_n_steps, 1) == 0:
                self.log_step_metrics(metrics)

    def log_step_metrics(self, metrics: dict[str, Tensor]) -> None:
        """Send this step's values to the loggers and the progress bar.

        Called every ``trainer.log_every_n_steps`` *generator* steps.  It bypasses ``self.log``, which costs
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
        this too)."""
        values = {**values, "train/g_step": self.g_steps}
        if self._trainer is not None:
            for logger in self.loggers:
                logger.log_metrics(values, step=self.global_step)
        return values

    def discriminator_step(self, real: Tensor, d_opt: Any) -> dict[str, Tensor]:
        """One critic update on a real batch and a fresh generated batch; returns detached metrics."""
        if self.channels_last and real.dim() == 4:
            real = real.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            fake = self.generator(self.sample_latent(real.shape[0]))
        if self.joint_critic:  # one launch of every critic kernel instead of two (same maths without batch norm)
            real_scores, fake_scores = self.discriminator(torch.cat([real, fake])).split(real.shape[0])
        else:
            real_scores, fake_scores = self.discriminator(real), self.discriminator(fake)
        loss = self.loss.discriminator(real_scores, fake_scores)
        metrics = {"train/d_real": real_scores.detach().mean(), "train/d_fake": fake_scores.detach().mean()}
        if self.loss.is_wasserstein:
            metrics["train/wasserstein"] = metrics["train/d_real"] - metrics["train/d_fake"]
        if self.penalty is not None and self.d_steps % self.penalty.interval == 0:
            value = self.penalty(self.discriminator, real, fake, scale=self._grad_scale())
            loss = loss + (self.penalty.weight * self.penalty.interval) * value
            self._last_penalty = value.detach()
        if self._last_penalty is not None:  # lazy: the last computed value, else a logging interval may never see one
            metrics["train/gp"] = self._last_penalty
        d_opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        d_opt.step()
        if self.weight_clip is not None:
            clip_weights_(self.discriminator, self.weight_clip)
        metrics["train/d_loss"] = loss.detach()
        self._track_finite("train/d_loss", metrics["train/d_loss"])
        return metrics

    def generator_step(self, batch_size: int, g_opt: Any) -> dict[str, Tensor]:
        """One generator update against the current discriminator; returns detached metrics."""
        self.toggle_optimizer(g_opt)  # no weight gradients for the discriminator in this step
        try:
            loss = self.loss.generator(self.discriminator(self.generator(self.sample_latent(batch_size))))
            g_opt.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            g_opt.step()
        finally:
            self.untoggle_optimizer(g_opt)
        if self.generator_ema is not None:
            self.update_ema()
        self._track_finite("train/g_loss", loss.detach())
        return {"train/g_loss": loss.detach()}

    def update_ema(self) -> None:
        """torch's EMA update with a warm-up: the decay is min(ema_decay, (1 + t) / (10 + t)) at generator step t.

        Without it a 0.999 average drags the untrained initial weights along for thousands of steps (on the
        ring it covered 2 of 8 modes after 2,600 generator steps); TensorFlow's ExponentialMovingAverage uses
        the same rule.
        """
        decay = min(self.ema_decay, (1 + self.g_steps) / (10 + self.g_steps))
        self.generator_ema.multi_avg_fn = get_ema_multi_avg_fn(decay)
        self.generator_ema.update_parameters(self.generator)

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
                                      "n_critic": self.n_critic, "batch_size": _loader_batch_size(self._trainer)}

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
            lines = [f"the checkpoint's networks do not match this config's ({type(self).__name__}):"]
            if data_shape is not None and tuple(data_shape) != self.data_shape:
                lines.append(f"  it was trained on samples of shape {tuple(data_shape)}, these data have "
                             f"{self.data_shape}")
            lines += [f"  shape of {s}" for s in shapes[:5]]
            lines += [f"  in this config only: {', '.join(missing[:5])}"] if missing else []
            lines += [f"  in the checkpoint only: {', '.join(unexpected[:5])}"] if unexpected else []
            lines.append("Resume with the config the run was trained with (its run folder holds config.yaml).")
            raise ValueError("\n".join(lines))

    # ------------------------------------------------------------------ start-up checks
    def _check_networks(self) -> None:
        """Fail at start-up, with both shapes named, when the networks do not fit the data."""
        gen, disc = type(self.generator).__name__, type(self.discriminator).__name__
        modes = (self.generator.training, self.discriminator.training)
        self.generator.eval()
        self.discriminator.eval()
        try:
            with torch.no_grad():
                try:
                    out = self.generator(torch.zeros(2, self.latent_dim))
                except RuntimeError as err:
                    raise ValueError(f"model.generator ({gen}) failed on a batch of noise of shape "
                                     f"(2, {self.latent_dim}): {err}") from err
                if tuple(out.shape[1:]) != self.data_shape:
                    raise ValueError(f"model.generator ({gen}) makes samples of shape {tuple(out.shape[1:])}, "
                                     f"but the data's samples have shape {self.data_shape}; choose a generator "
                                     "for this data size or change the datamodule's size.")
                try:
                    scores = self.discriminator(torch.zeros(2, *self.data_shape))
                except RuntimeError as err:
                    raise ValueError(f"model.discriminator ({disc}) failed on a batch of shape "
                                     f"(2, *{self.data_shape}): {err}") from err
                if tuple(scores.shape) != (2,):
                    raise ValueError(f"model.discriminator ({disc}) must return one raw score per sample, shape "
                                     f"(N,), but returned {tuple(scores.shape)} for N=2; flatten its output "
                                     "(e.g. `.view(-1)`) and drop any final sigmoid.")
        finally:
            self.generator.train(modes[0])
            self.discriminator.train(modes[1])
        if isinstance(self.penalty, GradientPenalty) and has_batch_norm(self.discriminator):
            rank_zero_warn(f"model.discriminator ({disc}) uses batch norm under a gradient penalty: the penalty is "
                           "per sample and batch norm mixes samples (WGAN-GP paper, section 4). Set its norm to "
                           "layer, instance or none.")


def _check_settings(**s: Any) -> None:
    """Errors for settings that cannot work, naming the setting and a fix."""
    if not isinstance(s["n_critic"], int) or s["n_critic"] < 1:
        raise ValueError(f"model.n_critic={s['n_critic']}: must be an integer >= 1 (discriminator steps per "
                         "generator step; WGAN and WGAN-GP use 5).")
    if s["latent_dim"] < 1:
        raise ValueError(f"model.latent_dim={s['latent_dim']}: must be >= 1.")
    if s["weight_clip"] is not None and s["weight_clip"] <= 0:
        raise ValueError(f"model.weight_clip={s['weight_clip']}: must be > 0 (WGAN uses 0.01), or null for none.")
    if s["ema_decay"] is not None and not 0.0 < s["ema_decay"] < 1.0:
        raise ValueError(f"model.ema_decay={s['ema_decay']}: must lie in (0, 1), e.g. 0.999, or null for none.")
    if s["data_shape"] is None:
        raise ValueError("model.data_shape is missing: it is linked from the datamodule by main.py; when building "
                         "a module in Python, pass data_shape=datamodule.data_shape.")
    if s["weight_clip"] is not None and s["penalty"] is not None:
        penalty = s["penalty"]
        name = penalty["class_path"].rpartition(".")[2] if isinstance(penalty, dict) else type(penalty).__name__
        rank_zero_warn(f"model.weight_clip={s['weight_clip']} and model.penalty ({name}) both constrain the critic: "
                       "clipping caps every weight, so the penalty's gradient-norm target may be out of reach "
                       "(WGAN-GP, Gulrajani et al. 2017, replaces clipping with the penalty). Set "
                       "model.init_args.weight_clip: null, or drop the penalty for the original WGAN.")


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


__all__ = ["GANModule"]


def _loader_batch_size(trainer: Any) -> int | None:
    """The training loader's per-process batch size, or None where there is no loader (or no trainer)."""
    loader = getattr(trainer, "train_dataloader", None) if trainer is not None else None
    size = getattr(getattr(loader, "batch_sampler", None), "batch_size", None) or getattr(loader, "batch_size", None)
    return size if isinstance(size, int) else None
