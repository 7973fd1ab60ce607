"""CycleGAN (Zhu et al. 2017): unpaired image-to-image translation on the harness.

Two generators, G: A -> B and F: B -> A, and two discriminators, D_A (real A vs F(b)) and D_B (real B vs G(a)),
trained with the least-squares loss (Mao et al. 2017), a cycle-consistency L1 ``F(G(a)) ~ a``, ``G(F(b)) ~ b``
and an identity L1 ``G(b) ~ b``, ``F(a) ~ a``.  One optimizer updates both generators, one both
discriminators; the harness (:class:`~gan_modules.base.AdversarialModule`) does the stepping, counting, resume,
DDP and precision.  The discriminators see generated images through an :class:`ImagePool` of earlier ones
(Shrivastava et al. 2017), which is seeded and saved in checkpoints so a resume is exact.

Optionally (``semantic_weight`` > 0, off by default) the semantic-consistency loss of CyCADA (Hoffman et al.
2018): a frozen classifier of domain A must read a translated image as it reads the original, which keeps the
class that CycleGAN's own losses do not protect (a UCI "1" translated into an MNIST "7" satisfies them all).
With it, ``conditional_classes`` > 0 also conditions both discriminators on that classifier's reading of each
image (its one-hot class as extra input channels, as a conditional GAN's discriminator sees its label: Mirza and
Osindero 2014; conditioning the domain discriminator on the classifier's prediction is CDAN's idea, Long et al.
2018): D_B then compares G's translations of a class with the target images the classifier reads as that class,
instead of with any target image, which the semantic loss alone allows.

A batch is ``(domain_a, domain_b)``: two unpaired image batches of the same size (``datamodules.unpaired``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import chain
from typing import Any

import torch
import torch.nn.functional as F
from lightning.pytorch.utilities.seed import isolate_rng
from torch import Tensor, nn
from torch.nn import Parameter

from .base import ADAM_DCGAN, AdversarialModule, Metrics
from .classifier import load_classifier, newest_match
from .config_types import LRSchedulerCallable, OptimizerCallable, build, spec
from .losses import least_squares_discriminator_loss

#: ``(data_shape) -> network``: a network class whose other arguments come from the config (built twice).
ImageToImage = Callable[[Sequence[int]], nn.Module]
RESNET_GENERATOR = spec("gan_modules.networks.cyclegan.ResnetGenerator")
PATCH_DISCRIMINATOR = spec("gan_modules.networks.cyclegan.PatchDiscriminator")
DIRECTIONS = ("AtoB", "BtoA")


def cycle_consistency_loss(real: Tensor, reconstructed: Tensor) -> Tensor:
    """Mean absolute error ``E|F(G(a)) - a|`` (Zhu et al. 2017, eq. 2), unweighted."""
    return (reconstructed - real).abs().mean()


def identity_loss(real: Tensor, mapped: Tensor) -> Tensor:
    """Mean absolute error ``E|G(b) - b|``: a generator given an image of its target domain should keep it
    (Taigman et al. 2017; Zhu et al. 2017, section 5.2), which preserves colours."""
    return (mapped - real).abs().mean()


def semantic_consistency_loss(classifier: nn.Module, source: Tensor, translated: Tensor,
                              target: Tensor | None = None) -> Tensor:
    """Cross-entropy of the classifier on the translation against its own reading (argmax) of the source,
    ``CE(f(G(x)), argmax f(x))`` (Hoffman et al. 2018, eq. 4), unweighted; no gradient through the target.
    ``target``: that reading, when the caller already has it."""
    if target is None:
        with torch.no_grad():
            target = classifier(source).argmax(1)
    return F.cross_entropy(classifier(translated), target)


def least_squares_generator_loss(scores: Tensor) -> Tensor:
    """``E[(D(G(a)) - 1)^2]`` over every patch score, CycleGAN's generator loss (not halved)."""
    return F.mse_loss(scores, torch.ones_like(scores))


class ImagePool:
    """The last ``size`` generated images, of which the discriminator sees a mix (Shrivastava et al. 2017).

    ``query(images)`` returns a batch of the same size: while the pool fills, each new image is stored and
    returned as it is; once full, each new image is, with probability 0.5, swapped for a stored one picked
    uniformly (the stored one is returned, the new one takes its place), else returned as it is.  The draws come
    from the pool's own seeded generator; ``state_dict`` holds the images and that generator, so a resumed run
    draws the same as an uninterrupted one.  ``size: 0`` turns the pool off.
    """

    def __init__(self, size: int = 50, seed: int = 0) -> None:
        if size < 0:
            raise ValueError(f"ImagePool size={size}: must be >= 0 (0 turns the pool off; CycleGAN uses 50)")
        self.size = size
        self.images: list[Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def query(self, images: Tensor) -> Tensor:
        if self.size == 0:
            return images
        if self.images and self.images[0].device != images.device:  # restored on the CPU, training on a GPU
            self.images = [image.to(images.device) for image in self.images]
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.generator) < 0.5:
                i = int(torch.randint(len(self.images), (), generator=self.generator))
                out.append(self.images[i].clone())
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def reseed(self, seed: int) -> None:
        self.generator.manual_seed(seed)

    def state_dict(self) -> dict[str, Any]:
        images = torch.stack(self.images).cpu() if self.images else torch.empty(0)
        return {"images": images, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        self.images = [image.to(device) for image in state["images"]]
        self.generator.set_state(state["generator"])


class CycleGAN(AdversarialModule):
    """G: A -> B, F: B -> A, D_A, D_B; least squares, cycle L1 x 10, identity L1 x 5, image pools of 50."""

    def __init__(
        self,
        generator: ImageToImage = RESNET_GENERATOR,          # (data_shape) -> image-to-image network, built twice
        discriminator: ImageToImage = PATCH_DISCRIMINATOR,   # (data_shape) -> patch scores, built twice
        cycle_weight: float = 10.0,                          # lambda of the cycle-consistency L1
        identity_weight: float = 0.5,                        # identity L1 weight as a fraction of cycle_weight; 0: off
        semantic_weight: float = 0.0,                        # CyCADA's semantic-consistency loss; 0: off (the paper)
        semantic_classifier: str | None = None,              # DigitClassifier checkpoint (or glob) of domain A
        conditional_classes: int = 0,                        # D sees that classifier's class (one-hot); 0: off
        pool_size: int = 50,                                 # generated images kept per domain for D; 0: off
        pool_seed: int = 0,                                  # seed of the pools' draws (offset per DDP rank)
        g_optimizer: OptimizerCallable = ADAM_DCGAN,         # over both generators: Adam 2e-4, betas (0.5, 0.999)
        d_optimizer: OptimizerCallable = ADAM_DCGAN,         # over both discriminators
        g_scheduler: LRSchedulerCallable | None = None,      # e.g. gan_modules.schedules.LinearDecay (the paper's)
        d_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: str = "step",                    # schedules step per generator "step" or per "epoch"
        data_shape: Sequence[int] | None = None,             # (channels, height, width); linked from the data
    ) -> None:
        super().__init__(n_critic=1, g_optimizer=g_optimizer, d_optimizer=d_optimizer, g_scheduler=g_scheduler,
                         d_scheduler=d_scheduler, scheduler_interval=scheduler_interval)
        if data_shape is None or len(data_shape) != 3:
            raise ValueError(f"model.data_shape={data_shape}: CycleGAN needs images (channels, height, width); it "
                             "is linked from the datamodule by main.py (pass data_shape=dm.data_shape in Python).")
        if cycle_weight < 0 or identity_weight < 0:
            raise ValueError(f"model.cycle_weight={cycle_weight}, model.identity_weight={identity_weight}: must be "
                             ">= 0 (the paper: 10 and 0.5; identity_weight 0 switches the identity loss off).")
        if conditional_classes < 0:
            raise ValueError(f"model.conditional_classes={conditional_classes}: the number of classes of the semantic "
                             "classifier (10 for digits) conditions the discriminators; 0 turns it off.")
        uses_classifier = semantic_weight > 0 or conditional_classes > 0
        if semantic_weight < 0 or uses_classifier != (semantic_classifier is not None):
            raise ValueError(f"model.semantic_weight={semantic_weight}, model.conditional_classes="
                             f"{conditional_classes}, model.semantic_classifier={semantic_classifier!r}: the semantic "
                             "loss (a weight > 0) and the conditional discriminators (classes > 0) need a classifier "
                             "checkpoint of domain A (e.g. from `python main.py fit --config "
                             "configs/classifier_uci.yaml`), and the classifier needs one of them; leave all three "
                             "unset for the paper's CycleGAN.")
        self.data_shape = tuple(int(s) for s in data_shape)
        self.conditional_classes = conditional_classes
        self.cycle_weight, self.identity_weight = cycle_weight, identity_weight
        self.semantic_weight, self.semantic_classifier = semantic_weight, semantic_classifier
        # loaded at fit start; a tuple keeps it out of the state dict, the optimizers and DDP: it is frozen
        self._classifier: tuple[nn.Module, ...] = ()
        self._readings: list[tuple[Tensor, Tensor]] = []  # (real images, their classes): see source_class
        make_g, make_d = build(generator, ImageToImage), build(discriminator, ImageToImage)
        d_shape = (self.data_shape[0] + conditional_classes, *self.data_shape[1:])  # + one-hot class maps
        self.generator_ab: nn.Module = make_g(self.data_shape)      # G: A -> B
        self.generator_ba: nn.Module = make_g(self.data_shape)      # F: B -> A
        self.discriminator_a: nn.Module = make_d(d_shape)           # D_A: real A vs F(b)
        self.discriminator_b: nn.Module = make_d(d_shape)           # D_B: real B vs G(a)
        self.pool_seed = pool_seed
        self.pool_a, self.pool_b = ImagePool(pool_size, pool_seed), ImagePool(pool_size, pool_seed + 1)
        self._check_networks()

    # ------------------------------------------------------------------ public API
    @property
    def generator(self) -> nn.Module:
        """G: A -> B (what ``sample``-style tools read as "the generator")."""
        return self.generator_ab

    @property
    def discriminator(self) -> nn.Module:
        """D_B, the judge of G's images."""
        return self.discriminator_b

    @torch.no_grad()
    def translate(self, images: Tensor, direction: str = "AtoB") -> Tensor:
        """Images in [-1, 1] of one domain mapped to the other: ``AtoB`` by G, ``BtoA`` by F (eval mode)."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction={direction!r}: use 'AtoB' (G) or 'BtoA' (F)")
        net = self.generator_ab if direction == "AtoB" else self.generator_ba
        was_training = net.training
        net.eval()
        try:
            return net(images.to(self.device))
        finally:
            net.train(was_training)

    def forward(self, a: Tensor) -> Tensor:
        return self.generator_ab(a)

    # ------------------------------------------------------------------ the recipe's hooks
    def generator_parameters(self) -> Iterable[Parameter]:
        return chain(self.generator_ab.parameters(), self.generator_ba.parameters())

    def discriminator_parameters(self) -> Iterable[Parameter]:
        return chain(self.discriminator_a.parameters(), self.discriminator_b.parameters())

    def discriminator_loss(self, batch: Any) -> tuple[Tensor, Metrics]:
        """Both discriminators' least-squares losses, each halved (the paper's 0.5 slows D against G), on real
        images and pooled generated ones."""
        real_a, real_b = batch
        with torch.no_grad():  # pooled with their class maps (when conditional): an old image keeps its class
            fake_b = self.pool_b.query(self.with_class(self.generator_ab(real_a), real_a))
            fake_a = self.pool_a.query(self.with_class(self.generator_ba(real_b), real_b))
        loss_a = least_squares_discriminator_loss(self.discriminator_a(self.with_class(real_a, real_a)),
                                                  self.discriminator_a(fake_a))
        loss_b = least_squares_discriminator_loss(self.discriminator_b(self.with_class(real_b, real_b)),
                                                  self.discriminator_b(fake_b))
        return loss_a + loss_b, {"train/d_a_loss": loss_a.detach(), "train/d_b_loss": loss_b.detach()}

    def generator_loss(self, batch: Any) -> tuple[Tensor, Metrics]:
        """Adversarial + cycle + identity losses of both directions (each logged per direction)."""
        real_a, real_b = batch
        fake_b, fake_a = self.generator_ab(real_a), self.generator_ba(real_b)
        terms = {
            "train/adv_AtoB": least_squares_generator_loss(self.discriminator_b(self.with_class(fake_b, real_a))),
            "train/adv_BtoA": least_squares_generator_loss(self.discriminator_a(self.with_class(fake_a, real_b))),
            "train/cycle_A": self.cycle_weight * cycle_consistency_loss(real_a, self.generator_ba(fake_b)),
            "train/cycle_B": self.cycle_weight * cycle_consistency_loss(real_b, self.generator_ab(fake_a)),
        }
        if self.identity_weight > 0:
            weight = self.identity_weight * self.cycle_weight
            terms["train/identity_AtoB"] = weight * identity_loss(real_b, self.generator_ab(real_b))
            terms["train/identity_BtoA"] = weight * identity_loss(real_a, self.generator_ba(real_a))
        if self.semantic_weight > 0:
            classifier = self.source_classifier()
            for name, source, translated in (("AtoB", real_a, fake_b), ("BtoA", real_b, fake_a)):
                terms[f"train/semantic_{name}"] = self.semantic_weight * semantic_consistency_loss(
                    classifier, source, translated, self.source_class(source))
        loss = torch.stack(list(terms.values())).sum()
        return loss, {k: v.detach() for k, v in terms.items()}

    def with_class(self, images: Tensor, source: Tensor) -> Tensor:
        """``images`` with ``conditional_classes`` constant channels appended: the one-hot class the source
        classifier reads in ``source`` (the image itself, or the original a translation came from).  A hard
        label, not the softmax: real target images are read less confidently than translated source ones, and a
        soft condition would tell the discriminator which is which.  ``images`` unchanged when off."""
        if not self.conditional_classes:
            return images
        maps = F.one_hot(self.source_class(source), self.conditional_classes).to(images.dtype)
        return torch.cat([images, maps[:, :, None, None].expand(-1, -1, *images.shape[2:])], 1)

    def source_class(self, source: Tensor) -> Tensor:
        """The class the frozen classifier reads in each real image, ``argmax f(source)``, remembered for the
        last two batches it was asked about: a training step asks 4 times about each of its real A and real B
        batches (the discriminator and generator steps' conditions, the semantic loss's targets), and reading
        them every time took about 30 of a cyclegan_digits_semantic step's 197 ms on a CPU thread."""
        for seen, labels in self._readings:
            if seen is source:
                return labels
        with torch.no_grad():
            labels = self.source_classifier()(source).argmax(1)
        self._readings = [(source, labels), *self._readings[:1]]
        return labels

    def source_classifier(self) -> nn.Module:
        """The frozen classifier of domain A (semantic loss, conditional discriminators), loaded on first use (a
        missing checkpoint fails at fit start, naming the config that trains it), kept on this module's device."""
        if not self._classifier:
            with isolate_rng():  # building it draws initial weights: not from the training RNG
                classifier = load_classifier(self.semantic_classifier, config="classifier_uci")
            channels = classifier.hparams.data_shape[0]
            if channels != self.data_shape[0]:
                raise ValueError(f"model.semantic_classifier {self.semantic_classifier} reads images of {channels} "
                                 f"channel(s), but this data has {self.data_shape[0]}; train it on domain A's images.")
            classes = classifier.hparams.num_classes
            if self.conditional_classes not in (0, classes):
                path = newest_match(self.semantic_classifier)
                raise ValueError(f"model.conditional_classes={self.conditional_classes}, but the semantic classifier "
                                 f"{path} has {classes} classes; set it to {classes}.")
            self._classifier = (classifier.to(self.device),)  # loaded at fit start, when the module is in place
        return self._classifier[0]

    # ------------------------------------------------------------------ pools: seeded per rank, in checkpoints
    def on_fit_start(self) -> None:
        super().on_fit_start()
        if self.semantic_classifier is not None:
            self.source_classifier()
        if self.trainer.world_size > 1 and not self._pools_restored:
            rank = self.trainer.global_rank  # every rank pools its own generated images: its own draws too
            self.pool_a.reseed(self.pool_seed + 7919 * rank)
            self.pool_b.reseed(self.pool_seed + 1 + 7919 * rank)

    _pools_restored = False

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["cyclegan_pools"] = {"a": self.pool_a.state_dict(), "b": self.pool_b.state_dict()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        pools = checkpoint.get("cyclegan_pools")
        if pools is not None:
            self.pool_a.load_state_dict(pools["a"], self.device)
            self.pool_b.load_state_dict(pools["b"], self.device)
            self._pools_restored = True

    # ------------------------------------------------------------------ start-up checks
    def _check_networks(self) -> None:
        """Fail at start-up, naming the shapes, when a generator does not keep the image's shape."""
        self.generator_ab.eval()
        try:
            with torch.no_grad():
                x = torch.zeros(1, *self.data_shape)
                out = self.generator_ab(x)
                if tuple(out.shape[1:]) != self.data_shape:
                    raise ValueError(f"model.generator ({type(self.generator_ab).__name__}) maps images of shape "
                                     f"{self.data_shape} to {tuple(out.shape[1:])}; an image-to-image generator "
                                     "must keep the shape (sides divisible by 4 for the ResNet generator).")
                self.discriminator_a(torch.zeros(1, self.data_shape[0] + self.conditional_classes,
                                                 *self.data_shape[1:]))
        except RuntimeError as err:
            raise ValueError(f"CycleGAN's networks fail on images of shape {self.data_shape}: {err}; choose a "
                             "smaller discriminator (n_layers) or a larger crop_size.") from err
        finally:
            self.generator_ab.train()


__all__ = ["CycleGAN", "ImagePool", "cycle_consistency_loss", "identity_loss", "least_squares_generator_loss",
           "semantic_consistency_loss"]
