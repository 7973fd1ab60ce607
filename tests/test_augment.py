"""DiffAugment and ADA: differentiable, the identity at p = 0, applied to every input of D, p adapted by the
paper's rule, and resumed runs equal to uninterrupted ones with ADA's p included."""

import pytest
import torch
from helpers import assert_same_counters, assert_same_training_state, last_checkpoint

from gan_modules import DCGAN, WGANGP
from gan_modules.augment import ADA, POLICIES, DiffAugment
from gan_modules.regularizers import R1Penalty

PARTS = [fn for fns in POLICIES.values() for fn in fns]


@pytest.mark.parametrize("fn", PARTS, ids=[fn.__name__ for fn in PARTS])
def test_each_diffaugment_part_is_differentiable(fn):
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64, requires_grad=True)

    def fixed(x):  # the same random draw at every evaluation gradcheck makes
        torch.manual_seed(0)
        return fn(x)

    assert torch.autograd.gradcheck(fixed, (x,))
    torch.manual_seed(0)
    assert not torch.equal(fn(x), x)  # it does transform (a gradcheck of the identity would pass too)


@pytest.mark.parametrize("channels", [1, 3])
def test_ada_is_differentiable_at_p_one(channels):
    ada = ADA(initial_p=1.0).double()
    x = torch.randn(4, channels, 6, 6, dtype=torch.float64, requires_grad=True)

    def fixed(x):
        torch.manual_seed(1)
        return ada(x)

    assert torch.autograd.gradcheck(fixed, (x,))
    torch.manual_seed(1)
    assert not torch.equal(ada(x), x)


def test_ada_at_p_zero_is_the_identity():
    x = torch.randn(16, 3, 8, 8)
    assert torch.equal(ADA(initial_p=0.0)(x), x)
    x = torch.randn(16, 1, 28, 28)
    assert torch.equal(ADA(initial_p=0.0)(x), x)


def test_ada_translation_and_rotation_move_pixels_exactly():
    """At p = 1 a sample's pixels are a permutation of its own (flip, rotation, reflected shift), before colour."""
    ada = ADA(initial_p=1.0, brightness_std=0.0, contrast_std=0.0)
    x = torch.arange(4 * 36, dtype=torch.float32).view(4, 1, 6, 6)
    out = ada(x)
    for before, after in zip(x, out, strict=True):
        assert set(after.flatten().tolist()) <= set(before.flatten().tolist())


def test_ada_without_flips_and_rotations_only_shifts():
    """For digits (a mirrored 3 is no digit): with xflip and rotate off, p = 1 only translates, so each output
    row, read left to right, is a row of the input in its own order, shifted and reflected at the edges."""
    torch.manual_seed(0)
    ada = ADA(initial_p=1.0, brightness_std=0.0, contrast_std=0.0, xflip=False, rotate=False, translation=0.0)
    x = torch.randn(32, 1, 6, 6)
    assert torch.equal(ada(x), x)  # no translation either: the identity, at p = 1
    ada.translation = 0.5
    shifted = ada(x)
    assert not torch.equal(shifted, x)
    mirrored_or_turned = ADA(initial_p=1.0, brightness_std=0.0, contrast_std=0.0, translation=0.0)(x)
    assert not torch.equal(mirrored_or_turned, x)  # the default still flips and rotates
    ADA(rotate=False).check_shape((3, 8, 6))  # no 90-degree turns: non-square images are fine


def test_cutout_zeroes_a_square_and_translation_keeps_values():
    torch.manual_seed(0)
    x = torch.ones(8, 1, 8, 8)
    cut = POLICIES["cutout"][0](x)
    assert ((cut == 0).flatten(1).sum(1) >= 4).all()  # at least a 2x2 corner of the 4x4 square
    assert ((cut == 0).flatten(1).sum(1) <= 16).all()
    moved = POLICIES["translation"][0](x)
    assert set(moved.unique().tolist()) <= {0.0, 1.0}  # whole-pixel shifts: values moved or zero padding


def test_unknown_policy_and_non_image_data_are_refused():
    with pytest.raises(ValueError, match="policy"):
        DiffAugment("color,zoom")
    with pytest.raises(ValueError, match="augment: null"):
        WGANGP(data_shape=(2,), augment=DiffAugment())
    with pytest.raises(ValueError, match="square"):
        ADA().check_shape((3, 8, 6))


class Recorder(torch.nn.Module):
    """A critic that records every input it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return x.flatten(1).sum(1) * self.w


@pytest.mark.parametrize("penalty", [None, "gp", "r1"])
def test_real_fake_and_penalised_samples_all_get_the_policy(penalty):
    """Cutout zeroes a square in every sample D sees: real and generated, in both players' losses and in the
    penalty's inputs (the samples themselves are never exactly zero)."""
    kwargs = {"gp": {}, "r1": {"penalty": R1Penalty(gamma=1.0)}, None: {"penalty": None}}[penalty]
    module = WGANGP(data_shape=(1, 8, 8), augment=DiffAugment("cutout"), n_critic=1,
                    generator={"class_path": "gan_modules.networks.MLPGenerator"}, **kwargs)
    module.discriminator = Recorder()
    real = torch.rand(6, 1, 8, 8) + 1.0  # in [1, 2): no zero unless cut out
    module.discriminator_loss(real)
    module.generator_loss(real)
    calls = 2 + (penalty is not None) + 1  # real, fake, the penalty's input, the generator step's fake
    assert len(module.discriminator.seen) == calls
    for x in module.discriminator.seen:
        assert ((x == 0).flatten(1).sum(1) > 0).all()


def test_default_is_no_augmentation():
    """augment: null leaves critic(x) = D(x) and draws no random number (runs stay bit-identical)."""
    module = DCGAN(data_shape=(1, 28, 28))
    assert module.augment is None
    x = torch.randn(4, 1, 28, 28)
    state = torch.get_rng_state()
    module.eval()
    assert torch.equal(module.critic(x), module.discriminator(x))
    assert torch.equal(torch.get_rng_state(), state)
    assert not any(k.startswith("augment") for k in module.state_dict())


def test_ada_p_follows_the_papers_rule_on_scripted_scores():
    """p moves by sign(r_t - 0.6) * images / (speed_kimg * 1000) every 4 calls, and stays in [0, 1].

    Batches of 8 and 4 calls: 32 images an interval; speed_kimg 0.32 makes each step 0.1.
    """
    ada = ADA(target=0.6, interval=4, speed_kimg=0.32)
    pos, neg = torch.ones(8), -torch.ones(8)
    mixed = torch.tensor([1.0] * 6 + [-1.0] * 2)  # r = 0.5: below target
    script = [
        (pos, [0.0, 0.0, 0.0, 0.1]),            # r_t = 1 > 0.6: up once, on the 4th call
        (pos, [0.1, 0.1, 0.1, 0.2]),
        (mixed, [0.2, 0.2, 0.2, 0.1]),          # r_t = 0.5 < 0.6: down
        (neg, [0.1, 0.1, 0.1, 0.0]),            # r_t = -1: down to 0
        (neg, [0.0, 0.0, 0.0, 0.0]),            # and not below
    ]
    expected_rt = [1.0, 1.0, 0.5, -1.0, -1.0]
    for (scores, ps), rt in zip(script, expected_rt, strict=True):
        for p in ps:
            metrics = ada.observe(scores)
            torch.testing.assert_close(ada.p.item(), p)
            torch.testing.assert_close(metrics["train/ada_p"].item(), p, atol=1e-6, rtol=0)
        torch.testing.assert_close(ada.rt.item(), rt)
    # r_t exactly at the target (sign 0): p stays; above it, capped at 1; with fixed_p, r_t measured, p kept
    ada = ADA(target=0.6, interval=1, speed_kimg=0.01, initial_p=0.5)
    ada.observe(torch.tensor([1.0] * 8 + [-1.0] * 2))  # r_t = 0.6
    torch.testing.assert_close(ada.p.item(), 0.5)
    ada.observe(torch.ones(10))  # up by 10 / 10 = 1, capped at 1
    torch.testing.assert_close(ada.p.item(), 1.0)
    fixed = ADA(interval=1, speed_kimg=0.01, initial_p=0.3, fixed_p=True)
    fixed.observe(torch.ones(10))
    torch.testing.assert_close(fixed.p.item(), 0.3)
    torch.testing.assert_close(fixed.rt.item(), 1.0)


def test_ada_position_in_the_interval_survives_a_state_dict_round_trip():
    ada = ADA(interval=4, speed_kimg=0.032)
    for _ in range(2):
        ada.observe(torch.ones(8))
    copy = ADA(interval=4, speed_kimg=0.032)
    copy.load_state_dict(ada.state_dict())
    for _ in range(2):
        copy.observe(torch.ones(8))
    torch.testing.assert_close(copy.p.item(), 1.0)  # 32 images / 32 = 1 step of 1.0 after 2 + 2 calls


# tiny DCGAN on 40 random "digits": batch 8, 5 generator steps an epoch; ADA moves p by 8 / 80 = 0.1 per D step
ADA_ARGS = ["--config", "configs/debug/tiny_mnist.yaml", "--data.init_args.batch_size", "8",
            "--model.init_args.augment", "gan_modules.augment.ADA",
            "--model.init_args.augment.init_args.interval", "1",
            "--model.init_args.augment.init_args.speed_kimg", "0.08",
            "--model.init_args.augment.init_args.target", "0.1",
            "--checkpoint.every_n_train_steps", "0", "--trainer.callbacks", "[]"]


def test_resumed_run_with_ada_equals_uninterrupted_run(run_fit, tiny_mnist):
    data = ["--data.init_args.data_dir", str(tiny_mnist)]
    full = run_fit("dcgan_mnist.yaml", *ADA_ARGS, *data, "--trainer.max_steps", "6")
    first = run_fit("dcgan_mnist.yaml", *ADA_ARGS, *data, "--trainer.max_steps", "3")
    p_at_stop = last_checkpoint(first)["state_dict"]["augment.p"]  # read now: the resume writes the same folder
    resumed = run_fit("dcgan_mnist.yaml", *ADA_ARGS, *data, "--trainer.max_steps", "6",
                      "--ckpt_path", f"{first.run_dir}/checkpoints/last.ckpt")
    a, b = last_checkpoint(full), last_checkpoint(resumed)
    assert 0.0 < p_at_stop < a["state_dict"]["augment.p"] < 1.0  # p kept moving: the comparison below includes it
    assert_same_training_state(a, b)
    assert_same_counters(a, b)
    assert torch.equal(resumed.model.augment.p, full.model.augment.p)
