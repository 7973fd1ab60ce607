"""Samples from a trained generator, written to disk: ``python main.py sample --ckpt_path <ckpt>``."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

import torch
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
        raise TypeError(f"{path} holds a {cls.__name__}, not a GAN module")
    return cls.load_from_checkpoint(path, map_location=map_location)


def export_samples(module: GANModule, out_dir: str | Path, num_samples: int = 64, seed: int = 0,
                   use_ema: bool = True, interpolation_steps: int = 10) -> list[Path]:
    """Write ``num_samples`` samples (one PNG each, or a CSV for vector data), a grid and interpolation strips."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(num_samples, module.latent_dim, generator=gen)
    samples = module.sample(z=z, use_ema=use_ema).float().cpu()
    written: list[Path] = []
    if len(module.data_shape) != 3:
        path = out / "samples.csv"
        lines = [",".join(f"{v:.6g}" for v in row.reshape(-1).tolist()) for row in samples]
        path.write_text("\n".join(lines) + "\n")
        return [path]
    for i, image in enumerate(samples):
        written.append(out / f"sample_{i:05d}.png")
        save_image(image, written[-1], normalize=True, value_range=(-1, 1))
    written.append(out / "grid.png")
    save_image(samples, written[-1], nrow=int(num_samples**0.5) or 1, normalize=True, value_range=(-1, 1))
    ends = torch.randn(2, 4, module.latent_dim, generator=gen)
    for kind in ("linear", "slerp"):
        strip = module.sample(z=interpolation_latents(ends[0], ends[1], interpolation_steps, kind == "slerp"),
                              use_ema=use_ema).float().cpu()
        written.append(out / f"interpolation_{kind}.png")
        save_image(strip, written[-1], nrow=interpolation_steps, normalize=True, value_range=(-1, 1))
    return written


def sample_main(argv: list[str]) -> list[Path]:
    parser = argparse.ArgumentParser(prog="main.py sample", description="Write samples of a trained GAN to disk.")
    parser.add_argument("--ckpt_path", required=True, help="a checkpoint written by `main.py fit`")
    parser.add_argument("--num_samples", type=int, default=64)
    parser.add_argument("--out_dir", help="default: <run folder>/export/<checkpoint name>/")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise vectors")
    parser.add_argument("--no_ema", action="store_true", help="use the raw generator even when an EMA exists")
    args = parser.parse_args(argv)
    ckpt = Path(args.ckpt_path)
    out_dir = args.out_dir or (ckpt.parent.parent / "export" / ckpt.stem)
    written = export_samples(load_gan(ckpt), out_dir, args.num_samples, args.seed, use_ema=not args.no_ema)
    print(f"wrote {len(written)} files to {out_dir}")
    return written
