"""Pictures: the toy sets with the critic underneath, and latent interpolation strips."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torchvision.io import decode_png
from torchvision.utils import make_grid, save_image

from gan_modules.latent import interpolation_latents

from .base import GeneratorStepCallback, real_samples
from .protocols import CriticSampler, NoiseSampler, conditional
from .samples import log_image


class ToyDataPlot(GeneratorStepCallback):
    """The classic picture of a toy run, and its scores, every ``every_n_steps`` generator steps.

    2-D data: the critic's contour over the plane, real samples (orange) and generated ones (green +), as in
    Gulrajani et al. 2017's toy figures; 1-D data: a histogram of generated samples over the target density
    (the usual distribution-evolution panel).  Logs the datamodule's scores of ``num_samples`` samples
    (``val/modes``, ``val/high_quality``, ``val/reverse_kl``; or ``val/w1``, ``val/ks``, ...) and writes
    ``<run folder>/toy/step_*.png``.

    For a conditional model on labeled toys it also logs ``val/own_mode_min`` and ``val/own_mode_mean`` (the
    share of each class's samples within 3 std of its own mode; worst class and mean) and draws no contour
    (the critic's landscape differs per class).
    """


    def __init__(self, every_n_steps: int = 500, num_samples: int = 2500, contour: bool = True) -> None:
        super().__init__(every_n_steps)
        self.num_samples, self.contour = num_samples, contour
        self.requires = CriticSampler if contour else NoiseSampler

    def run(self, trainer: L.Trainer, pl_module: Any) -> None:
        fake = pl_module.sample(self.num_samples).float().cpu()
        score = getattr(trainer.datamodule, "score", None)
        if score is not None:
            pl_module.log_metrics({f"val/{k}": v for k, v in score(fake).items()})
        score_labeled = getattr(trainer.datamodule, "score_labeled", None)
        if conditional(pl_module) and score_labeled is not None:
            labels = torch.arange(self.num_samples) % pl_module.num_classes
            own = score_labeled(pl_module.sample(labels=labels).float().cpu(), labels)
            pl_module.log_metrics({f"val/{k}": v for k, v in own.items()})
        if not trainer.is_global_zero or len(pl_module.data_shape) != 1 or pl_module.data_shape[0] > 2:
            return
        real = real_samples(trainer, self.num_samples).float().cpu()
        png = self.plot_2d(pl_module, real, fake) if pl_module.data_shape[0] == 2 else self.plot_1d(trainer, fake)
        path = self.output_path(trainer, "toy", pl_module.g_steps)
        path.write_bytes(png)
        log_image(trainer, "samples/toy", decode_png(torch.frombuffer(bytearray(png), dtype=torch.uint8)) / 255.0,
                  pl_module.g_steps, caption=f"generator step {pl_module.g_steps}")

    def plot_2d(self, pl_module: Any, real: Tensor, fake: Tensor) -> bytes:
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
        extent = 1.25 * float(real.abs().max())
        if self.contour and not conditional(pl_module):
            axis = torch.linspace(-extent, extent, 128)
            grid = torch.cartesian_prod(axis, axis)  # (x, y) pairs, x major
            packs = grid.repeat(1, getattr(pl_module, "pack", 1))  # PacGAN: a pack of m copies of each point
            with torch.no_grad():
                scores = pl_module.discriminator(packs.to(pl_module.device)).float().cpu().view(128, 128)
            cs = ax.contour(axis.numpy(), axis.numpy(), scores.T.numpy(), levels=12, cmap="viridis")
            ax.clabel(cs, inline=True, fontsize=7)
        ax.scatter(real[:, 0], real[:, 1], c="orange", marker=".", s=4, label="real")
        ax.scatter(fake[:, 0], fake[:, 1], c="green", marker="+", s=12, label="generated")
        ax.set(xlim=(-extent, extent), ylim=(-extent, extent), aspect="equal",
               title=f"generator step {pl_module.g_steps}")
        ax.legend(loc="upper right", fontsize=8)
        return _to_png(fig)

    def plot_1d(self, trainer: L.Trainer, fake: Tensor) -> bytes:
        plt = _pyplot()
        dm = trainer.datamodule
        mean, std = float(getattr(dm, "mean", 0.0)), float(getattr(dm, "std", 1.0))
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        lo, hi = mean - 4 * std, mean + 4 * std
        ax.hist(fake.view(-1).clamp(lo, hi).numpy(), bins=60, range=(lo, hi), density=True, alpha=0.7,
                color="tab:blue", label="generated")
        x = torch.linspace(lo, hi, 200)
        pdf = torch.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))
        ax.plot(x.numpy(), pdf.numpy(), "r-", lw=2, label=f"target N({mean:g}, {std:g}²)")
        ax.legend()
        return _to_png(fig)


class LatentInterpolation(GeneratorStepCallback):
    """Rows of images between fixed pairs of latent vectors, linear and spherical, every N generator steps.

    Written to ``<run folder>/interpolation/step_*_{linear,slerp}.png`` and logged as
    ``samples/interpolation_linear`` and ``samples/interpolation_slerp``.
    """

    requires = NoiseSampler

    def __init__(self, every_n_steps: int = 1000, rows: int = 4, steps: int = 10, seed: int = 4321) -> None:
        super().__init__(every_n_steps)
        self.rows, self.steps, self.seed = rows, steps, seed

    def run(self, trainer: L.Trainer, pl_module: Any) -> None:
        if len(pl_module.data_shape) != 3 or not trainer.is_global_zero:
            return
        gen = torch.Generator().manual_seed(self.seed)
        ends = torch.randn(2, self.rows, pl_module.latent_dim, generator=gen)
        # a conditional model keeps one class along each strip: row r shows class r (mod the class count)
        labels = (torch.arange(self.rows) % pl_module.num_classes).repeat_interleave(self.steps) \
            if conditional(pl_module) else None
        for kind in ("linear", "slerp"):
            z = interpolation_latents(ends[0], ends[1], self.steps, spherical=kind == "slerp")
            fake = pl_module.sample(z=z) if labels is None else pl_module.sample(z=z, labels=labels)
            strip = make_grid(fake.float().cpu(), nrow=self.steps, normalize=True, value_range=(-1, 1))
            save_image(strip, self.output_path(trainer, "interpolation", pl_module.g_steps, f"_{kind}.png"))
            log_image(trainer, f"samples/interpolation_{kind}", strip, pl_module.g_steps)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _to_png(fig: Any) -> bytes:
    import io

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    _pyplot().close(fig)
    return buf.getvalue()
