"""Audio and volume payloads: bytes of ``--payload jxl`` (or ``ctx``, ``--against ctx``) against
``--payload webp`` for the same latents (issue 16, item 5), on the held-out music and volume
test splits.

Both files of a pair hold the same integer latents (the payload is lossless), so their decoded
signals and PSNR are identical: only the bytes and the encode time move. Each file is
compressed through the library (``walloc_cli.api.files.compress_file``) at a few quality
settings with the default effort, and the table gives the whole-file bytes of each payload, the
relative change, and the in-process compress seconds.

Usage::

    python bench/payload_modalities.py /work/data/music/test /work/data/volumes/*/test [-q 25 -q 75] [--against ctx] [--count N]

The sets come from ``walloc data music`` and ``walloc data volumes`` (their ``test/`` splits).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from walloc_cli.api.files import compress_file

SUFFIXES = {".flac", ".wav", ".ogg", ".npy", ".nii", ".gz", ".tif", ".tiff"}


def measure(src: Path, quality: float, payload: str, out: Path) -> tuple[int, float, float]:
    """Bytes of the written file, its PSNR (dB) and the compress wall time (s)."""
    start = time.perf_counter()
    report = compress_file(src, out, quality=quality, payload=payload, overwrite=True)
    seconds = time.perf_counter() - start
    return out.stat().st_size, float(getattr(report, "psnr", float("nan"))), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("-q", "--quality", type=float, action="append")
    parser.add_argument("--against", default="jxl", choices=("jxl", "ctx", "png"), help="the payload compared with webp")
    parser.add_argument("--count", type=int, default=None, help="files taken from each folder (sorted; default all)")
    args = parser.parse_args()
    qualities = args.quality or [25.0, 75.0]
    other = args.against
    files = [p for folder in args.folders for p in sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES)[: args.count]]
    print(f"| file | q | webp bytes | {other} bytes | change | PSNR dB (both) | webp s | {other} s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    totals: dict[str, list[int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for src in files:
            kind = "audio" if src.suffix.lower() in {".flac", ".wav", ".ogg"} else "volume"
            for quality in qualities:
                webp = measure(src, quality, "webp", Path(tmp) / "a.wlc")
                theirs = measure(src, quality, other, Path(tmp) / "b.wlc")
                assert abs(webp[1] - theirs[1]) < 1e-9 or webp[1] != webp[1], (src, webp, theirs)  # same latents, same PSNR
                sums = totals.setdefault(f"{kind} q {quality:g}", [0, 0])
                sums[0] += webp[0]
                sums[1] += theirs[0]
                print(f"| {src.parent.parent.name}/{src.name} | {quality:g} | {webp[0]} | {theirs[0]} | {theirs[0] / webp[0] - 1:+.1%} | {webp[1]:.2f} | {webp[2]:.2f} | {theirs[2]:.2f} |", flush=True)
    print()
    print(f"| set | webp bytes | {other} bytes | change |")
    print("|---|---:|---:|---:|")
    for name, (w, j) in totals.items():
        print(f"| {name} | {w} | {j} | {j / w - 1:+.1%} |")


if __name__ == "__main__":
    main()
