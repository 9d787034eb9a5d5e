"""Chunk layouts of the webp payload for the same latents: stacked (format 1.x/2.0), split (2.1:
the low-pass group in images of its own) and every group alone; decides format 2.1's rule.

For each photo of ``--photos`` (first ``--count``, sorted) at ``-q`` 10/50/75/95, each music file
of ``--music`` and each volume of ``--volumes`` at q 10/50/90: the latents ``walloc compress``
writes (read back with :func:`walloc_cli.read_latents`; whatever layout the file has, the
indices are the same), coded with lossless WebP effort 4 in each layout; bytes = the images
plus 7 bytes of 2.x chunk framing for each chunk beyond the stacked layout's count. Audio and
volume latents are coded block by block / tile by tile as their chunks hold them (one array per
block here: the latents of each ``AUDB`` block; volumes as one grid, as a single tile would).
Then ``--crops``: centre crops of the photos, sides 48..384 px, at q 10 and 75, split vs stacked,
for the size from which a writer splits.

    python bench/payload_layouts.py --photos data/corpus/photos/val --count 8 \\
        --music data/corpus/music/val/*.wav --volumes data/corpus/volumes/*/*.npy --crops
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

import walloc_cli as walloc
from walloc_cli.api.files import compress_file
from walloc_cli.format.payload import chunk_rows, encode_planes

FRAMING = 7  # bytes of one more 2.x chunk: code, 2-byte length, CRC


def layouts(q: np.ndarray, bits: int) -> tuple[int, int, int]:
    """Bytes of ``q`` ``(L, *S)`` stacked, split and one image per group of 3 channels."""
    stacked = sum(map(len, encode_planes(q, bits, "webp", 4)))
    base = len(chunk_rows(q.shape, bits))
    split_chunks = encode_planes(q, bits, "webp", 4, split=True)
    split = sum(map(len, split_chunks)) + FRAMING * (len(split_chunks) - base)
    groups = [encode_planes(q[g : g + 3], bits, "webp", 4) for g in range(0, q.shape[0], 3)]
    alone = sum(len(c) for chunks in groups for c in chunks) + FRAMING * (sum(map(len, groups)) - base)
    return stacked, split, alone


def file_latents(path: Path, quality: float) -> list[tuple[np.ndarray, int]]:
    """The latent arrays of ``path`` compressed at ``quality`` as its chunks hold them, with bits."""
    with tempfile.TemporaryDirectory() as scratch:
        dst = Path(scratch) / "x.wlc"
        compress_file(path, dst, quality=quality, measure=False)
        latents, info = walloc.read_latents(dst)
    arrays = latents if isinstance(latents, list) else [latents]
    return [(np.asarray(a).reshape(-1, np.asarray(a).shape[-1]) if info.header["modality"] == "audio" else np.asarray(a), info.bits) for a in arrays]


def table(title: str, files: list[Path], qualities: tuple[float, ...]) -> None:
    print(f"\n### {title} ({len(files)} files)\n\n| q | stacked bytes | split | every group alone |\n|---|---:|---:|---:|")
    for quality in qualities:
        total = np.zeros(3)
        for path in files:
            for q, bits in file_latents(path, quality):
                total += layouts(q, bits)
        print(f"| {quality:g} | {total[0]:,.0f} | {100 * (total[1] / total[0] - 1):+.2f}% | {100 * (total[2] / total[0] - 1):+.2f}% |", flush=True)


def crops(files: list[Path]) -> None:
    print("\n### Centre crops: split vs stacked (the writer's threshold)\n\n| side (px) | positions (rgb, 8x8 each) | q 10 | q 75 |\n|---:|---:|---:|---:|")
    for side in (48, 96, 160, 256, 384):
        cells = []
        for quality in (10, 75):
            stacked = split = 0
            for path in files:
                pixels = np.asarray(Image.open(path).convert("RGB"))
                top, left = (pixels.shape[0] - side) // 2, (pixels.shape[1] - side) // 2
                q, info = walloc.read_latents(walloc.compress(pixels[top : top + side, left : left + side].copy(), quality=quality))
                a, b, _ = layouts(q, info.bits)
                stacked, split = stacked + a, split + b
            cells.append(f"{100 * (split / stacked - 1):+.2f}%")
        print(f"| {side} | {(side // 8) ** 2} | {' | '.join(cells)} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path)
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--music", type=Path, nargs="*", default=[])
    parser.add_argument("--volumes", type=Path, nargs="*", default=[])
    parser.add_argument("--crops", action="store_true")
    args = parser.parse_args()
    photos = sorted(args.photos.glob("*.png"))[: args.count] if args.photos else []
    if photos:
        table(f"Photos, {args.photos}", photos, (10, 50, 75, 95))
    if args.music:
        table("Music", args.music, (10, 50, 90))
    if args.volumes:
        table("Volumes", args.volumes, (10, 50, 90))
    if args.crops and photos:
        crops(photos[:6])


if __name__ == "__main__":
    main()
