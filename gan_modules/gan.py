"""The unconditional GAN recipe: one generator G(z), one discriminator D(x), a loss, penalties, clipping, EMA.

Every named variant (``gan_modules.variants``: GAN, DCGAN, WGAN, WGAN-GP, LSGAN, SNGAN, DRAGAN) is this
class with its paper's defaults; the optimizer mechanics live in :class:`~gan_modules.base.AdversarialModule`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from .augment import Augment
from .base import ADAM_DCGAN, AdversarialModule, Metrics, _critic_batch_size, samples_of
from .config_types import DiscriminatorFactory, GeneratorFactory, LRSchedulerCallable, OptimizerCallable, build, spec
from .losses import AdversarialLoss
from .networks import MLPDiscriminator, MLPGenerator
from .networks.common import apply_spectral_norm, has_batch_norm
from .packing import pack_samples, packed_shape, unpack_samples
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
        generator_spectral_norm: bool = False,                     # ... and on every generator layer (SAGAN)
        joint_critic: bool = False,                                # fast path: one critic call on real+fake
        channels_last: bool = False,                               # fast path: NHWC memory format (GPU convs)
        pack: int = 1,                                             # PacGAN: D scores packs of this many samples
        n_critic: int = 1,                                         # discriminator steps per generator step
        g_optimizer: OptimizerCallable = ADAM_DCGAN,               # generator optimizer
        d_optimizer: OptimizerCallable = ADAM_DCGAN,               # discriminator optimizer
        g_scheduler: LRSchedulerCallable | None = None,            # generator learning-rate schedule
        d_scheduler: LRSchedulerCallable | None = None,            # discriminator learning-rate schedule
        scheduler_interval: str = "step",                          # schedules step per generator "step" or "epoch"
        latent_dim: int = 64,                                      # size of the noise vector z
        ema_decay: float | None = None,                            # EMA of generator weights, used for sampling
        augment: Augment | None = None,                            # DiffAugment / ADA on everything D sees
        data_shape: Sequence[int] | None = None,                   # one sample's shape; linked from the data
    ) -> None:
        super().__init__(n_critic=n_critic, g_optimizer=g_optimizer, d_optimizer=d_optimizer, g_scheduler=g_scheduler,
                         d_scheduler=d_scheduler, scheduler_interval=scheduler_interval)
        _check_settings(latent_dim=latent_dim, weight_clip=weight_clip, ema_decay=ema_decay, data_shape=data_shape,
                        penalty=penalty, pack=pack)
        self.data_shape = tuple(int(s) for s in data_shape)  # type: ignore[union-attr]
        self.latent_dim, self.weight_clip, self.ema_decay = latent_dim, weight_clip, ema_decay
        self.loss: AdversarialLoss = build(loss, AdversarialLoss)
        self.penalty: Penalty | None = build(penalty, Penalty | None)
        # the condition's size goes to both networks (stylegan2-ada's c_dim): nothing for the unconditional recipe
        sized = {} if self.num_classes is None else {"num_classes": self.num_classes}
        if pack > 1 and sized:
            raise ValueError(f"model.pack={pack} with a conditional model: PacGAN packs unlabeled samples; set pack: 1 "
                             "for a conditional GAN (its labels already steer D towards every class).")
        self.generator = build(generator, GeneratorFactory)(latent_dim, self.data_shape, **sized)
        self.pack = pack
        self.critic_shape = packed_shape(self.data_shape, pack)  # what D sees: one pack of samples (Lin et al. 2018)
        self.discriminator = build(discriminator, DiscriminatorFactory)(self.critic_shape, **sized)
        if spectral_norm:
            apply_spectral_norm(self.discriminator)
        if generator_spectral_norm:  # before the EMA copy is made, so the copy has the same parametrisation
            apply_spectral_norm(self.generator)
        if joint_critic and has_batch_norm(self.discriminator):
            raise ValueError("model.joint_critic=true scores real and generated samples in one batch, which changes "
                             "what batch norm computes; give the discriminator norm: layer, instance or none, or "
                             "set joint_critic: false.")
        self.joint_critic, self.channels_last = joint_critic, channels_last
        if channels_last:
            self.generator.to(memory_format=torch.channels_last)
            self.discriminator.to(memory_format=torch.channels_last)
        self._check_networks()
        self.augment: Augment | None = build(augment, Augment | None)
        if self.augment is not None:
            self.augment.check_shape(self.data_shape)
        self.generator_ema: AveragedModel | None = None
        if ema_decay is not None:
            self.generator_ema = AveragedModel(self.generator, multi_avg_fn=get_ema_multi_avg_fn(ema_decay),
                                               use_buffers=True)
            self.generator_ema.requires_grad_(False)
        self._last_penalty: Tensor | None = None  # a lazy penalty's last value, logged on every row

    #: classes both players are conditioned on; None: unconditional (labels in a batch are ignored)
    num_classes: int | None = None

    # ------------------------------------------------------------------ public API
    def sample_latent(self, n: int) -> Tensor:
        """n noise vectors z ~ N(0, I) on the module's device."""
        return torch.randn(n, self.latent_dim, device=self.device)

    @torch.no_grad()
    def sample(self, n: int | None = None, z: Tensor | None = None, use_ema: bool = True,
               labels: Tensor | Sequence[int] | None = None) -> Tensor:
        """``n`` samples in data space (or one per row of ``z``), from the EMA generator when there is one.

        A conditional model draws sample ``i`` of class ``labels[i]`` (classes drawn uniformly when no labels are
        given); the unconditional recipe takes no labels."""
        if z is None:
            if n is None:
                n = None if labels is None else len(labels)
            if n is None:
                raise ValueError("sample() needs n, z or labels")
            z = self.sample_latent(n)
        y = self.sample_labels(len(z), labels)
        net = self.generator_ema.module if (use_ema and self.generator_ema is not None) else self.generator
        was_training = net.training
        net.eval()
        try:
            return self.generate(z.to(self.device), y, net)
        finally:
            net.train(was_training)

    def sample_labels(self, n: int, labels: Tensor | Sequence[int] | None = None,
                      generator: torch.Generator | None = None) -> Tensor | None:
        """The condition for ``n`` samples: None for the unconditional recipe (which refuses labels)."""
        if labels is not None:
            raise ValueError(f"{type(self).__name__} is unconditional: it takes no labels. Train a conditional "
                             "model (gan_modules.CGAN, ConditionalGAN, ACGAN) to choose classes.")
        return None

    def forward(self, z: Tensor) -> Tensor:
        return self.generator(z)

    # ------------------------------------------------------------------ the recipe's hooks
    def real_samples(self, batch: Any) -> Tensor:
        """The samples of a batch (labels, if any, are ignored by the unconditional recipe)."""
        real = samples_of(batch)
        if self.channels_last and real.dim() == 4:
            real = real.contiguous(memory_format=torch.channels_last)
        return real

    def condition(self, batch: Any) -> Tensor | None:
        """What both players are conditioned on for this batch: nothing for the unconditional recipe."""
        return None

    def generate(self, z: Tensor, y: Tensor | None = None, net: Any = None) -> Tensor:
        """The one path from noise (and a condition) to samples: ``G(z)``, or ``G(z, y)`` given labels."""
        net = self.generator if net is None else net
        return net(z) if y is None else net(z, y)

    def critic(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """The discriminator's raw scores for samples ``x`` (of classes ``y`` when conditional), the one path by
        which both players' losses and the penalties reach the discriminator (where a recipe adds what D sees
        besides the samples), and where the augmentation applies, so real, generated and penalised samples all get
        it (Zhao et al. 2020).

        With ``pack > 1`` the scores are one per pack of ``pack`` consecutive samples (``gan_modules.packing``),
        each sample augmented on its own before packing.
        """
        x = pack_samples(x if self.augment is None else self.augment(x), self.pack)
        return self.discriminator(x) if y is None else self.discriminator(x, y)

    def packed_critic(self, packs: Tensor) -> Tensor:
        """:meth:`critic` on samples already packed, ``(N/pack, pack*C, ...)``: what a penalty differentiates, so
        its interpolates, perturbations and gradient norms are taken per packed input, as D sees it."""
        return self.critic(unpack_samples(packs, self.pack))

    def discriminator_loss(self, batch: Any) -> tuple[Tensor, Metrics]:
        """The loss on a real batch and a fresh generated one (of the real batch's classes when conditional)."""
        real, y = self.real_samples(batch), self.condition(batch)
        return self.critic_loss(real, self.generate(self.sample_latent(real.shape[0]), y), y)

    def critic_loss(self, real: Tensor, fake: Tensor, y: Tensor | None = None) -> tuple[Tensor, Metrics]:
        """The discriminator's loss on real and generated samples of classes ``y``, plus the penalty on its
        schedule."""
        if self.joint_critic:  # one launch of every critic kernel instead of two (same maths without batch norm)
            both = None if y is None else torch.cat([y, y])
            # packs never straddle the two halves: the critic batch size is a multiple of the pack (on_train_start)
            real_scores, fake_scores = self.critic(torch.cat([real, fake]), both).split(real.shape[0] // self.pack)
        else:
            real_scores, fake_scores = self.critic(real, y), self.critic(fake, y)
        loss = self.loss.discriminator(real_scores, fake_scores)
        metrics = {"train/d_real": real_scores.detach().mean(), "train/d_fake": fake_scores.detach().mean()}
        if self.augment is not None:  # ADA steers its p by sign(D(real)); its p and r_t are logged
            metrics.update(self.augment.observe(real_scores.detach(), self._sum_over_ranks))
        if self.loss.is_wasserstein:
            metrics["train/wasserstein"] = metrics["train/d_real"] - metrics["train/d_fake"]
        if self.penalty is not None and self.d_steps % self.penalty.interval == 0:
            if self.pack > 1:  # (the pack is 1 for a conditional model)
                value = self.penalty(self.packed_critic, pack_samples(real, self.pack), pack_samples(fake, self.pack),
                                     scale=self._grad_scale())
            else:
                critic = self.critic if y is None else partial(self.critic, y=y)  # each point scored with its label
                value = self.penalty(critic, real, fake, scale=self._grad_scale())
            loss = loss + (self.penalty.weight * self.penalty.interval) * value
            self._last_penalty = value.detach()
        if self._last_penalty is not None:  # lazy: the last computed value, else a logging interval may never see one
            metrics["train/gp"] = self._last_penalty
        return loss, metrics

    def _sum_over_ranks(self, t: Tensor) -> Tensor:
        """``t`` summed over the processes of a data-parallel run (itself on one process)."""
        if self._trainer is None or self.trainer.world_size == 1:
            return t
        return self.trainer.strategy.reduce(t.clone(), reduce_op="sum")

    def generator_loss(self, batch: Any) -> tuple[Tensor, Metrics]:
        """The loss of a fresh generated batch (of the batch's classes when conditional) against the current
        discriminator."""
        y = self.condition(batch)
        return self.fooling_loss(self.generate(self.sample_latent(len(samples_of(batch))), y), y)

    def fooling_loss(self, fake: Tensor, y: Tensor | None = None) -> tuple[Tensor, Metrics]:
        """The generator's loss on its samples ``fake`` of classes ``y``."""
        return self.loss.generator(self.critic(fake, y)), {}

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
    def on_train_start(self) -> None:
        super().on_train_start()
        batch = _critic_batch_size(self)
        if self.pack > 1 and batch is not None and batch % self.pack:
            fit = batch - batch % self.pack or self.pack
            raise ValueError(f"model.pack={self.pack} needs a critic batch size that is a multiple of it, so real and "
                             f"generated samples never share a pack, but data.batch_size is {batch}; set "
                             f"data.batch_size to a multiple of {self.pack} (e.g. {fit}).")

    def _check_networks(self) -> None:
        """Fail at start-up, with both shapes named, when the networks do not fit the data."""
        gen, disc = type(self.generator).__name__, type(self.discriminator).__name__
        modes = (self.generator.training, self.discriminator.training)
        self.generator.eval()
        self.discriminator.eval()
        try:
            with torch.no_grad():
                y = None if self.num_classes is None else torch.zeros(2, dtype=torch.long)
                try:
                    z = torch.zeros(2, self.latent_dim)  # the network itself: a recipe's generate() may train
                    out = self.generator(z) if y is None else self.generator(z, y)
                except RuntimeError as err:
                    raise ValueError(f"model.generator ({gen}) failed on a batch of noise of shape "
                                     f"(2, {self.latent_dim}): {err}") from err
                if tuple(out.shape[1:]) != self.data_shape:
                    raise ValueError(f"model.generator ({gen}) makes samples of shape {tuple(out.shape[1:])}, "
                                     f"but the data's samples have shape {self.data_shape}; choose a generator "
                                     "for this data size or change the datamodule's size.")
                try:
                    x = torch.zeros(2, *self.critic_shape)
                    scores = self.discriminator(x) if y is None else self.discriminator(x, y)
                except RuntimeError as err:
                    raise ValueError(f"model.discriminator ({disc}) failed on a batch of shape "
                                     f"(2, *{self.critic_shape}): {err}") from err
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
    if not isinstance(s["pack"], int) or s["pack"] < 1:
        raise ValueError(f"model.pack={s['pack']}: must be an integer >= 1 (1: no packing; PacGAN uses 2 to 4).")
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
