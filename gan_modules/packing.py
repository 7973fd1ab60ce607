"""PacGAN's packing (Lin et al. 2018): the discriminator scores ``m`` samples at once, concatenated along
channels (images) or features (vectors), so a generator that repeats itself is seen doing so.

Layout: consecutive samples form a pack, ``x[k*m : (k+1)*m]`` is pack ``k``, and sample ``j`` of a pack
fills the channels ``[j*C, (j+1)*C)``.  A real batch and a generated batch whose sizes are multiples of
``m`` therefore never share a pack, even concatenated into one critic call.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor


def packed_shape(data_shape: Sequence[int], pack: int) -> tuple[int, ...]:
    """The shape the discriminator sees: the first (channel or feature) dimension ``pack`` times wider."""
    return (int(data_shape[0]) * pack, *(int(s) for s in data_shape[1:]))


def pack_samples(x: Tensor, pack: int) -> Tensor:
    """``(N, C, ...) -> (N/pack, pack*C, ...)``, each ``pack`` consecutive samples side by side along dim 1."""
    if pack == 1:
        return x
    if x.shape[0] % pack:
        raise ValueError(f"model.pack={pack}: the discriminator got {x.shape[0]} samples, not a multiple of the "
                         f"pack; make the critic batch size (data.batch_size) a multiple of {pack}.")
    return x.reshape(x.shape[0] // pack, pack * x.shape[1], *x.shape[2:])


def unpack_samples(x: Tensor, pack: int) -> Tensor:
    """The inverse of :func:`pack_samples`: ``(N/pack, pack*C, ...) -> (N, C, ...)``."""
    if pack == 1:
        return x
    return x.reshape(x.shape[0] * pack, x.shape[1] // pack, *x.shape[2:])


__all__ = ["pack_samples", "packed_shape", "unpack_samples"]
