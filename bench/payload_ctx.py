"""The ``ctx`` payload (format 2.2) against WebP for the same latents: bytes, and the payload
stage's encode and decode time per megapixel (issue 16).

Images: each photo is coded at each quality with the default payload (WebP effort 4) to get its
latents; the very same latents are then coded as WebP effort 4 and 6 (format 2.1's split layout)
and as ``ctx``. Bytes are those of the coded latents (the ``LATN`` data), so the header and
framing are left out; times are one thread, in-process, best of ``--repeat``. Audio and volumes:
``compress_file`` with ``--payload webp`` and ``ctx`` (same latents, so the same PSNR), whole
files.

Usage::

    OMP_NUM_THREADS=1 python bench/payload_ctx.py --photos data/corpus/photos/val --count 8 \\
        [--audio data/corpus/music/val ...] [--volumes data/corpus/volumes/val ...] [--out FILE]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from walloc_cli.api.arrays import compress
from walloc_cli.api.files import compress_file
from walloc_cli.api.latents import read_latents
from walloc_cli.format.payload import decode_planes, encode_planes

QUALITIES = (10, 50, 75, 95)
CODERS = {"webp4": ("webp", 4), "webp6": ("webp", 6), "ctx": ("ctx", 4)}


def best_of(repeat: int, function) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    """The shortest of ``repeat`` runs (s) and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


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
                seconds, chunks = best_of(repeat, lambda: encode_planes(q, info.bits, codec, effort, split))  # type: ignore[arg-type]
                encode[name] += seconds
                size[name] += sum(len(c) for c in chunks)  # type: ignore[union-attr]
                if name in decode:
                    seconds, back = best_of(repeat, lambda: decode_planes(chunks, q.shape, info.bits, codec, split))  # type: ignore[arg-type]
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


def signals(paths: list[Path], qualities: tuple[float, ...]) -> list[str]:
    lines = ["| file | q | webp bytes | ctx bytes | change | compress s webp / ctx |", "|---|---:|---:|---:|---:|---|"]
    totals: dict[str, list[int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            for quality in qualities:
                row = []
                for payload in ("webp", "ctx"):
                    out = Path(tmp) / f"{payload}.wlc"
                    start = time.perf_counter()
                    compress_file(path, out, quality=quality, payload=payload, overwrite=True, measure=False)
                    row.append((out.stat().st_size, time.perf_counter() - start))
                key = f"{path.parent.parent.name} q {quality:g}"
                sums = totals.setdefault(key, [0, 0])
                sums[0] += row[0][0]
                sums[1] += row[1][0]
                lines.append(f"| {path.parent.parent.name}/{path.name} | {quality:g} | {row[0][0]} | {row[1][0]} | {row[1][0] / row[0][0] - 1:+.1%} | {row[0][1]:.2f} / {row[1][1]:.2f} |")
                print(lines[-1], flush=True)
    lines += ["", "| set | webp bytes | ctx bytes | change |", "|---|---:|---:|---:|"]
    lines += [f"| {key} | {w} | {c} | **{c / w - 1:+.1%}** |" for key, (w, c) in totals.items()]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, action="append", default=[])
    parser.add_argument("--count", type=int, default=8, help="photos taken from each --photos folder (sorted)")
    parser.add_argument("--audio", type=Path, action="append", default=[])
    parser.add_argument("--audio-count", type=int, default=4)
    parser.add_argument("--volumes", type=Path, action="append", default=[])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    report: list[str] = []
    for folder in args.photos:
        paths = sorted(folder.glob("*.png"))[: args.count]
        report += ["", f"Photos: {folder} ({len(paths)}), coded latents only", ""] + photos(paths, args.repeat)
    audio = [p for folder in args.audio for p in sorted(folder.glob("*.wav"))[: args.audio_count]]
    if audio:
        report += ["", "Audio, whole files", ""] + signals(audio, (25.0, 50.0, 90.0))
    volumes = [p for folder in args.volumes for p in sorted(folder.glob("*.npy"))]
    if volumes:
        report += ["", "Volumes, whole files", ""] + signals(volumes, (25.0, 50.0, 90.0))
    if args.out:
        args.out.write_text("\n".join(report) + "\n")


if __name__ == "__main__":
    main()
