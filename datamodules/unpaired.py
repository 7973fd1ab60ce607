"""Unpaired image domains for CycleGAN (Zhu et al. 2017): batches ``(domain_a, domain_b)``.

The two domains are held as uint8 images of ``load_size`` (decoded once into the lab's cache, see
``datamodules.images``) and served as random ``crop_size`` crops, optionally flipped.  An epoch is
``max(len(A), len(B))`` pairs, as in the paper's code: A is read in a seeded shuffled order, B in an
independent one, and crops and flips are drawn from (seed, epoch, index) alone, never from the global RNG, so a
resumed run reads exactly the batches an uninterrupted one reads.

* :class:`UnpairedImageDataModule`: the ``trainA/ trainB/ testA/ testB/`` layout every CycleGAN data set uses
  (horse2zebra, summer2winter, ...);
* :class:`DigitsDataModule`: UCI handwritten digits (scikit-learn, offline) as A, MNIST as B;
* ``datamodules.celeba_attributes.CelebAAttributeDataModule``: CelebA without / with an attribute.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from .identity import files_identity
from .images import IMAGE_EXTENSIONS, ImageFolderDataModule, uint8_to_unit
from .loader import ResumableDataLoader, TensorSampleSet, resumable_loader
from .mnist import MNISTDataModule

DOMAINS = ("A", "B")


class UnpairedSampleSet(TensorSampleSet):
    """Pairs ``(a, b)`` of random crops from two uint8 image sets; index ``i`` of an epoch reads A[i mod |A|]
    and the B image, crop offsets and flips that epoch's seeded draws assign to ``i``."""

    def __init__(self, images_a: Tensor, images_b: Tensor, crop_size: int, flip: bool, seed: int) -> None:
        super().__init__(images_a, transform=uint8_to_unit)
        self.images_a, self.images_b = images_a, images_b
        self.crop_size, self.flip, self.seed = crop_size, flip, seed
        self.size = max(len(images_a), len(images_b))
        self.epoch_of: Any = None  # the loader's batch sampler: its ``epoch`` picks the draws
        self._draws: tuple[int, dict[str, Tensor]] | None = None

    def __len__(self) -> int:
        return self.size

    def to(self, device: torch.device | str) -> UnpairedSampleSet:
        moved = UnpairedSampleSet(self.images_a.to(device), self.images_b.to(device), self.crop_size, self.flip,
                                  self.seed)
        moved.epoch_of = self.epoch_of
        return moved

    def draws(self, epoch: int) -> dict[str, Tensor]:
        """This epoch's B index, crop corners and flips for every index (one small table per epoch)."""
        if self._draws is None or self._draws[0] != epoch:
            gen = torch.Generator().manual_seed((self.seed + 1) * 2_000_029 + epoch)  # not the sampler's stream
            room = self.images_a.shape[-1] - self.crop_size + 1
            self._draws = (epoch, {"b": torch.randperm(self.size, generator=gen) % len(self.images_b),
                                   "corner": torch.randint(room, (2, self.size, 2), generator=gen),
                                   "flip": (torch.rand(2, self.size, generator=gen) < 0.5) & self.flip})
        return self._draws[1]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        a, b = self.__getitems__([index])
        return a[0], b[0]

    def __getitems__(self, indices: list[int]) -> tuple[Tensor, Tensor]:
        d = self.draws(getattr(self.epoch_of, "epoch", 0))
        idx = torch.as_tensor(indices)
        sources = (self.images_a[idx % len(self.images_a)], self.images_b[d["b"][idx]])
        return tuple(self.transform(self._crop(x, d["corner"][side][idx], d["flip"][side][idx]))  # type: ignore
                     for side, x in enumerate(sources))

    def _crop(self, images: Tensor, corners: Tensor, flips: Tensor) -> Tensor:
        c = self.crop_size
        out = torch.stack([img[:, y : y + c, x : x + c] for img, (y, x) in zip(images, corners.tolist(), strict=True)])
        return torch.where(flips.view(-1, 1, 1, 1).to(out.device), out.flip(-1), out)


class UnpairedDataModule(L.LightningDataModule, ABC):
    """Two unpaired image domains as ``(domain_a, domain_b)`` batches; subclasses say where the images come from."""

    def __init__(
        self,
        load_size: int = 286,        # side the images are resized to (and cached at)
        crop_size: int = 256,        # side of the random crops the networks see
        flip: bool = True,           # random horizontal flips (off for digits and text)
        batch_size: int = 1,         # pairs per batch (the paper: 1)
        num_test: int = 8,           # fixed test images per domain for sample rows (callbacks.TranslationGrid)
        seed: int = 0,               # shuffling, crop and flip seed
        channels: int = 3,           # 3 for RGB, 1 for greyscale
    ) -> None:
        super().__init__()
        if not 1 <= crop_size <= load_size:
            raise ValueError(f"data.crop_size={crop_size} must lie in [1, load_size={load_size}] (the paper: load "
                             "286, crop 256).")
        self.load_size, self.crop_size, self.flip, self.batch_size = load_size, crop_size, flip, batch_size
        self.num_test, self.seed, self.channels = num_test, seed, channels
        self.data_shape = (channels, crop_size, crop_size)
        self.train: dict[str, Tensor] | None = None  # domain -> uint8 images (N, C, load, load)
        self.test: dict[str, Tensor] = {}

    @abstractmethod
    def load_domains(self) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """uint8 images of ``load_size`` per domain: the training sets and (where there are any) test sets."""

    def identity(self) -> dict[str, Any]:
        """What determines the samples (see ``datamodules.identity``)."""
        return {"class": type(self).__qualname__, "load_size": self.load_size, "crop_size": self.crop_size,
                "flip": self.flip, "seed": self.seed, "channels": self.channels}

    def setup(self, stage: str | None = None) -> None:
        if self.train is None:
            self.train, self.test = self.load_domains()

    def train_dataloader(self) -> ResumableDataLoader:
        self.setup()
        assert self.train is not None
        dataset = UnpairedSampleSet(self.train["A"], self.train["B"], self.crop_size, self.flip, self.seed)
        loader = resumable_loader(dataset, self, self.batch_size, self.seed)
        loader.dataset.epoch_of = loader.batch_sampler
        return loader

    def test_images(self, domain: str, n: int | None = None) -> Tensor:
        """``n`` fixed images of a domain in [-1, 1], centre-cropped: the test set's first, else a seeded pick of
        the training set's."""
        self.setup()
        assert self.train is not None
        n = self.num_test if n is None else n
        source = self.test.get(domain)
        if source is None or len(source) == 0:
            pick = torch.randperm(len(self.train[domain]), generator=torch.Generator().manual_seed(self.seed))[:n]
            source = self.train[domain][pick]
        return uint8_to_unit(center_crop(source[:n], self.crop_size))

    def real_samples(self, n: int, seed: int = 0) -> Tensor:
        """``n`` centre-cropped domain-B images in [-1, 1] (what G should produce), the same for the same seed."""
        self.setup()
        assert self.train is not None
        pick = torch.randperm(len(self.train["B"]), generator=torch.Generator().manual_seed(seed))[:n]
        return uint8_to_unit(center_crop(self.train["B"][pick], self.crop_size))


def center_crop(images: Tensor, size: int) -> Tensor:
    top, left = (images.shape[-2] - size) // 2, (images.shape[-1] - size) // 2
    return images[..., top : top + size, left : left + size]


class ListedImages(ImageFolderDataModule):
    """The lab's image cache for a given list of files under ``root`` (one domain)."""

    def __init__(self, root: Path, files: Sequence[Path], **kwargs: Any) -> None:
        super().__init__(data_dir=str(root), **kwargs)
        self._listed = list(files)

    def files(self) -> list[Path]:
        return self._listed

    def uint8_images(self) -> Tensor:
        """The decoded images (N, C, S, S), built into the cache on first use; unreadable files named and skipped."""
        self.prepare_data()
        self.setup()
        return self.dataset.samples  # type: ignore[union-attr]


def domain_files(folder: Path, setting: str, required: bool = True) -> list[Path]:
    """The images in a domain folder; a missing or empty one is an error naming it (``required``) or ``[]``."""
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS
                   and ".gan_lab_cache" not in p.parts) if folder.is_dir() else []
    if not files and required:
        state = "is empty (no " + "/".join(IMAGE_EXTENSIONS) + " files)" if folder.is_dir() else "does not exist"
        raise FileNotFoundError(f"domain folder {folder.resolve()} {state}: {setting} must hold trainA/ and trainB/ "
                                "with images (the CycleGAN layout: trainA/, trainB/, testA/, testB/).")
    return files


class UnpairedImageDataModule(UnpairedDataModule):
    """``<data_dir>/trainA``, ``trainB`` (and optionally ``testA``, ``testB``): every CycleGAN data set's layout.

    Images are resized to ``load_size`` (after a centre crop to a square) once, into ``<data_dir>/.gan_lab_cache``
    or ``cache_dir``; a missing or empty ``trainA``/``trainB`` fails when fit starts, naming the folder.
    """

    def __init__(
        self,
        data_dir: str = "data/horse2zebra",  # holds trainA/ trainB/ (testA/ testB/ optional)
        num_workers: int = 2,                # processes that decode while the cache is built
        cache_dir: str | None = None,        # default: <data_dir>/.gan_lab_cache
        **kwargs: Any,                       # load_size, crop_size, flip, batch_size, num_test, seed, channels
    ) -> None:
        super().__init__(**kwargs)
        self.data_dir, self.num_workers, self.cache_dir = data_dir, num_workers, cache_dir
        self._files: dict[str, list[Path]] | None = None

    @property
    def files(self) -> dict[str, list[Path]]:
        """Each folder's images, listed once; trainA/ or trainB/ missing or empty is an error naming it."""
        if self._files is None:
            root, setting = Path(self.data_dir), f"data.init_args.data_dir={self.data_dir}"
            files = {f"train{d}": domain_files(root / f"train{d}", setting) for d in DOMAINS}
            self._files = files | {f"test{d}": domain_files(root / f"test{d}", "", required=False) for d in DOMAINS}
        return self._files

    def identity(self) -> dict[str, Any]:
        root = Path(self.data_dir)
        return {**super().identity(), **{name: files_identity(files, root) for name, files in self.files.items()}}

    def _domain(self, name: str) -> ListedImages:
        return ListedImages(Path(self.data_dir, name), self.files[name], image_size=self.load_size,
                            channels=self.channels, num_workers=self.num_workers,
                            cache_dir=self.cache_dir or str(Path(self.data_dir, ".gan_lab_cache")))

    def prepare_data(self) -> None:
        for name, files in self.files.items():
            if files:
                self._domain(name).prepare_data()

    def load_domains(self) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        train = {d: self._domain(f"train{d}").uint8_images() for d in DOMAINS}
        test = {d: self._domain(f"test{d}").uint8_images() for d in DOMAINS if self.files[f"test{d}"]}
        return train, test


class DigitsDataModule(UnpairedDataModule):
    """UCI handwritten digits as A (scikit-learn's ``load_digits``: 1,797 8x8 scans in 0..16 from 43 writers,
    offline) and MNIST as B, greyscale at ``image_size``.

    A UCI digit fills its 8x8 frame; MNIST's are size-normalised into a 20x20 box centred in 28x28 (LeCun et
    al. 1998).  A is framed the same way: upscaled (bilinear) to ``digit_box`` pixels and centred, so the two
    domains differ in stroke style and blur, not in framing.  MNIST comes from ``data_dir`` (torchvision's layout;
    offline: ``make mnist-offline``).  No crops or flips (a flipped digit is another symbol).
    """

    def __init__(
        self,
        data_dir: str = "data",            # torchvision's MNIST root (<data_dir>/MNIST/raw)
        image_size: int = 28,              # side of both domains' images (28: MNIST's own, the classifier's)
        digit_box: int | None = None,      # side of an upscaled UCI digit; default 20/28 of image_size, as MNIST
        mnist_subset: int | None = None,   # use only the first `mnist_subset` MNIST digits
        batch_size: int = 32,
        num_test: int = 8,                 # fixed digits per domain for sample rows
        seed: int = 0,
    ) -> None:
        super().__init__(load_size=image_size, crop_size=image_size, flip=False, batch_size=batch_size,
                         num_test=num_test, seed=seed, channels=1)
        self.data_dir, self.image_size, self.mnist_subset = data_dir, image_size, mnist_subset
        self.digit_box = framed_box(image_size, digit_box)
        self.labels_a: Tensor | None = None  # UCI labels, for the benchmark's accuracy

    def identity(self) -> dict[str, Any]:
        mnist = MNISTDataModule(self.data_dir, image_size=self.image_size, subset=self.mnist_subset).identity()
        return {**super().identity(), "mnist": mnist, "digit_box": self.digit_box}

    def prepare_data(self) -> None:
        MNISTDataModule(self.data_dir, image_size=self.image_size, download=True).prepare_data()

    def load_domains(self) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        mnist = MNISTDataModule(self.data_dir, image_size=self.image_size, subset=self.mnist_subset, download=False)
        mnist.setup()
        uci, self.labels_a = uci_digits(self.image_size, self.digit_box)
        return {"A": uci, "B": mnist.images}, {}


class UCIDigitsDataModule(MNISTDataModule):
    """The UCI digits alone, labeled and framed like MNIST (as domain A of :class:`DigitsDataModule`): what a
    classifier of domain A trains on, for CycleGAN's semantic-consistency loss (Hoffman et al. 2018).

    ``subset`` keeps the first N digits (scikit-learn's order cycles through the classes, so any N is nearly
    balanced); ``configs/classifier_uci.yaml`` keeps 1,000 and leaves the last 797 for scoring translations of
    digits whose labels no model saw.  Offline: the digits ship with scikit-learn.

    With ``unlabeled_mnist`` the classifier also adapts to MNIST's handwriting by class-balanced self-training
    (Zou et al. 2018), using MNIST's images and never its labels: from epoch ``self_training_start`` on, every
    ``self_training_every`` epochs, the model being trained reads all MNIST digits and the most confident
    ``fraction`` of each class it predicts (the next entry of ``self_training_fractions``) joins the training set
    with the predicted label.  A classifier of UCI digits alone reads about 78% of MNIST right; three rounds
    bring it to 93-95%.  The rounds' picks are kept in checkpoints, so a resume is exact; the trainer must
    rebuild its loader every epoch (``trainer.reload_dataloaders_every_n_epochs: 1``).
    """

    def __init__(
        self,
        image_size: int = 28,                       # side of the framed digits (28: MNIST's)
        digit_box: int | None = None,               # side of the upscaled digit; default 20/28 of image_size
        subset: int | None = None,                  # use only the first `subset` of the 1,797 digits
        batch_size: int = 64,
        seed: int = 0,                              # shuffling seed
        unlabeled_mnist: str | None = None,         # MNIST root (<root>/MNIST/raw) to self-train on; None: off
        self_training_start: int = 30,              # first epoch that trains on pseudo-labeled MNIST digits
        self_training_every: int = 5,               # epochs per round (each round picks anew)
        self_training_fractions: Sequence[float] = (0.4, 0.8, 1.0),  # per round: share of each class picked
    ) -> None:
        super().__init__(data_dir="", batch_size=batch_size, image_size=image_size, subset=subset, download=False,
                         pin_memory=False, seed=seed)
        self.digit_box = framed_box(image_size, digit_box)
        if unlabeled_mnist is not None and (self_training_start < 1 or self_training_every < 1 or not
                                            self_training_fractions or
                                            not all(0 < f <= 1 for f in self_training_fractions)):
            raise ValueError(f"data.self_training_start={self_training_start} and self_training_every="
                             f"{self_training_every} must be >= 1 (the first round needs a trained classifier) and "
                             f"self_training_fractions={list(self_training_fractions)} must lie in (0, 1].")
        self.unlabeled_mnist, self.self_training_start = unlabeled_mnist, self_training_start
        self.self_training_every, self.self_training_fractions = self_training_every, list(self_training_fractions)
        self.unlabeled: Tensor | None = None       # uint8 MNIST digits (no labels)
        self.round = -1                            # the self-training round whose picks are held
        self.picked = torch.zeros(0, dtype=torch.long)   # indices into `unlabeled`
        self.pseudo = torch.zeros(0, dtype=torch.long)   # the classifier's labels for them

    def _mnist(self) -> MNISTDataModule:
        return MNISTDataModule(self.unlabeled_mnist, image_size=self.image_size)  # type: ignore[arg-type]

    def identity(self) -> dict[str, Any]:
        identity = {"class": type(self).__qualname__, "subset": self.subset, "image_size": self.image_size,
                    "digit_box": self.digit_box}
        if self.unlabeled_mnist is not None:
            identity |= {"unlabeled_mnist": self._mnist().identity(), "self_training": [
                self.self_training_start, self.self_training_every, self.self_training_fractions]}
        return identity

    def prepare_data(self) -> None:
        if self.unlabeled_mnist is not None:  # scikit-learn ships the UCI digits; MNIST may need fetching
            self._mnist().prepare_data()

    def setup(self, stage: str | None = None) -> None:
        if self.images is None:
            images, labels = uci_digits(self.image_size, self.digit_box)
            self.images, self.labels = images[: self.subset], labels[: self.subset]
        if self.unlabeled_mnist is not None and self.unlabeled is None:
            trainer = getattr(self, "trainer", None)
            if stage == "fit" and trainer is not None and trainer.reload_dataloaders_every_n_epochs != 1:
                raise ValueError("data.unlabeled_mnist (self-training) adds the pseudo-labeled digits through a new "
                                 "loader each epoch: set trainer.reload_dataloaders_every_n_epochs: 1 (it is "
                                 f"{trainer.reload_dataloaders_every_n_epochs}).")
            if stage == "fit" and trainer is not None and 0 <= (trainer.max_epochs or -1) <= self.self_training_start:
                rank_zero_warn(f"data.self_training_start={self.self_training_start} but the run stops after "
                               f"trainer.max_epochs={trainer.max_epochs}: no MNIST digit will be pseudo-labeled.")
            mnist = self._mnist()
            mnist.setup()
            self.unlabeled = mnist.images

    def train_dataloader(self) -> ResumableDataLoader:
        self.setup()
        images, labels = self.images, self.labels
        if self.unlabeled_mnist is not None:
            self.update_pseudo_labels()
            images = torch.cat([images, self.unlabeled[self.picked]])  # type: ignore[index]
            labels = torch.cat([labels, self.pseudo])  # type: ignore[list-item]
        return resumable_loader(TensorSampleSet(images, labels, transform=uint8_to_unit), self, self.batch_size,
                                self.seed, pin_memory=False)

    def update_pseudo_labels(self) -> None:
        """At the first epoch of a round, the model's class-balanced picks of MNIST; otherwise the round's own
        (also after a resume, when they come from the checkpoint)."""
        trainer = getattr(self, "trainer", None)
        epoch = trainer.current_epoch if trainer is not None else 0
        start, every = self.self_training_start, self.self_training_every
        round_ = (epoch - start) // every if epoch >= start else -1
        if round_ == self.round:
            return
        self.round = round_
        if round_ < 0:
            self.picked, self.pseudo = torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
            return
        fraction = self.self_training_fractions[min(round_, len(self.self_training_fractions) - 1)]
        self.picked, self.pseudo = class_balanced_pick(predict(trainer.lightning_module, self.unlabeled), fraction)

    def state_dict(self) -> dict[str, Any]:
        return {"round": self.round, "picked": self.picked, "pseudo": self.pseudo}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.round, self.picked, self.pseudo = state["round"], state["picked"], state["pseudo"]


@torch.no_grad()
def predict(model: torch.nn.Module, images: Tensor, batch: int = 500) -> Tensor:
    """The model's logits for uint8 images, in eval mode and on its device, batch by batch (CPU result)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(uint8_to_unit(x.to(device))).float().cpu() for x in images.split(batch)])
    finally:
        model.train(was_training)


def class_balanced_pick(logits: Tensor, fraction: float) -> tuple[Tensor, Tensor]:
    """The indices (ascending) and predicted labels of the ``fraction`` most confident predictions of each
    predicted class: class-balanced self-training (Zou et al. 2018), so a class the model over-predicts cannot
    crowd out the others."""
    confidence, label = logits.softmax(1).max(1)
    picked = []
    for c in label.unique():
        members = torch.nonzero(label == c)[:, 0]
        keep = max(1, round(fraction * len(members)))
        picked.append(members[confidence[members].argsort(descending=True, stable=True)[:keep]])
    chosen = torch.cat(picked).sort().values if picked else torch.zeros(0, dtype=torch.long)
    return chosen, label[chosen]


def framed_box(image_size: int, digit_box: int | None) -> int:
    """The side of an upscaled UCI digit: ``digit_box``, or by default 20/28 of the image as MNIST frames its own."""
    box = round(20 * image_size / 28) if digit_box is None else digit_box
    if not 1 <= box <= image_size:
        raise ValueError(f"data.digit_box={digit_box}: must lie in [1, image_size={image_size}]")
    return box


def uci_digits(image_size: int, box: int) -> tuple[Tensor, Tensor]:
    """scikit-learn's 1,797 UCI digits as uint8 (N, 1, image_size, image_size), upscaled to ``box`` and centred,
    and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1) * (255.0 / 16.0)
    big = F.interpolate(small, size=box, mode="bilinear", align_corners=False).round().clamp(0, 255)
    pad = image_size - box
    framed = F.pad(big, (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2))
    return framed.to(torch.uint8), torch.as_tensor(digits.target)


__all__ = ["DigitsDataModule", "UCIDigitsDataModule", "UnpairedDataModule", "UnpairedImageDataModule",
           "UnpairedSampleSet", "uci_digits"]
