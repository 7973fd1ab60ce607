"""What determines a data set's samples, stated as a JSON-able dict: the key of every cache of derived data.

Every data module here has ``identity() -> dict``: the files it reads (each with its size and modification
time), the preprocessing (image size, crop, channels), the subset, and for the synthetic sets the
distribution's parameters, the sample size and the seed.  Settings that only change how the same samples
are served (batch size, workers, pinned memory, ``data_on_device``) are left out, so they never invalidate a
cache; anything that changes a sample changes the identity.  Sizes and modification times are what ``make``
and ``rsync`` trust to spot an edited file; they cost one ``stat`` per file instead of reading the data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn


def files_identity(files: Sequence[Path], root: Path) -> dict[str, Any]:
    """The files' folder, count and a digest of their relative paths, sizes and modification times."""
    listing = hashlib.sha256()
    for f in files:
        stat = f.stat()
        listing.update(f"{f.relative_to(root).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return {"root": str(root.resolve()), "files": len(files), "paths_sizes_mtimes_sha256": listing.hexdigest()}


def digest(identity: Any) -> str:
    """A hex digest of a JSON-able identity (dict keys in sorted order, so insertion order does not matter)."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def tensors_digest(tensors: Mapping[str, Tensor]) -> str:
    """A hex digest of named tensors' names, dtypes, shapes and bytes (e.g. a ``state_dict``), wherever they live."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach()
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\n".encode())
        h.update(t.cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def weights_digest(module: nn.Module) -> str:
    """A hex digest of a module's parameters and buffers: the same weights give the same digest, whatever file
    or path they were loaded from."""
    return tensors_digest(module.state_dict())
