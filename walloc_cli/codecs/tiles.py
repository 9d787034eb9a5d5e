"""Tiled coding with matched boundaries, written once for images (2-D) and volumes (3-D).

A signal ``(C, *S)`` has a *latent grid* of ``ceil(S / 2**J)`` latents per axis; it is cut into
:class:`Tile` boxes of that grid. Coding one tile at a time bounds the working memory by the
tile, not the signal, and the result is the one of the whole signal:

* **Encoder**: a tile's latents are computed from the tile's samples plus
  :func:`encode_margin` samples of real context on each side (clamped at the signal's faces,
  where the whole-signal transform has its own boundary too). The CDF 9/7 packet transform of
  ``J`` levels reaches ``4 * (2**J - 1)`` samples each way (:mod:`walloc_cli.model.wpt`), so with that
  much context the transform never sees an artificial edge inside the signal: the latents equal
  the whole signal's (to float64 rounding of the transform, which reorders sums).
* **Decoder**: a tile is rebuilt from its latents plus :func:`decode_margin` latents of its
  neighbours, more than the decoder CNN's reach (``2 * decoder_blocks + 2`` latents: a head and
  a tail 3-wide convolution and two per residual block) plus the inverse transform's reach
  (``ceil(4 * (2**J - 1) / 2**J)`` blocks), and only the tile's own samples are kept. Tiles
  therefore meet exactly where a whole-signal decode would put them.

Volumes store their tile grid in the file (``VOLT`` chunks, :mod:`walloc_cli.codecs.volume_tiles`);
images do not (their latents are one array, :mod:`walloc_cli.codecs.image_tiles`): there the tiles are
an implementation detail of the coder and never change the bytes.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from walloc_cli.model.config import CodecConfig
from walloc_cli.model.runtime import Runtime


@dataclass(frozen=True)
class Tile:
    """A box of the latent grid: ``origin`` and ``extent`` in latents per axis."""

    origin: tuple[int, ...]
    extent: tuple[int, ...]

    def slices(self) -> tuple[slice, ...]:
        """Where the tile sits in the latent grid (one slice per axis)."""
        return tuple(slice(o, o + e) for o, e in zip(self.origin, self.extent))


def latent_grid(shape: tuple[int, ...], block: int) -> tuple[int, ...]:
    """Latents per axis of a signal of ``shape`` samples: ``ceil(shape / block)``."""
    return tuple(-(-s // block) for s in shape)


def tiles(grid: tuple[int, ...], size: tuple[int, ...]) -> Iterator[Tile]:
    """The tiles (at most ``size`` latents per axis) of a latent grid, in C order (axis 0
    slowest)."""
    for origin in itertools.product(*(range(0, g, t) for g, t in zip(grid, size))):
        yield Tile(tuple(origin), tuple(min(t, g - o) for t, g, o in zip(size, grid, origin)))


def tile_count(grid: tuple[int, ...], size: tuple[int, ...]) -> int:
    """How many tiles :func:`tiles` yields."""
    return math.prod(-(-g // t) for g, t in zip(grid, size))


def tile_samples(tile: Tile, shape: tuple[int, ...], block: int) -> tuple[slice, ...]:
    """Where a tile's samples sit in the signal of ``shape`` (cropped at its faces)."""
    return tuple(slice(o * block, min(s, (o + e) * block)) for o, e, s in zip(tile.origin, tile.extent, shape))


def encode_margin(levels: int) -> int:
    """Samples of context around a tile for the analysis transform: the transform's reach
    ``4 * (2**J - 1)`` rounded up to whole blocks (so latents stay aligned): 12 at J = 2,
    32 at J = 3."""
    block = 2**levels
    return block * -(-4 * (block - 1) // block)


def decode_margin(cfg: CodecConfig) -> int:
    """Latents of context around a tile for the decoder: the CNN's reach plus the inverse
    transform's, in latents (14 for the shipped image models: 4 residual blocks, J = 3)."""
    return 2 * cfg.decoder_blocks + 2 + -(-4 * (cfg.block - 1) // cfg.block)


Reader = Callable[[tuple[slice, ...]], np.ndarray]
"""Returns the model's float32 signal ``(C, *region)`` for a region of sample slices."""


def companded_tile(model: Runtime, read: Reader, shape: tuple[int, ...], tile: Tile, margin: int) -> np.ndarray:
    """Companded latents ``u`` ``(latent_dim, *tile.extent)`` float64 of one tile of a signal
    of ``shape`` samples, from ``read`` of the tile plus ``margin`` samples of context (a
    multiple of the block, see :func:`encode_margin`)."""
    block = model.cfg.block
    lo = [max(0, o * block - margin) for o in tile.origin]  # multiples of block: latents stay aligned
    hi = [min(s, (o + e) * block + margin) for s, o, e in zip(shape, tile.origin, tile.extent)]
    region = read(tuple(slice(a, b) for a, b in zip(lo, hi)))
    u = model.companded(np.ascontiguousarray(region, dtype=np.float32)[None])[0]
    start = [o - low // block for o, low in zip(tile.origin, lo)]
    return u[(slice(None), *(slice(a, a + e) for a, e in zip(start, tile.extent)))]


def encode_tile(model: Runtime, read: Reader, shape: tuple[int, ...], tile: Tile, step: float, margin: int) -> np.ndarray:
    """Latent indices ``(latent_dim, *tile.extent)`` int32 of one tile (see :func:`companded_tile`)."""
    return model.quantize(companded_tile(model, read, shape, tile, margin), step)


def decode_tile(model: Runtime, q: np.ndarray, shape: tuple[int, ...], tile: Tile, step: float, margin: int, condition: float | None = None) -> np.ndarray:
    """Samples ``(C, *tile samples)`` float32 of one tile (cropped to the signal of ``shape``)
    from the whole latent grid ``q`` ``(L, *grid)`` (any integer dtype), using ``margin``
    latents of the neighbours as context; ``condition`` is the step shown to a step-aware
    decoder (default ``step``)."""
    block = model.cfg.block
    grid = q.shape[1:]
    lo = [max(0, o - margin) for o in tile.origin]
    hi = [min(g, o + e + margin) for g, o, e in zip(grid, tile.origin, tile.extent)]
    context = q[(slice(None), *(slice(a, b) for a, b in zip(lo, hi)))].astype(np.int32)
    samples = tuple(min(s, h * block) - low * block for s, h, low in zip(shape, hi, lo))
    x = model.decode(context[None], samples, step, condition)[0]
    start = [(o - low) * block for o, low in zip(tile.origin, lo)]
    stop = [min(s, (o + e) * block) - low * block for s, o, e, low in zip(shape, tile.origin, tile.extent, lo)]
    return x[(slice(None), *(slice(a, b) for a, b in zip(start, stop)))]
