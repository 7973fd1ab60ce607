"""Stacked MNIST: each channel is a real digit, the label is the mode id of the three digits, the set is seeded
and served by the lab's resumable loader, and modes are counted by values known on paper."""

import math

import pytest
import torch

from datamodules import StackedMNIST
from datamodules.images import uint8_to_unit
from datamodules.stacked_mnist import expected_real_kl, mode_ids, mode_scores


@pytest.fixture
def stacked(tiny_mnist):
    dm = StackedMNIST(data_dir=str(tiny_mnist), batch_size=5, num_samples=50, download=False)
    dm.setup()
    return dm


def test_each_channel_is_the_digit_its_label_names(stacked, tiny_mnist):
    from torchvision.datasets import MNIST

    digits = MNIST(str(tiny_mnist), train=True, download=False)  # 40 noise images, label i % 10: all distinct
    images, labels = stacked.dataset().__getitems__(list(range(50)))
    assert images.shape == (50, 3, 28, 28) and labels.shape == (50,) and stacked.data_shape == (3, 28, 28)
    assert images.min() >= -1 and images.max() <= 1
    table = uint8_to_unit(digits.data).flatten(1)
    for image, label in zip(images, labels, strict=True):
        for c in range(3):
            (match,) = (table == image[c].flatten()).all(1).nonzero()[:, 0].tolist()  # exactly one MNIST digit
            assert digits.targets[match] == int(label) // 10 ** (2 - c) % 10  # channel c = decimal digit c
    assert stacked.num_classes == 1000 and labels.max() < 1000


def test_triples_are_seeded_and_the_identity_says_so(tiny_mnist, stacked):
    same = StackedMNIST(data_dir=str(tiny_mnist), batch_size=7, num_samples=50, download=False)
    other = StackedMNIST(data_dir=str(tiny_mnist), num_samples=50, seed=1, download=False)
    same.setup()
    other.setup()
    assert torch.equal(same.triples, stacked.triples) and not torch.equal(other.triples, stacked.triples)
    assert same.identity() == stacked.identity()  # the batch size changes no sample
    assert other.identity() != stacked.identity()
    assert StackedMNIST(data_dir=str(tiny_mnist), num_samples=60).identity() != stacked.identity()
    assert torch.equal(stacked.real_samples(9, seed=3), same.real_samples(9, seed=3))


def test_loader_serves_labeled_batches_and_resumes_mid_epoch(stacked):
    loader = stacked.train_dataloader()
    it = iter(loader)
    x, y = next(it)
    assert x.shape == (5, 3, 28, 28) and y.shape == (5,)
    next(it)
    state = loader.state_dict()
    expected = next(it)
    resumed = stacked.train_dataloader()
    resumed.load_state_dict(state)
    got = next(iter(resumed))
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


def test_mode_ids():
    assert mode_ids(torch.tensor([[0, 0, 0], [1, 2, 3], [9, 9, 9]])).tolist() == [0, 123, 999]


def test_mode_scores_known_on_paper():
    uniform = mode_scores(torch.arange(1000).repeat(26))
    assert uniform == {"modes": 1000.0, "kl": pytest.approx(0.0, abs=1e-12)}
    collapsed = mode_scores(torch.full((26_000,), 7))
    assert collapsed["modes"] == 1 and collapsed["kl"] == pytest.approx(math.log(1000))
    two = mode_scores(torch.tensor([3, 500] * 10))
    assert two["modes"] == 2 and two["kl"] == pytest.approx(math.log(500))
    # 3/4 in one mode, 1/4 in another: 3/4 log(750) + 1/4 log(250)
    skewed = mode_scores(torch.tensor([1, 1, 1, 2]))
    assert skewed["kl"] == pytest.approx(0.75 * math.log(750) + 0.25 * math.log(250))
    with pytest.raises(ValueError, match=r"\[0, 1000\)"):
        mode_scores(torch.tensor([1000]))
    assert expected_real_kl(26_000) == pytest.approx(999 / 52_000)


@pytest.mark.slow  # three CLI runs
def test_packed_stacked_run_resumed_mid_epoch_equals_uninterrupted(run_fit, tiny_mnist):
    """PacDCGAN2 on 40 stacked images in batches of 8 (5 generator steps an epoch): stopped after 3 steps and
    resumed to 7, it ends with the weights, optimizer states, counters and RNG of a run of 7."""
    from helpers import assert_same_counters, assert_same_training_state, last_checkpoint

    args = ["--data.init_args.data_dir", str(tiny_mnist), "--data.init_args.batch_size", "8",
            "--data.init_args.num_samples", "40", "--trainer.callbacks", "[]", "--checkpoint.every_n_train_steps", "0",
            "--model.init_args.generator.init_args.width", "8", "--model.init_args.discriminator.init_args.width", "8"]
    full = run_fit("pacdcgan_stacked_mnist.yaml", "--trainer.max_steps", "7", *args)
    first = run_fit("pacdcgan_stacked_mnist.yaml", "--trainer.max_steps", "3", *args)
    resumed = run_fit("pacdcgan_stacked_mnist.yaml", "--trainer.max_steps", "7", *args,
                      "--ckpt_path", f"{first.run_dir}/checkpoints/last.ckpt")
    assert resumed.model.g_steps == full.model.g_steps == 7
    assert_same_training_state(last_checkpoint(full), last_checkpoint(resumed))
    assert_same_counters(last_checkpoint(full), last_checkpoint(resumed))
