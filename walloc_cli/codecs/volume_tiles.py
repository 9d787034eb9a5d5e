"""Volumes through WaLLoC: a 3-D scalar field coded as independent latent tiles with matched boundaries.

A volume is coded as one 3-D signal ``(A0, A1, A2)`` (slices or bands first, then rows and
columns; see :mod:`walloc_cli.files.volumes`) by a one-channel 3-D model: the band axis of a
multispectral cube is just the third spatial axis of the 3-D wavelet packet transform, so any
band count works (padded to the transform's block and cropped back).

Normalisation: ``x = (v - offset) / scale - 0.5`` with ``scale`` = 6 standard deviations of the
volume and ``offset`` = its mean - 3 of them, both in the header (:class:`Normalisation`). The
whole range is coded, no window: a CT keeps air (-1024 HU), soft tissue and bone alike, and PSNR
is measured against the data range (maximum - minimum). Decoded values are clipped to the
original ``[min, max]`` (nothing outside it existed) and, for integer dtypes, rounded.

Tiles and why there are no seams ("matched boundaries"): the *latent grid* of the whole volume
(``ceil(shape / 2**J)`` per axis) is cut into tiles of at most ``TILE`` latents per axis, each
one ``VOLT`` chunk of the container (its own CRC). The encoder computes a tile's latents from
the tile's voxels plus ``ENCODE_MARGIN`` voxels of real context on each side (clamped at the
volume's faces), so the latents are those of the whole volume, not of an isolated block: the
transform never sees an artificial edge inside the volume. The decoder rebuilds a tile from its
latents plus ``DECODE_MARGIN`` latents of the neighbouring tiles (which it reads from their
chunks), more than the decoder CNN's reach of ``decoder_blocks * 2 + 2`` latents for the shipped
models, and keeps only the tile's own voxels. Tiles therefore meet exactly where a whole-volume
decode would put them (``bench/volume_seams.py`` measures the error at tile faces against the
error elsewhere). The tiling itself is :mod:`walloc_cli.codecs.tiles`, shared with images; what is
volume-specific here is the ``VOLT`` chunk, the normalisation and the margins in the header.
A tile's decoder context is bounded in the format (:data:`walloc_cli.format.header.MAX_TILE_CONTEXT`).

Memory: the encoder holds one tile (with context) in float32 at a time besides the input (which
the readers memory-map when they can) and the integer latents of the whole volume, every tile
encoded before the header is written, since the header declares the bits they need (format 1.3);
the decoder holds the same integer latents (1/8 of the voxel count for the shipped 8x models, as
int8, or int16 for indices of more than 8 bits) and the output array of the original dtype, plus
one tile in float32.

``VOLT`` chunk layout (little-endian)::

    3 x u32 latent origin | 3 x u32 latent extent | u16 n | n x u32 image lengths | n images
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from walloc_cli.model.runtime import Runtime
from walloc_cli.format.chunks import VOLUME_TILE_HEAD_SIZE, VolumeTileHead, pack_volume_tile_head, unpack_volume_tile_head
from walloc_cli.format.container import Chunk
from walloc_cli.errors import FormatError, InputError
from walloc_cli.format.limits import DEFAULT_MAX_VOXELS
from walloc_cli.format.payload import PayloadError, decode_planes, encode_planes, pack_images, unpack_images
from walloc_cli.codecs.tiles import Tile, tile_samples
from walloc_cli.codecs.tiles import decode_tile as shared_decode_tile
from walloc_cli.codecs.tiles import encode_tile as shared_encode_tile
from walloc_cli.codecs.tiles import tile_count as shared_tile_count
from walloc_cli.codecs.tiles import tiles as shared_tiles

TILE = (16, 32, 32)  # latents per axis of one tile (64 x 128 x 128 voxels at J = 2)
ENCODE_MARGIN = 16  # voxels of context around a tile for the analysis transform
DECODE_MARGIN = 8  # latents of context around a tile for the decoder CNN
PROBE_TILES = 4  # regions on which the encoder compares decoder conditions (choose_condition)
PROBE_EXTENT = (4, 12, 12)  # latents per axis of one region (16 x 48 x 48 voxels at J = 2)
PROBE_MARGIN = 4  # latents of real context around a region, for its encoder and decoder
CONDITIONS = (0.25, 0.5, 1.0, 2.0, 4.0)  # decoder conditions tried besides the true step


@dataclass(frozen=True)
class Normalisation:
    """``x = (v - offset) / scale - 0.5``; ``low``/``high`` are the original's extremes."""

    offset: float
    scale: float
    low: float
    high: float

    @classmethod
    def of(cls, array: np.ndarray) -> "Normalisation":
        """The normalisation of ``array`` (any shape): standardised, ``scale`` = 6 standard
        deviations and ``offset`` = mean - 3 of them, so that the bulk of any volume fills about
        [-0.5, 0.5] whatever its range (a bright and a dark scene, or a CT, look alike to the
        model; min-max scaling let a few saturated pixels squeeze a whole scene into a tenth of
        the range). Read slab by slab so a memory-mapped volume is never copied whole.

        float64 values beyond about 1e154 overflow a sum of squares: the statistics are then
        taken of the values divided by a power of two (exact), so a volume of finite values
        normalises whenever ``6 * std`` is finite (values up to about 1e307); past that, and for
        NaN or infinite samples, the result is not finite and :meth:`check` refuses it."""
        low, high = math.inf, -math.inf
        for slab in range(0, array.shape[0], 16):
            part = np.asarray(array[slab : slab + 16])
            low, high = min(low, float(part.min())), max(high, float(part.max()))
        largest = max(abs(low), abs(high))
        # 2**500 squared is 2**1000, below float64's 2**1024: smaller volumes are summed as
        # they are (bit for bit what they always gave); larger ones at a power-of-two scale.
        unit = 2.0 ** (math.frexp(largest)[1] - 1) if math.isfinite(largest) and largest > 2.0**500 else 1.0
        total, squares, count = 0.0, 0.0, 0
        for slab in range(0, array.shape[0], 16):
            part = np.asarray(array[slab : slab + 16], dtype=np.float64)
            if unit != 1.0:
                part = part / unit
            total, squares, count = total + float(part.sum()), squares + float(np.square(part).sum()), count + part.size
        mean = total / max(count, 1)
        std = math.sqrt(max(squares / max(count, 1) - mean * mean, 0.0))
        mean, std = mean * unit, std * unit
        if not std > 0 or not math.isfinite(std):
            return cls(low - 0.5 if math.isfinite(low) else 0.0, 1.0, low, high)  # constant volume (or NaN: check refuses it)
        return cls(mean - 3 * std, 6 * std, low, high)

    def check(self) -> None:
        """Raise :class:`InputError` unless the model's signal stays finite for every value in
        ``[low, high]`` (NaN or infinite samples; magnitudes near float64's limit, where
        ``6 * std`` or ``value - offset`` overflows)."""
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise InputError("volume holds NaN or infinite values")
        ends = [(v - self.offset) / self.scale for v in (self.low, self.high)]
        if not all(math.isfinite(v) for v in (self.offset, self.scale, *ends)) or self.scale <= 0 or max(abs(e) for e in ends) > 1e30:  # the model's input is float32
            raise InputError(f"volume values {self.low:.4g}..{self.high:.4g} are too large to normalise (float64 overflows; magnitudes up to about 1e307 are coded)")

    def forward(self, values: np.ndarray) -> np.ndarray:
        """Original values (any shape) to the model's float32 signal in about [-0.5, 0.5]."""
        return ((values.astype(np.float64) - self.offset) / self.scale - 0.5).astype(np.float32)

    def inverse(self, x: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """Model signal back to values of ``dtype``, clipped to the original range (rounded for ints)."""
        values = np.clip((x.astype(np.float64) + 0.5) * self.scale + self.offset, self.low, self.high)
        if np.issubdtype(dtype, np.integer):
            values = np.rint(values)
        return values.astype(dtype)

    def to_dict(self) -> dict[str, float]:
        return {"offset": self.offset, "scale": self.scale, "min": self.low, "max": self.high}


def check_voxels(shape: tuple[int, ...], max_voxels: int = DEFAULT_MAX_VOXELS) -> None:
    """Refuse a volume of more than ``max_voxels`` voxels in one line naming the count, the
    limit and the option."""
    count = math.prod(shape)
    if count > max_voxels:
        raise InputError(f"volume too large: {'x'.join(map(str, shape))} = {count} voxels, more than the limit of {max_voxels} (raise it with --max-voxels)")


def tiles(grid: tuple[int, int, int], size: tuple[int, int, int] = TILE) -> Iterator[Tile]:
    """The tiles (at most ``size`` latents per axis) of a latent grid, in C order (axis 0
    slowest): the order of the chunks (:func:`walloc_cli.codecs.tiles.tiles`)."""
    return shared_tiles(grid, size)


def tile_count(grid: tuple[int, int, int], size: tuple[int, int, int] = TILE) -> int:
    """How many tiles (chunks) :func:`tiles` yields."""
    return shared_tile_count(grid, size)


def encode_tile(model: Runtime, volume: np.ndarray, norm: Normalisation, tile: Tile, step: float) -> np.ndarray:
    """Latent indices ``(latent_dim, *tile.extent)`` int32 of one tile of ``volume`` ``(A0, A1, A2)``."""

    def read(where: tuple[slice, ...]) -> np.ndarray:
        return norm.forward(np.asarray(volume[where]))[None]

    return shared_encode_tile(model, read, tuple(int(s) for s in volume.shape), tile, step, ENCODE_MARGIN)


def pack_tile(tile: Tile, q: np.ndarray, bits: int, payload: str, effort: int, split: bool = False) -> Chunk:
    """One tile's indices ``(L, *tile.extent)`` into a ``VOLT`` chunk (``split``: the 2.1 layout)."""
    planes = encode_planes(q, bits, payload, effort, split)  # type: ignore[arg-type]
    return Chunk("VOLT", pack_volume_tile_head(VolumeTileHead(tile.origin, tile.extent)) + pack_images(planes))


def parse_tile(data: bytes, grid: tuple[int, int, int], size: tuple[int, int, int] = TILE) -> tuple[Tile, list[bytes]]:
    """Split a ``VOLT`` chunk; every size is checked against the grid and the chunk length
    before anything is allocated."""
    origin, extent = unpack_volume_tile_head(data)
    for o, e, g, t in zip(origin, extent, grid, size):
        if not (0 < e <= t and o % t == 0 and o + e <= g):
            raise FormatError(f"volume tile at {origin} declares impossible sizes {extent} for a latent grid of {grid}")
    try:
        images = unpack_images(data, VOLUME_TILE_HEAD_SIZE)
    except PayloadError as error:
        raise FormatError(f"volume tile at {origin}: {error}") from None
    return Tile(origin, extent), images  # type: ignore[arg-type]


def unpack_tile(tile: Tile, images: list[bytes], latent_dim: int, bits: int, payload: str, split: bool = False) -> np.ndarray:
    """A ``VOLT`` chunk's images back to indices ``(L, *tile.extent)`` int32 (``split``: the 2.1 layout)."""
    try:
        return decode_planes(images, (latent_dim, *tile.extent), bits, payload, split)  # type: ignore[arg-type]
    except PayloadError as error:
        raise FormatError(f"volume tile at {tile.origin}: {error}") from None


def decode_tile(model: Runtime, q: np.ndarray, shape: tuple[int, int, int], tile: Tile, step: float, margin: int = DECODE_MARGIN, condition: float | None = None) -> np.ndarray:
    """Voxels ``(A0, A1, A2)`` float32 of one tile (cropped to the volume) from the whole latent
    grid ``q`` ``(L, *grid)``, using ``margin`` latents of the neighbours as context; ``condition``
    is the step shown to a step-aware decoder (default ``step``, see :func:`choose_condition`)."""
    return shared_decode_tile(model, q, shape, tile, step, margin, condition)[0]


def probe_tiles(grid: tuple[int, int, int], count: int = PROBE_TILES, extent: tuple[int, int, int] = PROBE_EXTENT) -> list[Tile]:
    """Up to ``count`` small latent regions of at most ``extent`` latents, centred in tiles
    spread evenly through the volume (C order): the sample on which :func:`choose_condition`
    compares decoder conditions."""
    every = list(tiles(grid))
    if len(every) > count:
        every = [every[round(i * (len(every) - 1) / (count - 1))] for i in range(count)] if count > 1 else [every[len(every) // 2]]
    sample = []
    for tile in every:
        size = tuple(min(e, x) for e, x in zip(tile.extent, extent))
        origin = tuple(o + (e - n) // 2 for o, e, n in zip(tile.origin, tile.extent, size))
        sample.append(Tile(origin, size))  # type: ignore[arg-type]
    return sample


def choose_condition(model: Runtime, volume: np.ndarray, norm: Normalisation, grid: tuple[int, int, int], step: float, candidates: tuple[float, ...]) -> float:
    """The step value to show a step-aware decoder for ``volume`` (latent grid ``grid``): the
    candidate (``step`` among them) whose decode of the :func:`probe_tiles` regions has the
    least squared error.

    Why: the decoder's step input was trained on a handful of scenes. On other data the best
    value is not always the true step: on the held-out WorldView-2 scene at step 0.25,
    ``ms-3d-2x-v`` gives 33.5 dB believing 0.25 and 35.2 dB believing 1; on the 128-band cubes
    22.6 against 32.6 dB. The encoder has the original, so it measures and signals the winner
    (``latent.condition``); decoding stays deterministic and costs nothing more. Each region
    is decoded as the decoder would (with ``PROBE_MARGIN`` latents of real context around it),
    the same for every candidate.
    """
    if not model.cfg.step_input or len(candidates) < 2:
        return step
    shape = tuple(int(s) for s in volume.shape)
    errors = dict.fromkeys(candidates, 0.0)
    for region in probe_tiles(grid):
        lo = tuple(max(0, o - PROBE_MARGIN) for o in region.origin)
        hi = tuple(min(g, o + e + PROBE_MARGIN) for g, o, e in zip(grid, region.origin, region.extent))
        around = Tile(lo, tuple(h - l for h, l in zip(hi, lo)))  # type: ignore[arg-type]
        q = encode_tile(model, volume, norm, around, step)
        where = tile_voxels(around, shape, model.cfg.block)  # type: ignore[arg-type]
        voxels = tuple(w.stop - w.start for w in where)
        inner = Tile(tuple(o - l for o, l in zip(region.origin, lo)), region.extent)  # type: ignore[arg-type]
        inside = tile_voxels(inner, voxels, model.cfg.block)  # type: ignore[arg-type]
        original = norm.forward(np.asarray(volume[where]))[inside]
        for value in candidates:
            decoded = decode_tile(model, q, voxels, inner, step, PROBE_MARGIN, value)  # type: ignore[arg-type]
            errors[value] += float(np.square(decoded.astype(np.float64) - original).sum())
    return float(min(candidates, key=lambda value: (errors[value], value != step)))  # ties keep the true step


def tile_voxels(tile: Tile, shape: tuple[int, int, int], block: int) -> tuple[slice, slice, slice]:
    """Where a tile's voxels sit in the volume."""
    return tile_samples(tile, shape, block)  # type: ignore[return-value]
