"""BEGAN (Berthelot et al. 2017): an autoencoder discriminator, losses on its reconstruction error, and a
proportional control k_t that keeps the two players in equilibrium.

The discriminator network scores a sample by its L1 reconstruction error L(v) (``BEGANDiscriminator``), so
this is the unconditional recipe with other losses: L_D = L(x) - k_t L(G(z_D)), L_G = L(G(z_G)), and after
every generator step k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z_G))), 0, 1) (the paper's eq. 4).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .base import Metrics, samples_of
from .config_types import DiscriminatorFactory, GeneratorFactory, OptimizerCallable, spec
from .gan import GANModule

ADAM_BEGAN = spec("torch.optim.Adam", lr=1e-4, betas=(0.5, 0.999))
BEGAN_G = spec("gan_modules.networks.began.BEGANGenerator")
BEGAN_D = spec("gan_modules.networks.began.BEGANDiscriminator")


def began_k_update(k: Tensor, real_error: Tensor, fake_error: Tensor, gamma: float, lambda_k: float) -> Tensor:
    """k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1) (Berthelot et al. 2017, eq. 4)."""
    return (k + lambda_k * (gamma * real_error - fake_error)).clamp(0.0, 1.0)


def began_convergence(real_error: Tensor, fake_error: Tensor, gamma: float) -> Tensor:
    """M_global = L(x) + |gamma L(x) - L(G(z))| (section 3.4.1): falls as training converges."""
    return real_error + (gamma * real_error - fake_error).abs()


class BEGAN(GANModule):
    """Boundary equilibrium GAN: an autoencoder critic, gamma the diversity ratio E[L(G(z))] / E[L(x)] aimed for."""

    def __init__(
        self,
        generator: GeneratorFactory = BEGAN_G,              # z -> image (BEGAN's decoder shape)
        discriminator: DiscriminatorFactory = BEGAN_D,      # an autoencoder returning L(v) per sample
        gamma: float = 0.5,                                 # diversity ratio: lower, sharper but less diverse
        lambda_k: float = 0.001,                            # gain of the proportional control of k_t
        k_init: float = 0.0,                                # k_0
        g_optimizer: OptimizerCallable = ADAM_BEGAN,        # generator optimizer (the paper: Adam 1e-4)
        d_optimizer: OptimizerCallable = ADAM_BEGAN,        # discriminator optimizer
        latent_dim: int = 64,                               # N_z of the paper
        loss: None = None,                                  # none to choose: the losses are BEGAN's own
        **kwargs: Any,
    ) -> None:
        for name in ("loss", "penalty", "weight_clip"):
            if (loss if name == "loss" else kwargs.get(name)) is not None:
                raise ValueError(f"model.init_args.{name} does not apply to BEGAN: its losses are the reconstruction "
                                 "errors of its autoencoder discriminator; remove the setting.")
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"model.gamma={gamma}: must lie in (0, 1] (the paper uses 0.3 to 0.7).")
        if lambda_k < 0 or not 0.0 <= k_init <= 1.0:
            raise ValueError(f"model.lambda_k={lambda_k}, model.k_init={k_init}: need lambda_k >= 0 (0.001) and "
                             "k_init in [0, 1] (0).")
        super().__init__(generator=generator, discriminator=discriminator, g_optimizer=g_optimizer,
                         d_optimizer=d_optimizer, latent_dim=latent_dim, **kwargs)
        if not callable(getattr(self.discriminator, "reconstruct", None)):
            raise ValueError(f"model.discriminator ({type(self.discriminator).__name__}) must be an autoencoder "
                             "scoring L(v) with a reconstruct(v) method, e.g. gan_modules.networks.began."
                             "BEGANDiscriminator.")
        self.gamma, self.lambda_k = gamma, lambda_k
        self.register_buffer("k", torch.tensor(float(k_init)))  # k_t, in the state_dict and so in checkpoints
        self._real_error: Tensor | None = None  # L(x) of the step's last critic batch, for the k update
        self._fake_error: Tensor | None = None  # L(G(z)) of the generator step, for the k update

    def discriminator_loss(self, batch: Any) -> tuple[Tensor, Metrics]:
        real = self.real_samples(batch)
        fake = self.generator(self.sample_latent(real.shape[0])).detach()
        real_error, fake_error = self.critic(real).mean(), self.critic(fake).mean()
        self._real_error = real_error.detach()
        # d_real and d_fake are BEGAN's L(x) and L(G(z)): reconstruction errors, low for what D takes as real
        return real_error - self.k * fake_error, {"train/d_real": self._real_error, "train/d_fake": fake_error.detach()}

    def generator_loss(self, batch: Any) -> tuple[Tensor, Metrics]:
        fake_error = self.critic(self.generator(self.sample_latent(len(samples_of(batch))))).mean()
        self._fake_error = fake_error.detach()
        return fake_error, {"train/k": self.k.clone(),
                            "train/convergence": began_convergence(self._real_error, self._fake_error, self.gamma)}

    def after_generator_step(self) -> None:
        errors = torch.stack([self._real_error, self._fake_error])
        if self._trainer is not None and self.trainer.world_size > 1:
            # k_t lives outside both networks, so no DDP wrapper syncs it: every rank steps it with the errors
            # averaged over all ranks (those of the global batch) and the ranks keep one k_t
            errors = self.trainer.strategy.reduce(errors, reduce_op="mean")
        self.k.copy_(began_k_update(self.k, errors[0], errors[1], self.gamma, self.lambda_k))
        super().after_generator_step()

    def sample(self, *args: Any, **kwargs: Any) -> Tensor:
        """GANModule's samples, clamped to the data's [-1, 1]: BEGAN's generator output is linear."""
        return super().sample(*args, **kwargs).clamp(-1.0, 1.0)

    def reconstruct(self, x: Tensor) -> Tensor:
        """The discriminator's autoencoder output D(x), for the reconstruction pictures."""
        return self.discriminator.reconstruct(x.to(self.device))


__all__ = ["BEGAN", "began_convergence", "began_k_update"]
