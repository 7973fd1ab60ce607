"""FID and KID through torchmetrics, with the real data's statistics computed once and cached on disk.

Real features depend only on (data set, preprocessing, feature extractor, number of samples), so they are
computed the first time, saved under ``cache_dir`` and loaded by every later run and evaluation: an FID
evaluation then costs only the generated samples.  Generated samples come from the EMA generator when the
module has one.  Two feature extractors:

* ``inception``: torchmetrics' InceptionV3 (needs ``pip install torch-fidelity``); its weights are
  downloaded on first use, or read from ``weights_path`` on an offline machine.  Images are resized to
  299x299 with TensorFlow 1's bilinear resize (torch-fidelity's copy of it, ``antialias=False``), as the
  reference FID code of Heusel et al. (2017) does, so scores are comparable with published ones;
  torchmetrics' own default (``antialias=True``) gives different numbers.
* ``classifier``: the feature layer of a ``gan_modules.DigitClassifier`` checkpoint (``weights_path``), for
  MNIST; it also judges class coverage (``val/classes``, ``val/class_kl``: KL of the predicted-class
  histogram to uniform).
"""

from __future__ import annotations

import inspect
import math
import time
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn
from lightning.pytorch.utilities.seed import isolate_rng
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from datamodules.identity import digest, tensors_digest, weights_digest
from gan_modules.classifier import ClassifierFeatures, load_classifier, newest_match

from .base import GeneratorStepCallback, real_samples
from .protocols import NoiseSampler

INCEPTION_WEIGHTS_URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                         "weights-inception-2015-12-05-6726825d.pth")


class InceptionFeatures(nn.Module):
    """torchmetrics' InceptionV3 pool features (2048-d) for images in [-1, 1] (greyscale repeated to RGB).

    ``antialias=False`` resizes as the reference FID implementation (TensorFlow 1's bilinear resize), which
    published FIDs use; ``True`` is torchmetrics' default, smoother but not comparable with papers.
    """

    def __init__(self, weights_path: str | None = None, antialias: bool = False) -> None:
        super().__init__()
        from torchmetrics.utilities.imports import _TORCH_FIDELITY_AVAILABLE

        if not _TORCH_FIDELITY_AVAILABLE:
            raise ModuleNotFoundError("FID with Inception features needs torch-fidelity: pip install torch-fidelity "
                                      "(or use feature: classifier with a DigitClassifier checkpoint for MNIST).")
        if weights_path is not None and not Path(weights_path).is_file():
            raise FileNotFoundError(f"Inception weights file {weights_path} does not exist; download "
                                    f"{INCEPTION_WEIGHTS_URL} on a machine with a network and copy it there.")
        from torchmetrics.image.fid import NoTrainInceptionV3

        try:
            self.net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                                          feature_extractor_weights_path=weights_path, antialias=antialias)
        except Exception as err:  # the weights download failed (offline)
            raise RuntimeError(f"could not load the Inception weights ({err}). Offline: download "
                               f"{INCEPTION_WEIGHTS_URL} elsewhere and set weights_path to the copied file.") from err
        self.num_features = 2048
        self.antialias = antialias  # the resize changes the features: part of the cache key

    def forward(self, x: Tensor) -> Tensor:
        x = ((x.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.net(x).reshape(len(x), -1)


def classifier_features(weights_path: str) -> nn.Module:
    """The feature layer of a DigitClassifier checkpoint."""
    return ClassifierFeatures(load_classifier(weights_path))


class FID(GeneratorStepCallback):
    """FID (and KID) of ``num_samples`` generated samples against cached real statistics, every N G steps.

    Logs ``val/fid``, ``val/kid`` (and ``val/kid_std``), plus ``val/classes`` and ``val/class_kl`` with the
    classifier, and ``perf/fid_seconds``.  In a distributed run each rank generates its share and
    torchmetrics gathers the statistics across ranks; every rank logs the same values.  KID draws its random
    subsets from a fixed seed, so two evaluations of the same samples agree.
    """

    requires = NoiseSampler

    def __init__(
        self,
        every_n_steps: int = 1000,                               # generator steps between evaluations
        num_samples: int = 5000,                                 # generated (and real) samples per evaluation
        feature: Literal["inception", "classifier"] = "inception",  # feature space
        weights_path: str | None = None,                         # classifier checkpoint / local Inception weights;
                                                                 # a glob takes the newest match
        kid: bool = True,                                        # also KID (unbiased; fine for small samples)
        kid_subset_size: int = 1000,                             # KID subset size (<= num_samples)
        batch_size: int = 250,                                   # samples per forward pass
        cache_dir: str = ".cache/fid",                           # where real statistics are kept
    ) -> None:
        super().__init__(every_n_steps)
        if feature == "classifier" and weights_path is None:
            raise ValueError("FID(feature='classifier') needs weights_path: a DigitClassifier checkpoint.")
        if kid and kid_subset_size > num_samples:
            raise ValueError(f"FID: kid_subset_size={kid_subset_size} is larger than num_samples={num_samples}")
        self.num_samples, self.feature, self.weights_path, self.kid = num_samples, feature, weights_path, kid
        self.kid_subset_size, self.batch_size, self.cache_dir = kid_subset_size, batch_size, Path(cache_dir)
        self.extractor: nn.Module | None = None
        self.last: dict[str, float] = {}
        self.unavailable: str | None = None  # why no FID can be computed in this run (said once at start-up)

    def setup(self, trainer: L.Trainer, pl_module: Any, stage: str) -> None:
        """Load the feature extractor now: without one (no weights offline, no classifier trained yet) the run
        goes on with a single warning that says how to get it, and logs no FID."""
        super().setup(trainer, pl_module, stage)
        try:
            with isolate_rng():  # building a classifier draws its initial weights: not from the training RNG
                self.build_extractor()
        except (FileNotFoundError, ModuleNotFoundError, RuntimeError) as err:
            self.unavailable = str(err)
            rank_zero_warn(f"callbacks.FID is off for this run: {err}")

    # -------------------------------------------------------------- pieces
    def build_extractor(self) -> nn.Module:
        if self.extractor is None:
            path = newest_match(self.weights_path)
            self.extractor = InceptionFeatures(path) if self.feature == "inception" else classifier_features(path)
        return self.extractor

    def cache_file(self, trainer: L.Trainer) -> Path:
        """One file per (real data, feature extractor, number of real samples), each identified by content.

        The data module states what determines its samples (``identity()``: files with their sizes and
        modification times, preprocessing, subset, seed; see ``datamodules.identity``), so how the data are
        served (batch size, workers, ``data_on_device``) never matters; a data module without ``identity()`` is
        identified by the real samples themselves.  The extractor counts by its weights' hash (not a file name)
        and its class's source code, which holds its preprocessing.
        """
        dm = trainer.datamodule
        data = (dm.identity() if hasattr(dm, "identity")
                else {"samples_sha256": tensors_digest({"samples": real_samples(trainer, self.num_samples)})})
        extractor = self.build_extractor()
        try:
            code = inspect.getsource(type(extractor))
        except (OSError, TypeError):  # a class defined interactively has no source file
            code = type(extractor).__qualname__
        features = {"code": code, "weights": weights_digest(extractor),
                    "antialias": getattr(extractor, "antialias", None)}
        key = {"data": data, "features": features, "n": self.num_samples}
        return self.cache_dir / f"{type(dm).__name__}-{digest(key)[:16]}.pt"

    def real_statistics(self, trainer: L.Trainer, device: torch.device) -> dict[str, Tensor]:
        """The real features' sum, outer-product sum and count (FID) and the features (KID), cached."""
        path = self.cache_file(trainer)
        if path.exists():
            return torch.load(path, map_location=device, weights_only=True)
        extractor = self.build_extractor().to(device)
        feats = []
        with torch.no_grad():
            for chunk in real_samples(trainer, self.num_samples).split(self.batch_size):
                feats.append(extractor(chunk.to(device)).double())
        f = torch.cat(feats)
        stats = {"sum": f.sum(0), "cov_sum": f.T @ f, "n": torch.tensor(len(f)), "features": f.float()}
        if trainer.is_global_zero:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            torch.save({k: v.cpu() for k, v in stats.items()}, tmp)
            tmp.replace(path)
        return stats

    def evaluate(self, trainer: L.Trainer, pl_module: Any) -> dict[str, float]:
        """Compute the scores now (also usable outside training, e.g. from a benchmark)."""
        start = time.perf_counter()
        device = pl_module.device
        extractor = self.build_extractor().to(device)
        fid = FrechetInceptionDistance(feature=extractor, reset_real_features=False).to(device)
        kid = (KernelInceptionDistance(feature=extractor, subset_size=self.kid_subset_size,
                                       reset_real_features=False).to(device) if self.kid else None)
        real = self.real_statistics(trainer, device)
        if trainer.is_global_zero:  # FID's states are summed across ranks: the real ones must be counted once
            fid.real_features_sum += real["sum"]
            fid.real_features_cov_sum += real["cov_sum"]
            fid.real_features_num_samples += real["n"].to(device)
        if kid is not None:  # KID's lists are gathered entry by entry: every rank adds its share of the real
            # features, so all ranks make the same collective calls and together they hold the whole real set
            kid.real_features.append(real["features"].tensor_split(trainer.world_size)[trainer.global_rank])
        world = trainer.world_size
        per_rank = math.ceil(self.num_samples / world)
        classes = []
        for start_i in range(0, per_rank, self.batch_size):
            fake = pl_module.sample(min(self.batch_size, per_rank - start_i))
            with torch.no_grad():
                fid.update(fake, real=False)
                if kid is not None:
                    kid.update(fake, real=False)
                if self.feature == "classifier":
                    classes.append(extractor.classifier(fake).argmax(1))
        scores = {"val/fid": float(fid.compute())}
        if kid is not None:
            with isolate_rng():  # KID's random subsets: the same on every rank and at every evaluation
                torch.manual_seed(0)
                kid_mean, kid_std = kid.compute()
            scores |= {"val/kid": float(kid_mean), "val/kid_std": float(kid_std)}
        if classes:
            predicted = torch.cat(classes)
            if world > 1:  # every rank judges all the samples, so every rank logs the same coverage
                predicted = pl_module.all_gather(predicted).reshape(-1)
            scores |= class_coverage(predicted, extractor.classifier.hparams.num_classes)
        scores["perf/fid_seconds"] = time.perf_counter() - start
        return scores

    def run(self, trainer: L.Trainer, pl_module: Any) -> None:
        if self.unavailable is not None:
            return
        self.last = self.evaluate(trainer, pl_module)
        pl_module.log_metrics(self.last)


def class_coverage(predicted: Tensor, num_classes: int) -> dict[str, float]:
    """How many classes the predictions hit, and KL(class histogram || uniform)."""
    counts = torch.bincount(predicted.cpu(), minlength=num_classes).double()
    p = counts[counts > 0] / counts.sum()
    return {"val/classes": float((counts > 0).sum()), "val/class_kl": float((p * torch.log(p * num_classes)).sum())}
