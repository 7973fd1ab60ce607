"""Samples from a trained generator, written to disk (``python main.py sample``, parsed in main.py)."""

from __future__ import annotations

import importlib
import inspect
import os
import shutil
import tempfile
from pathlib import Path

import torch
from torch import Tensor
from torchvision.utils import save_image

from .gan import GANModule
from .latent import interpolation_latents


def load_gan(ckpt_path: str | Path, map_location: str = "cpu") -> GANModule:
    """Load any GAN variant from its checkpoint; the class is read from the checkpoint itself."""
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    hparams = torch.load(path, map_location="cpu", weights_only=True).get("hyper_parameters", {})
    module_path, _, name = hparams.get("_class_path", "gan_modules.GANModule").rpartition(".")
    cls = getattr(importlib.import_module(module_path), name)
    if not (isinstance(cls, type) and issubclass(cls, GANModule)):
        hint = " (translate images with python main.py translate)" if name == "CycleGAN" else ""
        raise TypeError(f"{path} holds a {cls.__name__}, not a GAN module: sample needs a generator of noise{hint}")
    return cls.load_from_checkpoint(path, map_location=map_location)


#: Marks a folder as an export, which a later export may replace whole.
EXPORT_MARKER = ".gan_lab_export"


def supports_truncation(module: GANModule) -> bool:
    """Whether ``module.sample`` takes ``truncation_psi`` (a style-based generator with a ``w_avg``)."""
    return "truncation_psi" in inspect.signature(module.sample).parameters


def export_samples(module: GANModule, out_dir: str | Path, num_samples: int = 64, seed: int = 0,
                   use_ema: bool = True, interpolation_steps: int = 10, labels: list[int] | None = None,
                   nrow: int | None = None, truncation_psi: float | None = None) -> list[Path]:
    """Write ``num_samples`` samples (one PNG each, or a CSV for vector data), a grid and interpolation strips.

    A conditional model draws sample ``i`` of class ``labels[i]`` (classes drawn from ``seed`` when None) and
    also writes ``labels.csv``; its interpolation strips keep one class along each strip.  ``nrow``: images per
    grid row (``--per_class`` gives one row per class); default about the square root.

    ``out_dir`` is replaced as a whole: the files are written into a temporary sibling folder that then takes
    its place, so an export never mixes with the files of an earlier one and a failed export leaves the
    earlier one untouched.  Only a missing or empty folder, or an earlier export (it holds the marker file
    ``EXPORT_MARKER``), is replaced: any other folder is refused, never deleted.  ``truncation_psi`` (StyleGAN)
    pulls every sample towards the average style; None keeps the module's own setting.
    """
    if truncation_psi is not None and not supports_truncation(module):
        raise ValueError(f"truncation_psi={truncation_psi}: {type(module).__name__} has no truncation trick (it needs "
                         "a mapping network's average style, as gan_modules.StyleGAN has); leave it out.")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples={num_samples}: must be an integer >= 1 (the number of samples to write).")
    out = Path(out_dir)
    if out.exists() and not (out / EXPORT_MARKER).is_file() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an earlier sample export; it is left alone. Choose a new "
                              "or empty --out_dir (an earlier export there is replaced whole).")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; an export is an ordinary folder
    try:
        names = _write_samples(module, staging, num_samples, seed, use_ema, interpolation_steps, labels, nrow,
                               truncation_psi)
        (staging / EXPORT_MARKER).write_text("written by `python main.py sample`; the next export here replaces "
                                             "this folder whole\n")
        _replace_folder(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [out / name for name in names]


def _labelled(labels: Tensor | None) -> dict[str, Tensor]:
    """``sample()``'s labels argument for a conditional model; nothing for the others, which take none."""
    return {} if labels is None else {"labels": labels}


def _write_samples(module: GANModule, out: Path, num_samples: int, seed: int, use_ema: bool,
                   interpolation_steps: int, labels: list[int] | None = None, nrow: int | None = None,
                   truncation_psi: float | None = None) -> list[str]:
    """Write the export's files into ``out``; returns their names."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(num_samples, module.latent_dim, generator=gen)
    y = module.sample_labels(num_samples, labels, generator=gen)  # None for an unconditional model
    options = {} if truncation_psi is None else {"truncation_psi": truncation_psi}
    samples = module.sample(z=z, use_ema=use_ema, **options, **_labelled(y)).float().cpu()
    names = []
    if y is not None:
        names.append("labels.csv")
        (out / names[-1]).write_text("".join(f"{i},{c}\n" for i, c in enumerate(y.tolist())))
    if len(module.data_shape) != 3:
        lines = [",".join(f"{v:.6g}" for v in row.reshape(-1).tolist()) for row in samples]
        (out / "samples.csv").write_text("\n".join(lines) + "\n")
        return [*names, "samples.csv"]
    for i, image in enumerate(samples):
        names.append(f"sample_{i:05d}.png")
        save_image(image, out / names[-1], normalize=True, value_range=(-1, 1))
    names.append("grid.png")
    save_image(samples, out / names[-1], nrow=nrow or int(num_samples**0.5) or 1, normalize=True, value_range=(-1, 1))
    ends = torch.randn(2, 4, module.latent_dim, generator=gen)
    rows = module.sample_labels(4, None, generator=gen)  # one class per strip, kept along it
    strip_labels = None if rows is None else rows.repeat_interleave(interpolation_steps)
    for kind in ("linear", "slerp"):
        strip = module.sample(z=interpolation_latents(ends[0], ends[1], interpolation_steps, kind == "slerp"),
                              use_ema=use_ema, **options, **_labelled(strip_labels)).float().cpu()
        names.append(f"interpolation_{kind}.png")
        save_image(strip, out / names[-1], nrow=interpolation_steps, normalize=True, value_range=(-1, 1))
    return names


def _replace_folder(new: Path, target: Path) -> None:
    """Put the folder ``new`` in the place of ``target`` (two renames in one parent folder), then drop the old one."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old / target.name)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
