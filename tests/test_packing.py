"""PacGAN's packed discriminator (Lin et al. 2018): the batch layout, networks built for packs, penalties on
packed inputs, pack 1 unchanged, and the start-up error for a batch the pack does not divide."""

import math

import pytest
import torch
from torch import Tensor, nn

from gan_modules import DCGAN, GAN, GANModule
from gan_modules.networks import DCGANDiscriminator
from gan_modules.packing import pack_samples, packed_shape, unpack_samples
from gan_modules.regularizers import GradientPenalty, R1Penalty


class RecordingCritic(nn.Module):
    """A linear critic on packed inputs (weights all ``w``) that keeps every batch it is shown."""

    def __init__(self, shape: tuple[int, ...], w: float = 1.0) -> None:
        super().__init__()
        self.linear = nn.Linear(math.prod(shape), 1, bias=False)
        nn.init.constant_(self.linear.weight, w)
        self.seen: list[Tensor] = []

    def forward(self, x: Tensor) -> Tensor:
        self.seen.append(x.detach().clone())
        return self.linear(x.flatten(1)).view(-1)


class NegativeIds(nn.Module):
    """A 'generator' whose i-th sample is filled with -(i + 1): generated samples are told from real ones
    (positive ids) by their sign, and from each other by their value."""

    def __init__(self, latent_dim: int, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape, self.scale = tuple(shape), nn.Parameter(torch.ones(()))

    def forward(self, z: Tensor) -> Tensor:
        ids = torch.arange(1, len(z) + 1, dtype=torch.float32).view(-1, *[1] * len(self.shape))
        return -ids.expand(len(z), *self.shape) * self.scale


def ids(n: int, shape: tuple[int, ...]) -> Tensor:
    """Real samples 1..n, each filled with its own id."""
    return torch.arange(1, n + 1, dtype=torch.float32).view(-1, *[1] * len(shape)).expand(n, *shape).clone()


def test_pack_layout_puts_consecutive_samples_side_by_side_along_channels():
    x = ids(6, (2, 1, 1)) * torch.tensor([1.0, 10.0]).view(1, 2, 1, 1)  # sample i: channels (i, 10 i)
    packed = pack_samples(x, 3)
    assert packed.shape == (2, 6, 1, 1)
    torch.testing.assert_close(packed.flatten(1), torch.tensor([[1.0, 10, 2, 20, 3, 30], [4, 40, 5, 50, 6, 60]]))
    assert torch.equal(unpack_samples(packed, 3), x)
    assert packed_shape((3, 28, 28), 2) == (6, 28, 28) and packed_shape((2,), 4) == (8,)


@pytest.mark.parametrize("joint_critic", [False, True])
def test_packs_never_mix_real_and_generated_samples(joint_critic):
    module = GANModule(generator=NegativeIds, discriminator=RecordingCritic, latent_dim=2, data_shape=(2,), pack=4,
                       joint_critic=joint_critic)
    module.discriminator.seen.clear()  # the start-up shape check's batch
    module.discriminator_loss(ids(8, (2,)))
    packs = torch.cat(module.discriminator.seen).view(-1, 4, 2)[..., 0]  # (packs, member) -> the member's id
    assert packs.shape == (4, 4)
    real = packs[(packs > 0).all(1)]
    fake = packs[(packs < 0).all(1)]
    assert len(real) + len(fake) == len(packs)  # every pack is all real or all generated
    assert torch.equal(real, torch.tensor([[1.0, 2, 3, 4], [5, 6, 7, 8]]))  # samples 4k..4k+3 form pack k
    assert torch.equal(fake, -torch.tensor([[1.0, 2, 3, 4], [5, 6, 7, 8]]))


def test_scores_are_one_per_pack_and_split_into_real_and_generated():
    module = GANModule(generator=NegativeIds, discriminator=RecordingCritic, latent_dim=2, data_shape=(1,), pack=2,
                       joint_critic=True)
    _, metrics = module.discriminator_loss(ids(4, (1,)))
    # linear critic with weights 1: a pack scores the sum of its members; real packs (1+2, 3+4), fake the negatives
    torch.testing.assert_close(metrics["train/d_real"], torch.tensor(5.0))
    torch.testing.assert_close(metrics["train/d_fake"], torch.tensor(-5.0))


@pytest.mark.parametrize("pack", [1, 2, 4])
def test_penalties_take_gradient_norms_per_packed_input(pack):
    """A linear critic with all weights 1 on packs of 2-D points has gradient norm sqrt(2 * pack) at every packed
    input: R1 = 2 * pack, GP = (sqrt(2 * pack) - 1)^2 (a per-sample norm would give 2 and (sqrt 2 - 1)^2)."""
    for penalty, expected in [(R1Penalty(gamma=1.0), 2.0 * pack), (GradientPenalty(), (math.sqrt(2 * pack) - 1) ** 2)]:
        module = GANModule(generator=NegativeIds, discriminator=RecordingCritic, latent_dim=2, data_shape=(2,),
                           pack=pack, penalty=penalty)
        _, metrics = module.discriminator_loss(ids(8, (2,)))
        torch.testing.assert_close(metrics["train/gp"], torch.tensor(expected))


def test_networks_are_built_for_the_packed_shape():
    dcgan = DCGAN(data_shape=(3, 28, 28), pack=2, discriminator=lambda s: DCGANDiscriminator(s, width=8))
    assert dcgan.critic_shape == (6, 28, 28) and dcgan.discriminator.net[0].in_channels == 6
    assert dcgan.critic(torch.zeros(8, 3, 28, 28)).shape == (4,)
    ring = GAN(data_shape=(2,), latent_dim=2, pack=4)
    assert ring.discriminator.net[1].in_features == 8
    assert ring.sample(5).shape == (5, 2)  # the generator is untouched


def test_pack_one_is_the_unpacked_critic():
    torch.manual_seed(0)
    plain = GAN(data_shape=(2,), latent_dim=2)
    torch.manual_seed(0)
    packed = GAN(data_shape=(2,), latent_dim=2, pack=1)
    assert packed.critic_shape == (2,)
    for (name, a), b in zip(plain.state_dict().items(), packed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    x = torch.randn(6, 2)
    assert torch.equal(packed.critic(x), packed.discriminator(x))


@pytest.mark.parametrize("pack", [0, 2.5])
def test_bad_pack_is_refused(pack):
    with pytest.raises(ValueError, match=f"model.pack={pack}"):
        GANModule(data_shape=(2,), pack=pack)


def test_a_batch_the_pack_does_not_divide_fails_at_start_up(run_fit):
    with pytest.raises(ValueError, match=r"model.pack=4 needs a critic batch size.*data.batch_size is 6.*e.g. 4"):
        run_fit("pacgan_ring.yaml", "--data.init_args.batch_size", "6", "--data.init_args.num_samples", "60",
                "--trainer.max_steps", "1", "--trainer.callbacks", "[]")
    with pytest.raises(ValueError, match="not a multiple of the pack"):  # and the critic itself refuses
        GAN(data_shape=(2,), latent_dim=2, pack=4).critic(torch.zeros(6, 2))


def test_packed_stacked_mnist_config_starts(run_fit, tiny_mnist):
    cli = run_fit("pacdcgan_stacked_mnist.yaml", "--data.init_args.data_dir", str(tiny_mnist),
                  "--data.init_args.batch_size", "8", "--data.init_args.num_samples", "64", "--trainer.max_steps", "2",
                  "--trainer.callbacks", "[]", "--model.init_args.generator.init_args.width", "8",
                  "--model.init_args.discriminator.init_args.width", "8")
    assert cli.model.g_steps == 2 and cli.model.pack == 2
    assert cli.model.data_shape == (3, 28, 28) and cli.model.discriminator.net[0].in_channels == 6
    assert cli.datamodule.num_classes == 1000
    loaded = DCGAN.load_from_checkpoint(f"{cli.run_dir}/checkpoints/last.ckpt")  # no extra arguments: packed again
    assert loaded.pack == 2 and loaded.discriminator.net[0].in_channels == 6
    assert loaded.sample(3).shape == (3, 3, 28, 28)
