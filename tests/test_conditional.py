"""Conditional GANs: the conditioning layers' values, labels through both players and the penalties, class counts
checked at start-up, labeled data, class-conditional sampling, resume."""

from functools import partial
from pathlib import Path

import pytest
import torch
from helpers import assert_same_counters, assert_same_training_state, last_checkpoint
from PIL import Image
from torch import nn

from datamodules import CelebADataModule, Grid2D, ImageFolderDataModule, MNISTDataModule, Ring2D
from gan_modules import CGAN, ConditionalGAN
from gan_modules.config_types import spec
from gan_modules.networks import ConditionalBatchNorm2d, MLPDiscriminator, ProjectionDiscriminator
from gan_modules.regularizers import GradientPenalty, R1Penalty, input_gradient_norms
from main import cli_main

SMALL_RING = ["--data.init_args.num_samples", "1024", "--data.init_args.batch_size", "64"]


# ---------------------------------------------------------------------------------------------- layers
def test_projection_term_is_the_inner_product_of_embedding_and_features():
    torch.manual_seed(0)
    d = ProjectionDiscriminator((1, 28, 28), num_classes=10, width=8)
    x, y = torch.randn(5, 1, 28, 28), torch.tensor([0, 3, 3, 9, 1])
    phi = d.features(x)
    expected = d.psi(phi).view(-1) + torch.stack([d.embed.weight[c] @ phi[i] for i, c in enumerate(y.tolist())])
    torch.testing.assert_close(d(x, y), expected)
    # two classes differ by exactly the difference of their inner products
    torch.testing.assert_close(d(x, torch.zeros_like(y)) - d(x, torch.ones_like(y)),
                               phi @ (d.embed.weight[0] - d.embed.weight[1]))


@pytest.mark.parametrize("training", [True, False])
def test_conditional_batch_norm_with_one_class_is_batch_norm_with_its_affine_parameters(training):
    torch.manual_seed(0)
    cbn, bn = ConditionalBatchNorm2d(6, num_classes=1), nn.BatchNorm2d(6)
    with torch.no_grad():
        cbn.weight.weight.normal_()
        cbn.bias.weight.normal_()
        bn.weight.copy_(cbn.weight.weight[0])
        bn.bias.copy_(cbn.bias.weight[0])
    x = torch.randn(8, 6, 5, 5) * 3 + 1
    for _ in range(3):  # running statistics update alike
        cbn(x, torch.zeros(8, dtype=torch.long)), bn(x)
    cbn.train(training), bn.train(training)
    torch.testing.assert_close(cbn(x, torch.zeros(8, dtype=torch.long)), bn(x))
    torch.testing.assert_close(cbn.bn.running_mean, bn.running_mean)


def test_the_conditional_dcgan_generator_depends_on_the_class_from_the_first_step():
    from gan_modules.networks import ConditionalDCGANGenerator

    torch.manual_seed(0)
    z, zeros, fives = torch.randn(4, 16), torch.zeros(4, dtype=torch.long), torch.full((4,), 5)
    g = ConditionalDCGANGenerator(16, (1, 28, 28), num_classes=10, width=8)
    assert (g(z, zeros) - g(z, fives)).abs().mean() > 1e-3
    blind = ConditionalDCGANGenerator(16, (1, 28, 28), num_classes=10, width=8, label_input=False)
    torch.testing.assert_close(blind(z, zeros), blind(z, fives))  # batch norm's per-class scales start equal


# ---------------------------------------------------------------------------------------------- labels to D
class LabelBlindCritic(nn.Module):
    """A conditional critic that ignores the label: its penalties must equal the unconditional ones."""

    def __init__(self, data_shape, num_classes):
        super().__init__()
        self.net = MLPDiscriminator(data_shape, hidden=(16, 16))

    def forward(self, x, y=None):
        return self.net(x)


@pytest.mark.parametrize("penalty", [GradientPenalty(), R1Penalty()], ids=["gp", "r1"])
def test_conditional_penalty_equals_unconditional_on_a_critic_that_ignores_the_label(penalty):
    torch.manual_seed(0)
    model = ConditionalGAN(num_classes=8, data_shape=(2,), discriminator=LabelBlindCritic, penalty=penalty)
    real, fake, y = torch.randn(32, 2), torch.randn(32, 2), torch.randint(8, (32,))
    torch.manual_seed(1)
    conditional = model.critic_loss(real, fake, y)
    torch.manual_seed(1)
    unconditional = model.critic_loss(real, fake, None)
    torch.testing.assert_close(conditional[1]["train/gp"], unconditional[1]["train/gp"])
    torch.testing.assert_close(conditional[0], unconditional[0])


def test_penalty_scores_each_sample_with_its_own_label():
    torch.manual_seed(0)
    model = ConditionalGAN(num_classes=4, data_shape=(2,), penalty=R1Penalty(gamma=2.0))
    real, y = torch.randn(6, 2), torch.tensor([0, 1, 2, 3, 3, 1])
    _, metrics = model.critic_loss(real, torch.randn(6, 2), y)
    one_by_one = torch.stack([input_gradient_norms(partial(model.critic, y=y[i : i + 1]), real[i : i + 1])[0] ** 2
                              for i in range(6)]).mean()
    torch.testing.assert_close(metrics["train/gp"], one_by_one)


def test_generated_samples_take_the_real_batchs_labels():
    model = CGAN(num_classes=8, data_shape=(2,), latent_dim=2)
    seen = []
    model.generate = lambda z, y=None, net=None: seen.append(y) or torch.zeros(len(z), 2)
    y = torch.randint(8, (16,))
    model.discriminator_loss((torch.randn(16, 2), y))
    model.generator_loss((torch.randn(16, 2), y))
    assert all(torch.equal(s, y) for s in seen) and len(seen) == 2


def test_unconditional_model_ignores_labels_and_refuses_them_when_sampling():
    from gan_modules import GAN

    model = GAN(data_shape=(2,))
    x, y = torch.randn(8, 2), torch.randint(8, (8,))
    torch.manual_seed(0)
    with_labels = model.discriminator_loss((x, y))[0]
    torch.manual_seed(0)
    torch.testing.assert_close(with_labels, model.discriminator_loss(x)[0])
    with pytest.raises(ValueError, match="unconditional"):
        model.sample(labels=[1, 2])


# ---------------------------------------------------------------------------------------------- class counts
def test_sample_labels_are_checked_against_the_class_count():
    model = CGAN(num_classes=8, data_shape=(2,))
    assert model.sample(labels=[0, 7, 7]).shape == (3, 2)
    with pytest.raises(ValueError, match=r"0\.\.7 \(this model has 8 classes\), got \[8\]"):
        model.sample(labels=[1, 8])


def test_a_conditional_model_without_labeled_data_fails_at_start_up(run_fit):
    with pytest.raises(ValueError, match="CGAN needs labeled data"):
        run_fit("cgan_ring.yaml", "--trainer.max_steps", "1", "--data.init_args.labels", "false", *SMALL_RING)


def test_an_explicit_class_count_that_differs_from_the_data_names_both(run_fit):
    with pytest.raises(ValueError, match=r"num_classes=10, but the data \(Ring2D\) have 8 classes"):
        run_fit("cgan_ring.yaml", "--trainer.max_steps", "1", "--model.init_args.num_classes", "10", *SMALL_RING)


def test_a_checkpoint_trained_on_other_classes_names_both_counts(run_fit):
    first = run_fit("cgan_ring.yaml", "--trainer.max_steps", "1", *SMALL_RING)
    with pytest.raises(ValueError, match="it was trained with 8 classes, these data have 6"):
        run_fit("cgan_ring.yaml", "--trainer.max_steps", "2", "--data.init_args.num_modes", "6", *SMALL_RING,
                "--ckpt_path", f"{first.run_dir}/checkpoints/last.ckpt")


def test_num_classes_is_linked_from_the_data(run_fit):
    cli = run_fit("cgan_ring.yaml", "--trainer.max_steps", "1", "--data.init_args.num_modes", "5", *SMALL_RING)
    assert cli.model.num_classes == 5 and cli.model.hparams["num_classes"] == 5


# ---------------------------------------------------------------------------------------------- labeled data
@pytest.mark.parametrize("data", [Ring2D, Grid2D])
def test_toy_labels_are_the_mode_index(data):
    dm = data(labels=True, num_samples=512, batch_size=64)
    x, y = next(iter(dm.train_dataloader()))
    assert dm.num_classes == len(dm.means) and y.dtype == torch.long
    assert bool(((x - dm.means[y]).norm(dim=1) < 5 * dm.std).all())
    unlabeled = data(num_samples=512, batch_size=64)
    assert unlabeled.num_classes is None
    torch.testing.assert_close(next(iter(unlabeled.train_dataloader())), x)  # the same points as before


def test_mnist_keeps_its_labels(tiny_mnist):
    dm = MNISTDataModule(data_dir=str(tiny_mnist), batch_size=8, download=False)
    _, y = dm.real_samples(40, labels=True)
    assert dm.num_classes == 10 and sorted(y.tolist()) == sorted((torch.arange(40) % 10).tolist())


@pytest.mark.parametrize("cache", [True, False])
def test_image_folder_labels_follow_the_subfolders(tmp_path, cache):
    for name, shade in [("cats", 0), ("dogs", 255), ("emus", 128)]:
        (tmp_path / name).mkdir()
        for i in range(2):
            Image.new("L", (32, 32), shade).save(tmp_path / name / f"{i}.png")
    dm = ImageFolderDataModule(data_dir=str(tmp_path), image_size=32, channels=1, batch_size=2, num_workers=0,
                               cache=cache, labels=True)
    assert dm.num_classes == 3 and dm.classes() == ["cats", "dogs", "emus"]
    x, y = dm.real_samples(6, labels=True)
    expected = {0: -1.0, 1: 1.0, 2: 128 / 127.5 - 1}  # each class's shade, so image and label stay together
    for image, label in zip(x, y.tolist(), strict=True):
        assert abs(float(image.mean()) - expected[label]) < 1e-5
    assert ImageFolderDataModule(data_dir=str(tmp_path)).num_classes is None


def write_celeba_attributes(root: Path, rows: dict[str, dict[str, int]]) -> None:
    """CelebA's list_attr_celeba.txt layout: a count, the 40 names, then a file name and 40 values of -1/1."""
    names = ["5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips",
             "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby",
             "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male",
             "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose",
             "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair",
             "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young"]
    lines = [str(len(rows)), " ".join(names) + " "]
    for file, values in rows.items():
        lines.append(file + " " + " ".join(f"{values.get(n, -1):2d}" for n in names))
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")


def test_celeba_attributes_give_the_class(tmp_path):
    faces = tmp_path / "img_align_celeba"
    faces.mkdir()
    rows = {}
    for i in range(4):
        smiling, male = i % 2, i // 2
        Image.new("RGB", (178, 218), (60 * i, 0, 0)).save(faces / f"{i + 1:06d}.jpg", quality=95)
        rows[f"{i + 1:06d}.jpg"] = {"Smiling": 1 if smiling else -1, "Male": 1 if male else -1}
    write_celeba_attributes(tmp_path, rows)
    dm = CelebADataModule(data_dir=str(tmp_path), image_size=32, batch_size=2, num_workers=0,
                          attributes=["Smiling", "Male"])
    assert dm.num_classes == 4
    dm.setup()
    assert dm.dataset.labels.tolist() == [0, 1, 2, 3]  # bit 0: Smiling, bit 1: Male
    assert CelebADataModule(data_dir=str(tmp_path), attributes=["Smiling"]).num_classes == 2
    with pytest.raises(ValueError, match="Smilling"):
        CelebADataModule(data_dir=str(tmp_path), image_size=32, num_workers=0, attributes=["Smilling"]).setup()


# ---------------------------------------------------------------------------------------------- using a model
@pytest.mark.slow
def test_a_trained_conditional_ring_puts_every_asked_label_on_its_own_mode(run_fit):
    cli = run_fit("cgan_ring.yaml", "--trainer.max_steps", "1500", "--trainer.callbacks", "[]",
                  "--data.init_args.num_samples", "20000", "--checkpoint.every_n_train_steps", "0")
    labels = torch.tensor([3, 3, 7, 0, 5] * 100)
    samples = cli.model.sample(labels=labels)
    nearest = torch.cdist(samples, cli.datamodule.means).argmin(dim=1)
    assert (nearest == labels).double().mean() >= 0.95
    assert min(cli.datamodule.score_labeled(samples, labels).values()) >= 0.8


def test_sample_cli_writes_the_asked_classes(run_fit, tmp_path):
    run = Path(run_fit("cgan_ring.yaml", "--trainer.max_steps", "2", *SMALL_RING).run_dir)
    ckpt = str(run / "checkpoints" / "last.ckpt")
    written = cli_main(["sample", "--ckpt_path", ckpt, "--labels", "3", "3", "7", "--out_dir", str(tmp_path / "a")])
    assert (tmp_path / "a" / "labels.csv").read_text() == "0,3\n1,3\n2,7\n"
    assert len((tmp_path / "a" / "samples.csv").read_text().splitlines()) == 3 and len(written) == 2
    cli_main(["sample", "--ckpt_path", ckpt, "--per_class", "2", "--out_dir", str(tmp_path / "b")])
    labels = [int(line.split(",")[1]) for line in (tmp_path / "b" / "labels.csv").read_text().splitlines()]
    assert labels == [c for c in range(8) for _ in range(2)]
    with pytest.raises(SystemExit):
        cli_main(["sample", "--ckpt_path", ckpt, "--labels", "8", "--out_dir", str(tmp_path / "c")])


def test_conditional_image_export_has_one_grid_row_per_class(tmp_path):
    from gan_modules.sampling import export_samples

    model = CGAN(num_classes=3, data_shape=(1, 8, 8), generator=spec(
        "gan_modules.networks.ConditionalMLPGenerator", hidden=[8], output="tanh"))
    names = {p.name for p in export_samples(model, tmp_path / "out", 6, labels=[0, 0, 1, 1, 2, 2], nrow=2)}
    assert {"labels.csv", "grid.png", "interpolation_linear.png", "sample_00005.png"} <= names
    grid = Image.open(tmp_path / "out" / "grid.png")
    assert grid.size == (2 * 10 + 2, 3 * 10 + 2)  # 2 columns, 3 rows (one per class), padding 2


def test_conditional_fid_logs_label_accuracy_and_intra_fid(run_fit, tiny_mnist, digit_classifier):
    cli = run_fit("cgan_mnist.yaml", "--trainer.max_steps", "2", "--data.init_args.batch_size", "8",
                  "--data.init_args.data_dir", str(tiny_mnist), "--trainer.callbacks", "[]",
                  "--model.init_args.generator.init_args.hidden", "[16]",
                  "--model.init_args.discriminator.init_args.hidden", "[16]")
    from callbacks import ConditionalFID

    fid = ConditionalFID(feature="classifier", weights_path=digit_classifier, num_samples=40, kid=False,
                         per_class=6, cache_dir=str(Path(cli.run_dir, "fid")))
    fid.setup(cli.trainer, cli.model, "fit")
    scores = fid.evaluate(cli.trainer, cli.model)
    assert 0.0 <= scores["val/label_accuracy_min"] <= scores["val/label_accuracy"] <= 1.0
    per_class = [scores[f"val/label_accuracy/{c}"] for c in range(10)]
    assert min(per_class) == scores["val/label_accuracy_min"]
    assert sum(per_class) / 10 == pytest.approx(scores["val/label_accuracy"])
    assert torch.isfinite(torch.tensor(scores["val/intra_fid"])) and scores["val/intra_fid"] >= 0
    again = fid.evaluate(cli.trainer, cli.model)  # fixed per-class noise, cached real statistics: the same
    assert again["val/intra_fid"] == scores["val/intra_fid"]


# ---------------------------------------------------------------------------------------------- resume
def test_resumed_conditional_run_equals_uninterrupted_run(run_fit):
    args = ["--data.init_args.num_samples", "640", "--data.init_args.batch_size", "64", "--model.init_args.ema_decay",
            "0.9", "--model.init_args.penalty", "gan_modules.regularizers.R1Penalty", "--trainer.callbacks", "[]",
            "--checkpoint.every_n_train_steps", "0"]
    full = run_fit("cgan_ring.yaml", "--trainer.max_steps", "25", *args)
    first = run_fit("cgan_ring.yaml", "--trainer.max_steps", "13", *args)
    resumed = run_fit("cgan_ring.yaml", "--trainer.max_steps", "25", *args,
                      "--ckpt_path", f"{first.run_dir}/checkpoints/last.ckpt")
    assert resumed.model.g_steps == full.model.g_steps == 25
    assert_same_training_state(last_checkpoint(full), last_checkpoint(resumed))
    assert_same_counters(last_checkpoint(full), last_checkpoint(resumed))


def test_an_unconditional_model_on_labeled_data_keeps_working_and_loads_back(run_fit):
    from gan_modules.sampling import load_gan

    cli = run_fit("gan_ring.yaml", "--trainer.max_steps", "2", "--data.init_args.labels", "true",
                  "--trainer.callbacks", "[]", *SMALL_RING)
    assert cli.model.num_classes is None and "num_classes" not in cli.model.hparams
    assert load_gan(Path(cli.run_dir, "checkpoints", "last.ckpt")).sample(3).shape == (3, 2)


def test_sample_grid_has_a_row_per_class_and_strips_keep_their_class(tmp_path):
    from types import SimpleNamespace

    from callbacks import LatentInterpolation, SampleGrid

    model = CGAN(num_classes=3, data_shape=(1, 8, 8), generator=spec(
        "gan_modules.networks.ConditionalMLPGenerator", hidden=[8], output="tanh"))
    asked = []
    sample = model.sample
    model.sample = lambda n=None, z=None, use_ema=True, labels=None: asked.append((z, labels)) or sample(
        n, z, use_ema, labels)
    trainer = SimpleNamespace(is_global_zero=True, loggers=[], default_root_dir=str(tmp_path))
    SampleGrid(num_samples=16, nrow=4).run(trainer, model)
    z, labels = asked[-1]
    assert labels.tolist() == [c for c in range(3) for _ in range(4)]
    assert all(torch.equal(z[:4], z[4 * c : 4 * c + 4]) for c in range(3))  # the same noise in every row
    assert Image.open(next((tmp_path / "samples").glob("*.png"))).size == (4 * 10 + 2, 3 * 10 + 2)
    LatentInterpolation(rows=4, steps=5).run(trainer, model)
    for _, labels in asked[-2:]:
        assert labels.view(4, 5).tolist() == [[r % 3] * 5 for r in range(4)]
