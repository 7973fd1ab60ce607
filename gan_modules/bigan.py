"""BiGAN / ALI (Donahue et al. 2017; Dumoulin et al. 2017): an encoder E: x -> z learnt with the generator, and a
discriminator on joint pairs, (x, E(x)) for real data against (G(z), z) for generated data.

At the optimum E inverts G, and E(x) is a representation learnt without labels (``benchmarks/bigan_features.py``
checks the paper's claim with a linear classifier).  The generator side (G and E, one optimizer, through
``generator_parameters``) plays the discriminator's loss with the roles of real and generated pairs swapped:
for the BCE loss, the inverted-label objective of the BiGAN paper's code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import chain
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import Parameter

from .base import ADAM_DCGAN, Metrics
from .config_types import GeneratorFactory, OptimizerCallable, build, spec
from .gan import NON_SATURATING, GANModule
from .losses import AdversarialLoss

#: ``(data_shape, latent_dim) -> encoder`` giving (N, latent_dim) codes.
EncoderFactory = Callable[[Sequence[int], int], nn.Module]
#: ``(data_shape, latent_dim) -> discriminator`` scoring pairs: ``D(x, z)`` of shape (N,).
JointDiscriminatorFactory = Callable[[Sequence[int], int], nn.Module]

BIGAN_G = spec("gan_modules.networks.MLPGenerator", hidden=[1024, 1024], norm="batch", output="tanh")
BIGAN_E = spec("gan_modules.networks.bigan.MLPEncoder")
BIGAN_D = spec("gan_modules.networks.bigan.JointMLPDiscriminator")


class BiGAN(GANModule):
    """Bidirectional GAN: generator G(z), encoder E(x), discriminator D(x, z) on joint pairs."""

    def __init__(
        self,
        generator: GeneratorFactory = BIGAN_G,                  # (latent_dim, data_shape) -> G
        encoder: EncoderFactory = BIGAN_E,                      # (data_shape, latent_dim) -> E
        discriminator: JointDiscriminatorFactory = BIGAN_D,     # (data_shape, latent_dim) -> D(x, z)
        loss: AdversarialLoss = NON_SATURATING,                 # D's loss; G and E play it with roles swapped
        g_optimizer: OptimizerCallable = ADAM_DCGAN,            # optimizer of G and E together
        d_optimizer: OptimizerCallable = ADAM_DCGAN,            # optimizer of D
        latent_dim: int = 50,                                   # size of z (Donahue et al.'s MNIST: 50)
        **kwargs: Any,
    ) -> None:
        for name in ("penalty", "joint_critic"):
            if kwargs.get(name):
                raise ValueError(f"model.init_args.{name} is not supported by BiGAN: its discriminator scores (x, z) "
                                 "pairs; remove the setting.")
        joint = build(discriminator, JointDiscriminatorFactory)
        super().__init__(generator=generator, discriminator=lambda shape: joint(shape, latent_dim), loss=loss,
                         g_optimizer=g_optimizer, d_optimizer=d_optimizer, latent_dim=latent_dim, **kwargs)
        self.encoder = build(encoder, EncoderFactory)(self.data_shape, latent_dim)
        self._check_encoder()

    # ------------------------------------------------------------------ public API
    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """E(x) in eval mode: the learnt representation of real samples."""
        was_training = self.encoder.training
        self.encoder.eval()
        try:
            return self.encoder(x.to(self.device))
        finally:
            self.encoder.train(was_training)

    def reconstruct(self, x: Tensor) -> Tensor:
        """G(E(x)), from the EMA generator when there is one."""
        return self.sample(z=self.encode(x))

    # ------------------------------------------------------------------ the recipe's hooks
    def critic(self, x: Tensor, z: Tensor) -> Tensor:  # type: ignore[override]
        """D's raw scores for pairs (x, z): the one path from both sides' losses to D."""
        return self.discriminator(x, z)

    def pairs(self, batch: Any) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
        """The real pairs (x, E(x)) and generated pairs (G(z), z) for a batch."""
        x = self.real_samples(batch)
        z = self.sample_latent(x.shape[0])
        return (x, self.encoder(x)), (self.generator(z), z)

    def discriminator_loss(self, batch: Any) -> tuple[Tensor, Metrics]:
        real, fake = self.pairs(batch)  # G and E are frozen during D's step (the harness toggles optimizers)
        real_scores, fake_scores = self.critic(*real), self.critic(*fake)
        metrics = {"train/d_real": real_scores.detach().mean(), "train/d_fake": fake_scores.detach().mean()}
        return self.loss.discriminator(real_scores, fake_scores), metrics

    def generator_loss(self, batch: Any) -> tuple[Tensor, Metrics]:
        real, fake = self.pairs(batch)
        # G wants (G(z), z) scored as real and E wants (x, E(x)) scored as generated: D's game, roles swapped
        return self.loss.discriminator(self.critic(*fake), self.critic(*real)), {}

    def generator_parameters(self) -> Iterable[Parameter]:
        return chain(self.generator.parameters(), self.encoder.parameters())

    # ------------------------------------------------------------------ start-up checks
    def _check_networks(self) -> None:
        """G must make samples of the data's shape and D score (x, z) pairs with one value each."""
        gen, disc = type(self.generator).__name__, type(self.discriminator).__name__
        with _eval(self.generator, self.discriminator), torch.no_grad():
            out = self.generator(torch.zeros(2, self.latent_dim))
            if tuple(out.shape[1:]) != self.data_shape:
                raise ValueError(f"model.generator ({gen}) makes samples of shape {tuple(out.shape[1:])}, but the "
                                 f"data's samples have shape {self.data_shape}.")
            scores = self.discriminator(out, torch.zeros(2, self.latent_dim))
            if tuple(scores.shape) != (2,):
                raise ValueError(f"model.discriminator ({disc}) must return one raw score per (x, z) pair, shape "
                                 f"(N,), but returned {tuple(scores.shape)} for N=2.")

    def _check_encoder(self) -> None:
        with _eval(self.encoder), torch.no_grad():
            codes = self.encoder(torch.zeros(2, *self.data_shape))
        if tuple(codes.shape) != (2, self.latent_dim):
            raise ValueError(f"model.encoder ({type(self.encoder).__name__}) must map samples of shape "
                             f"{self.data_shape} to codes of shape (N, {self.latent_dim}), but returned "
                             f"{tuple(codes.shape)} for N=2.")


class _eval:
    """Eval mode for some networks inside a block, their modes restored after it."""

    def __init__(self, *nets: nn.Module) -> None:
        self.nets = nets

    def __enter__(self) -> None:
        self.modes = [net.training for net in self.nets]
        for net in self.nets:
            net.eval()

    def __exit__(self, *exc: object) -> None:
        for net, mode in zip(self.nets, self.modes, strict=True):
            net.train(mode)


__all__ = ["BiGAN"]
