"""The unconditional GAN recipe: one generator G(z), one discriminator D(x), a loss, penalties, clipping, EMA.

Every named variant (``gan_modules.variants``: GAN, DCGAN, WGAN, WGAN-GP, LSGAN, SNGAN, DRAGAN) is this
class with its paper's defaults; the optimizer mechanics live in :class:`~gan_modules.base.AdversarialModule`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from .base import ADAM_DCGAN, AdversarialModule, Metrics, samples_of
from .config_types import DiscriminatorFactory, GeneratorFactory, OptimizerCallable, build, spec
from .losses import AdversarialLoss
from .networks import MLPDiscriminator, MLPGenerator
from .networks.common import apply_spectral_norm, has_batch_norm
from .regularizers import GradientPenalty, Penalty, clip_weights_

NON_SATURATING = spec("gan_modules.losses.NonSaturatingLoss")


class GANModule(AdversarialModule):
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
        super().__init__(n_critic=n_critic, g_optimizer=g_optimizer, d_optimizer=d_optimizer)
        _check_settings(latent_dim=latent_dim, weight_clip=weight_clip, ema_decay=ema_decay, data_shape=data_shape,
                        penalty=penalty)
        self.data_shape = tuple(int(s) for s in data_shape)  # type: ignore[union-attr]
        self.latent_dim, self.weight_clip, self.ema_decay = latent_dim, weight_clip, ema_decay
        self.loss: AdversarialLoss = build(loss, AdversarialLoss)
        self.penalty: Penalty | None = build(penalty, Penalty | None)
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

    # ------------------------------------------------------------------ the recipe's hooks
    def real_samples(self, batch: Any) -> Tensor:
        """The samples of a batch (labels, if any, are ignored by the unconditional recipe)."""
        real = samples_of(batch)
        if self.channels_last and real.dim() == 4:
            real = real.contiguous(memory_format=torch.channels_last)
        return real

    def critic(self, x: Tensor) -> Tensor:
        """The discriminator's raw scores for samples ``x``, the one path by which both players' losses and the
        penalties reach the discriminator (where a recipe adds what D sees besides the samples)."""
        return self.discriminator(x)

    def discriminator_loss(self, batch: Any) -> tuple[Tensor, Metrics]:
        """The loss on a real batch and a fresh generated one, plus the penalty on its schedule."""
        real = self.real_samples(batch)
        fake = self.generate(real.shape[0])
        if self.joint_critic:  # one launch of every critic kernel instead of two (same maths without batch norm)
            real_scores, fake_scores = self.critic(torch.cat([real, fake])).split(real.shape[0])
        else:
            real_scores, fake_scores = self.critic(real), self.critic(fake)
        loss = self.loss.discriminator(real_scores, fake_scores)
        metrics = {"train/d_real": real_scores.detach().mean(), "train/d_fake": fake_scores.detach().mean()}
        if self.loss.is_wasserstein:
            metrics["train/wasserstein"] = metrics["train/d_real"] - metrics["train/d_fake"]
        if self.penalty is not None and self.d_steps % self.penalty.interval == 0:
            value = self.penalty(self.critic, real, fake, scale=self._grad_scale())
            loss = loss + (self.penalty.weight * self.penalty.interval) * value
            self._last_penalty = value.detach()
        if self._last_penalty is not None:  # lazy: the last computed value, else a logging interval may never see one
            metrics["train/gp"] = self._last_penalty
        return loss, metrics

    def generator_loss(self, batch: Any) -> tuple[Tensor, Metrics]:
        """The loss of a fresh generated batch against the current discriminator."""
        n = len(samples_of(batch))
        return self.loss.generator(self.critic(self.generate(n))), {}

    def generate(self, n: int) -> Tensor:
        """``n`` generated samples for a training step of either player (where a recipe changes how training
        fakes are made, e.g. StyleGAN's style mixing)."""
        return self.generator(self.sample_latent(n))

    def after_discriminator_step(self) -> None:
        if self.weight_clip is not None:
            clip_weights_(self.discriminator, self.weight_clip)

    def after_generator_step(self) -> None:
        if self.generator_ema is not None:
            self.update_ema()

    def update_ema(self) -> None:
        """torch's EMA update with a warm-up: the decay is min(ema_decay, (1 + t) / (10 + t)) at generator step t.

        Without it a 0.999 average drags the untrained initial weights along for thousands of steps (on the
        ring it covered 2 of 8 modes after 2,600 generator steps); TensorFlow's ExponentialMovingAverage uses
        the same rule.  ``t`` is the number of generator steps taken before this one.
        """
        t = self.g_steps - 1
        decay = min(self.ema_decay, (1 + t) / (10 + t))
        self.generator_ema.multi_avg_fn = get_ema_multi_avg_fn(decay)
        self.generator_ema.update_parameters(self.generator)

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


__all__ = ["GANModule"]
