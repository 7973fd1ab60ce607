"""The GAN module built from Python: public API, start-up checks, EMA."""

import pytest
import torch
from helpers import CONFIGS
from torch import nn

from gan_modules import DCGAN, GAN, WGANGP, GANModule
from gan_modules.networks import DCGANDiscriminator, MLPDiscriminator


def test_public_api_from_python():
    module = WGANGP(data_shape=(2,), latent_dim=2)
    assert isinstance(module.generator, nn.Module) and isinstance(module.discriminator, nn.Module)
    assert module.sample(7).shape == (7, 2)
    assert module.sample(z=torch.zeros(3, 2)).shape == (3, 2)
    g_opt, d_opt = module.configure_optimizers()
    assert isinstance(g_opt, torch.optim.Adam) and g_opt.defaults["betas"] == (0.0, 0.9)
    assert d_opt.defaults["lr"] == g_opt.defaults["lr"] == 1e-4
    assert module.penalty.weight == 10.0 and module.n_critic == 5


def test_dcgan_defaults_build_image_networks():
    module = DCGAN(data_shape=(1, 28, 28))
    assert module.sample(2).shape == (2, 1, 28, 28)
    assert module.latent_dim == 100


def test_generator_output_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"shape \(3,\), but the data's samples have shape \(2,\)"):
        GANModule(generator=lambda latent, shape: nn.Linear(latent, 3), data_shape=(2,))


def test_discriminator_must_return_one_score_per_sample():
    with pytest.raises(ValueError, match=r"one raw score per sample.*returned \(2, 1\)"):
        GANModule(discriminator=lambda shape: nn.Linear(2, 1), data_shape=(2,))


def test_dcgan_on_vector_data_fails_at_start_up():
    with pytest.raises(ValueError, match="needs image data"):
        DCGAN(data_shape=(2,))


@pytest.mark.parametrize("kwargs, match", [
    ({"n_critic": 0}, "model.n_critic=0"),
    ({"weight_clip": -0.01}, "model.weight_clip"),
    ({"ema_decay": 1.5}, "model.ema_decay"),
    ({"data_shape": None}, "data_shape is missing"),
])
def test_bad_settings_fail_with_the_setting_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GANModule(**{"data_shape": (2,), **kwargs})


def test_gradient_penalty_over_batch_norm_warns():
    critic = lambda shape: DCGANDiscriminator(shape, width=8)  # noqa: E731 - batch norm by default
    with pytest.warns(UserWarning, match="batch norm under a gradient penalty"):
        WGANGP(discriminator=critic, generator=lambda dim, s: nn.Sequential(nn.Linear(dim, 784), nn.Unflatten(1, s)),
               data_shape=(1, 28, 28))


def test_spectral_norm_switch_parametrises_every_critic_layer():
    module = GAN(data_shape=(2,), spectral_norm=True, discriminator=lambda s: MLPDiscriminator(s, hidden=(8, 8)))
    linears = [m for m in module.discriminator.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 3 and all(hasattr(m, "parametrizations") for m in linears)


def test_ema_generator_is_used_for_sampling_and_lags_the_generator():
    module = GAN(data_shape=(2,), latent_dim=2, ema_decay=0.5)
    module.generator_ema.update_parameters(module.generator)  # first update copies
    with torch.no_grad():
        for p in module.generator.parameters():
            p.add_(1.0)
    module.generator_ema.update_parameters(module.generator)  # now halfway
    z = torch.randn(4, 2)
    ema_out, raw_out = module.sample(z=z), module.sample(z=z, use_ema=False)
    assert not torch.equal(ema_out, raw_out)
    for p_ema, p in zip(module.generator_ema.module.parameters(), module.generator.parameters(), strict=True):
        torch.testing.assert_close(p_ema, p - 0.5)
    assert all(not p.requires_grad for p in module.generator_ema.parameters())


def test_joint_critic_needs_a_critic_without_batch_norm():
    with pytest.raises(ValueError, match="joint_critic"):
        DCGAN(data_shape=(1, 28, 28), joint_critic=True)


def test_fast_path_computes_the_same_training_as_the_default_path(run_fit, tiny_mnist):
    # the tiny MNIST preset (width-8 networks, critic batches of 8: its 40 digits are one generator step an
    # epoch), 2 generator steps (10 critic steps), every step logged
    args = ["--config", str(CONFIGS / "debug" / "tiny_mnist.yaml"), "--trainer.max_steps", "2",
            "--trainer.log_every_n_steps", "1", "--data.init_args.data_dir", str(tiny_mnist),
            "--trainer.callbacks", "[]"]
    default = run_fit("wgan_gp_mnist.yaml", *args)
    assert default.model.g_steps == 2 and default.model.d_steps == 10
    fast = run_fit("wgan_gp_mnist.yaml", *args, "--model.init_args.joint_critic", "true",
                   "--model.init_args.channels_last", "true", "--data.init_args.data_on_device", "true")
    assert fast.model.latest_metrics.keys() == default.model.latest_metrics.keys()
    for key, value in default.model.latest_metrics.items():
        assert fast.model.latest_metrics[key] == pytest.approx(value, rel=1e-3, abs=1e-4), key
    for (name, a), b in zip(default.model.state_dict().items(), fast.model.state_dict().values(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-4, msg=name)
