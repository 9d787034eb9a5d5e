"""Are tile faces visible? Error at the voxels next to tile boundaries against the error elsewhere.

Codes each volume (default: the held-out CT slices and the MNI152 MRI of ``walloc data volumes``)
with ``walloc_cli.codecs.volume.compress_volume`` at the given qualities, decodes it, and splits the
squared error by position: voxels within 2 of a tile face (tiles are ``TILE`` latents = 64 x 128
x 128 voxels for the shipped J = 2 models) versus all others. Faces may fall on busy anatomy (the
middle of a head), so the fair reference is the same volume coded *untiled* (one encode and one
decode of the whole volume at the same step): a seam shows as tiled error at the faces above the
untiled error at the same voxels. Also decodes with *no* decoder context (``decode_margin`` 0)
to show what the matched boundaries buy.

    python bench/volume_seams.py [VOLUME.npy ...] [--quality 25 75]
"""

from __future__ import annotations

import argparse
import io
import math
from pathlib import Path

import numpy as np

from walloc_cli.format.container import WlcReader
from walloc_cli.codecs.volume import compress_volume, volume_latents, synthesize_volume
from walloc_cli.codecs.volume_tiles import TILE, Normalisation
from walloc_cli.files.volumes import read_volume
from walloc_cli.model.zoo import load_by_identity


def face_mask(shape: tuple[int, ...], block: int, width: int = 2) -> np.ndarray:
    """True for voxels within ``width`` of an interior tile face, per axis."""
    mask = np.zeros(shape, bool)
    for axis, (size, tile) in enumerate(zip(shape, TILE)):
        period = tile * block
        coords = np.arange(size)
        near = np.zeros(size, bool)
        for face in range(period, size, period):
            near |= (coords >= face - width) & (coords < face + width)
        index = [None, None, None]
        index[axis] = slice(None)  # type: ignore[call-overload]
        mask |= near[tuple(index)]
    return mask


def rms(values: np.ndarray) -> float:
    return math.sqrt(float(np.mean(values))) if values.size else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default = [Path("data/volumes/ct/test/cranium_z076-107.npy"), Path("data/volumes/mri/test/mni_icbm152_t1_2009a.npy")]
    parser.add_argument("volumes", nargs="*", type=Path, default=default)
    parser.add_argument("--quality", nargs="+", type=float, default=[25.0, 75.0])
    args = parser.parse_args()
    print(f"{'volume':34} {'q':>4} {'bits/vox':>8} {'RMS faces':>10} {'untiled':>8} {'RMS inside':>10} {'untiled':>8} {'no-context faces':>16}")
    for path in args.volumes:
        volume = read_volume(path)
        original = np.asarray(volume.array, np.float64)
        for quality in args.quality:
            buffer = io.BytesIO()
            report = compress_volume(volume, buffer, quality=quality, measure=False)
            reader = WlcReader(io.BytesIO(buffer.getvalue()))
            header = reader.header
            codec, _ = load_by_identity(header["model"]["name"], header["model"]["sha256"])
            q = volume_latents(reader, codec.cfg.latent_dim, codec.cfg.block)
            mask = face_mask(original.shape, codec.cfg.block)
            errors = {}
            for margin in (header["latent"]["decode_margin"], 0):
                decoded = synthesize_volume(codec, q, {**header, "latent": {**header["latent"], "decode_margin": margin}}).array
                squared = (decoded.astype(np.float64) - original) ** 2
                errors[margin] = (rms(squared[mask]), rms(squared[~mask]))
            norm = Normalisation(*(float(header["normalisation"][k]) for k in ("offset", "scale", "min", "max")))
            step = float(header["latent"]["step"])
            x = norm.forward(original)[None, None]
            whole = codec.decode(codec.encode(x, step), original.shape, step)[0, 0]
            squared = (norm.inverse(whole, volume.array.dtype).astype(np.float64) - original) ** 2
            faces, inside = errors[header["latent"]["decode_margin"]]
            print(f"{path.name:34} {quality:4g} {report.bpv:8.3f} {faces:10.3f} {rms(squared[mask]):8.3f} {inside:10.3f} {rms(squared[~mask]):8.3f} {errors[0][0]:16.3f}")


if __name__ == "__main__":
    main()
