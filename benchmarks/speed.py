"""Training speed: a hand-written PyTorch loop against the lab's Trainer.fit and its fast path, in one run.

    python benchmarks/speed.py                 # every case, on the GPU when there is one
    python benchmarks/speed.py --cases ring mnist_dcgan --steps-scale 0.5

For each case it measures generator steps per second (and real images per second: batch x D steps/s) of
  (a) a plain PyTorch loop of the same networks and hyper-parameters, in the usual tutorial style (a fresh real
      batch for every critic step, separate D calls on real and fake, the penalty by autograd.grad);
  (b) ``Trainer.fit`` with the shipped config (progress bar and W&B logging on, offline);
  (c) the same with the fast-path switches: data kept on the device (``data.init_args.data_on_device``),
      one critic call on real+fake where the critic has no batch norm (``model.init_args.joint_critic``),
      and on a GPU also channels_last, fused Adam and bf16 autocast;
and prints a table with the ratios b/a and c/a.  Timings skip start-up: the clock starts after a few
generator steps and stops at the last one, with a device sync at both ends.
Cases: ``ring`` (MLP WGAN-GP, batch 256, n_critic 5), ``mnist_dcgan`` (DCGAN-28 on MNIST, BCE,
batch 64; the offline 5k digits when `make mnist-offline` wrote them, else noise) and ``dcgan64_wgan_gp``
(DCGAN-64 WGAN-GP, batch 64, n_critic 5, on noise images: CelebA is not needed to time it).
A last table times the image loader alone: JPEG decoding on the fly against the decoded-image cache.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datamodules import ImageFolderDataModule, MNISTDataModule, Ring2D  # noqa: E402
from gan_modules.networks import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator  # noqa: E402
from main import cli_main  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------------------------- (a) plain loops
def plain_loop(case: dict, device: torch.device, warmup: int, steps: int) -> float:
    """A hand-written training loop for this case; returns generator steps per second."""
    torch.manual_seed(0)
    G, D = case["nets"]()
    G, D = G.to(device), D.to(device)
    opt_g = case["optimizer"](G.parameters())
    opt_d = case["optimizer"](D.parameters())
    data = case["real"]().to(device)
    bs, nc, latent = case["batch"], case["n_critic"], case["latent"]

    def real_batch() -> torch.Tensor:
        return data[torch.randint(len(data), (bs,), device=device)]

    def gp(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        alpha = torch.rand(bs, *[1] * (real.dim() - 1), device=device)
        x = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        (g,) = torch.autograd.grad(D(x), x, grad_outputs=torch.ones(bs, device=device), create_graph=True)
        return ((g.reshape(bs, -1).norm(2, dim=1) - 1) ** 2).mean()

    def step() -> None:
        for _ in range(nc):
            real = real_batch()
            fake = G(torch.randn(bs, latent, device=device)).detach()
            if case["loss"] == "wgan-gp":
                loss_d = -D(real).mean() + D(fake).mean() + case["gp_weight"] * gp(real, fake)
            else:
                r, f = D(real), D(fake)
                loss_d = F.binary_cross_entropy_with_logits(r, torch.full_like(r, 0.9)) + \
                    F.binary_cross_entropy_with_logits(f, torch.full_like(f, 0.1))
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
        out = D(G(torch.randn(bs, latent, device=device)))
        loss_g = -out.mean() if case["loss"] == "wgan-gp" else \
            F.binary_cross_entropy_with_logits(out, torch.full_like(out, 0.9))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()

    for _ in range(warmup):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return steps / (time.perf_counter() - start)


# ----------------------------------------------------------------------------------------------- (b), (c) the lab
class _Clock(Callback):
    """Times the generator steps after ``warmup`` of them, up to the end of training."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.g_start, self.rate = warmup, None, 0, 0.0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.start is None and pl_module.g_steps >= self.warmup:
            sync(pl_module.device)
            self.start, self.g_start = time.perf_counter(), pl_module.g_steps

    def on_train_end(self, trainer, pl_module) -> None:
        sync(pl_module.device)
        self.rate = (pl_module.g_steps - self.g_start) / (time.perf_counter() - self.start)


def lab_run(case: dict, device: torch.device, warmup: int, steps: int, fast: bool, runs: str) -> float:
    clock = _Clock(warmup)
    args = ["fit", "--config", str(ROOT / "configs" / case["config"]), "--runs_dir", runs,
            "--trainer.max_steps", str(warmup + steps),  # generator steps
            "--trainer.accelerator", device.type, "--checkpoint.every_n_train_steps", "0",
            "--checkpoint.save_last", "false", *case["data_args"]]
    if fast:
        args += ["--data.init_args.data_on_device", "true"]
        if case["joint_critic"]:
            args += ["--model.init_args.joint_critic", "true"]
        if device.type == "cuda":
            args += ["--trainer.precision", "bf16-mixed", "--model.init_args.channels_last", "true",
                     "--model.init_args.g_optimizer.init_args.fused", "true",
                     "--model.init_args.d_optimizer.init_args.fused", "true"]
    cli = cli_main(args[1:], run=False)  # built like `main.py fit`, run here with the clock added
    cli.trainer.callbacks.append(clock)
    cli.trainer.fit(cli.model, cli.datamodule)
    return clock.rate


def mnist_real() -> torch.Tensor:
    try:
        dm = MNISTDataModule(download=False)
        dm.setup()
        return dm.images.float() / 127.5 - 1
    except FileNotFoundError:
        return torch.rand(5000, 1, 28, 28) * 2 - 1


def ring_real() -> torch.Tensor:
    dm = Ring2D()
    dm.setup()
    return dm.data


def adam(lr: float, b1: float, b2: float) -> Callable:
    return lambda params: torch.optim.Adam(params, lr=lr, betas=(b1, b2))


CASES = {
    "ring": dict(config="wgan_gp_ring.yaml", loss="wgan-gp", n_critic=5, batch=256, latent=2, joint_critic=True,
                 gp_weight=0.1, nets=lambda: (MLPGenerator(2, (2,)), MLPDiscriminator((2,))),
                 optimizer=adam(1e-4, 0.5, 0.9),
                 real=lambda: ring_real(), data_args=[], steps=(20, 300)),
    "mnist_dcgan": dict(config="dcgan_mnist.yaml", loss="bce", n_critic=1, batch=64, latent=100, joint_critic=False,
                        nets=lambda: (DCGANGenerator(100, (1, 28, 28)), DCGANDiscriminator((1, 28, 28))),
                        optimizer=adam(2e-4, 0.5, 0.999), real=mnist_real, data_args=[], steps=(10, 100)),
    "dcgan64_wgan_gp": dict(config="wgan_gp_celeba.yaml", loss="wgan-gp", n_critic=5, batch=64, latent=100,
                            joint_critic=True, gp_weight=10.0,
                            nets=lambda: (DCGANGenerator(100, (3, 64, 64)), DCGANDiscriminator((3, 64, 64),
                                                                                               norm="layer")),
                            optimizer=adam(1e-4, 0.0, 0.9), real=lambda: torch.rand(2048, 3, 64, 64) * 2 - 1,
                            data_args=["--data", "datamodules.RandomImages", "--data.init_args.image_size", "64",
                                       "--data.init_args.batch_size", "64"], steps=(2, 6)),
}


def loader_throughput(num_images: int, batch: int) -> list[tuple[str, float]]:
    """Images per second of the CelebA-style loader alone: decoding JPEGs on the fly vs the uint8 cache."""
    from PIL import Image

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp, "img_align_celeba")
        folder.mkdir()
        gen = torch.Generator().manual_seed(0)
        for i in range(num_images):
            pixels = torch.randint(0, 256, (218, 178, 3), generator=gen, dtype=torch.uint8).numpy()
            Image.fromarray(pixels).save(folder / f"{i:06d}.jpg", quality=90)
        for name, cache, workers in (("decode on the fly, 2 workers", False, 2), ("decoded cache, first epoch "
                                     "(builds it)", True, 2), ("decoded cache, later epochs", True, 2)):
            dm = ImageFolderDataModule(data_dir=str(folder), image_size=64, crop=178, batch_size=batch,
                                       num_workers=workers, cache=cache, cache_dir=str(Path(tmp, "cache")))
            start = time.perf_counter()
            seen = sum(len(b) for b in dm.train_dataloader())
            rows.append((name, seen / (time.perf_counter() - start)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--steps-scale", type=float, default=1.0, help="multiply every case's timed steps")
    parser.add_argument("--gpu-scale", type=float, default=20.0, help="more steps on a GPU (faster per step)")
    parser.add_argument("--no-loader", action="store_true", help="skip the loader table")
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    scale = args.steps_scale * (args.gpu_scale if device.type == "cuda" else 1.0)
    rows = []
    with tempfile.TemporaryDirectory() as runs:
        for name in args.cases:
            case = CASES[name]
            warmup, steps = case["steps"][0], max(2, int(case["steps"][1] * scale))
            a = plain_loop(case, device, warmup, steps)
            b = lab_run(case, device, warmup, steps, fast=False, runs=runs)
            c = lab_run(case, device, warmup, steps, fast=True, runs=runs)
            rows.append((name, case, a, b, c))
            print(f"{name}: plain {a:.2f}, fit {b:.2f}, fast {c:.2f} G steps/s", flush=True)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"\n{time.strftime('%Y-%m-%d')}, {where}, torch {torch.__version__}\n")
    print("| case | (a) plain loop G steps/s | (b) Trainer.fit | (c) fast path | b/a | c/a | (b) real images/s |")
    print("|---|---|---|---|---|---|---|")
    for name, case, a, b, c in rows:
        images = b * case["n_critic"] * case["batch"]
        print(f"| {name} | {a:.2f} | {b:.2f} | {c:.2f} | {b / a:.2f} | {c / a:.2f} | {images:,.0f} |")
    if not args.no_loader:
        print("\n| image loader alone (64x64 from 178x218 JPEGs) | images/s |\n|---|---|")
        for name, rate in loader_throughput(1000, 64):
            print(f"| {name} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
