"""CelebA split by one attribute into two unpaired domains: A = faces without it, B = faces with it.

The attributes come from CelebA's ``list_attr_celeba.txt`` (Liu et al. 2015): a count line, a line of the 40
attribute names, then one line per image, ``000001.jpg -1  1  1 ...`` (1 = has it, -1 = has not).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

from .identity import files_identity
from .images import CelebADataModule, read_celeba_attributes
from .unpaired import DOMAINS, ListedImages, UnpairedDataModule

ATTRIBUTES_FILE = CelebADataModule.ATTRIBUTES_FILE


def read_attribute(path: Path, attribute: str) -> dict[str, bool]:
    """File name -> whether the face has ``attribute``, from a ``list_attr_celeba.txt`` (the conditional CelebA's
    parser, :func:`datamodules.images.read_celeba_attributes`)."""
    names, table = read_celeba_attributes(path)
    if attribute not in names:
        raise ValueError(f"data.attribute={attribute!r} is not in {path}; its attributes are: {', '.join(names)}")
    column = names.index(attribute)
    return {name: row[column] == 1 for name, row in table.items()}


class CelebAAttributeDataModule(UnpairedDataModule):
    """CelebA's aligned faces without (A) and with (B) ``attribute``, e.g. ``Eyeglasses`` (13,193 of 202,599 have
    glasses).  Each domain's last ``num_test`` faces (in file order) are held out as its fixed test images; faces
    are centre-cropped to 178x178 (CelebA's width), resized to ``load_size`` and cached once per domain."""

    def __init__(
        self,
        data_dir: str = "data",               # holds img_align_celeba/ (see CelebADataModule) and the attributes
        attribute: str = "Eyeglasses",        # column of list_attr_celeba.txt that splits the domains
        attributes_file: str | None = None,   # default: list_attr_celeba.txt next to img_align_celeba/ or in data_dir
        max_per_domain: int | None = None,    # use only the first faces of each domain (sorted by file name)
        load_size: int = 143,                 # 286/256 of crop_size, the paper's ratio
        crop_size: int = 128,
        num_workers: int = 2,                 # processes that decode while the caches are built
        cache_dir: str | None = None,         # default: <data_dir>/.gan_lab_cache
        **kwargs: Any,                        # flip, batch_size, num_test, seed
    ) -> None:
        super().__init__(load_size=load_size, crop_size=crop_size, channels=3, **kwargs)
        self.data_dir, self.attribute, self.num_workers = data_dir, attribute, num_workers
        self.attributes_file, self.max_per_domain, self.cache_dir = attributes_file, max_per_domain, cache_dir
        self._files: dict[str, list[Path]] | None = None

    @property
    def root(self) -> Path:
        return CelebADataModule(self.data_dir).image_root()  # names the expected layout when missing

    @property
    def files(self) -> dict[str, list[Path]]:
        """Each domain's faces (read once from the attributes file); too few faces in a domain is an error."""
        if self._files is None:
            path = Path(self.attributes_file) if self.attributes_file else self._find_attributes()
            has, root = read_attribute(path, self.attribute), self.root
            self._files = {d: [root / name for name in sorted(has) if has[name] == (d == "B")
                               and (root / name).is_file()] for d in DOMAINS}
            for d, files in self._files.items():
                if len(files) <= self.num_test:
                    state = "with" if d == "B" else "without"
                    raise FileNotFoundError(f"domain {d} (faces {state} {self.attribute}) has {len(files)} images in "
                                            f"{root}, too few for num_test={self.num_test} test images and training; "
                                            "check data.init_args.data_dir and the attributes file.")
                if self.max_per_domain:
                    self._files[d] = files[: self.max_per_domain + self.num_test]
        return self._files

    def _find_attributes(self) -> Path:
        candidates = [self.root.parent / ATTRIBUTES_FILE, Path(self.data_dir) / ATTRIBUTES_FILE,
                      self.root.parent / "Anno" / ATTRIBUTES_FILE]
        for path in candidates:
            if path.is_file():
                return path
        raise FileNotFoundError(f"{ATTRIBUTES_FILE} not found at {', '.join(str(p) for p in candidates)}: download it "
                                "with the images (CelebA's Anno/ folder) or set data.init_args.attributes_file.")

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "attribute": self.attribute,
                **{d: files_identity(files, self.root) for d, files in self.files.items()}}

    def _domain(self, d: str) -> ListedImages:
        return ListedImages(self.root, self.files[d], image_size=self.load_size, channels=3, crop=178,
                            num_workers=self.num_workers,
                            cache_dir=self.cache_dir or str(Path(self.data_dir, ".gan_lab_cache")))

    def prepare_data(self) -> None:
        for d in DOMAINS:
            self._domain(d).prepare_data()

    def load_domains(self) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        images = {d: self._domain(d).uint8_images() for d in DOMAINS}
        k = self.num_test
        return {d: x[:-k] if k else x for d, x in images.items()}, {d: x[-k:] for d, x in images.items() if k}


__all__ = ["CelebAAttributeDataModule", "read_attribute"]
