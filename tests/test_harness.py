"""The harness contract: recipes write losses only; the mechanics (schedule, toggling, steps) are shared.

Three sketches the harness was designed against, each a few lines on top of it: a conditional GAN (labels
reach both players), a generator-side lazy regulariser (every k generator steps), and a two-generator,
two-discriminator model (CycleGAN's shape).
"""

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from datamodules.loader import TensorSampleSet, resumable_loader
from gan_modules import AdversarialModule

NUM_CLASSES = 4
CENTRES = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])


class LabeledBlobs(L.LightningDataModule):
    """Four 2-D blobs, the blob index as the label."""

    def __init__(self, batch_size: int = 16) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.labels = torch.randint(NUM_CLASSES, (512,), generator=gen)
        self.samples = CENTRES[self.labels] + 0.05 * torch.randn(512, 2, generator=gen)
        self.batch_size = batch_size

    def train_dataloader(self):
        return resumable_loader(TensorSampleSet(self.samples, self.labels), self, self.batch_size, seed=0)


class ConditionalSketch(AdversarialModule):
    """A conditional GAN in the hooks: the label is concatenated to z in G and to x in D."""

    def __init__(self, n_critic: int = 2, path_length_every: int = 3) -> None:
        super().__init__(n_critic=n_critic)
        self.generator = nn.Sequential(nn.Linear(2 + NUM_CLASSES, 32), nn.ReLU(), nn.Linear(32, 2))
        self.discriminator = nn.Sequential(nn.Linear(2 + NUM_CLASSES, 32), nn.ReLU(), nn.Linear(32, 1))
        self.path_length_every, self.lazy_g_steps, self.label_checks = path_length_every, [], 0

    def G(self, z, y):
        return self.generator(torch.cat([z, F.one_hot(y, NUM_CLASSES).float()], 1))

    def D(self, x, y):
        return self.discriminator(torch.cat([x, F.one_hot(y, NUM_CLASSES).float()], 1)).view(-1)

    def discriminator_loss(self, batch):
        x, y = batch
        assert bool(((x - CENTRES[y]).norm(dim=1) < 0.5).all())  # each label travels with its own sample
        self.label_checks += 1
        assert not any(p.requires_grad for p in self.generator.parameters())  # G frozen in the D step
        fake = self.G(torch.randn(len(x), 2), y)
        loss = F.softplus(-self.D(x, y)).mean() + F.softplus(self.D(fake, y)).mean()
        return loss, {"train/d_real": self.D(x, y).detach().mean()}

    def generator_loss(self, batch):
        _, y = batch
        z = torch.randn(len(y), 2, requires_grad=True)
        loss = F.softplus(-self.D(self.G(z, y), y)).mean()
        if self.g_steps % self.path_length_every == 0:  # a lazy generator-side regulariser
            self.lazy_g_steps.append(self.g_steps)
            (grad,) = torch.autograd.grad(self.G(z, y).sum(), z, create_graph=True)
            loss = loss + self.path_length_every * grad.pow(2).sum(1).mean()
        return loss, {}


class TwoPairSketch(AdversarialModule):
    """CycleGAN's shape: two generators under one optimizer, two discriminators under the other."""

    def __init__(self) -> None:
        super().__init__(n_critic=1)
        self.g_ab, self.g_ba = nn.Linear(2, 2), nn.Linear(2, 2)
        self.d_a, self.d_b = nn.Linear(2, 1), nn.Linear(2, 1)

    def generator_parameters(self):
        return [*self.g_ab.parameters(), *self.g_ba.parameters()]

    def discriminator_parameters(self):
        return [*self.d_a.parameters(), *self.d_b.parameters()]

    def discriminator_loss(self, batch):
        a, b = batch
        fake_b, fake_a = self.g_ab(a), self.g_ba(b)
        loss = ((self.d_b(b) - 1) ** 2).mean() + (self.d_b(fake_b) ** 2).mean()
        return loss + ((self.d_a(a) - 1) ** 2).mean() + (self.d_a(fake_a) ** 2).mean(), {}

    def generator_loss(self, batch):
        a, b = batch
        cycle = (self.g_ba(self.g_ab(a)) - a).abs().mean() + (self.g_ab(self.g_ba(b)) - b).abs().mean()
        return ((self.d_b(self.g_ab(a)) - 1) ** 2).mean() + ((self.d_a(self.g_ba(b)) - 1) ** 2).mean() + cycle, {}


def _trainer(steps: int) -> L.Trainer:
    return L.Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, accelerator="cpu", log_every_n_steps=1)


def test_conditional_recipe_gets_labels_and_a_lazy_generator_regulariser_runs_on_schedule():
    torch.manual_seed(0)
    module = ConditionalSketch()
    _trainer(7).fit(module, LabeledBlobs())
    assert (module.d_steps, module.g_steps, module.label_checks) == (14, 7, 14)
    assert module.lazy_g_steps == [0, 3, 6]  # g_steps before each update: every 3rd generator step
    assert {"train/d_real", "train/d_loss", "train/g_loss"} <= set(module.latest_metrics)


def test_two_generator_two_discriminator_recipe_updates_all_four_networks():
    class Pairs(L.LightningDataModule):
        def train_dataloader(self):
            gen = torch.Generator().manual_seed(1)
            return resumable_loader(TensorSampleSet(torch.randn(64, 2, generator=gen),
                                                    torch.randn(64, 2, generator=gen) + 3), self, 8, seed=0)

    torch.manual_seed(0)
    module = TwoPairSketch()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    _trainer(3).fit(module, Pairs())
    assert module.g_steps == 3
    assert all(not torch.equal(before[k], v) for k, v in module.state_dict().items())


def test_the_readme_example_variant_trains():
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = re.search(r"```python\n(import torch, torch.nn.functional.*?)```", readme, re.S).group(1)
    namespace: dict = {}
    exec(code, namespace)

    class Labeled(L.LightningDataModule):
        def train_dataloader(self):
            gen = torch.Generator().manual_seed(0)
            x, y = torch.randn(256, 2, generator=gen), torch.randint(8, (256,), generator=gen)
            return resumable_loader(TensorSampleSet(x, y), self, 32, seed=0)

    torch.manual_seed(0)
    module = namespace["TinyCGAN"]()
    _trainer(4).fit(module, Labeled())
    assert module.g_steps == 4 and {"train/d_loss", "train/g_loss"} <= set(module.latest_metrics)
