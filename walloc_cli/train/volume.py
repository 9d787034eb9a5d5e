"""Volumes as training data for 3-D models: a folder of ``.npy`` volumes in coding order.

``walloc data volumes`` (:mod:`walloc_cli.data.volume`) writes such folders. Each volume is
normalised exactly as the codec does it (:class:`walloc_cli.codecs.volume_tiles.Normalisation`: its own
minimum to maximum onto [-0.5, 0.5]) and held as float16, so the model trains on the very signal
it will code. Crops are ``(1, d, crop, crop)`` with ``d = min(crop, the thinnest volume's first
axis)``: a multispectral set of 8-band cubes trains on 8-band crops, a CT set on cubes.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import torch

from walloc_cli.model.network import WallocCodec
from walloc_cli.errors import InputError
from walloc_cli.codecs.tiles import latent_grid
from walloc_cli.codecs.volume_tiles import Normalisation, decode_tile, encode_tile, pack_tile, tile_voxels, tiles
from walloc_cli.format.container import default_major
from walloc_cli.format.payload import chooses_split, resolve_payload


class VolumeSet:
    """The ``.npy`` volumes under a folder, or under several given comma-separated (recursively),
    normalised, as ``(1, A0, A1, A2)`` float16."""

    def __init__(self, folder: Path) -> None:
        folders = [Path(f) for f in str(folder).split(",")]  # a run config may list several
        for one in folders:
            if not one.is_dir():
                raise InputError(f"{one} is not a folder of volumes")
        self.volumes: list[torch.Tensor] = []
        self.ranges: list[tuple[float, float]] = []  # each volume's min and max, normalised
        for path in sorted(p for one in folders for p in one.rglob("*.npy")):
            array = np.load(path, mmap_mode="r")
            if array.ndim != 3:
                raise InputError(f"{path}: a training volume must be 3-D, got shape {array.shape}")
            norm = Normalisation.of(array)
            x = norm.forward(np.asarray(array))
            self.volumes.append(torch.from_numpy(x.astype(np.float16))[None])
            self.ranges.append((float((norm.low - norm.offset) / norm.scale - 0.5), float((norm.high - norm.offset) / norm.scale - 0.5)))
        if not self.volumes:
            raise InputError(f"no .npy volumes in {folder}")
        self.depth_limit = min(v.shape[1] for v in self.volumes)

    def batch(self, size: int, crop: int, rng: random.Random) -> torch.Tensor:
        """Random crops ``(size, 1, d, crop, crop)`` float32, every volume equally likely (a small CT
        beside large MRI templates would otherwise hardly be seen), flipped at random along the two in-plane axes (zero-padded when a volume is smaller)."""
        depth = min(crop, self.depth_limit)
        crops = []
        for volume in rng.choices(self.volumes, k=size):
            want = (depth, crop, crop)
            starts = [rng.randint(0, max(0, s - w)) for s, w in zip(volume.shape[1:], want)]
            piece = volume[:, starts[0] : starts[0] + depth, starts[1] : starts[1] + crop, starts[2] : starts[2] + crop].float()
            pad = [w - s for w, s in zip(want, piece.shape[1:])]
            if any(pad):
                piece = torch.nn.functional.pad(piece, (0, pad[2], 0, pad[1], 0, pad[0]))
            for axis in (2, 3):
                if rng.random() < 0.5:
                    piece = piece.flip(axis)
            crops.append(piece)
        return torch.stack(crops)

    @torch.no_grad()
    def validate(self, model: WallocCodec, step: float = 1.0) -> dict[str, float]:
        """Real rate (payload bits per voxel) and PSNR against each volume's data range (its
        squared error relative to (max - min)^2, averaged over all voxels), through the codec's
        own tiles (:mod:`walloc_cli.codecs.volume_tiles`), decoded values clipped to the original range
        as the decoder does."""
        model.eval()
        bits = voxels = relative = 0.0
        identity = Normalisation(-0.5, 1.0, -0.5, 0.5)  # the volumes are already normalised
        for volume, (low, high) in zip(self.volumes, self.ranges):
            array = volume[0].float().numpy()
            grid = latent_grid(array.shape, model.cfg.block)
            q = np.zeros((model.cfg.latent_dim, *grid), np.int32)
            for tile in tiles(grid):
                indices = encode_tile(model, array, identity, tile, step)
                payload = resolve_payload(None, default_major())  # as the writer codes and lays out tiles
                split = chooses_split(tuple(indices.shape), payload, default_major())
                bits += 8 * len(pack_tile(tile, indices, model.index_bits(step), payload, 4, split).data)
                q[(slice(None), *tile.slices())] = indices.numpy()
            squared = 0.0
            for tile in tiles(grid):
                part = decode_tile(model, q, array.shape, tile, step)
                squared += float(((part.clip(low, high) - array[tile_voxels(tile, array.shape, model.cfg.block)]) ** 2).sum())
            relative += squared / max(high - low, 1e-12) ** 2
            voxels += array.size
        model.train()
        mse = relative / max(voxels, 1)
        return {"bpp": bits / max(voxels, 1), "psnr": 10 * math.log10(1 / max(mse, 1e-20))}
