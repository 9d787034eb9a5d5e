"""The context model of the ``ctx`` payload (format 2.2, normative: ``formats/wlc.md``): the
coding order of a channel, each value's prediction and context, and the class of distribution
it is coded with. :mod:`walloc_cli.format.payload_ctx` codes with it.

Hand-written because no library models an integer tensor this way: a latent value is predicted
by its decoded neighbours (a dyadic interlaced order gives every position neighbours on all
sides) and its magnitude by theirs and by the channels decoded before it at the same place.
Everything a decoder computes is integer or elementwise IEEE float (no sums of floats, no
``exp``/``log``/``pow``: constants come from literals, classes from ``frexp`` and comparisons),
so every machine picks the same class for every value.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import numpy as np

FLOOR = 9  # class 0 has E|x| = 2**-FLOOR: the all-but-zero high-pass values of low rates
CLASSES = 60  # nominal E|x| from 2**-9 to 2**5.75, four classes an octave
RANGE = 127  # |x| <= RANGE is one symbol; larger values are escaped (symbol 2*RANGE + 1)
ESCAPE = 2 * RANGE + 1
# 2**(f/16), f = 0..15, as literals: the decoder must not depend on a platform's pow()/exp().
_POW16 = (
    1.0, 1.0442737824274138, 1.0905077326652577, 1.1387886347566916, 1.189207115002721, 1.241857812073484,
    1.2968395546510096, 1.3542555469368927, 1.4142135623730951, 1.4768261459394993, 1.5422108254079407,
    1.6104903319492543, 1.681792830507429, 1.7562521603732995, 1.8340080864093424, 1.9152065613971474,
)
# Class j has E|x| = 2**(j/4 - FLOOR): an estimate 2**e * m (m in [0.5, 1)) is in class
# 4*(e - 1) + 4*FLOOR + how many of these mantissa thresholds 2**((k + 0.5)/4 - 1), k = 0..3, it reaches.
_QUARTERS = tuple(math.ldexp(_POW16[2 + 4 * k], -1) for k in range(4))
_CROSS_ONE = 1 << 12  # fixed-point unit of the activity map
_MAGNITUDE_CAP = (1 << 16) - 1  # a residual's magnitude in the activity map, capped (uint16 storage)
# Values (channels x positions) whose contexts are computed at once: bounds the scratch memory
# (a few tens of MB) whatever the image size; a 150 MP photo has batches of 28 M values.
SLICE = 1 << 20


def constriction() -> Any:
    """The range coder's package, imported when a ``ctx`` payload is coded (its submodules are
    attributes of a compiled module, not importable by path)."""
    import constriction as package

    return package


def _pow2_16(sixteenths: int) -> float:
    """``2 ** (sixteenths / 16)``, exact to the table above on every machine."""
    whole, fraction = divmod(sixteenths, 16)
    return math.ldexp(_POW16[fraction], whole)


def coefficient(code: int) -> float:
    """The value of a coefficient byte: 0 for 0, else ``2 ** ((code - 128) / 16)``."""
    return 0.0 if code == 0 else _pow2_16(code - 128)


def coefficient_code(value: float) -> int:
    """The byte whose :func:`coefficient` is nearest ``value`` in log scale (0 for ``value <= 0``)."""
    if not value > 2.0**-8.5:
        return 0
    return int(min(255, max(1, round(128 + 16 * math.log2(value)))))


@lru_cache(maxsize=None)
def class_frequencies() -> np.ndarray:
    """The :data:`CLASSES` frequency tables (CLASSES, 2*RANGE + 2) int64 over the symbols value
    + RANGE, then the escape: class ``j`` is the two-sided geometric distribution with
    ``E|x| = 2**(j/4 - 9)``, computed with exact IEEE operations only (one ``sqrt``, products
    in a fixed order)."""
    rows = []
    for j in range(CLASSES):
        mean = math.ldexp(_pow2_16(4 * j), -FLOOR)
        theta = (math.sqrt(1.0 + mean * mean) - 1.0) / mean  # two-sided geometric with E|x| = mean
        weights = [1.0]
        for _ in range(RANGE):
            weights.append(weights[-1] * theta)
        tail = weights[-1] * theta / (1.0 - theta)  # mass beyond RANGE, one side
        freq = [math.floor(w * 2.0**24) for w in weights]
        rows.append(freq[:0:-1] + freq + [max(1, math.floor(2.0 * tail * 2.0**24))])
    return np.array(rows, np.int64)


@lru_cache(maxsize=None)
def class_models() -> tuple[Any, ...]:
    """One ``constriction`` categorical model (``perfect=False``) per row of
    :func:`class_frequencies`: the range coder's fixed-point approximation of each table."""
    Categorical = constriction().stream.model.Categorical
    return tuple(Categorical(row.astype(np.float64), perfect=False) for row in class_frequencies())


def coarse_stride(dims: int) -> int:
    """Stride of the coarse grid that starts each channel: about 1/64 of the positions (8 for
    images, 64 for audio, 4 for volumes)."""
    return 1 << -(-6 // dims)


@lru_cache(maxsize=8)
def schedule(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...], tuple[int, ...]]:
    """The coding order of a channel of spatial ``shape``: the coarse grid (every
    :func:`coarse_stride`-th position on each axis, row-major), then each finer grid down to
    every position in up to ``N`` batches (positions with more odd coordinates first). Each batch
    is one vectorised step of the decoder: a full pyramid from one position had twice the
    batches (13 against 7 for a 600x800 photo) for 0.3% fewer bytes.

    Returns ``(order, bounds, neighbours, coarse)``: ``order`` (P,) the flat positions in coding
    order; ``bounds`` (B + 1,) where each batch starts (a batch's values depend only on earlier
    batches); ``neighbours``, per batch, (k, m) int32 flat indices of each position's decoded
    neighbours among its ``3**N - 1`` at the batch's stride (``m`` the most any position of the
    batch has; a position with fewer repeats its first one; the coarse grid has none: ``P``, a
    zero sentinel); ``coarse`` the coarse grid's shape.
    """
    size = int(np.prod(shape))
    dims = len(shape)
    extent = np.array(shape)
    stride = coarse_stride(dims)
    coarse_axes = [np.arange(0, n, stride) for n in shape]
    grid = np.meshgrid(*coarse_axes, indexing="ij")
    batches: list[tuple[int, np.ndarray]] = [(stride, np.stack([g.ravel() for g in grid], 1))]
    while stride > 1:
        half = stride // 2
        for odd in range(dims, 0, -1):
            parts = []
            for axes in itertools.combinations(range(dims), odd):
                grid = np.meshgrid(*[np.arange(half if a in axes else 0, n, stride) for a, n in enumerate(shape)], indexing="ij")
                parts.append(np.stack([g.ravel() for g in grid], 1))
            points = np.concatenate(parts)
            if len(points):
                batches.append((half, points))
        stride = half
    offsets = np.array([o for o in itertools.product((-1, 0, 1), repeat=dims) if any(o)])
    done = np.zeros(size + 1, bool)  # the sentinel (index size) is never decoded
    orders, neighbours, bounds = [], [], [0]
    for step, points in batches:
        flat = np.ravel_multi_index(tuple(points.T), shape)
        near = points[:, None, :] + step * offsets[None, :, :]  # (k, M, N)
        inside = np.all((near >= 0) & (near < extent), axis=2)
        index = np.where(inside, np.ravel_multi_index(tuple(np.clip(near, 0, extent - 1).transpose(2, 0, 1)), shape), size)
        index = np.where(done[index], index, size)
        index = np.sort(index, axis=1)  # decoded ones first (the sentinel is the largest index)
        width = max(1, int((index != size).sum(1).max(initial=0)))
        index = index[:, :width]
        # Fewer than ``width`` (a border): repeat the first neighbour, so that every position of
        # the batch averages ``width`` values and no mask is needed.
        index = np.where(index == size, index[:, :1], index)
        orders.append(flat)
        neighbours.append(np.ascontiguousarray(index, np.int32))
        bounds.append(bounds[-1] + len(flat))
        done[flat] = True
    return np.concatenate(orders), np.array(bounds), tuple(neighbours), tuple(len(a) for a in coarse_axes)


def difference(grid: np.ndarray) -> np.ndarray:
    """The coarse grid's prediction residual in mode 2: the finite difference along every axis
    (in 2-D ``x - left - up + up-left``, the planar predictor; zeros outside), int64."""
    out = grid.astype(np.int64)
    for axis in range(out.ndim):
        out = np.diff(out, axis=axis, prepend=0)
    return out


def integrate(residual: np.ndarray) -> np.ndarray:
    """Inverse of :func:`difference`: cumulative sums along every axis."""
    out = residual.astype(np.int64)
    for axis in range(out.ndim):
        out = np.cumsum(out, axis=axis)
    return out


def groups(channels: int) -> list[tuple[int, int]]:
    """Channel groups coded together, ``(start, stop)``: 0-1, 1-3, then 3-6, 6-12, 12-24, ...
    (each doubling). Within a group every channel is decoded in the same vectorised steps, so
    the cross-channel activity a channel sees is that of the groups before it. One group per
    channel saved 0.5% more bytes at 10x the decode time (8 validation photos); channel 0 alone
    lets channels 1-2 predict from its residuals (mode 3)."""
    out, start, stop = [], 0, min(1, channels)
    while start < channels:
        out.append((start, stop))
        start, stop = stop, min(channels, 3 if stop == 1 else 2 * stop)
    return out


def _box(values: np.ndarray) -> np.ndarray:
    """Sum of each position's ``3**N`` neighbourhood (zeros outside), int64, same shape."""
    total = values.astype(np.int64)
    for axis in range(values.ndim):
        padded = np.pad(total, [(1, 1) if a == axis else (0, 0) for a in range(values.ndim)])
        total = padded[tuple(slice(0, -2) if a == axis else slice(None) for a in range(values.ndim))] + total + padded[tuple(slice(2, None) if a == axis else slice(None) for a in range(values.ndim))]
    return total


class Activity:
    """The cross-channel activity map: every live channel of the groups decoded so far, its
    residual magnitudes (capped at 65535) scaled to a mean of :data:`_CROSS_ONE` per position
    (integer), summed over a ``3**N`` box when read."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape
        self.total = np.zeros(int(np.prod(shape)), np.int64)
        self.channels = 0
        self.cells = _box(np.ones(shape, np.int64)).ravel()
        self.boxed: np.ndarray | None = None

    def add(self, magnitudes: np.ndarray) -> None:
        """Fold in one channel's residual magnitudes (P,) uint16, in flat spatial order."""
        weight = (magnitudes.size * _CROSS_ONE) // (int(magnitudes.sum(dtype=np.int64)) + 1)
        self.total += magnitudes.astype(np.int64) * weight
        self.channels += 1
        self.boxed = None

    def at(self, positions: np.ndarray) -> np.ndarray:
        """``cross`` (float64, about 1 on average) at flat ``positions``: 1 before any channel."""
        if not self.channels:
            return np.ones(len(positions))
        if self.boxed is None:
            self.boxed = _box(self.total.reshape(self.shape)).ravel()
        return self.boxed[positions] / (self.cells[positions] * (self.channels * _CROSS_ONE))


def magnitudes(residual: np.ndarray) -> np.ndarray:
    """What a residual adds to the activity map: ``min(|r|, 65535)`` as uint16."""
    return np.minimum(np.abs(residual), _MAGNITUDE_CAP).astype(np.uint16)


def features(values: np.ndarray, neighbours: np.ndarray, predict: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and ``own`` activities of positions with ``neighbours`` (k, m) into ``values``
    (G, P + 1) int32 (the zero sentinel last), for ``G`` channels, ``predict`` (G,) bool (modes 2-3):
    ``mu`` (G, k) int32, the rounded mean of the ``m`` neighbours (0 where not predicted), and
    ``own`` (G, k) float64, their mean absolute deviation from ``mu``. One (G, k) gather per
    neighbour (``np.take``: 2x faster than fancy indexing; a reduction over a last axis of 4-8
    was 3x slower)."""
    width = neighbours.shape[1]
    near = [np.take(values, neighbours[:, j], axis=1) for j in range(width)]
    if predict.any():
        total = near[0].copy()
        for column in near[1:]:
            total += column
        mu = np.where(predict[:, None], (2 * total + width) // (2 * width), 0).astype(np.int32)
        deviation = np.abs(near[0] - mu)
        for column in near[1:]:
            deviation += np.abs(column - mu)
    else:
        mu = np.zeros(near[0].shape, np.int32)
        deviation = np.abs(near[0])
        for column in near[1:]:
            deviation += np.abs(column)
    return mu, deviation / width


def slices(channels: int, count: int) -> Iterator[tuple[int, int]]:
    """``(lo, hi)`` position ranges of a batch of ``count`` positions, at most :data:`SLICE`
    values of ``channels`` channels each."""
    step = max(1, SLICE // max(channels, 1))
    for lo in range(0, count, step):
        yield lo, min(count, lo + step)


def weights(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The coefficients ``a, b, c`` (each (G, 1)) of coefficient bytes ``codes`` (G, >= 3)."""
    return tuple(np.array([coefficient(int(code)) for code in codes[:, i]])[:, None] for i in range(3))  # type: ignore[return-value]


def classes(own: np.ndarray, cross: np.ndarray, weights: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """Class of each value, ``own`` (G, k), ``cross`` (k,), ``weights`` from :func:`weights`:
    the nearest ``j`` to ``4*log2(a*own + b*cross + c) + 4*FLOOR`` in 0..CLASSES-1, found exactly
    (frexp and comparisons with the thresholds, no logarithm)."""
    a, b, c = weights
    estimate = a * own
    estimate += b * cross[None, :]
    estimate += c
    mantissa, exponent = np.frexp(estimate)  # estimate = mantissa * 2**exponent, mantissa in [0.5, 1)
    quarter = (mantissa >= _QUARTERS[0]).astype(np.int32)
    for threshold in _QUARTERS[1:]:
        quarter += mantissa >= threshold
    exponent *= 4
    quarter += exponent
    quarter += 4 * FLOOR - 4
    np.clip(quarter, 0, CLASSES - 1, out=quarter)
    quarter[estimate <= 0] = 0
    return quarter.astype(np.uint8)  # uint8: argsort is then a radix sort


@lru_cache(maxsize=256)
def coarse_class(code: int) -> int:
    """The class of the coarse grid of a mode 2 channel, from its fourth record byte: the
    planar predictor's errors at stride 8 are ~10x its errors at stride 1, which the fitted
    ``a, b, c`` do not see (one shared class cost 1.8% more bytes at q 10 on 8 validation
    photos)."""
    return int(classes(np.zeros((1, 1)), np.zeros(1), weights(np.array([[0, 0, code]])))[0, 0])


def symbols(residual: np.ndarray) -> np.ndarray:
    return np.where(np.abs(residual) > RANGE, ESCAPE, residual + RANGE).astype(np.int32)


