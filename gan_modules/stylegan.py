"""StyleGAN-lite: the unconditional recipe with a style-based generator (Karras et al. 2019) and StyleGAN2's
training (Karras et al. 2020): non-saturating loss, lazy R1, optional lazy path-length regularisation, style
mixing, ``w_avg`` and the truncation trick, an EMA generator for sampling.

    model = StyleGAN.load_from_checkpoint(path)
    images = model.sample(16, truncation_psi=0.7)               # closer to the average style: cleaner, less varied
    mixed = model.style_mix(z_coarse, z_fine, crossover=3)      # layers < 3 styled by z_coarse, the rest by z_fine
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

from .base import Metrics, samples_of
from .config_types import DiscriminatorFactory, GeneratorFactory, OptimizerCallable, spec
from .gan import NON_SATURATING, GANModule
from .losses import AdversarialLoss
from .networks.stylegan import NoiseMode, StyleGANGenerator
from .regularizers import Penalty

ADAM_STYLEGAN2 = spec("torch.optim.Adam", lr=2e-3, betas=(0.0, 0.99))
STYLEGAN_G = spec("gan_modules.networks.StyleGANGenerator")
STYLEGAN_D = spec("gan_modules.networks.StyleGANDiscriminator")
LAZY_R1 = spec("gan_modules.regularizers.R1Penalty", gamma=10.0, interval=16)


class StyleGAN(GANModule):
    """StyleGAN-lite: mapping network, styles by AdaIN or modulation, noise inputs, style mixing, truncation."""

    def __init__(
        self,
        generator: GeneratorFactory = STYLEGAN_G,        # a StyleGANGenerator (mapping + synthesis)
        discriminator: DiscriminatorFactory = STYLEGAN_D,  # residual blocks with minibatch std
        loss: AdversarialLoss = NON_SATURATING,          # StyleGAN2's non-saturating logistic loss
        penalty: Penalty | None = LAZY_R1,               # R1 (gamma 10) every 16 discriminator steps
        g_optimizer: OptimizerCallable = ADAM_STYLEGAN2,  # Adam 2e-3, betas (0, 0.99) (StyleGAN2)
        d_optimizer: OptimizerCallable = ADAM_STYLEGAN2,  # Adam 2e-3, betas (0, 0.99)
        latent_dim: int = 128,                           # size of z
        ema_decay: float | None = 0.999,                 # EMA generator for sampling
        style_mixing_prob: float = 0.9,                  # chance a training batch mixes two latents' styles
        path_length_weight: float = 0.0,                 # path-length regulariser on G (StyleGAN2: 2); 0 = off
        path_length_interval: int = 4,                   # ... applied every this many generator steps (lazy)
        path_length_decay: float = 0.01,                 # ... speed of its moving target
        path_length_batch_shrink: int = 2,               # ... on batch / this many samples
        w_avg_beta: float = 0.995,                       # w_avg <- beta w_avg + (1 - beta) mean(w), per batch
        truncation_psi: float = 1.0,                     # sample()'s default psi (1: no truncation)
        truncation_cutoff: int | None = None,            # truncate the first this many layers (None: all)
        **kwargs: Any,                                   # the rest of GANModule's arguments
    ) -> None:
        if kwargs.get("joint_critic"):
            raise ValueError("model.joint_critic=true puts real and generated samples in one critic batch, and the "
                             "minibatch-std layer would then mix them; set joint_critic: false for StyleGAN.")
        super().__init__(generator=generator, discriminator=discriminator, loss=loss, penalty=penalty,
                         g_optimizer=g_optimizer, d_optimizer=d_optimizer, latent_dim=latent_dim,
                         ema_decay=ema_decay, **kwargs)
        if not isinstance(self.generator, StyleGANGenerator):
            raise ValueError(f"model.generator is a {type(self.generator).__name__}; StyleGAN needs "
                             "gan_modules.networks.StyleGANGenerator (its mapping network, w_avg and styles).")
        _check_style_settings(style_mixing_prob=style_mixing_prob, path_length_weight=path_length_weight,
                              path_length_interval=path_length_interval, path_length_decay=path_length_decay,
                              path_length_batch_shrink=path_length_batch_shrink, w_avg_beta=w_avg_beta,
                              truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                              num_ws=self.generator.num_ws)
        self.style_mixing_prob, self.w_avg_beta = style_mixing_prob, w_avg_beta
        self.path_length_weight, self.path_length_interval = path_length_weight, path_length_interval
        self.path_length_decay, self.path_length_batch_shrink = path_length_decay, path_length_batch_shrink
        self.truncation_psi, self.truncation_cutoff = truncation_psi, truncation_cutoff
        self.register_buffer("pl_mean", torch.zeros(()))  # the path-length target, kept in checkpoints
        self._last_path_length: Tensor | None = None

    @property
    def num_ws(self) -> int:
        """Styles one image takes (layers that style mixing and truncation address)."""
        return self.generator.num_ws

    @property
    def w_avg(self) -> Tensor:
        """The moving average of mapped latents, the truncation trick's centre (the sampling generator's)."""
        return self._sampling_generator(True).w_avg

    # ------------------------------------------------------------------ public API
    @torch.no_grad()
    def sample(self, n: int | None = None, z: Tensor | None = None, use_ema: bool = True,
               truncation_psi: float | None = None, truncation_cutoff: int | None = None,
               noise_mode: NoiseMode = "random") -> Tensor:
        """``n`` images in [-1, 1] (or one per row of ``z``), from the EMA generator when there is one.

        ``truncation_psi`` (default: the module's ``truncation_psi``) pulls each style towards ``w_avg``: 1 is
        no truncation, 0 the average image; ``truncation_cutoff`` limits it to the first layers."""
        if z is None:
            if n is None:
                raise ValueError("sample() needs either n or z")
            z = self.sample_latent(n)
        psi = self.truncation_psi if truncation_psi is None else truncation_psi
        cutoff = self.truncation_cutoff if truncation_cutoff is None else truncation_cutoff
        with self._evaluating(use_ema) as net:
            ws = net.truncate(net.broadcast(net.mapping(z.to(self.device))), psi, cutoff)
            return net.synthesis(ws, noise_mode).clamp(-1, 1)

    @torch.no_grad()
    def style_mix(self, z_coarse: Tensor, z_fine: Tensor, crossover: int, use_ema: bool = True,
                  truncation_psi: float | None = None, noise_mode: NoiseMode = "const") -> Tensor:
        """Images styled by ``z_coarse`` in layers ``< crossover`` (4x4 and 8x8 at 3: pose, shape) and by
        ``z_fine`` from ``crossover`` on (finer detail); rows of the two are paired.  ``crossover`` 0 gives
        z_fine's image, ``num_ws`` z_coarse's.  Constant noise by default, so images differ only by style."""
        if not 0 <= crossover <= self.num_ws:
            raise ValueError(f"crossover={crossover}: must lie in [0, {self.num_ws}] (this generator takes "
                             f"{self.num_ws} styles).")
        if z_coarse.shape != z_fine.shape:
            raise ValueError(f"style_mix: z_coarse {tuple(z_coarse.shape)} and z_fine {tuple(z_fine.shape)} must "
                             "have the same shape (row i mixes z_coarse[i] with z_fine[i]).")
        psi = self.truncation_psi if truncation_psi is None else truncation_psi
        with self._evaluating(use_ema) as net:
            coarse = net.truncate(net.broadcast(net.mapping(z_coarse.to(self.device))), psi, self.truncation_cutoff)
            fine = net.truncate(net.broadcast(net.mapping(z_fine.to(self.device))), psi, self.truncation_cutoff)
            return net.synthesis(torch.cat([coarse[:, :crossover], fine[:, crossover:]], 1), noise_mode).clamp(-1, 1)

    # ------------------------------------------------------------------ training
    def generate(self, z: Tensor, y: Tensor | None = None, net: Any = None) -> Tensor:
        """Training fakes from latents ``z`` with style mixing (every batch of mapped latents moves ``w_avg``);
        another network (``net``, e.g. the EMA copy) maps and synthesises plainly."""
        if net is not None and net is not self.generator:
            return net(z)
        return self.generator.synthesis(self.mapped_latents(z))

    def mapped_latents(self, z: Tensor) -> Tensor:
        """(n, num_ws, w_dim) styles of latents ``z``; with probability ``style_mixing_prob`` the layers from a
        random crossover in [1, num_ws) take a second latent's style (Karras et al. 2019, section 3.1)."""
        g, n = self.generator, len(z)
        w = g.mapping(z)
        g.update_w_avg(w, self.w_avg_beta)
        ws = g.broadcast(w)
        if self.style_mixing_prob > 0 and g.num_ws > 1:
            crossover = int(torch.randint(1, g.num_ws, ()))
            if float(torch.rand(())) < self.style_mixing_prob:
                other = g.broadcast(g.mapping(self.sample_latent(n)))
                ws = torch.cat([ws[:, :crossover], other[:, crossover:]], 1)
        return ws

    def generator_loss(self, batch: Any) -> tuple[Tensor, Metrics]:
        """The non-saturating loss, plus the lazy path-length penalty every ``path_length_interval`` G steps."""
        loss, metrics = super().generator_loss(batch)
        if self.path_length_weight > 0 and self.g_steps % self.path_length_interval == 0:
            n = max(len(samples_of(batch)) // self.path_length_batch_shrink, 1)
            penalty = self.path_length_penalty(n)
            loss = loss + (self.path_length_weight * self.path_length_interval) * penalty
            self._last_path_length = penalty.detach()
        if self._last_path_length is not None:
            metrics["train/path_length_penalty"] = self._last_path_length
            metrics["train/path_length_mean"] = self.pl_mean.detach().clone()
        return loss, metrics

    def path_length_penalty(self, n: int) -> Tensor:
        """E[(||J_w^T y|| - a)^2] with y ~ N(0, I)/sqrt(pixels) and a the moving mean of the lengths (StyleGAN2)."""
        ws = self.mapped_latents(self.sample_latent(n))
        images = self.generator.synthesis(ws)
        noise = torch.randn_like(images) / (images.shape[2] * images.shape[3]) ** 0.5
        (grad,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)
        lengths = grad.square().sum(2).mean(1).sqrt()
        self.pl_mean.copy_(self.pl_mean.lerp(lengths.mean().detach(), self.path_length_decay))
        return (lengths - self.pl_mean).square().mean()

    # ------------------------------------------------------------------ helpers
    def _sampling_generator(self, use_ema: bool) -> StyleGANGenerator:
        return self.generator_ema.module if (use_ema and self.generator_ema is not None) else self.generator

    @contextmanager
    def _evaluating(self, use_ema: bool) -> Iterator[StyleGANGenerator]:
        """The sampling generator, in eval mode for the ``with`` block."""
        net = self._sampling_generator(use_ema)
        was_training = net.training
        net.eval()
        try:
            yield net
        finally:
            net.train(was_training)


def _check_style_settings(**s: Any) -> None:
    """Errors for StyleGAN settings that cannot work, naming the setting and a fix."""
    if not 0.0 <= s["style_mixing_prob"] <= 1.0:
        raise ValueError(f"model.style_mixing_prob={s['style_mixing_prob']}: a probability in [0, 1] (StyleGAN: 0.9).")
    if s["path_length_weight"] < 0:
        raise ValueError(f"model.path_length_weight={s['path_length_weight']}: must be >= 0 (StyleGAN2: 2; 0 = off).")
    for name in ("path_length_interval", "path_length_batch_shrink"):
        if not isinstance(s[name], int) or s[name] < 1:
            raise ValueError(f"model.{name}={s[name]}: must be an integer >= 1.")
    for name in ("path_length_decay", "w_avg_beta"):
        if not 0.0 <= s[name] <= 1.0:
            raise ValueError(f"model.{name}={s[name]}: must lie in [0, 1].")
    if s["truncation_cutoff"] is not None and not 0 <= s["truncation_cutoff"] <= s["num_ws"]:
        raise ValueError(f"model.truncation_cutoff={s['truncation_cutoff']}: must lie in [0, {s['num_ws']}] (the "
                         "generator's styled layers), or null for all.")


__all__ = ["StyleGAN"]
