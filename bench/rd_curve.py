"""Rate-distortion curve of walloc over -q beside WebP, JPEG, AVIF and JPEG XL, in one run.

For every photo in DIR (default: the 8 held-out test photos of ``walloc data photos``):

* walloc at ``-q`` 0, 10, ..., 100 through the shipped quality ladder of the photo's family;
  rate = bytes of the whole ``.wlc`` file * 8 / pixels; PSNR over the 8-bit R, G, B samples,
  peak 255. ICC profiles are dropped on every side, so all rates count pixels only.
* monotonicity: the file size at every integer q 0..100 must not fall as q rises;
* baselines on the same uint8 pixels (``walloc_cli.eval.measures``): WebP (method 6), JPEG
  (libjpeg-turbo, optimised), AVIF (libavif speed 6), JPEG XL (libjxl) over their quality
  ranges;
* BD-rate (``bjontegaard``, pchip, over the PSNR range both curves cover) of walloc against each
  baseline, per photo, then the mean over photos: over walloc's whole -q range, and over its
  low-rate points only (q <= 30, the 16x model's stretch, where WaLLoC's design aims);
* ``--target-psnr 32`` and ``--target-size`` (the size of the photo's WebP q=75 file, and half
  of it) run through the library exactly as the CLI runs them.

    python bench/rd_curve.py [DIR] [--json OUT] [--plot OUT_PREFIX]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from walloc_cli.codecs.image import compress_image, decode_image, quantized
from walloc_cli.eval.measures import Point, baseline_codecs, baseline_points, bd_rate
from walloc_cli.files.images import image_from_array, read_image
from walloc_cli.metrics import bits_per_pixel, psnr
from walloc_cli.model.quality import rung

BASELINE_QUALITIES = {
    "webp": list(range(0, 101, 5)),
    "jpeg": list(range(5, 100, 5)),
    "avif": list(range(0, 101, 5)),
    "jxl": list(range(10, 101, 5)),
}


LOW_RATE_Q = 30  # the 16x model's stretch of the scale: where WaLLoC's design aims


def _mean(table: dict[str, list[float]]) -> dict[str, float]:
    return {c: float(np.nanmean(v)) if not all(math.isnan(x) for x in v) else math.nan for c, v in table.items()}


def walloc_points(image, qualities: list[float]) -> list[Point]:
    reference = quantized(image)
    pixels = image.height * image.width
    points = []
    for quality in qualities:
        started = time.perf_counter()
        encoded = compress_image(image, quality=quality)
        middle = time.perf_counter()
        decoded = decode_image(encoded.data)
        ended = time.perf_counter()
        points.append(Point("walloc", quality, bits_per_pixel(len(encoded.data), pixels), psnr(reference, quantized(decoded), 255), middle - started, ended - middle))
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default="data/photos/test", type=Path)
    parser.add_argument("--json", type=Path, default=Path("bench/results/rd_curve.json"))
    parser.add_argument("--plot", type=Path, default=Path("bench/results/rd_curve"))
    parser.add_argument("--target-psnr", type=float, default=32.0)
    parser.add_argument("--gray", action="store_true", help="convert the photos to gray (PIL 'L') first: the gray ladder")
    args = parser.parse_args()
    photos = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in {".png", ".jpg", ".tif", ".webp"})
    codecs = list(baseline_codecs())
    qualities = list(range(0, 101, 10))
    results: dict[str, object] = {
        "machine": f"{platform.machine()} {platform.processor()}, torch threads {torch.get_num_threads()}",
        "photos": [p.name for p in photos],
        "rate": "bits per pixel of the whole file; metadata (ICC) dropped for every codec",
        "distortion": "PSNR over R,G,B 8-bit samples, peak 255",
        "bd_rate": "bjontegaard pchip, walloc vs anchor, over the shared PSNR range; per photo, then mean",
        "per_photo": {},
    }
    bd: dict[str, list[float]] = {c: [] for c in codecs}
    bd_low: dict[str, list[float]] = {c: [] for c in codecs}
    curves: dict[str, list[list[Point]]] = {c: [] for c in ["walloc", *codecs]}
    monotone_failures = []
    target_rows = []
    print(f"{len(photos)} photos from {args.folder}; baselines: {', '.join(codecs)}")
    for path in photos:
        if args.gray:
            with Image.open(path) as source:
                image = image_from_array(np.asarray(source.convert("L")))
        else:
            image = dataclasses.replace(read_image(path), icc_profile=None)
        rgb = quantized(image).astype(np.uint8).transpose(1, 2, 0)
        if rgb.shape[2] == 1:
            rgb = rgb[..., 0]
        ours = walloc_points(image, qualities)
        curves["walloc"].append(ours)
        # 101 qualities are 26 rungs of 4: code each rung once
        by_rung: dict[float, int] = {}
        sizes = []
        for q in range(101):
            if rung(q) not in by_rung:
                by_rung[rung(q)] = len(compress_image(image, quality=q).data)
            sizes.append(by_rung[rung(q)])
        drops = [q for q in range(1, 101) if sizes[q] < sizes[q - 1]]
        if drops:
            monotone_failures.append({"photo": path.name, "q": drops})
        row: dict[str, object] = {"walloc": [dataclasses.asdict(p) for p in ours], "sizes_by_q": sizes}
        for codec in codecs:
            theirs = baseline_points(codec, rgb, BASELINE_QUALITIES[codec])
            curves[codec].append(theirs)
            row[codec] = [dataclasses.asdict(p) for p in theirs]
            bd[codec].append(bd_rate(theirs, ours))
            bd_low[codec].append(bd_rate(theirs, [p for p in ours if p.quality <= LOW_RATE_Q]))
        # targets, exactly as `walloc compress --target-psnr / --target-size` run them
        hit = compress_image(image, target_psnr=args.target_psnr)
        webp75 = next(p for p in curves["webp"][-1] if p.quality == 75) if "webp" in codecs else None
        budget = int(round(webp75.bpp * image.height * image.width / 8)) if webp75 else 20000
        fits = []
        for size in (budget, budget // 2):
            try:
                fitted = compress_image(image, target_size=size)
                fits.append({"asked": size, "got": len(fitted.data), "psnr": fitted.psnr, "model": fitted.setting.model, "step": fitted.setting.step})
            except Exception as error:  # noqa: BLE001 - report, do not stop the benchmark
                fits.append({"asked": size, "error": str(error)})
        target_rows.append({"photo": path.name, "target_psnr": args.target_psnr, "psnr": hit.psnr, "reached": hit.target_reached, "bpp": bits_per_pixel(len(hit.data), image.height * image.width), "model": hit.setting.model, "step": hit.setting.step, "sizes": fits})
        results["per_photo"][path.name] = row  # type: ignore[index]
        print(f"  {path.name:<36} walloc q0 {ours[0].bpp:.3f}/{ours[0].psnr:.2f}  q100 {ours[-1].bpp:.3f}/{ours[-1].psnr:.2f}  " + "  ".join(f"BD vs {c} {bd[c][-1]:+.1f}%" for c in codecs))

    print("\nMean over photos (rate bpp / PSNR dB) by quality setting:")
    for codec, per_photo in curves.items():
        by_q = {}
        for points in per_photo:
            for p in points:
                by_q.setdefault(p.quality, []).append(p)
        line = "  ".join(f"q{q:g} {np.mean([p.bpp for p in ps]):.3f}/{np.mean([p.psnr for p in ps]):.2f}" for q, ps in sorted(by_q.items()) if q % 10 == 0 or codec == "walloc")
        print(f"  {codec:<7}{line}")
    mean_bd, mean_low = _mean(bd), _mean(bd_low)
    print(f"\nBD-rate of walloc against each codec (negative = walloc needs fewer bits), mean over photos;"
          f"\n  full: walloc's whole -q range; low rate: walloc's q <= {LOW_RATE_Q} points only (PSNR range they span):")
    for codec in codecs:
        valid = sum(not math.isnan(x) for x in bd[codec])
        print(f"  vs {codec:<5} full {mean_bd[codec]:+7.1f}%   low rate {mean_low[codec]:+7.1f}%   ({valid}/{len(photos)} photos with enough PSNR overlap)")
    reached = [r for r in target_rows if r["reached"]]
    errors = [abs(r["psnr"] - args.target_psnr) for r in reached]
    print(f"\n--target-psnr {args.target_psnr:g}: reached on {len(reached)}/{len(target_rows)} photos; |error| max {max(errors, default=float('nan')):.3f} dB, mean {np.mean(errors) if errors else float('nan'):.3f} dB")
    for r in target_rows:
        print(f"  {r['photo']:<36} {r['psnr']:.2f} dB at {r['bpp']:.3f} bpp ({r['model']} step {r['step']:g}){'' if r['reached'] else '  NOT REACHABLE'}")
    over = [(r["photo"], f) for r in target_rows for f in r["sizes"] if "got" in f and f["got"] > f["asked"]]
    print(f"--target-size: {sum('got' in f for r in target_rows for f in r['sizes'])} searches, {len(over)} over the size asked" + "".join(f"\n  OVER: {p} {f}" for p, f in over))
    print(f"monotone bpp over integer q 0..100: {'every photo' if not monotone_failures else monotone_failures}")
    results.update({"bd_rate_mean": mean_bd, "bd_rate_per_photo": bd, "bd_rate_low_rate_mean": mean_low, "bd_rate_low_rate_per_photo": bd_low, "low_rate_q": LOW_RATE_Q, "targets": target_rows, "monotone_failures": monotone_failures})
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    plot(curves, args.plot, args.gray)


def plot(curves: dict[str, list[list[Point]]], prefix: Path, gray: bool = False) -> None:
    """Mean rate and PSNR per quality setting, one line per codec (PNG and SVG)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install 'walloc[eval]')")
        return
    figure, axis = plt.subplots(figsize=(7, 5))
    for codec, per_photo in curves.items():
        by_q: dict[float, list[Point]] = {}
        for points in per_photo:
            for p in points:
                by_q.setdefault(p.quality, []).append(p)
        xs = [np.mean([p.bpp for p in ps]) for _, ps in sorted(by_q.items())]
        ys = [np.mean([p.psnr for p in ps]) for _, ps in sorted(by_q.items())]
        axis.plot(xs, ys, marker="o" if codec == "walloc" else ".", linewidth=2.5 if codec == "walloc" else 1.2, label=codec)
    axis.set_xscale("log")
    axis.set_xlim(0.04, 3)
    axis.set_ylim(22, 46)
    axis.set_xlabel("bits per pixel (whole file)")
    axis.set_ylabel(f"PSNR (dB, {'gray' if gray else 'RGB'}, peak 255)")
    axis.set_title(f"{len(next(iter(curves.values())))} held-out photos: mean rate and PSNR per quality setting")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    for suffix in (".png", ".svg"):
        figure.savefig(prefix.with_suffix(suffix), dpi=120, bbox_inches="tight")
    print(f"plot: {prefix.with_suffix('.png')} and .svg")


if __name__ == "__main__":
    main()
