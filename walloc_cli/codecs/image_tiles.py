"""Images through WaLLoC tile by tile: bounded memory, the bytes and pixels of a whole-image pass.

An image's latents are one ``(L, ceil(H / 2**J), ceil(W / 2**J))`` array in the file (``LATN``
chunks, :mod:`walloc_cli.format.payload`); the format knows no tiles. The coder still works on
:data:`TILE` x :data:`TILE` latent tiles with matched boundaries (:mod:`walloc_cli.codecs.tiles`, the
same code the volumes use), so that its working set is one tile, whatever the image size:

* the encoder converts one tile of samples (plus the transform's context) at a time to float
  and writes its indices into a compact int8/int16 array (:func:`image_indices`);
* the decoder rebuilds one tile (plus the decoder's context) at a time and rounds it straight
  into the integer samples of the output (:func:`synthesize_samples`), in tiles as large as
  :data:`DECODE_POSITIONS` allows (:func:`decode_tiles`), as its context is wide.

Before, a 150 MP RGB photo was one float32 tensor of 1.8 GB on each side of the model, with
several temporaries of that size (a 616-byte file declaring 16384 x 16384 pixels went past
8 GB). Images up to one tile are coded in one piece, exactly as before.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Iterator

import numpy as np

from walloc_cli.model.lean_wpt import parallel_map
from walloc_cli.model.runtime import Runtime
from walloc_cli.files.images import ImageData, quantise
from walloc_cli.format.payload import index_dtype
from walloc_cli.codecs.tiles import Reader, Tile, companded_tile, decode_margin, decode_tile, encode_margin, latent_grid, tile_samples, tiles

# Latents per side of an encoder tile: 1024 x 1024 pixels at J = 3. The encoder's context is
# only 4 latents a side (the transform's reach), so tiles this size cost little and spread well
# over the workers. The decoder's tiles are larger (DECODE_POSITIONS): its context is 14.
TILE = 128
# Latents of one decoded tile at most (one piece up to 4.2 MP at J = 3). Peak RSS of a whole
# decompress (`/usr/bin/time -v`): 300 MB for a 3.4 MP photo (240 MB in 128-latent tiles), 440 MB
# for 13.7 MP (317 MB); the largest images peak lower, one tile being live instead of two side
# by side (67 MP: 755 MiB against 841 MiB, bench/results/memory.md).
DECODE_POSITIONS = 1 << 16
# Companded latents (float64, as the encoder makes them: rounding them to float32 would move
# indices at half-integers) are kept across the settings a quality search tries when they take
# at most this much (an 11 MP photo through rgb-4x-v); larger images run the encoder again
# per setting instead. At 256 MiB the cache alone was 201 MB of a 67 MP compress.
CACHE_BYTES = 64 << 20
# Samples compared at a time when measuring PSNR: float64 scratch of 8 MiB, not the image.
_PSNR_BATCH = 1 << 20


def signal_reader(image: ImageData, channels: int) -> Reader:
    """The model's signal ``x - 0.5`` ``(channels, h, w)`` float32 for a region of ``image``:
    a gray image goes through an RGB model as three equal planes, an RGB image holding a gray
    picture through a gray model as its first plane."""

    def read(where: tuple[slice, ...]) -> np.ndarray:
        x = image.float_pixels((where[0], where[1]))
        if x.shape[0] == 1 and channels == 3:
            x = np.repeat(x, 3, axis=0)
        elif x.shape[0] == 3 and channels == 1:
            x = x[:1]
        return x - np.float32(0.5)

    return read


def image_indices(codec: Runtime, image: ImageData, step: float, cache: dict[Any, Any], key: Any, tile: int = TILE) -> np.ndarray:
    """Latent indices ``(L, ceil(H / 2**J), ceil(W / 2**J))`` of ``image`` at ``step``, as
    :func:`walloc_cli.format.payload.index_dtype` (int8 at 8-bit indices), computed tile by tile.

    ``cache`` (a dict kept across calls for the same image) holds the companded latents under
    ``key`` when they fit :data:`CACHE_BYTES`, so another step costs only the quantisation.
    """
    shape = (image.height, image.width)
    grid = latent_grid(shape, codec.cfg.block)
    read = signal_reader(image, codec.cfg.channels)
    margin = encode_margin(codec.cfg.levels)
    q = np.empty((codec.cfg.latent_dim, *grid), index_dtype(codec.index_bits(step)))
    cached = cache.get(key)
    parts = list(tiles(grid, (tile, tile)))
    if cached is None and q.size * 8 <= CACHE_BYTES:
        cached = np.empty((codec.cfg.latent_dim, *grid), np.float64)

        def fill(part: Tile) -> None:
            cached[(slice(None), *part.slices())] = companded_tile(codec, read, shape, part, margin)

        parallel_map(fill, parts)
        cache[key] = cached

    def code(part: Tile) -> None:
        where = (slice(None), *part.slices())
        u = cached[where] if cached is not None else companded_tile(codec, read, shape, part, margin)
        q[where] = codec.quantize(u, step)

    parallel_map(code, parts)
    return q


def decode_tiles(grid: tuple[int, int], positions: int = DECODE_POSITIONS) -> list[Tile]:
    """The fewest near-equal tiles, of at most ``positions`` latents each, that cover a latent
    ``grid`` ``(h, w)``; among equal counts, the one with the shortest cut (each cut costs the
    decoder its context on both sides)."""
    if grid[0] * grid[1] <= positions:
        return [Tile((0, 0), grid)]
    best: tuple[int, int, tuple[int, int]] | None = None
    for rows in range(1, grid[0] + 1):
        height = -(-grid[0] // rows)
        width = positions // height
        if width < 1:
            break
        cols = -(-grid[1] // width)
        size = (height, -(-grid[1] // cols))
        key = (rows * cols, (rows - 1) * grid[1] + (cols - 1) * grid[0], size)
        if best is None or key[:2] < best[:2]:
            best = key
    assert best is not None  # rows = grid[0] (tiles 1 latent high) always fits the budget
    return list(tiles(grid, best[2]))


def synthesized_tiles(codec: Runtime, q: np.ndarray, height: int, width: int, channels: int, bit_depth: int, step: float, tile: int | None = None) -> Iterator[tuple[tuple[slice, ...], np.ndarray]]:
    """Indices ``q`` ``(L, h, w)`` to integer samples, one tile at a time: ``(rows and columns
    of the tile, samples (h', w', channels))`` uint8 or uint16 at ``bit_depth``. Each tile is
    decoded with its neighbours' latents as context (:func:`walloc_cli.codecs.tiles.decode_tile`),
    clipped to ``[0, 1]``, brought to ``channels`` (the mean of a colour model's planes for gray,
    the gray plane repeated for colour) and rounded by :func:`walloc_cli.files.images.quantise`, the
    rule files are written with. Tiles are :func:`decode_tiles`, or ``tile`` x ``tile`` latents
    when given."""
    shape = (height, width)
    grid = latent_grid(shape, codec.cfg.block)
    margin = decode_margin(codec.cfg)
    # One tile after the other, each split over the worker threads inside the decoder: as few
    # and as large tiles as memory allows, since each cut costs 14 latents of context on both
    # sides (a 3.4 MP photo in 128-latent tiles decoded 1.49x the latents it has). Measured on a
    # 3.4 MP photo (flower.png, 2268x1512, rgb-4x-v, 2 cores): 1.32 s in one piece against 1.99 s
    # in 128-latent tiles decoded two at a time by the workers (1 thread: 2.32 s against 3.16 s).
    parts = decode_tiles(grid) if tile is None else list(tiles(grid, (tile, tile)))
    for part in parts:
        x = decode_tile(codec, q, shape, part, step, margin)
        pixels = np.clip(x + np.float32(0.5), 0, 1)
        del x
        if channels == 1 and pixels.shape[0] != 1:
            pixels = pixels.mean(axis=0, keepdims=True)
        elif pixels.shape[0] == 1 and channels != 1:
            pixels = np.repeat(pixels, channels, axis=0)
        yield tile_samples(part, shape, codec.cfg.block), quantise(pixels.astype(np.float32), bit_depth)


def synthesize_samples(codec: Runtime, q: np.ndarray, height: int, width: int, channels: int, bit_depth: int, step: float, tile: int | None = None) -> np.ndarray:
    """Indices ``q`` ``(L, h, w)`` to integer samples ``(channels, height, width)`` (uint8 or
    uint16 at ``bit_depth``), tile by tile (:func:`synthesized_tiles`).

    The result is a ``(C, H, W)`` view of an ``(H, W, C)`` array: the layout image writers take,
    so writing the output costs no further copy of it.
    """
    out = np.empty((height, width, channels), np.uint8 if bit_depth == 8 else np.uint16)
    for where, samples in synthesized_tiles(codec, q, height, width, channels, bit_depth, step, tile):
        out[where] = samples
    return np.moveaxis(out, -1, 0)


def tiles_psnr(reference: ImageData, decoded: Iterable[tuple[tuple[slice, ...], np.ndarray]]) -> float:
    """PSNR (dB) of decoded tiles (:func:`synthesized_tiles`) against ``reference``'s colour
    samples, peak ``2**bit_depth - 1``: the measurement of a decode that is never held whole
    (at 150 MP that is 450 MB less than decoding, then comparing)."""
    total = 0.0
    for where, samples in decoded:
        planes = np.moveaxis(samples, -1, 0)
        total += _squared_error(reference.pixels[(slice(None), *where)], planes)
    return _psnr(total / max(1, reference.pixels.size), reference.peak)


def _squared_error(a: np.ndarray, b: np.ndarray) -> float:
    """Sum of squared differences of two ``(C, H, W)`` sample arrays, in float64 bands of rows of
    at most :data:`_PSNR_BATCH` samples, each summed by one BLAS dot product (a float64 square
    and sum of a whole 3.4 MP photo's tile took 0.14 s of its compress). Each band's sum is exact
    in any order: at most 2**20 integer squares below 2**32 stay below 2**53."""
    rows = max(1, _PSNR_BATCH // max(1, a.shape[0] * a.shape[2]))
    total = 0.0
    for top in range(0, a.shape[1], rows):
        diff = (a[:, top : top + rows].astype(np.float64) - b[:, top : top + rows]).ravel()
        total += float(np.dot(diff, diff))
    return total


def _psnr(error: float, peak: int) -> float:
    """10 log10(peak^2 / MSE); ``inf`` for no error (as :func:`walloc_cli.metrics.psnr`)."""
    return math.inf if error == 0 else 10.0 * math.log10(peak * peak / error)


def squared_error(reference: ImageData, test: ImageData) -> float:
    """Sum of squared differences of the colour samples of two images of the same shape, in
    float64 over bands of rows (no float copy of either image)."""
    a, b = reference.pixels, test.pixels
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    return _squared_error(a, b)


def sample_psnr(reference: ImageData, test: ImageData) -> float:
    """PSNR (dB) of ``test`` against ``reference`` over colour samples, peak ``2**bit_depth - 1``
    (as :func:`walloc_cli.metrics.psnr`, measured band by band)."""
    return _psnr(squared_error(reference, test) / max(1, reference.pixels.size), reference.peak)
