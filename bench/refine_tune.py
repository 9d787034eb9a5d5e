"""Tune ``--refine`` (encoder-side search, issue 18 item 3) on validation photos only.

For each photo (a centre crop of ``--crop`` pixels, for speed) and each walloc quality of
:data:`QUALITIES`, the setting ``walloc compress -q`` chooses without search is found once;
then every configuration codes the crop at that very setting (same model, same step), so the
comparison is the search alone: bytes of the whole ``.wlc``, PSNR of its decode, encode
seconds. A configuration is ``surrogate:steps[:key=value...]`` over the fields of
:class:`walloc_cli.model.refine.RefineSettings` (``fraction``, ``lr``, ``lam_scale``).
BD-rate is of each configuration against the plain encode (``steps`` 0), per photo, then
the mean.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python bench/refine_tune.py /work/data/corpus/photos/val \\
        --photos 6 --crop 320 flip:25 flip:25:lam_scale=2 ste:25:lr=0.005
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from walloc_cli.codecs.image import compress_image, decoded_psnr, encode_image
from walloc_cli.eval.measures import bd_rate_values
from walloc_cli.files.images import ImageData, read_image
from walloc_cli.model.refine import RefineSettings

QUALITIES = (10.0, 50.0, 75.0, 95.0)


def parse(spec: str) -> RefineSettings:
    """``surrogate:steps[:key=value...]`` to settings."""
    surrogate, steps, *rest = spec.split(":")
    extra = {key: float(value) for key, value in (item.split("=") for item in rest)}
    return RefineSettings(int(steps), surrogate=surrogate, **extra)  # type: ignore[arg-type]


def centre_crop(image: ImageData, size: int) -> ImageData:
    """The centre ``size`` x ``size`` pixels (the whole side where it is shorter)."""
    h, w = image.height, image.width
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    pixels = np.ascontiguousarray(image.pixels[:, top : top + size, left : left + size])
    return ImageData(pixels=pixels, alpha=None, bit_depth=image.bit_depth, mode=image.mode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--photos", type=int, default=6, help="the first N photos, sorted by name")
    parser.add_argument("--crop", type=int, default=320)
    args = parser.parse_args()
    files = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".webp"})[: args.photos]
    configs = [parse(c) for c in args.configs]
    results: dict[str, list[tuple[float, float, float, float]]] = {c: [] for c in ["plain", *args.configs]}
    bd: dict[str, list[float]] = {c: [] for c in args.configs}
    for path in files:
        image = centre_crop(read_image(path), args.crop)
        mp = image.width * image.height / 1e6
        points: dict[str, list[tuple[float, float]]] = {c: [] for c in results}
        for q in QUALITIES:
            setting = compress_image(image, quality=q, metadata="none").setting
            cache: dict = {}
            for name, settings in [("plain", RefineSettings(0)), *zip(args.configs, configs)]:
                started = time.perf_counter()
                data = encode_image(image, setting.model, step=setting.step, cache=cache, refine=settings)
                seconds = time.perf_counter() - started
                bpp, psnr = len(data) * 8 / (image.width * image.height), decoded_psnr(data, image)
                points[name].append((bpp, psnr))
                results[name].append((q, bpp, psnr, seconds / mp))
                print(f"{path.name} q{q:g} {setting.model}@{setting.step:g} {name}: {len(data)} B {psnr:.3f} dB {seconds / mp:.1f} s/MP", file=sys.stderr, flush=True)
        for name in args.configs:
            anchor, test = np.array(points["plain"]), np.array(points[name])
            bd[name].append(bd_rate_values(anchor[:, 0], anchor[:, 1], test[:, 0], test[:, 1]))
    print(f"{len(files)} validation photos of {args.folder} (first by name), centre crops {args.crop}x{args.crop}; each quality at the setting plain -q chooses")
    print("| config | BD-rate vs plain (mean / per photo) | " + " | ".join(f"q {q:g}: bytes / PSNR change" for q in QUALITIES) + " | s/MP |")
    print("|---|---|" + "---|" * len(QUALITIES) + "---|")
    plain = results["plain"]
    for name in args.configs:
        rows = results[name]
        cells = []
        for q in QUALITIES:
            mine = [r for r in rows if r[0] == q]
            base = [r for r in plain if r[0] == q]
            rate = statistics.mean(m[1] / b[1] - 1 for m, b in zip(mine, base)) * 100
            gain = statistics.mean(m[2] - b[2] for m, b in zip(mine, base))
            cells.append(f"{rate:+.1f}% / {gain:+.2f} dB")
        per = ", ".join(f"{v:+.1f}" for v in bd[name])
        print(f"| {name} | {statistics.mean(bd[name]):+.2f}% ({per}) | " + " | ".join(cells) + f" | {statistics.mean(r[3] for r in rows):.0f} |")


if __name__ == "__main__":
    main()
