"""SAGAN, BEGAN and BiGAN: values known on paper, the networks' layouts, and resumed == uninterrupted runs."""

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_same_counters, assert_same_training_state, last_checkpoint
from torch import nn
from torch.nn.utils.parametrize import is_parametrized

from gan_modules import BEGAN, SAGAN, BiGAN
from gan_modules.began import began_convergence, began_k_update
from gan_modules.losses import HingeLoss
from gan_modules.networks import DCGANDiscriminator, DCGANGenerator, SelfAttention2d
from gan_modules.networks.began import BEGANGenerator
from gan_modules.networks.bigan import JointMLPDiscriminator

MNIST = (1, 28, 28)


# --------------------------------------------------------------------------- SAGAN
def test_attention_block_is_the_identity_at_gamma_zero():
    torch.manual_seed(0)
    block = SelfAttention2d(16)
    x = torch.randn(2, 16, 5, 5)
    assert block.gamma.item() == 0.0
    assert torch.equal(block(x), x)


def test_attention_with_equal_logits_adds_the_mean_value_everywhere():
    """Zero query weights make every logit 0, so beta is uniform (1/HW) and o_i = W_o mean_j W_v x_j at every i."""
    torch.manual_seed(0)
    block = SelfAttention2d(8)
    with torch.no_grad():
        block.query.weight.zero_()
        block.gamma.fill_(0.5)
    x = torch.randn(3, 8, 4, 6)
    beta = block.attention(x)
    torch.testing.assert_close(beta, torch.full((3, 24, 24), 1 / 24))
    mean_value = block.value(x).mean((2, 3), keepdim=True)  # (N, C/2, 1, 1)
    torch.testing.assert_close(block(x), x + 0.5 * block.out(mean_value).expand_as(x))


@pytest.mark.parametrize(("net", "size", "side"), [("G", 28, 14), ("D", 28, 14), ("G", 32, 16), ("D", 32, 16),
                                                   ("G", 64, 32), ("D", 64, 32), ("D", 64, 8)])
def test_attention_sits_on_feature_maps_of_the_chosen_side(net, size, side):
    shape = (3, size, size)
    network = DCGANGenerator(16, shape, width=4, attention=side) if net == "G" else \
        DCGANDiscriminator(shape, width=4, attention=side)
    (block,) = [m for m in network.modules() if isinstance(m, SelfAttention2d)]
    seen = []
    block.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].shape))
    network(torch.randn(2, 16) if net == "G" else torch.randn(2, *shape))
    assert seen[0][2:] == (side, side)


def test_attention_at_a_side_the_network_lacks_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"attention=28: .* choose one of \[7, 14\]"):
        DCGANGenerator(16, MNIST, attention=28)


def test_sagan_defaults_are_the_papers():
    net = {"class_path": "gan_modules.networks.DCGANGenerator", "init_args": {"width": 8, "attention": 14}}
    critic = {"class_path": "gan_modules.networks.DCGANDiscriminator", "init_args": {"width": 8, "attention": 14,
                                                                                    "norm": "none"}}
    model = SAGAN(generator=net, discriminator=critic, data_shape=MNIST)
    for network in (model.generator, model.discriminator):  # spectral norm on every layer of both, attention's too
        convs = [m for m in network.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
        assert convs and all(is_parametrized(m) for m in convs)
    g_opt, d_opt = model.configure_optimizers()
    assert (g_opt.defaults["lr"], d_opt.defaults["lr"]) == (1e-4, 4e-4)
    assert g_opt.defaults["betas"] == d_opt.defaults["betas"] == (0.0, 0.9)
    assert isinstance(model.loss, HingeLoss) and model.n_critic == 1


def test_sagan_without_attention_says_so():
    with pytest.warns(UserWarning, match="no self-attention block"):
        SAGAN(generator={"class_path": "gan_modules.networks.DCGANGenerator", "init_args": {"width": 8}},
              discriminator={"class_path": "gan_modules.networks.DCGANDiscriminator", "init_args": {"width": 8}},
              data_shape=MNIST)


# --------------------------------------------------------------------------- BEGAN
def test_began_k_update_on_a_scripted_sequence():
    # k_{t+1} = clip(k_t + 0.1 (0.5 L(x) - L(G(z))), 0, 1), by hand
    sequence = [(1.0, 0.2), (1.0, 0.1), (0.2, 1.0), (10.0, 0.0), (10.0, 0.0), (10.0, 0.0)]
    expected = [0.03, 0.07, 0.0, 0.5, 1.0, 1.0]  # 0.07 - 0.09 is clipped to 0; 0.5 + 0.5 reaches the top; stays
    k = torch.tensor(0.0)
    for (real, fake), want in zip(sequence, expected, strict=True):
        k = began_k_update(k, torch.tensor(real), torch.tensor(fake), gamma=0.5, lambda_k=0.1)
        torch.testing.assert_close(k, torch.tensor(want))
    torch.testing.assert_close(began_convergence(torch.tensor(1.0), torch.tensor(0.2), 0.5), torch.tensor(1.3))


def tiny_began(**kwargs):
    return BEGAN(generator={"class_path": "gan_modules.networks.began.BEGANGenerator", "init_args": {"width": 4}},
                 discriminator={"class_path": "gan_modules.networks.began.BEGANDiscriminator",
                                "init_args": {"width": 4, "hidden": 8}},
                 latent_dim=8, data_shape=MNIST, **kwargs)


def test_began_losses_and_k_step_use_the_reconstruction_errors():
    torch.manual_seed(0)
    model = tiny_began(k_init=0.25, gamma=0.7, lambda_k=0.5)
    x = torch.rand(4, *MNIST) * 2 - 1
    torch.manual_seed(1)
    d_loss, _ = model.discriminator_loss(x)
    torch.manual_seed(1)
    fake = model.generator(model.sample_latent(4))
    real_error = (model.discriminator.reconstruct(x) - x).abs().mean()
    fake_error = (model.discriminator.reconstruct(fake) - fake).abs().mean()
    torch.testing.assert_close(d_loss, real_error - 0.25 * fake_error)  # L_D = L(x) - k_t L(G(z))
    torch.manual_seed(2)
    g_loss, g_metrics = model.generator_loss(x)
    torch.manual_seed(2)
    fake = model.generator(model.sample_latent(4))
    torch.testing.assert_close(g_loss, (model.discriminator.reconstruct(fake) - fake).abs().mean())  # L_G = L(G(z))
    model.after_generator_step()
    torch.testing.assert_close(model.k, began_k_update(torch.tensor(0.25), real_error, g_loss, 0.7, 0.5))
    torch.testing.assert_close(g_metrics["train/convergence"], began_convergence(real_error, g_loss, 0.7))
    assert "k" in model.state_dict()  # a buffer: in every checkpoint


def test_began_generator_is_linear_and_its_samples_are_clamped():
    """The paper's generator has no output nonlinearity (a tanh stalls at MNIST's black, see BEGANGenerator);
    the samples every callback and benchmark reads still lie in [-1, 1]."""
    torch.manual_seed(0)
    model = tiny_began()
    last = model.generator.decoder.net[-1]
    with torch.no_grad():
        last.bias.fill_(3.0)  # a raw output above 1 everywhere
    z = model.sample_latent(4)
    raw = model.generator(z)
    assert raw.min() > 1.0  # linear: nothing squashes it
    assert torch.equal(model.sample(z=z, use_ema=False), torch.ones_like(raw))
    tanh = BEGANGenerator(8, MNIST, width=4, output="tanh")
    assert isinstance(tanh.decoder.net[-1], torch.nn.Tanh)
    with pytest.raises(ValueError, match=r"'linear'.*'tanh'"):
        BEGANGenerator(8, MNIST, width=4, output="sigmoid")


def test_began_refuses_a_loss_of_its_own():
    with pytest.raises(ValueError, match="does not apply to BEGAN"):
        tiny_began(penalty={"class_path": "gan_modules.regularizers.GradientPenalty"})


# --------------------------------------------------------------------------- BiGAN
def test_joint_discriminator_sees_the_flat_sample_then_the_code():
    disc = JointMLPDiscriminator((1, 2, 2), latent_dim=3, hidden=[5], dropout=0.0)
    seen = []
    disc.net[0].register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    x, z = torch.arange(4.0).view(1, 1, 2, 2), torch.tensor([[10.0, 11.0, 12.0]])
    disc(x, z)
    assert torch.equal(seen[0], torch.tensor([[0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0]]))


def tiny_bigan():
    small = {"hidden": [16]}
    return BiGAN(generator={"class_path": "gan_modules.networks.MLPGenerator",
                            "init_args": {**small, "output": "tanh"}},
                 encoder={"class_path": "gan_modules.networks.bigan.MLPEncoder", "init_args": small},
                 discriminator={"class_path": "gan_modules.networks.bigan.JointMLPDiscriminator",
                                "init_args": {**small, "dropout": 0.0}},
                 latent_dim=5, data_shape=MNIST)


def test_bigan_scores_real_with_its_code_and_generated_with_its_noise():
    """D's real pairs are (x, E(x)), its generated pairs (G(z), z); G and E minimise D's loss with roles swapped."""
    torch.manual_seed(0)
    model = tiny_bigan()
    pairs = []
    critic = model.critic
    model.critic = lambda x, z: (pairs.append((x, z)), critic(x, z))[1]
    x = torch.rand(6, *MNIST) * 2 - 1
    d_loss, _ = model.discriminator_loss(x)
    (real_x, real_z), (fake_x, fake_z) = pairs
    assert torch.equal(real_x, x) and torch.equal(real_z, model.encoder(x))
    assert fake_z.shape == (6, 5) and torch.equal(fake_x, model.generator(fake_z))
    real, fake = critic(real_x, real_z), critic(fake_x, fake_z)
    torch.testing.assert_close(d_loss, F.softplus(-real).mean() + F.softplus(fake).mean())  # BCE: real 1, fake 0
    pairs.clear()
    g_loss, _ = model.generator_loss(x)
    (real_x, real_z), (fake_x, fake_z) = pairs[1], pairs[0]  # the generated pair is scored first
    real, fake = critic(real_x, real_z), critic(fake_x, fake_z)
    torch.testing.assert_close(g_loss, F.softplus(-fake).mean() + F.softplus(real).mean())  # labels swapped


def test_bigan_encoder_trains_with_the_generator():
    model = tiny_bigan()
    g_opt, d_opt = model.configure_optimizers()
    g_params = {id(p) for group in g_opt.param_groups for p in group["params"]}
    assert {id(p) for p in model.encoder.parameters()} <= g_params
    assert {id(p) for p in model.generator.parameters()} <= g_params
    assert not g_params & {id(p) for group in d_opt.param_groups for p in group["params"]}
    assert model.reconstruct(torch.zeros(3, *MNIST)).shape == (3, *MNIST)


# --------------------------------------------------------------------------- resume
SMALL = {
    "sagan_mnist.yaml": ["--model.init_args.generator.init_args.width", "4",
                         "--model.init_args.discriminator.init_args.width", "4"],
    # k moves at every step from k_init 0.5 with a large gain, so equal k_t is not the trivial k_0 == k_0
    "began_mnist.yaml": ["--model.init_args.generator.init_args.width", "4",
                         "--model.init_args.discriminator.init_args.width", "4",
                         "--model.init_args.k_init", "0.5", "--model.init_args.lambda_k", "0.1"],
    "bigan_mnist.yaml": ["--model.init_args.generator.init_args.hidden", "[32]",
                         "--model.init_args.encoder.init_args.hidden", "[32]",
                         "--model.init_args.discriminator.init_args.hidden", "[32]"],
}


@pytest.mark.parametrize("config", sorted(SMALL))
def test_resumed_run_equals_uninterrupted_run(run_fit, tiny_mnist, config):
    # 40 digits in batches of 8: 5 generator steps an epoch; stop mid-epoch at 2, end at 4 (tests/test_resume.py
    # crosses epochs; here what matters is each model's own state: attention gates, the encoder, k_t)
    args = ["--data.init_args.data_dir", str(tiny_mnist), "--data.init_args.batch_size", "8",
            "--checkpoint.every_n_train_steps", "0", "--trainer.callbacks", "[]", *SMALL[config]]
    full = run_fit(config, "--trainer.max_steps", "4", *args)
    first = run_fit(config, "--trainer.max_steps", "2", *args)
    resumed = run_fit(config, "--trainer.max_steps", "4", *args,
                      "--ckpt_path", f"{first.run_dir}/checkpoints/last.ckpt")
    a, b = last_checkpoint(full), last_checkpoint(resumed)
    assert resumed.model.g_steps == full.model.g_steps == 4
    assert_same_training_state(a, b)  # every weight and buffer (BEGAN's k_t too) and both optimizers' states
    assert_same_counters(a, b)
    if config == "began_mnist.yaml":
        assert a["state_dict"]["k"] != 0.5 and torch.equal(a["state_dict"]["k"], b["state_dict"]["k"])


def test_attention_map_refuses_a_generator_without_attention():
    from callbacks import AttentionMap
    from gan_modules import DCGAN

    model = DCGAN(generator={"class_path": "gan_modules.networks.DCGANGenerator", "init_args": {"width": 4}},
                  discriminator={"class_path": "gan_modules.networks.DCGANDiscriminator", "init_args": {"width": 4}},
                  data_shape=MNIST)
    with pytest.raises(TypeError, match="no SelfAttention2d block"):
        AttentionMap().setup(None, model, "fit")


@pytest.mark.slow
def test_began_keeps_one_k_on_every_rank(tmp_path, tiny_mnist):
    """k_t sits outside both DDP-wrapped networks: the ranks step it with errors averaged over the global batch.

    two_process_ddp asserts every state_dict entry, k included, is identical on both ranks."""
    from helpers import two_process_ddp

    _, ranks = two_process_ddp(tmp_path, "--trainer.max_steps", "3", "--data.init_args.data_dir", str(tiny_mnist),
                               "--data.init_args.batch_size", "4", *SMALL["began_mnist.yaml"], config="began_mnist")
    assert ranks[0]["state"]["k"] != 0.5


def test_reconstructions_put_each_row_of_originals_above_its_reconstructions(tmp_path):
    from types import SimpleNamespace

    from torchvision.io import decode_png, read_file

    from callbacks import Reconstructions

    real = torch.rand(4, 1, 4, 4) * 2 - 1
    trainer = SimpleNamespace(datamodule=SimpleNamespace(real_samples=lambda n, seed: real[:n]), is_global_zero=True,
                              loggers=[], default_root_dir=str(tmp_path))
    module = SimpleNamespace(data_shape=(1, 4, 4), g_steps=7, device="cpu", reconstruct=lambda x: -x)
    Reconstructions(num_images=4, nrow=2).run(trainer, module)
    grid = decode_png(read_file(str(tmp_path / "reconstructions" / "step_0000007.png")))[0].float() / 255

    def cell(r, c):  # the 4x4 image at grid row r, column c (2 px of padding around each)
        return grid[2 + 6 * r: 6 + 6 * r, 2 + 6 * c: 6 + 6 * c]

    for r, c, i in [(0, 0, 0), (0, 1, 1), (2, 0, 2), (2, 1, 3)]:  # rows 0 and 2: originals; 1 and 3: -x
        torch.testing.assert_close(cell(r, c), (real[i, 0] + 1) / 2, atol=1 / 255, rtol=0)
        torch.testing.assert_close(cell(r + 1, c), (1 - real[i, 0]) / 2, atol=1 / 255, rtol=0)


@pytest.mark.parametrize("net", ["generator", "projection", "acgan"])
def test_conditional_networks_take_the_attention_block_and_start_as_without_it(net):
    """Conditional SAGAN: the conditional networks place the block on the chosen side; at gamma 0 they compute
    what the same weights compute with the block skipped."""
    from gan_modules.networks import ACGANDiscriminator, ConditionalDCGANGenerator, ProjectionDiscriminator

    torch.manual_seed(0)
    shape, y = (1, 28, 28), torch.tensor([0, 3, 7])
    make = {"generator": lambda a: ConditionalDCGANGenerator(16, shape, 10, width=8, attention=a),
            "projection": lambda a: ProjectionDiscriminator(shape, 10, width=8, attention=a),
            "acgan": lambda a: ACGANDiscriminator(shape, 10, width=8, attention=a)}[net]
    with_block = make(14)
    blocks = [m for m in with_block.modules() if isinstance(m, SelfAttention2d)]
    assert len(blocks) == 1
    seen = []
    blocks[0].register_forward_hook(lambda _, inputs, out: seen.append(inputs[0].shape[-1]))
    x = torch.randn(3, 16) if net == "generator" else torch.randn(3, *shape)
    with_block.eval()
    out = with_block(x, y)
    assert seen == [14]
    blocks[0].forward = lambda h: h  # skip the block: the same output, since gamma starts at 0
    torch.testing.assert_close(with_block(x, y), out, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"attention=5: no hidden feature map of that side"):
        make(5)


def test_spectral_norm_on_a_conditional_generator_leaves_the_per_class_gains_alone():
    """SAGAN's generator spectral norm covers convolutions, not conditional batch norm's per-class scale and shift
    tables: the shift starts at zero, whose spectral norm of 0 made the first step NaN."""
    from gan_modules.networks import ConditionalBatchNorm2d, ConditionalDCGANGenerator
    from gan_modules.networks.common import apply_spectral_norm

    g = apply_spectral_norm(ConditionalDCGANGenerator(16, (1, 28, 28), 10, width=8, attention=14))
    assert all(is_parametrized(m) for m in g.convs)
    norms = [m for m in g.modules() if isinstance(m, ConditionalBatchNorm2d)]
    assert norms and not any(is_parametrized(m.weight) or is_parametrized(m.bias) for m in norms)
    assert torch.isfinite(g(torch.randn(4, 16), torch.arange(4))).all()
