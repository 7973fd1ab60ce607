"""fp16 with a GradScaler and bf16: finite training, the scaler checkpointed and resumed exactly.

fp16 autocast with a GradScaler also runs on the CPU when the precision plugin is given explicitly
(Lightning's ``precision="16-mixed"`` flag falls back to bf16 there), so the whole scaler path, penalty on
scaled scores included, is tested in CI.  The ``gpu`` tests repeat it on CUDA and skip without a GPU.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from helpers import last_checkpoint

FP16_ON_CPU = ["--trainer.plugins", json.dumps({"class_path": "lightning.pytorch.plugins.MixedPrecision",
                                                "init_args": {"precision": "16-mixed", "device": "cpu"}})]
SMALL_RING = ["--data.init_args.batch_size", "64", "--model.init_args.generator.init_args.hidden", "[32, 32]",
              "--model.init_args.discriminator.init_args.hidden", "[32, 32]", "--trainer.log_every_n_steps", "1"]
NOISE_MNIST_GPU = ["--data", "datamodules.RandomImages", "--data.init_args.image_size", "28",
                   "--data.init_args.channels", "1", "--data.init_args.batch_size", "64",
                   "--trainer.accelerator", "gpu", "--trainer.devices", "1", "--trainer.callbacks", "[]",
                   "--trainer.log_every_n_steps", "1"]
gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run on the GPU machine)")


def finite(metrics: dict[str, float]) -> bool:
    return all(math.isfinite(v) for v in metrics.values())


# generator steps (WGAN-GP has n_critic 5, the others 1: each run makes 60 optimizer steps)
@pytest.mark.parametrize("config, g_steps", [("wgan_gp_ring.yaml", 10), ("dragan_ring.yaml", 30),
                                             ("gan_r1_ring.yaml", 30)])
def test_fp16_with_grad_scaler_trains_finite_and_checkpoints_the_scaler(run_fit, config, g_steps):
    cli = run_fit(config, "--trainer.max_steps", str(g_steps), *FP16_ON_CPU, *SMALL_RING)
    assert cli.trainer.precision_plugin.scaler is not None
    assert cli.model.g_steps == cli.trainer.global_step == g_steps
    assert cli.model.d_steps == g_steps * cli.model.n_critic
    assert finite(cli.model.latest_metrics) and cli.model.latest_metrics["train/gp"] > 0
    scaler_state = last_checkpoint(cli)["MixedPrecision"]
    assert scaler_state["scale"] == cli.trainer.precision_plugin.scaler.get_scale()


def test_fp16_penalty_matches_fp32_at_the_first_step(run_fit):
    # n_critic 1 and one generator step: it logs the penalty of the very first critic step (same weights, same
    # batch); later values differ anyway, since fp16 skips its first steps while the GradScaler's scale drops
    first = ["--trainer.max_steps", "1", "--model.init_args.n_critic", "1", *SMALL_RING]
    fp32 = run_fit("wgan_gp_ring.yaml", *first).model.latest_metrics
    fp16 = run_fit("wgan_gp_ring.yaml", *first, *FP16_ON_CPU).model.latest_metrics
    assert fp16["train/gp"] == pytest.approx(fp32["train/gp"], rel=0.01, abs=1e-3)


def test_fp16_resume_continues_exactly_with_the_scaler(run_fit):
    # 20 generator steps (100 critic steps), stopped and resumed after 10
    whole = run_fit("wgan_gp_ring.yaml", "--trainer.max_steps", "20", *FP16_ON_CPU, *SMALL_RING)
    half = run_fit("wgan_gp_ring.yaml", "--trainer.max_steps", "10", *FP16_ON_CPU, *SMALL_RING)
    resumed = run_fit("wgan_gp_ring.yaml", "--trainer.max_steps", "20", *FP16_ON_CPU, *SMALL_RING,
                      "--ckpt_path", f"{half.run_dir}/checkpoints/last.ckpt")
    a, b = last_checkpoint(whole), last_checkpoint(resumed)
    assert a["global_step"] == b["global_step"] == 20
    assert a["MixedPrecision"] == b["MixedPrecision"]
    for name, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][name]), name


@gpu
@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed"])
def test_mixed_precision_wgan_gp_on_gpu(run_fit, precision):
    first = ["--trainer.max_steps", "1", "--model.init_args.n_critic", "1", *NOISE_MNIST_GPU]  # one D, one G step
    reference = run_fit("wgan_gp_mnist.yaml", *first).model.latest_metrics
    short = run_fit("wgan_gp_mnist.yaml", *first, "--trainer.precision", precision).model.latest_metrics
    assert short["train/gp"] == pytest.approx(reference["train/gp"], rel=0.01, abs=1e-3)
    cli = run_fit("wgan_gp_mnist.yaml", "--trainer.max_steps", "200", "--trainer.precision", precision,
                  *NOISE_MNIST_GPU)  # 200 generator steps, 1,000 critic steps
    assert cli.model.g_steps == 200 and finite(cli.model.latest_metrics)
    if precision == "16-mixed":
        assert last_checkpoint(cli)["MixedPrecision"]["scale"] > 0


@gpu
def test_fast_path_on_gpu_computes_the_same_training_as_the_default_path(run_fit):
    args = ["--trainer.max_steps", "2", *NOISE_MNIST_GPU]  # 2 generator steps, 10 critic steps
    default = run_fit("wgan_gp_mnist.yaml", *args)
    fast = run_fit("wgan_gp_mnist.yaml", *args, "--model.init_args.joint_critic", "true",
                   "--model.init_args.channels_last", "true", "--data.init_args.data_on_device", "true")
    for key, value in default.model.latest_metrics.items():
        assert fast.model.latest_metrics[key] == pytest.approx(value, rel=1e-2, abs=1e-3), key


@pytest.mark.parametrize("precision", ["bf16-true", "16-true"])
def test_half_precision_weights_are_refused_at_start_up(run_fit, tmp_path, precision):
    # samplers and callbacks feed float32 inputs: such a run used to train, then fail at its first sample grid
    with pytest.raises(ValueError, match=rf"trainer.precision={precision}: .* use bf16-mixed"):
        run_fit("wgan_gp_ring.yaml", "--trainer.max_steps", "2", "--trainer.precision", precision)
    assert not any((tmp_path / "runs").rglob("*.ckpt"))


@pytest.mark.parametrize("config, extra", [
    ("stylegan_mnist.yaml", []),  # w_avg (float32) moved by bf16 latents used to fail in torch.lerp
    ("began_mnist.yaml", []), ("bigan_mnist.yaml", []), ("sagan_mnist.yaml", []), ("acgan_mnist.yaml", []),
    ("dcgan_r1_mnist.yaml", ["--model.init_args.augment", "ADA"]),
    ("cyclegan_digits.yaml", []),
])
def test_every_image_family_trains_under_bf16_autocast_on_cpu(run_fit, tiny_mnist, config, extra):
    cli = run_fit(config, "--trainer.max_steps", "2", "--trainer.precision", "bf16-mixed", "--trainer.callbacks", "[]",
                  "--data.init_args.data_dir", str(tiny_mnist), "--data.init_args.batch_size", "8", *extra)
    assert cli.model.g_steps == 2 and finite(cli.model.latest_metrics)
