"""Scores for class-conditional generators: does each sample show the class it was asked for, and how good is
each class on its own."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torchmetrics.image.fid import FrechetInceptionDistance

from datamodules.identity import digest, tensors_digest

from .fid import FID
from .protocols import ConditionalSampler, conditional


class ConditionalFID(FID):
    """:class:`callbacks.FID` (its feature extractors, cached real statistics, ``val/fid``, ``val/kid``, ...) plus,
    for a conditional model, every ``every_n_steps`` generator steps:

    * ``val/label_accuracy``: the share of samples the digit classifier reads as the class they were drawn for
      (``feature: classifier`` only), ``val/label_accuracy_min``, the worst class's share, and each class's
      ``val/label_accuracy/<class>``;
    * ``val/intra_fid``: FID computed per class (samples of class c against the real samples of class c, in the
      same feature space) and averaged over the classes (Miyato & Koyama 2018).

    The real samples of each class come from the data module (``real_samples(n, labels=True)``); their
    statistics are cached on disk beside FID's.  The per-class samples come from fixed noise (``seed``), so
    every rank and every evaluation draws the same ones.
    """

    requires = ConditionalSampler

    def __init__(self, *args: Any, per_class: int | None = None, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.per_class = per_class  # generated samples per class (default: num_samples / classes)
        self.seed = seed            # of the per-class noise

    def setup(self, trainer: L.Trainer, pl_module: Any, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if not conditional(pl_module):
            raise TypeError(f"ConditionalFID cannot observe {type(pl_module).__name__}: it is unconditional (no "
                            "num_classes). Use callbacks.FID, or a conditional model (gan_modules.CGAN, ...).")
        if self.unavailable is None and not _has_labeled_real_samples(trainer.datamodule):
            raise TypeError(f"ConditionalFID needs a data module that gives labeled real samples "
                            f"(real_samples(n, labels=True)); {type(trainer.datamodule).__name__} does not.")

    def class_statistics(self, trainer: L.Trainer, device: torch.device) -> list[dict[str, Tensor]]:
        """Per class: the real features' sum, outer-product sum and count, cached beside FID's statistics."""
        real, labels = trainer.datamodule.real_samples(self.num_samples, labels=True)
        base = self.cache_file(trainer)
        path = base.with_name(f"{base.stem}-classes-{digest({'labels': tensors_digest({'y': labels})})[:12]}.pt")
        if path.exists():
            return torch.load(path, map_location=device, weights_only=True)
        extractor = self.build_extractor().to(device)
        with torch.no_grad():
            f = torch.cat([extractor(chunk.to(device)).double() for chunk in real.split(self.batch_size)])
        labels = labels.to(device)
        stats = [{"sum": f[labels == c].sum(0), "cov_sum": f[labels == c].T @ f[labels == c],
                  "n": (labels == c).sum()} for c in range(int(labels.max()) + 1)]
        if trainer.is_global_zero:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            torch.save([{k: v.cpu() for k, v in s.items()} for s in stats], tmp)
            tmp.replace(path)
        return stats

    def evaluate(self, trainer: L.Trainer, pl_module: Any) -> dict[str, float]:
        scores = super().evaluate(trainer, pl_module)
        start = time.perf_counter()
        scores |= self.class_scores(trainer, pl_module)
        scores["perf/fid_seconds"] += time.perf_counter() - start
        return scores

    def class_scores(self, trainer: L.Trainer, pl_module: Any) -> dict[str, float]:
        """``val/intra_fid`` and (with the classifier) ``val/label_accuracy``, ``val/label_accuracy_min`` and each
        class's ``val/label_accuracy/<class>``."""
        device, classes = pl_module.device, pl_module.num_classes
        extractor = self.build_extractor().to(device)
        real = self.class_statistics(trainer, device)
        if len(real) > classes:
            raise ValueError(f"the data have {len(real)} classes, the model {classes}")
        per_class = self.per_class or max(self.num_samples // classes, 2)
        gen = torch.Generator().manual_seed(self.seed)
        fids, accuracy = [], {}
        for c in range(classes):
            if c >= len(real) or int(real[c]["n"]) < 2:
                continue  # a class with (almost) no real samples has no real statistics to compare with
            fid = FrechetInceptionDistance(feature=extractor, reset_real_features=False, sync_on_compute=False)
            fid = fid.to(device)
            fid.real_features_sum += real[c]["sum"]
            fid.real_features_cov_sum += real[c]["cov_sum"]
            fid.real_features_num_samples += real[c]["n"].to(device)
            hits = 0
            for start in range(0, per_class, self.batch_size):
                m = min(self.batch_size, per_class - start)
                z = torch.randn(m, pl_module.latent_dim, generator=gen).to(device)
                fake = pl_module.sample(z=z, labels=torch.full((m,), c, dtype=torch.long))
                with torch.no_grad():
                    fid.update(fake, real=False)
                    if self.feature == "classifier":
                        hits += int((extractor.classifier(fake).argmax(1) == c).sum())
            fids.append(float(fid.compute()))
            accuracy[c] = hits / per_class
        scores = {"val/intra_fid": sum(fids) / len(fids)}
        if self.feature == "classifier":
            scores |= {"val/label_accuracy": sum(accuracy.values()) / len(accuracy),
                       "val/label_accuracy_min": min(accuracy.values())}
            scores |= {f"val/label_accuracy/{c}": a for c, a in accuracy.items()}  # which class is weak
        return scores


def _has_labeled_real_samples(datamodule: Any) -> bool:
    try:
        batch = datamodule.real_samples(2, labels=True)
    except (TypeError, ValueError, AttributeError):
        return False
    return isinstance(batch, tuple) and len(batch) == 2


__all__ = ["ConditionalFID"]
