"""The tiled 3-D coding: tiles see the whole volume's context, so tiled and whole-volume results agree."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from walloc_cli.model.config import CodecConfig
from walloc_cli.model.lean import LeanCodec
from walloc_cli.model.network import WallocCodec
from walloc_cli.errors import FormatError
from walloc_cli.codecs.tiles import latent_grid
from walloc_cli.codecs.volume_tiles import (
    Normalisation,
    Tile,
    decode_tile,
    encode_tile,
    pack_tile,
    parse_tile,
    tile_count,
    tile_voxels,
    tiles,
    unpack_tile,
)


def _model() -> LeanCodec:
    """A small 3-D model with random weights, on the lean runtime the codecs use."""
    torch.manual_seed(0)
    model = WallocCodec(CodecConfig(dims=3, channels=1, levels=2, latent_dim=8, decoder_channels=8, decoder_blocks=1, step_input=True))
    with torch.no_grad():  # a non-trivial decoder CNN, so that context matters at tile faces
        for p in model.decoder.tail.parameters():
            p.normal_(0, 0.05)
        model.encoder.weight.mul_(40)
    return LeanCodec(model.cfg, {k: v.numpy() for k, v in model.inference_state_dict().items()})


def _volume(shape: tuple[int, int, int]) -> np.ndarray:
    """A smooth field with edges (a CT-like blob in air), int16."""
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    field = 1000 * (x**2 + y**2 + 0.5 * z**2 < 0.6) + 300 * np.sin(7 * x) * np.cos(5 * y) - 1024
    return field.astype(np.int16)


SHAPE = (72, 70, 136)  # latent grid 18 x 18 x 34: 2 x 1 x 2 tiles with ragged ends


def test_tiles_cover_the_grid_once() -> None:
    grid = latent_grid(SHAPE, 4)
    assert grid == (18, 18, 34)
    covered = np.zeros(grid, int)
    for tile in tiles(grid):
        covered[tile.slices()] += 1
    assert (covered == 1).all() and tile_count(grid) == len(list(tiles(grid))) == 4


def test_tiled_encode_and_decode_match_the_whole_volume() -> None:
    model, volume = _model(), _volume(SHAPE)
    norm = Normalisation.of(volume)
    grid = latent_grid(SHAPE, 4)
    q = np.zeros((8, *grid), np.int16)
    for tile in tiles(grid):
        q[(slice(None), *tile.slices())] = encode_tile(model, volume, norm, tile, 1.0)
    whole = model.encode(norm.forward(volume)[None, None], 1.0)[0]
    # the analysis margin covers the transform's reach: in float64 the indices are the same
    assert np.array_equal(q, whole)
    x_whole = model.decode(whole[None], SHAPE, 1.0)[0, 0]
    x_tiled = np.zeros(SHAPE, np.float32)
    for tile in tiles(grid):
        x_tiled[tile_voxels(tile, SHAPE, 4)] = decode_tile(model, whole.astype(np.int16), SHAPE, tile, 1.0)
    assert np.abs(x_tiled - x_whole).max() < 1e-4  # no seam: the decoder saw the same context


def test_normalisation_round_trip_and_clipping() -> None:
    volume = _volume((4, 5, 6))
    norm = Normalisation.of(volume)
    assert (norm.low, norm.high) == (float(volume.min()), float(volume.max()))
    assert np.array_equal(norm.inverse(norm.forward(volume), volume.dtype), volume)
    assert norm.inverse(np.full((1, 1, 1), 9.0, np.float32), np.dtype(np.int16))[0, 0, 0] == volume.max()


def test_tile_chunk_round_trip_and_damage() -> None:
    tile = Tile((16, 0, 32), (2, 18, 2))
    q = np.random.default_rng(0).integers(-40, 40, (8, 2, 18, 2), dtype=np.int32)
    chunk = pack_tile(tile, q, 8, "webp", 4)
    parsed, images = parse_tile(chunk.data, (18, 18, 34))
    assert parsed == tile
    assert np.array_equal(unpack_tile(parsed, images, 8, 8, "webp"), q)
    with pytest.raises(FormatError, match="impossible sizes"):
        parse_tile(chunk.data, (17, 18, 34))  # the tile would stick out of the grid
    with pytest.raises(FormatError, match="too short"):
        parse_tile(chunk.data[:10], (18, 18, 34))
    with pytest.raises(FormatError, match="do not add up"):
        parse_tile(chunk.data[:-1], (18, 18, 34))
