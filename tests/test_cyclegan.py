"""CycleGAN (Zhu et al. 2017): its losses on known inputs, the image pool, exact resume, DDP, translate, data errors."""

import shutil
from pathlib import Path

import pytest
import torch
from helpers import assert_same_counters, assert_same_training_state, last_checkpoint, two_process_ddp
from PIL import Image
from torch import nn

from datamodules.unpaired import DigitsDataModule, UCIDigitsDataModule, UnpairedImageDataModule
from gan_modules.cyclegan import CycleGAN, ImagePool, cycle_consistency_loss, identity_loss, semantic_consistency_loss
from main import cli_main

# the digits config at its smallest: tiny MNIST as B, 4 pairs a step, one residual block of width 8
TINY = ["--model.init_args.generator.init_args.width", "8", "--model.init_args.generator.init_args.n_blocks", "1",
        "--model.init_args.discriminator.init_args.width", "8", "--data.init_args.batch_size", "4",
        "--model.init_args.pool_size", "6", "--checkpoint.every_n_train_steps", "0"]


class Shift(nn.Module):
    """x + shift: a generator whose cycle and identity errors are known on paper."""

    def __init__(self, shift: float) -> None:
        super().__init__()
        self.shift = nn.Parameter(torch.tensor(shift))

    def forward(self, x):
        return x + self.shift


class ConstantScores(nn.Module):
    """2x2 patch scores all equal to ``value``."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.tensor(value))

    def forward(self, x):
        return self.value.expand(len(x), 2, 2)


def test_cycle_and_identity_losses_on_paper():
    real = torch.zeros(2, 1, 4, 4)
    torch.testing.assert_close(cycle_consistency_loss(real, real + 0.5), torch.tensor(0.5))
    torch.testing.assert_close(identity_loss(real, real - 0.25), torch.tensor(0.25))


@pytest.mark.parametrize("identity_weight", [0.5, 0.0])
def test_generator_loss_terms_on_known_networks(identity_weight):
    # G(x) = x + 0.25, F(x) = x + 0.25: F(G(a)) - a = 0.5, G(b) - b = 0.25; every patch score 0: (0 - 1)^2 = 1
    model = CycleGAN(generator=lambda shape: Shift(0.25), discriminator=lambda shape: ConstantScores(0.0),
                     identity_weight=identity_weight, data_shape=(1, 4, 4))
    a, b = torch.rand(3, 1, 4, 4), torch.rand(3, 1, 4, 4)
    loss, terms = model.generator_loss((a, b))
    expected = {"train/adv_AtoB": 1.0, "train/adv_BtoA": 1.0, "train/cycle_A": 10 * 0.5, "train/cycle_B": 10 * 0.5}
    if identity_weight:
        expected |= {"train/identity_AtoB": 5 * 0.25, "train/identity_BtoA": 5 * 0.25}
    assert {k: pytest.approx(float(v)) for k, v in terms.items()} == expected
    torch.testing.assert_close(loss, torch.tensor(sum(expected.values())))


class PixelLogits(nn.Module):
    """A "classifier" whose logits are the image's pixels: its cross-entropies are known on paper."""

    def forward(self, x):
        return x.flatten(1)


def test_semantic_consistency_loss_on_paper():
    source = torch.tensor([[[[2.0, 0.0]]], [[[0.0, 1.0]]]])  # read as class 0 and class 1
    # a translation the classifier reads the same way, with the same confidence: CE = log(1 + e^-2), log(1 + e^-1)
    expected = (torch.log1p(torch.exp(torch.tensor(-2.0))) + torch.log1p(torch.exp(torch.tensor(-1.0)))) / 2
    torch.testing.assert_close(semantic_consistency_loss(PixelLogits(), source, source), expected)
    # a translation with both classes equally likely: log 2, whatever the source said
    torch.testing.assert_close(semantic_consistency_loss(PixelLogits(), source, torch.zeros(2, 1, 1, 2)),
                               torch.log(torch.tensor(2.0)))
    # the target is the source's argmax, not a soft label: no gradient reaches the source
    source.requires_grad_(True)
    semantic_consistency_loss(PixelLogits(), source, torch.zeros(2, 1, 1, 2, requires_grad=True)).backward()
    assert source.grad is None


def test_generator_loss_adds_the_weighted_semantic_terms():
    model = CycleGAN(generator=lambda shape: Shift(0.0), discriminator=lambda shape: ConstantScores(0.0),
                     identity_weight=0.0, semantic_weight=2.0, semantic_classifier="unused.ckpt",
                     data_shape=(1, 1, 2))
    model._classifier = (PixelLogits(),)  # stands in for the loaded checkpoint
    a = torch.tensor([[[[2.0, 0.0]]]])
    b = torch.tensor([[[[0.0, 0.0]]]])  # identity generators: the translations are the inputs themselves
    _, terms = model.generator_loss((a, b))
    assert float(terms["train/semantic_AtoB"]) == pytest.approx(2 * float(torch.log1p(torch.exp(torch.tensor(-2.0)))))
    assert float(terms["train/semantic_BtoA"]) == pytest.approx(2 * float(torch.log(torch.tensor(2.0))))


class Recorder(nn.Module):
    """Patch scores 0 that keep every input it judged: what a conditional discriminator was shown."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.weight.expand(len(x), 2, 2)


def test_conditional_discriminators_see_the_class_the_classifier_reads_in_the_source():
    model = CycleGAN(generator=lambda shape: Shift(0.5), discriminator=lambda shape: Recorder(), pool_size=0,
                     identity_weight=0.0, semantic_weight=1.0, semantic_classifier="unused.ckpt",
                     conditional_classes=2, data_shape=(1, 1, 2))
    model._classifier = (PixelLogits(),)  # reads class 0 when the first pixel is larger, else class 1
    model.discriminator_a.seen.clear()  # the start-up shape check's input
    a = torch.tensor([[[[2.0, 0.0]]], [[[0.0, 1.0]]]])   # classes 0, 1
    b = torch.tensor([[[[0.0, 3.0]]], [[[1.0, 0.0]]]])   # classes 1, 0
    one_hot = {0: [1.0, 0.0], 1: [0.0, 1.0]}

    def expected(images, classes):  # the images, then one constant map per class
        maps = torch.tensor([one_hot[c] for c in classes])[:, :, None, None].expand(-1, -1, 1, 2)
        return torch.cat([images, maps], 1)

    model.generator_loss((a, b))
    # D_B judges G(a) = a + 0.5 under a's classes (not G(a)'s: a shift by 0.5 keeps them here anyway), D_A F(b)
    torch.testing.assert_close(model.discriminator_b.seen[0], expected(a + 0.5, [0, 1]))
    torch.testing.assert_close(model.discriminator_a.seen[0], expected(b + 0.5, [1, 0]))
    model.discriminator_b.seen.clear()
    model.discriminator_loss((a, b))
    real, fake = model.discriminator_b.seen  # real B under its own classes, G(a) under a's
    torch.testing.assert_close(real, expected(b, [1, 0]))
    torch.testing.assert_close(fake, expected(a + 0.5, [0, 1]))


def test_a_translation_is_conditioned_on_its_source_not_on_itself():
    model = CycleGAN(generator=lambda shape: Shift(-5.0), discriminator=lambda shape: Recorder(), pool_size=0,
                     identity_weight=0.0, semantic_weight=1.0, semantic_classifier="unused.ckpt",
                     conditional_classes=2, data_shape=(1, 1, 2))
    model._classifier = (lambda x: torch.tensor([[1.0, 0.0]]).expand(len(x), 2) * x.sum((1, 2, 3))[:, None],)
    a = torch.full((1, 1, 1, 2), 1.0)  # positive sum: class 0; G(a) = a - 5 has a negative sum: class 1
    model.generator_loss((a, a))
    assert model.discriminator_b.seen[0][0, 1:].flatten().tolist() == [1.0, 1.0, 0.0, 0.0]  # class 0's maps


class CountingLogits(PixelLogits):
    calls = 0

    def forward(self, x):
        self.calls += 1
        return super().forward(x)


def test_a_step_reads_each_real_batch_once():
    model = CycleGAN(generator=lambda shape: Shift(0.5), discriminator=lambda shape: Recorder(), pool_size=0,
                     identity_weight=0.0, semantic_weight=1.0, semantic_classifier="unused.ckpt",
                     conditional_classes=2, data_shape=(1, 1, 2))
    model._classifier = (counting := CountingLogits(),)
    a, b = torch.tensor([[[[2.0, 0.0]]]]), torch.tensor([[[[0.0, 3.0]]]])
    model.discriminator_loss((a, b))
    _, terms = model.generator_loss((a, b))
    assert counting.calls == 2 + 2  # a and b once each, then the two translations for the semantic loss
    model.discriminator_loss((a.clone(), b))  # a new batch is read again, even with the same values
    assert counting.calls == 5
    # the remembered reading is the one the loss would compute: CE(f(a + 0.5), argmax f(a) = 0)
    assert float(terms["train/semantic_AtoB"]) == pytest.approx(float(torch.log1p(torch.exp(torch.tensor(-2.0)))))


def test_conditional_discriminators_need_the_classifier_and_a_class_count():
    with pytest.raises(ValueError, match=r"conditional_classes=10, .* need a classifier checkpoint of domain A"):
        CycleGAN(data_shape=(1, 28, 28), conditional_classes=10)
    with pytest.raises(ValueError, match=r"conditional_classes=-1: the number of classes"):
        CycleGAN(data_shape=(1, 28, 28), conditional_classes=-1, semantic_classifier="uci.ckpt")
    # without the semantic loss: the classifier only conditions the discriminators
    CycleGAN(data_shape=(1, 28, 28), conditional_classes=10, semantic_classifier="uci.ckpt")


def test_conditional_classes_must_match_the_classifier(digit_classifier):
    model = CycleGAN(data_shape=(1, 28, 28), semantic_weight=1.0, semantic_classifier=digit_classifier,
                     conditional_classes=3, generator=lambda shape: Shift(0.0))
    with pytest.raises(ValueError, match=r"conditional_classes=3, but .* has 10 classes; set it to 10"):
        model.source_classifier()


@pytest.mark.parametrize("options", [{"semantic_weight": 1.0}, {"semantic_classifier": "uci.ckpt"},
                                     {"semantic_weight": -1.0, "semantic_classifier": "uci.ckpt"}])
def test_semantic_loss_needs_a_weight_and_a_classifier(options):
    with pytest.raises(ValueError, match=r"need a classifier checkpoint of domain A .* and the classifier needs one"):
        CycleGAN(data_shape=(1, 28, 28), **options)


def test_a_missing_semantic_classifier_fails_before_training_and_names_its_config(run_fit, tiny_mnist):
    with pytest.raises(FileNotFoundError, match=r"no file matches .*configs/classifier_uci\.yaml"):
        run_fit("cyclegan_digits.yaml", "--data.init_args.data_dir", str(tiny_mnist), *TINY,
                "--model.init_args.semantic_weight", "1", "--model.init_args.semantic_classifier",
                "nowhere/*/last.ckpt")


def test_uci_digits_are_labeled_and_framed_as_the_cyclegan_domain(tiny_mnist):
    dm = UCIDigitsDataModule(subset=1000)
    dm.setup()
    digits = DigitsDataModule(data_dir=str(tiny_mnist))
    digits.setup()
    assert torch.equal(dm.images, digits.train["A"][:1000])  # the same framed digits as CycleGAN's domain A
    assert torch.equal(dm.labels, digits.labels_a[:1000])
    assert dm.labels.bincount().tolist() == [99, 102, 100, 104, 98, 100, 101, 99, 98, 99]  # nearly balanced
    assert dm.images[:, :, :4].max() == 0 and dm.images[:, :, 24:].max() == 0  # a 20 px digit, centred in 28


def test_style_augment_warps_and_changes_stroke_width_without_grey_borders():
    from gan_modules.classifier import style_augment

    torch.manual_seed(0)
    blank = -torch.ones(8, 1, 28, 28)
    assert torch.equal(style_augment(blank), blank)  # warps fill with the background (-1), not grey (0)
    digit = -torch.ones(64, 1, 28, 28)
    digit[:, :, 6:22, 13:15] = 1.0  # a "1": a 2-pixel vertical stroke
    out = style_augment(digit)
    assert out.shape == digit.shape and out.min() >= -1 and out.max() <= 1
    ink = (out > 0).sum(dim=(1, 2, 3)).float()
    assert ink.min() < 16 * 2 * 0.8 and ink.max() > 16 * 2 * 1.5  # thinner and thicker strokes among them
    assert not torch.equal(out[0], out[1])  # each image its own draw


def test_discriminator_loss_is_halved_least_squares():
    # scores 0.5 on everything: 0.5 * ((0.5 - 1)^2 + (0.5 - 0)^2) = 0.25 per discriminator
    model = CycleGAN(generator=lambda shape: Shift(0.0), discriminator=lambda shape: ConstantScores(0.5),
                     data_shape=(1, 4, 4))
    loss, metrics = model.discriminator_loss((torch.rand(2, 1, 4, 4), torch.rand(2, 1, 4, 4)))
    torch.testing.assert_close(loss, torch.tensor(0.5))
    torch.testing.assert_close(metrics["train/d_a_loss"], torch.tensor(0.25))


def test_image_pool_fills_first_then_swaps_half_the_time():
    pool = ImagePool(size=4, seed=0)
    first = torch.arange(4.0).view(4, 1)
    assert torch.equal(pool.query(first), first)  # filling: returned as they are, and stored
    assert torch.equal(torch.stack(pool.images), first)
    stored = 0
    for i in range(400):
        new = torch.tensor([[100.0 + i]])
        before = [x.clone() for x in pool.images]
        out = pool.query(new)
        if not torch.equal(out, new):  # a stored image came back, and the new one took its place
            stored += 1
            assert any(torch.equal(out[0], x) for x in before)
            assert any(torch.equal(new[0], x) for x in pool.images)
        else:
            assert all(torch.equal(x, y) for x, y in zip(before, pool.images, strict=True))
    assert 170 <= stored <= 230  # probability 0.5 (seeded: the same count on every run)
    again = ImagePool(size=4, seed=0)
    again.query(first)
    assert torch.equal(again.query(torch.ones(50, 1)), pool_after(torch.arange(4.0).view(4, 1), torch.ones(50, 1)))


def pool_after(fill: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
    pool = ImagePool(size=4, seed=0)
    pool.query(fill)
    return pool.query(batch)


def test_image_pool_state_continues_exactly():
    pool = ImagePool(size=3, seed=5)
    pool.query(torch.rand(5, 2))
    state = pool.state_dict()
    copy = ImagePool(size=3, seed=99)
    copy.load_state_dict(state)
    batch = torch.rand(20, 2)
    assert torch.equal(pool.query(batch), copy.query(batch))


@pytest.mark.parametrize("semantic", [False, True, "conditional"])
def test_resumed_cyclegan_equals_uninterrupted(run_fit, tiny_mnist, digit_classifier, semantic):
    args = ["--data.init_args.data_dir", str(tiny_mnist), *TINY]
    if semantic:  # CyCADA's loss through a frozen classifier: it stays out of checkpoints and optimizers
        args += ["--model.init_args.semantic_weight", "1", "--model.init_args.semantic_classifier", digit_classifier]
    if semantic == "conditional":  # the discriminators see its class too: the pools keep each image's class maps
        args += ["--model.init_args.conditional_classes", "10"]
    full = run_fit("cyclegan_digits.yaml", "--trainer.max_steps", "4", *args)
    first = run_fit("cyclegan_digits.yaml", "--trainer.max_steps", "2", *args)
    stopped = last_checkpoint(first)
    assert len(stopped["cyclegan_pools"]["a"]["images"]) == 6  # full after 2 steps of 4 images: draws matter next
    assert stopped["cyclegan_pools"]["a"]["images"].shape[1] == (11 if semantic == "conditional" else 1)
    resumed = run_fit("cyclegan_digits.yaml", "--trainer.max_steps", "4", *args,
                      "--ckpt_path", f"{first.run_dir}/checkpoints/last.ckpt")
    a, b = last_checkpoint(full), last_checkpoint(resumed)
    assert resumed.model.g_steps == full.model.g_steps == 4
    assert_same_training_state(a, b)  # all four networks and both Adam states, with torch.equal
    assert_same_counters(a, b)
    for domain in ("a", "b"):  # the pools: stored images and the generator of their draws
        for key in ("images", "generator"):
            assert torch.equal(a["cyclegan_pools"][domain][key], b["cyclegan_pools"][domain][key]), (domain, key)
    assert a["lr_schedulers"] == b["lr_schedulers"]
    assert {name.split(".")[0] for name in a["state_dict"]} == {"generator_ab", "generator_ba", "discriminator_a",
                                                                 "discriminator_b"}
    if semantic:
        frozen = torch.load(digit_classifier, map_location="cpu", weights_only=False)["state_dict"]
        used = resumed.model.source_classifier().state_dict()
        assert all(torch.equal(frozen[k], used[k]) for k in frozen)  # not trained


@pytest.mark.slow
def test_two_process_ddp_keeps_all_four_networks_identical(tmp_path, tiny_mnist, digit_classifier):
    # with the semantic loss on: its frozen classifier lives outside the synchronised modules, on each rank
    _, ranks = two_process_ddp(tmp_path, "--data.init_args.data_dir", str(tiny_mnist), *TINY,
                               "--model.init_args.semantic_weight", "1", "--model.init_args.semantic_classifier",
                               digit_classifier, "--trainer.max_steps", "3", config="cyclegan_digits")
    names = {name.split(".")[0] for name in ranks[0]["state"]}
    assert names == {"generator_ab", "generator_ba", "discriminator_a", "discriminator_b"}
    assert ranks[0]["g_steps"] == ranks[1]["g_steps"] == 3


def test_translate_writes_one_image_per_input(run_fit, tiny_mnist, tmp_path):
    cli = run_fit("cyclegan_digits.yaml", "--trainer.max_steps", "1", "--data.init_args.data_dir", str(tiny_mnist),
                  *TINY)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name in ("one.png", "two.png", "three.jpg"):
        Image.fromarray(torch.randint(0, 256, (40, 40), dtype=torch.uint8).numpy()).save(inputs / name)
    (inputs / "notes.txt").write_text("not an image")
    ckpt = f"{cli.run_dir}/checkpoints/last.ckpt"
    written = cli_main(["translate", "--ckpt_path", ckpt, "--input", str(inputs), "--direction", "BtoA", "--output",
                        str(tmp_path / "out")])
    assert sorted(p.name for p in written) == sorted(p.name for p in (tmp_path / "out").glob("[!.]*"))
    assert sorted(p.name for p in written) == ["one.png", "three.jpg", "two.png"]
    assert Image.open(tmp_path / "out" / "one.png").size == (28, 28)  # the size the model was trained on
    single = cli_main(["translate", "--ckpt_path", ckpt, "--input", str(inputs / "one.png"), "--output",
                       str(tmp_path / "single")])
    assert [p.name for p in single] == ["one.png"]


def test_translate_never_overwrites_inputs_or_foreign_files(run_fit, tiny_mnist, tmp_path, capsys):
    cli = run_fit("cyclegan_digits.yaml", "--trainer.max_steps", "1", "--data.init_args.data_dir", str(tiny_mnist),
                  *TINY)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name in ("one.png", "two.png"):
        Image.fromarray(torch.randint(0, 256, (40, 40), dtype=torch.uint8).numpy()).save(inputs / name)
    (inputs / "broken.png").write_bytes(b"not a png")
    originals = {p.name: p.read_bytes() for p in inputs.iterdir()}
    ckpt = f"{cli.run_dir}/checkpoints/last.ckpt"
    other = tmp_path / "other"
    other.mkdir()
    (other / "mine.txt").write_text("a user's file")
    refusals = {str(inputs): "would overwrite the input image", str(other): "holds files that translate did not",
                str(other / "mine.txt"): "is a file"}
    for output, message in refusals.items():
        with pytest.raises(SystemExit) as stop:
            cli_main(["translate", "--ckpt_path", ckpt, "--input", str(inputs), "--output", output])
        assert stop.value.code == 2 and message in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in inputs.iterdir()} == originals
    assert sorted(p.name for p in other.iterdir()) == ["mine.txt"]
    for argv, message in ((["--direction", "BtoC"], "use AtoB"), (["--input", str(tmp_path / "nowhere")], "no such"),
                          (["--ckpt_path", f"{cli.run_dir}/nothing.ckpt"], "nothing.ckpt")):
        args = {"--ckpt_path": ckpt, "--input": str(inputs), "--output": str(tmp_path / "out"), **dict([argv])}
        with pytest.raises(SystemExit):
            cli_main(["translate", *[x for pair in args.items() for x in pair]])
        assert message in capsys.readouterr().err
    # lower-case direction, a broken file named and skipped; the same output again: a rerun overwrites its own files
    with pytest.warns(UserWarning, match=r"broken\.png"):
        first = cli_main(["translate", "--ckpt_path", ckpt, "--input", str(inputs), "--direction", "btoa",
                          "--output", str(tmp_path / "out")])
    assert sorted(p.name for p in first) == ["one.png", "two.png"]
    with pytest.warns(UserWarning, match=r"broken\.png"):
        again = cli_main(["translate", "--ckpt_path", "last", "--config", "configs/cyclegan_digits.yaml", "--runs_dir",
                          str(Path(cli.run_dir).parents[1]), "--input", str(inputs), "--output", str(tmp_path / "out")])
    assert sorted(p.name for p in again) == ["one.png", "two.png"]


def test_sample_names_translate_for_a_cyclegan_checkpoint(run_fit, tiny_mnist, capsys):
    cli = run_fit("cyclegan_digits.yaml", "--trainer.max_steps", "1", "--data.init_args.data_dir", str(tiny_mnist),
                  *TINY)
    with pytest.raises(SystemExit) as stop:
        cli_main(["sample", "--ckpt_path", f"{cli.run_dir}/checkpoints/last.ckpt"])
    assert stop.value.code == 2 and "python main.py translate" in capsys.readouterr().err


@pytest.mark.parametrize("problem", ["missing", "empty"])
def test_missing_or_empty_domain_folder_fails_at_start_up(run_fit, tmp_path, problem):
    (tmp_path / "data" / "trainA").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "data" / "trainA" / "a.png")
    if problem == "empty":
        (tmp_path / "data" / "trainB").mkdir()
    state = "does not exist" if problem == "missing" else "is empty"
    with pytest.raises(FileNotFoundError, match=rf"domain folder .*trainB {state}"):
        run_fit("cyclegan_horse2zebra.yaml", "--data.init_args.data_dir", str(tmp_path / "data"))
    assert not any((tmp_path / "runs").rglob("*.ckpt"))  # before any training


def test_unpaired_folders_skip_an_unreadable_file_and_crop(tiny_unpaired, tmp_path):
    # a copy of its own: the decode cache an earlier test left in the shared fixture would skip the decoding
    # (and so the warning) here
    data = shutil.copytree(tiny_unpaired, tmp_path / "unpaired", ignore=shutil.ignore_patterns(".gan_lab_cache"))
    dm = UnpairedImageDataModule(data_dir=str(data), load_size=36, crop_size=32, batch_size=2,
                                 num_workers=0)
    with pytest.warns(UserWarning, match=r"broken\.png"):
        dm.setup()
    assert len(dm.train["A"]) == 6 and len(dm.train["B"]) == 5 and len(dm.test["A"]) == 2
    a, b = next(iter(dm.train_dataloader()))
    assert a.shape == b.shape == (2, 3, 32, 32)
    assert dm.test_images("B", 2).shape == (2, 3, 32, 32)


def test_celeba_attribute_domains_from_the_real_file_format(tiny_celeba_attributes, tmp_path):
    from datamodules.celeba_attributes import CelebAAttributeDataModule, read_attribute

    has = read_attribute(tiny_celeba_attributes / "list_attr_celeba.txt", "Eyeglasses")
    assert [name for name, yes in has.items() if yes] == [f"{i:06d}.jpg" for i in range(2, 22, 2)]
    # a copy of its own (the faces stay linked): a config test may have left a decode cache in the fixture
    data = shutil.copytree(tiny_celeba_attributes, tmp_path / "celeba", symlinks=True,
                           ignore=shutil.ignore_patterns(".gan_lab_cache"))
    dm = CelebAAttributeDataModule(data_dir=str(data), load_size=36, crop_size=32, num_test=2,
                                   num_workers=0, batch_size=2)
    with pytest.warns(UserWarning, match=r"000021\.jpg"):  # the broken face (without glasses) is named, left out
        dm.setup()
    # without: 1, 3, ..., 19 and the broken 21; with: 2, 4, ..., 20; the last 2 of each held out for tests
    assert (len(dm.train["A"]), len(dm.test["A"]), len(dm.train["B"]), len(dm.test["B"])) == (8, 2, 8, 2)
    with pytest.raises(ValueError, match=r"data.attribute='Glasses' is not in"):
        CelebAAttributeDataModule(data_dir=str(tiny_celeba_attributes), attribute="Glasses").prepare_data()
