"""The ``ctx`` payload (format 2.2) against WebP for the same latents: bytes, and the payload
stage's encode and decode time per megapixel, for photos (issue 16). Audio and volumes:
``bench/payload_modalities.py --against ctx``; every coder on the reference latents:
``bench/payload_coders.py``.

Images: each photo is coded at each quality with the default payload (WebP effort 4) to get its
latents; the very same latents are then coded as WebP effort 4 and 6 (format 2.1's split layout)
and as ``ctx``. Bytes are those of the coded latents (the ``LATN`` data), so the header and
framing are left out; times are one thread, in-process, best of ``--repeat``.

Usage::

    OMP_NUM_THREADS=1 python bench/payload_ctx.py --photos data/corpus/photos/val --count 8 [--out FILE]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from walloc_cli.api.arrays import compress
from walloc_cli.api.latents import read_latents
from walloc_cli.format.payload import decode_planes, encode_planes

from payload_coders import best  # bench/, beside this script

QUALITIES = (10, 50, 75, 95)
CODERS = {"webp4": ("webp", 4), "webp6": ("webp", 6), "ctx": ("ctx", 4)}


def photos(paths: list[Path], repeat: int) -> list[str]:
    lines = ["| q | MP | WebP e4 bytes | WebP e6 | ctx | ctx vs e4 | encode s/MP e4 / e6 / ctx | decode s/MP e4 / ctx |", "|---:|---:|---:|---:|---:|---:|---|---|"]
    for quality in QUALITIES:
        size = {name: 0 for name in CODERS}
        encode = {name: 0.0 for name in CODERS}
        decode = {name: 0.0 for name in ("webp4", "ctx")}
        megapixels = 0.0
        for path in paths:
            pixels = np.asarray(Image.open(path).convert("RGB"))
            megapixels += pixels.shape[0] * pixels.shape[1] / 1e6
            q, info = read_latents(compress(pixels, quality=quality, payload="webp"))
            for name, (codec, effort) in CODERS.items():
                split = codec == "webp" and info.header["latent"].get("split") is True
                chunks, seconds = best(lambda: encode_planes(q, info.bits, codec, effort, split), repeat)  # type: ignore[arg-type]
                encode[name] += seconds
                size[name] += sum(len(c) for c in chunks)  # type: ignore[union-attr]
                if name in decode:
                    back, seconds = best(lambda: decode_planes(chunks, q.shape, info.bits, codec, split), repeat)  # type: ignore[arg-type]
                    assert np.array_equal(back, q), (path, quality, name)  # lossless, bit for bit
                    decode[name] += seconds
        per = {name: t / megapixels for name, t in encode.items()}
        lines.append(
            f"| {quality} | {megapixels:.2f} | {size['webp4']} | {size['webp6']} ({size['webp6'] / size['webp4'] - 1:+.1%}) | {size['ctx']} | "
            f"**{size['ctx'] / size['webp4'] - 1:+.1%}** | {per['webp4']:.3f} / {per['webp6']:.3f} / {per['ctx']:.3f} | "
            f"{decode['webp4'] / megapixels:.3f} / {decode['ctx'] / megapixels:.3f} |"
        )
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, action="append", default=[])
    parser.add_argument("--count", type=int, default=8, help="photos taken from each --photos folder (sorted)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    report: list[str] = []
    for folder in args.photos:
        paths = sorted(folder.glob("*.png"))[: args.count]
        report += ["", f"Photos: {folder} ({len(paths)}), coded latents only", ""] + photos(paths, args.repeat)
    if args.out:
        args.out.write_text("\n".join(report) + "\n")


if __name__ == "__main__":
    main()
