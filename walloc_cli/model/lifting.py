"""The CDF 9/7 lifting scheme, written once for numpy arrays and torch tensors alike.

:mod:`walloc_cli.model.wpt` (torch, the training reference) and :mod:`walloc_cli.model.lean_wpt`
(numpy, what ``compress``/``decompress`` run) both derive their fast filters from these functions
and run them directly on short signals. The arithmetic is the same for both array types; the
only calls that differ by library are ``concatenate`` and ``stack``, which numpy and torch spell
alike (``xp.concatenate(list, axis=-1)``, ``xp.stack(list, axis=-1)``), so each function takes
the array namespace ``xp`` (the ``numpy`` or ``torch`` module) and imports neither library.

Definition: one level along the last axis is the lifting scheme of JPEG 2000 Part 1 (Annex F:
predict/update steps ``ALPHA..DELTA``, then scaling), normalised like PyWavelets' ``bior4.4``
(low-pass DC gain sqrt(2), high-pass Nyquist gain sqrt(2), high-pass sign as PyWavelets), with
whole-sample **symmetric** (or **periodic**) extension at the ends.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

from walloc_cli.model.config import Boundary

# CDF 9/7 lifting coefficients (Daubechies & Sweldens 1998; JPEG 2000 Part 1, Annex F).
ALPHA = -1.586134342059924
BETA = -0.052980118572961
GAMMA = 0.882911075530934
DELTA = 0.443506852043971
KAPPA = 1.230174104914001
# Scale factors that make the bands match PyWavelets' bior4.4 normalisation.
LOW_GAIN = math.sqrt(2.0) / KAPPA
HIGH_GAIN = -KAPPA / math.sqrt(2.0)  # sign as PyWavelets

Array = Any  # numpy.ndarray or torch.Tensor: neither library is imported here


def shift_next(v: Array, boundary: Boundary, xp: ModuleType) -> Array:
    """``v[i+1]`` along the last axis with the boundary rule of the even (low) samples.

    Whole-sample symmetric extension of an even-length signal ``x`` gives ``x[n] = x[n-2]``,
    i.e. the even subsequence repeats its last element.
    """
    tail = v[..., -1:] if boundary == "symmetric" else v[..., :1]
    return xp.concatenate([v[..., 1:], tail], axis=-1)


def shift_prev(v: Array, boundary: Boundary, xp: ModuleType) -> Array:
    """``v[i-1]`` along the last axis; symmetric extension gives ``x[-1] = x[1]`` (odd samples)."""
    head = v[..., :1] if boundary == "symmetric" else v[..., -1:]
    return xp.concatenate([head, v[..., :-1]], axis=-1)


def lift_forward(x: Array, boundary: Boundary, xp: ModuleType) -> tuple[Array, Array]:
    """One CDF 9/7 analysis level along the last axis: ``(..., n)``, ``n`` even, to
    ``(low, high)``, each ``(..., n/2)``."""
    s, d = x[..., 0::2], x[..., 1::2]
    d = d + ALPHA * (s + shift_next(s, boundary, xp))
    s = s + BETA * (shift_prev(d, boundary, xp) + d)
    d = d + GAMMA * (s + shift_next(s, boundary, xp))
    s = s + DELTA * (shift_prev(d, boundary, xp) + d)
    return s * LOW_GAIN, d * HIGH_GAIN


def lift_inverse(low: Array, high: Array, boundary: Boundary, xp: ModuleType) -> Array:
    """Inverse of :func:`lift_forward`: ``(..., m)`` twice to ``(..., 2m)``."""
    s, d = low / LOW_GAIN, high / HIGH_GAIN
    s = s - DELTA * (shift_prev(d, boundary, xp) + d)
    d = d - GAMMA * (s + shift_next(s, boundary, xp))
    s = s - BETA * (shift_prev(d, boundary, xp) + d)
    d = d - ALPHA * (s + shift_next(s, boundary, xp))
    return xp.stack([s, d], axis=-1).reshape(*s.shape[:-1], -1)


def packet_lifting(x: Array, levels: int, boundary: Boundary, xp: ModuleType) -> Array:
    """J-level 1-D packet transform along the last axis by lifting (exact boundaries).

    Args:
        x: ``(..., n)`` with ``n`` divisible by ``2**levels``.
    Returns:
        ``(..., 2**levels, n / 2**levels)``; band index bits = low/high per level, first level MSB.
    """
    bands = x[..., None, :]  # (..., 1, n)
    for _ in range(levels):
        low, high = lift_forward(bands, boundary, xp)
        bands = xp.stack([low, high], axis=-2).reshape(*low.shape[:-2], -1, low.shape[-1])  # (..., 2B, n/2)
    return bands


def packet_lifting_inverse(bands: Array, levels: int, boundary: Boundary, xp: ModuleType) -> Array:
    """Inverse of :func:`packet_lifting`: ``(..., 2**levels, m)`` to ``(..., m * 2**levels)``."""
    for _ in range(levels):
        pairs = bands.reshape(*bands.shape[:-2], bands.shape[-2] // 2, 2, bands.shape[-1])
        bands = lift_inverse(pairs[..., 0, :], pairs[..., 1, :], boundary, xp)
    return bands[..., 0, :]
