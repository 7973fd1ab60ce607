"""Class-balanced self-training of the UCI digit classifier on MNIST's images (Zou et al. 2018): the picks on
known scores, MNIST's labels never used, the rounds' schedule, an exact resume, and a clear start-up error."""

from pathlib import Path

import pytest
import torch
from helpers import last_checkpoint
from torch import nn

from datamodules.unpaired import UCIDigitsDataModule, class_balanced_pick

SELF_TRAINING = ["--trainer.max_epochs", "4",
                 "--data.init_args.subset", "64", "--data.init_args.batch_size", "16",
                 "--data.init_args.self_training_start", "1", "--data.init_args.self_training_every", "2",
                 "--checkpoint.every_n_epochs", "1"]


def test_class_balanced_pick_keeps_the_most_confident_share_of_each_predicted_class():
    # predicted classes 0, 0, 0, 0, 1, 1 with confidences rising along each class's rows
    logits = torch.tensor([[1.0, 0], [2, 0], [3, 0], [4, 0], [0, 1], [0, 5]])
    picked, labels = class_balanced_pick(logits, 0.5)
    assert picked.tolist() == [2, 3, 5] and labels.tolist() == [0, 0, 1]  # 2 of the four 0s, 1 of the two 1s
    picked, labels = class_balanced_pick(logits, 1.0)
    assert picked.tolist() == list(range(6)) and labels.tolist() == [0, 0, 0, 0, 1, 1]
    picked, _ = class_balanced_pick(logits, 0.01)
    assert picked.tolist() == [3, 5]  # every predicted class keeps at least its most confident digit


class Always(nn.Module):
    """A 'classifier' that reads every image as ``digit``, with confidence growing with the image's mean."""

    def __init__(self, digit: int) -> None:
        super().__init__()
        self.digit, self.weight = digit, nn.Parameter(torch.ones(()))

    def forward(self, x):
        logits = torch.zeros(len(x), 10)
        logits[:, self.digit] = 10 + x.mean(dim=(1, 2, 3)) * self.weight
        return logits


def test_rounds_add_the_models_readings_of_mnist_never_mnist_labels(tiny_mnist):
    dm = UCIDigitsDataModule(subset=20, batch_size=4, unlabeled_mnist=str(tiny_mnist), self_training_start=2,
                             self_training_every=2, self_training_fractions=[0.25, 1.0])
    dm.setup()

    class Trainer:  # what the data module reads of a trainer
        current_epoch, lightning_module, global_rank, world_size = 0, Always(7), 0, 1

    dm.trainer = Trainer()
    assert len(dm.train_dataloader().dataset) == 20  # before the first round: the UCI digits alone
    Trainer.current_epoch = 2
    first = dm.train_dataloader().dataset
    brightest = dm.unlabeled.float().mean(dim=(1, 2, 3)).argsort(descending=True)[:10]  # 25% of the 40 digits
    assert dm.picked.tolist() == sorted(brightest.tolist())
    assert len(first) == 30 and first.labels[20:].tolist() == [7] * 10  # the model's reading, not MNIST's labels
    Trainer.current_epoch, Trainer.lightning_module = 3, Always(2)
    assert dm.train_dataloader().dataset.labels[20:].tolist() == [7] * 10  # mid-round: the round's picks kept
    Trainer.current_epoch = 4
    assert dm.train_dataloader().dataset.labels[20:].tolist() == [2] * 40  # the next round picks anew, all of them
    assert dm.state_dict()["round"] == 1


def test_self_training_needs_a_new_loader_every_epoch(run_fit, tiny_mnist):
    with pytest.raises(ValueError, match=r"set trainer\.reload_dataloaders_every_n_epochs: 1 \(it is 0\)"):
        run_fit("classifier_uci.yaml", "--data.init_args.unlabeled_mnist", str(tiny_mnist),
                "--trainer.reload_dataloaders_every_n_epochs", "0", "--trainer.max_epochs", "1")


def test_a_run_that_ends_before_self_training_starts_says_so(run_fit, tiny_mnist):
    with pytest.warns(UserWarning, match=r"self_training_start=30 but the run stops after trainer\.max_epochs=1"):
        run_fit("classifier_uci.yaml", "--data.init_args.unlabeled_mnist", str(tiny_mnist), "--trainer.max_epochs", "1",
                "--data.init_args.subset", "64")


@pytest.mark.parametrize("fractions", [[0.0], [1.5], []])
def test_bad_self_training_settings_fail_at_construction(fractions):
    with pytest.raises(ValueError, match=r"self_training_fractions=.* must lie in \(0, 1\]"):
        UCIDigitsDataModule(unlabeled_mnist="data", self_training_fractions=fractions)


def test_self_training_resumed_mid_round_equals_an_uninterrupted_run(run_fit, tiny_mnist):
    args = ["--data.init_args.unlabeled_mnist", str(tiny_mnist), *SELF_TRAINING]
    full = run_fit("classifier_uci.yaml", *args)
    assert full.datamodule.round == 1 and len(full.datamodule.picked) > 0
    first = run_fit("classifier_uci.yaml", *args, "--trainer.max_epochs", "2")  # stops inside round 0
    assert first.datamodule.round == 0
    resumed = run_fit("classifier_uci.yaml", *args, "--ckpt_path", str(Path(first.run_dir, "checkpoints", "last.ckpt")))
    assert torch.equal(resumed.datamodule.picked, full.datamodule.picked)
    assert torch.equal(resumed.datamodule.pseudo, full.datamodule.pseudo)
    a, b = last_checkpoint(resumed), last_checkpoint(full)
    assert a["global_step"] == b["global_step"] and a["state_dict"].keys() == b["state_dict"].keys()
    for name, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][name]), name
