"""StyleGAN-lite: its building blocks against values known on paper, truncation and style mixing by their
definitions, w_avg in checkpoints, resume equality and `main.py sample --truncation`."""

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import assert_same_counters, assert_same_training_state, last_checkpoint
from PIL import Image

from callbacks import StyleMixingGrid, TruncationStrip
from gan_modules import DCGAN, StyleGAN
from gan_modules.networks.stylegan import (
    EqualConv2d,
    EqualLinear,
    StyleGANDiscriminator,
    StyleGANGenerator,
    adain,
    minibatch_stddev,
    modulated_weight,
)
from main import cli_main

TINY_G = {"class_path": "gan_modules.networks.StyleGANGenerator",
          "init_args": {"w_dim": 16, "mapping_layers": 2, "width": 4, "max_channels": 8}}
TINY_D = {"class_path": "gan_modules.networks.StyleGANDiscriminator", "init_args": {"width": 4, "max_channels": 8}}
# stylegan_mnist.yaml at toy width on the 40-digit fixture: batch 8, 5 generator steps an epoch
TINY_RUN = ["--model.init_args.generator.init_args.width", "4", "--model.init_args.generator.init_args.max_channels",
            "8", "--model.init_args.generator.init_args.w_dim", "16", "--model.init_args.discriminator.init_args.width",
            "4", "--model.init_args.discriminator.init_args.max_channels", "8", "--data.init_args.batch_size", "8",
            "--trainer.callbacks", "[]", "--checkpoint.every_n_train_steps", "0"]


def tiny(modulation: str = "demod", **kwargs) -> StyleGAN:
    gen = {**TINY_G, "init_args": {**TINY_G["init_args"], "modulation": modulation}}
    return StyleGAN(generator=gen, discriminator=TINY_D, latent_dim=8, data_shape=(1, 16, 16), **kwargs)


def data_args(tiny_mnist: Path) -> list[str]:
    return ["--data.init_args.data_dir", str(tiny_mnist)]


# ---------------------------------------------------------------------------------------- networks
@pytest.mark.parametrize("modulation", ["adain", "demod"])
@pytest.mark.parametrize("shape", [(1, 32, 32), (3, 64, 64)])
def test_shapes_and_number_of_styles(modulation, shape):
    gen = StyleGANGenerator(8, shape, w_dim=16, mapping_layers=8, width=4, max_channels=8, modulation=modulation)
    disc = StyleGANDiscriminator(shape, width=4, max_channels=8)
    x = gen(torch.randn(5, 8))
    assert x.shape == (5, *shape)
    assert disc(x).shape == (5,)
    doublings = {32: 3, 64: 4}[shape[1]]  # 4x4 -> 32 or 64: one conv at 4x4 and two per doubling
    assert gen.num_ws == 1 + 2 * doublings + (modulation == "demod")  # the modulated ToRGB takes a style too
    assert len(gen.mapping.net) == 8


def test_sizes_that_are_not_a_power_of_two_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="image_size: 32"):
        StyleGANGenerator(8, (1, 28, 28))
    with pytest.raises(ValueError, match="power of two"):
        StyleGANDiscriminator((1, 28, 28))


def test_equalized_learning_rate_stores_unit_weights_and_scales_them_at_run_time():
    torch.manual_seed(0)
    layer = EqualLinear(400, 300, bias_init=0.5, lr_mul=0.01)
    # stored N(0, 1/lr_mul) ...
    torch.testing.assert_close(layer.weight.std().item(), 100.0, rtol=0.02, atol=0)
    # ... used as N(0, 1/fan_in) (He), whatever lr_mul: the initial function does not depend on it
    torch.testing.assert_close(layer.effective_weight().std().item(), 1 / 400**0.5, rtol=0.02, atol=0)
    x = torch.randn(7, 400)
    torch.testing.assert_close(layer(x), x @ (layer.weight * 0.01 / 20).T + 0.5)  # 20 = sqrt(400)
    # a gradient step of size lr on the stored weight moves the used weight by lr * lr_mul / sqrt(fan_in)
    layer(x).sum().backward()
    torch.testing.assert_close(layer.weight.grad, (0.01 / 20) * torch.ones(300, 1) * x.sum(0))
    conv = EqualConv2d(8, 4, 3)
    assert conv.weight_gain == pytest.approx(1 / (8 * 9) ** 0.5)
    torch.testing.assert_close(conv.weight.std().item(), 1.0, rtol=0.15, atol=0)


def test_mapping_network_runs_at_a_hundredth_of_the_learning_rate():
    gen = StyleGANGenerator(8, (1, 16, 16), mapping_lr_mul=0.01)
    assert {layer.lr_mul for layer in gen.mapping.net} == {0.01}


def test_adain_gives_each_channel_the_styles_mean_and_std():
    torch.manual_seed(0)
    x = 3.0 * torch.randn(2, 3, 8, 8) + 5.0
    scale = torch.tensor([[2.0, 0.5, 1.0], [3.0, 1.5, 0.25]])
    bias = torch.tensor([[1.0, -2.0, 0.0], [0.5, 0.0, 4.0]])
    out = adain(x, scale, bias)
    torch.testing.assert_close(out.mean((2, 3)), bias)
    torch.testing.assert_close(out.std((2, 3), correction=0), scale)


def test_demodulated_weights_have_unit_norm_per_output_channel():
    torch.manual_seed(0)
    weight, styles = torch.randn(6, 4, 3, 3), torch.rand(5, 4) * 3
    w = modulated_weight(weight, styles, demodulate=True)
    assert w.shape == (5, 6, 4, 3, 3)
    torch.testing.assert_close(w.square().sum((2, 3, 4)), torch.ones(5, 6))
    plain = modulated_weight(weight, styles, demodulate=False)  # modulation alone: input channel i times s_i
    torch.testing.assert_close(plain[1, :, 2], weight[:, 2] * styles[1, 2])


def test_minibatch_stddev_appends_each_groups_mean_feature_std():
    x = torch.randn(8, 3, 4, 4)
    y = minibatch_stddev(x, group_size=4)
    assert y.shape == (8, 4, 4, 4)
    torch.testing.assert_close(y[:, :3], x)
    for j in range(2):  # groups are samples j, j + 2, j + 4, j + 6
        expected = (x[j::2].var(0, correction=0) + 1e-8).sqrt().mean()
        torch.testing.assert_close(y[j::2, 3], expected.expand(4, 4, 4))
    assert minibatch_stddev(torch.randn(6, 2, 4, 4), group_size=4).shape == (6, 3, 4, 4)  # group 3 divides 6


def test_noise_inputs_have_learned_per_channel_strength():
    gen = StyleGANGenerator(8, (1, 16, 16), width=4, max_channels=8)
    z = torch.randn(2, 8)
    torch.manual_seed(1)
    a = gen(z)
    torch.manual_seed(2)
    assert torch.equal(a, gen(z))  # strengths start at zero: noise has no effect yet
    with torch.no_grad():
        gen.layers[-1].noise.strength.fill_(0.5)
    assert not torch.equal(gen(z, noise_mode="random"), gen(z, noise_mode="random"))
    assert torch.equal(gen(z, noise_mode="const"), gen(z, noise_mode="const"))


# ---------------------------------------------------------------------------------------- truncation, mixing
def test_truncation_psi_0_gives_w_avg_and_psi_1_is_the_identity():
    model = tiny()
    g = model.generator
    with torch.no_grad():
        g.w_avg.copy_(torch.randn(16))
    ws = g.broadcast(g.mapping(torch.randn(3, 8)))
    assert torch.equal(g.truncate(ws, 1.0), ws)
    torch.testing.assert_close(g.truncate(ws, 0.0), g.w_avg.expand_as(ws))
    torch.testing.assert_close(g.truncate(ws, 0.5), 0.5 * (ws + g.w_avg))
    cut = g.truncate(ws, 0.0, cutoff=2)  # only the first two layers
    torch.testing.assert_close(cut[:, :2], g.w_avg.expand(3, 2, 16))
    assert torch.equal(cut[:, 2:], ws[:, 2:])
    # psi 0: every latent gives the one average image (constant noise)
    images = model.sample(4, truncation_psi=0.0, noise_mode="const")
    torch.testing.assert_close(images, images[:1].expand_as(images))


def test_w_avg_tracks_the_mean_of_mapped_latents():
    model = tiny(w_avg_beta=0.5)
    g = model.generator
    torch.manual_seed(0)
    w = g.mapping(torch.randn(4, 8))
    torch.manual_seed(0)
    model.mapped_latents(torch.randn(4, 8))  # the same latents: w_avg <- 0.5 * 0 + 0.5 * mean(w)
    torch.testing.assert_close(g.w_avg, 0.5 * w.mean(0).detach())


@pytest.mark.parametrize("modulation", ["adain", "demod"])
def test_style_mix_at_the_ends_gives_one_latents_image(modulation):
    model = tiny(modulation)
    with torch.no_grad():
        for layer in model.generator.layers:
            layer.noise.strength.fill_(0.3)  # noise on: both sides must see the same (constant) maps
    z_coarse, z_fine = torch.randn(3, 8), torch.randn(3, 8)
    own = {name: model.sample(z=z, noise_mode="const") for name, z in (("coarse", z_coarse), ("fine", z_fine))}
    torch.testing.assert_close(model.style_mix(z_coarse, z_fine, 0), own["fine"])
    torch.testing.assert_close(model.style_mix(z_coarse, z_fine, model.num_ws), own["coarse"])
    middle = model.style_mix(z_coarse, z_fine, 3)
    assert not torch.allclose(middle, own["fine"]) and not torch.allclose(middle, own["coarse"])
    with pytest.raises(ValueError, match=r"crossover=99: must lie in \[0, "):
        model.style_mix(z_coarse, z_fine, 99)
    with pytest.raises(ValueError, match=r"z_coarse \(3, 8\) and z_fine \(2, 8\) must have the same shape"):
        model.style_mix(z_coarse, z_fine[:2], 3)


def test_training_fakes_mix_two_latents_at_a_random_crossover():
    model = tiny(style_mixing_prob=1.0)
    torch.manual_seed(0)
    ws = model.mapped_latents(torch.randn(4, 8))
    changes = [i for i in range(1, model.num_ws) if not torch.equal(ws[:, i], ws[:, i - 1])]
    assert len(changes) == 1  # one crossover, the same for the whole batch
    unmixed = tiny(style_mixing_prob=0.0).mapped_latents(torch.randn(4, 8))
    assert torch.equal(unmixed.diff(dim=1).abs().sum(), torch.tensor(0.0))


def test_path_length_penalty_moves_its_target_and_has_a_gradient():
    model = tiny(path_length_weight=2.0, path_length_decay=0.5)
    penalty = model.path_length_penalty(4)
    assert model.pl_mean > 0
    penalty.backward()
    assert model.generator.layers[0].weight.grad is not None


def test_bad_style_settings_name_the_setting():
    with pytest.raises(ValueError, match=r"model\.style_mixing_prob=1\.5"):
        tiny(style_mixing_prob=1.5)
    with pytest.raises(ValueError, match=r"model\.truncation_cutoff=99"):
        tiny(truncation_cutoff=99)
    with pytest.raises(ValueError, match="minibatch-std"):
        tiny(joint_critic=True)


def test_style_callbacks_refuse_a_model_without_styles_at_start_up():
    for callback in (TruncationStrip(), StyleMixingGrid()):
        with pytest.raises(TypeError, match=r"cannot observe DCGAN: .*missing: num_ws, style_mix"):
            callback.setup(None, DCGAN(data_shape=(1, 28, 28)), "fit")
        callback.setup(None, tiny(), "fit")


# ---------------------------------------------------------------------------------------- through the CLI
def test_w_avg_and_truncation_settings_survive_a_checkpoint(run_fit, tiny_mnist):
    cli = run_fit("stylegan_mnist.yaml", *TINY_RUN, *data_args(tiny_mnist), "--trainer.max_steps", "3",
                  "--model.init_args.truncation_psi", "0.6", "--model.init_args.truncation_cutoff", "2")
    path = Path(cli.run_dir, "checkpoints", "last.ckpt")
    loaded = StyleGAN.load_from_checkpoint(path)
    assert cli.model.w_avg.abs().sum() > 0  # moved by training
    assert torch.equal(loaded.generator.w_avg, cli.model.generator.w_avg)
    assert torch.equal(loaded.w_avg, cli.model.w_avg)  # the EMA generator's
    assert (loaded.truncation_psi, loaded.truncation_cutoff) == (0.6, 2)
    z = torch.randn(3, 128)
    assert torch.equal(loaded.sample(z=z, noise_mode="const"), cli.model.sample(z=z, noise_mode="const"))


def test_resumed_run_equals_uninterrupted_run(run_fit, tiny_mnist):
    # R1 every 2 D steps and path length every 2 G steps, so both lazy regularisers fire before and after the stop;
    # 7 steps cross the 5-step epoch boundary, the stop at 3 is mid-epoch
    args = [*TINY_RUN, *data_args(tiny_mnist), "--model.init_args.penalty.init_args.interval", "2",
            "--model.init_args.path_length_weight", "2.0", "--model.init_args.path_length_interval", "2"]
    full = run_fit("stylegan_mnist.yaml", *args, "--trainer.max_steps", "7")
    first = run_fit("stylegan_mnist.yaml", *args, "--trainer.max_steps", "3")
    resumed = run_fit("stylegan_mnist.yaml", *args, "--trainer.max_steps", "7",
                      "--ckpt_path", f"{first.run_dir}/checkpoints/last.ckpt")
    assert resumed.model.g_steps == full.model.g_steps == 7
    a, b = last_checkpoint(full), last_checkpoint(resumed)
    assert "pl_mean" in a["state_dict"] and "generator.w_avg" in a["state_dict"]
    assert a["state_dict"]["pl_mean"] > 0
    assert_same_training_state(a, b)
    assert_same_counters(a, b)


def test_sample_truncation_from_a_checkpoint(run_fit, tiny_mnist, tmp_path):
    cli = run_fit("stylegan_mnist.yaml", *TINY_RUN, *data_args(tiny_mnist), "--trainer.max_steps", "2")
    ckpt = str(Path(cli.run_dir, "checkpoints", "last.ckpt"))
    grids = {}
    for psi in ("0.7", "0", "1"):
        written = cli_main(["sample", "--ckpt_path", ckpt, "--num_samples", "4", "--truncation", psi,
                            "--out_dir", str(tmp_path / psi)])
        assert len([p for p in written if p.name.startswith("sample_")]) == 4
        grids[psi] = torch.from_numpy(np.asarray(Image.open(tmp_path / psi / "grid.png")).copy())
    assert not torch.equal(grids["0"], grids["1"])  # the setting reaches the model
    loaded = StyleGAN.load_from_checkpoint(ckpt)
    z = torch.randn(4, 128)
    assert not torch.equal(loaded.sample(z=z, truncation_psi=0.7, noise_mode="const"),
                           loaded.sample(z=z, noise_mode="const"))


def test_sample_truncation_is_refused_for_a_model_without_it(run_fit, capsys):
    cli = run_fit("gan_ring.yaml", "--trainer.max_steps", "1", "--data.init_args.num_samples", "1024")
    with pytest.raises(SystemExit):
        cli_main(["sample", "--ckpt_path", str(Path(cli.run_dir, "checkpoints", "last.ckpt")), "--truncation", "0.7"])
    assert "--truncation 0.7: GAN has no truncation trick" in capsys.readouterr().err


def test_modulated_convolution_equals_convolving_with_each_samples_modulated_weights():
    from gan_modules.networks.stylegan import modulated_conv2d

    torch.manual_seed(0)
    x, weight, styles = torch.randn(3, 4, 6, 6), torch.randn(5, 4, 3, 3), torch.rand(3, 4) + 0.5
    for demodulate in (True, False):
        per_sample = modulated_weight(weight, styles, demodulate)
        expected = torch.cat([torch.nn.functional.conv2d(x[i : i + 1], per_sample[i], padding=1) for i in range(3)])
        torch.testing.assert_close(modulated_conv2d(x, weight, styles, demodulate), expected)


def test_the_digit_classifier_judges_32_pixel_images_at_its_own_size():
    from gan_modules.classifier import ClassifierFeatures, DigitClassifier

    classifier = DigitClassifier().eval()  # trained at 28x28
    x = torch.rand(3, 1, 32, 32) * 2 - 1
    resized = torch.nn.functional.interpolate(x, size=(28, 28), mode="bilinear", antialias=True)
    torch.testing.assert_close(classifier(x), classifier(resized))
    torch.testing.assert_close(ClassifierFeatures(classifier)(x), classifier.features(resized))
