"""Measure shipped models and lay them out on the 0..100 quality scale of their family.

    python scripts/build_quality_map.py --family rgb --models rgb-16x-v rgb-4x-v rgb-2x-v
    python scripts/build_quality_map.py --measure-only --models rgb-16x rgb-4x

1. Every model is measured at a geometric grid of quantisation steps across its trained range,
   on the held-out test photos (written to its card as ``results``: mean bpp of the whole .wlc
   file, mean PSNR over 8-bit samples with peak 255, and per photo) and on the *tuning* photos
   (validation + training photos: the map is never fitted on the test set).
2. On the tuning photos' mean curves, consecutive models (ordered from low to high rate) hand
   over where the next one starts to give a higher PSNR at the same rate. The next model starts
   a little above the hand-over rate, with the smallest margin that keeps every tuning photo's
   rate at least 3% above where the previous model ended.
3. Each model's stretch of q is proportional to the log-rate span it covers, so q is roughly
   linear in log(bpp). The stretches are written to the cards' ``quality`` field.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

from walloc_cli.codecs.image import decode_image, encode_image, quantized
from walloc_cli.files.images import ImageData, image_from_array, read_image
from walloc_cli.metrics import bits_per_pixel, psnr
from walloc_cli.model.quality import QUALITY_RUNG, trained_steps
from walloc_cli.model.zoo import find_card, models_dir, quality_entries


def load_photos(folders: list[Path], limit: int | None = None, channels: int = 3) -> dict[str, ImageData]:
    photos = {}
    for folder in folders:
        for path in sorted(folder.glob("*.png"))[:limit]:
            if channels == 1:  # gray versions of the photos, converted as training converts them
                with Image.open(path) as source:
                    image = image_from_array(np.asarray(source.convert("L")))
            else:
                image = dataclasses.replace(read_image(path), icc_profile=None)  # pixels only, as the benchmarks
            photos[path.name] = image
    return photos


def measure(model: str, step: float, photos: dict[str, ImageData]) -> dict[str, tuple[float, float]]:
    """Per photo: (bpp of the whole file, PSNR peak 255)."""
    rows = {}
    for name, image in photos.items():
        data = encode_image(image, model=model, step=step)
        decoded = decode_image(data)
        rows[name] = (bits_per_pixel(len(data), image.height * image.width), psnr(quantized(image), quantized(decoded), 255))
    return rows


def step_grid(model: str, points: int) -> list[float]:
    largest, smallest = trained_steps(find_card(model))
    if largest == smallest:
        return [largest]
    return [float(f"{s:.4g}") for s in np.geomspace(largest, smallest, points)]


@dataclasses.dataclass
class Curve:
    """A model's measurements: steps (large to small) and per-photo log-bpp / PSNR arrays."""

    model: str
    steps: np.ndarray
    log_bpp: dict[str, np.ndarray]
    psnr: dict[str, np.ndarray]

    def mean_log_bpp(self) -> np.ndarray:
        return np.log(np.mean([np.exp(v) for v in self.log_bpp.values()], axis=0))

    def mean_psnr(self) -> np.ndarray:
        return np.mean(list(self.psnr.values()), axis=0)

    def step_for(self, log_bpp: float, photo: str | None = None) -> float:
        """Step giving ``log_bpp`` (mean curve, or one photo's), interpolated in log step."""
        rates = self.log_bpp[photo] if photo else self.mean_log_bpp()
        return float(np.exp(np.interp(log_bpp, rates, np.log(self.steps))))

    def log_bpp_at(self, step: float, photo: str) -> float:
        return float(np.interp(math.log(step), np.log(self.steps[::-1]), self.log_bpp[photo][::-1]))


def curve_of(model: str, photos: dict[str, ImageData], points: int) -> tuple[Curve, list[dict[str, object]]]:
    steps = step_grid(model, points)
    table = {s: measure(model, s, photos) for s in steps}
    curve = Curve(
        model,
        np.asarray(steps),
        {n: np.log([table[s][n][0] for s in steps]) for n in photos},
        {n: np.asarray([table[s][n][1] for s in steps]) for n in photos},
    )
    rows = [{"step": s, "bpp": float(np.mean([v[0] for v in table[s].values()])), "psnr": float(np.mean([v[1] for v in table[s].values()]))} for s in steps]
    return curve, rows


def hand_over(a: Curve, b: Curve) -> float:
    """Mean log-bpp where ``b`` starts to beat ``a`` (PSNR at equal rate on the tuning photos)."""
    ra, pa, rb, pb = a.mean_log_bpp(), a.mean_psnr(), b.mean_log_bpp(), b.mean_psnr()
    low, high = max(ra.min(), rb.min()), min(ra.max(), rb.max())
    if low >= high:
        return float(ra.max())  # no overlap: a runs to its top rate, b takes over above it
    grid = np.linspace(low, high, 200)
    better = np.interp(grid, rb, pb) >= np.interp(grid, ra, pa)
    if not better.any():
        return float(ra.max())
    return float(grid[int(np.argmax(better))])


def build(curves: list[Curve]) -> list[dict[str, object]]:
    """Stretches (model, log-bpp start/end, step start/end) from low to high rate."""
    spans = []
    start_log = float(curves[0].mean_log_bpp().min())
    start_step = float(curves[0].steps[0])
    for index, curve in enumerate(curves):
        if index + 1 < len(curves):
            cut = hand_over(curve, curves[index + 1])
            end_step = max(curve.step_for(cut), float(curve.steps[-1]))
        else:
            cut, end_step = float(curve.mean_log_bpp().max()), float(curve.steps[-1])
        spans.append({"model": curve.model, "log_lo": start_log, "log_hi": cut, "step_lo": start_step, "step_hi": end_step})
        if index + 1 < len(curves):
            following = curves[index + 1]
            # smallest margin keeping rate rising across the hand-over on every tuning photo
            for margin in np.arange(0.02, 0.61, 0.02):
                step = min(following.step_for(cut + math.log1p(margin)), float(following.steps[0]))
                if all(following.log_bpp_at(step, p) > curve.log_bpp_at(end_step, p) + math.log(1 + SAFETY) for p in curve.log_bpp):
                    break
            start_log, start_step = cut + math.log1p(margin), step
    return spans


SAFETY = 0.03  # the next model must start at least 3% above the previous one's end, per photo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="rgb")
    parser.add_argument("--models", nargs="+", required=True, help="from low to high rate")
    parser.add_argument("--test", type=Path, default=Path("data/photos/test"))
    parser.add_argument("--tune", type=Path, nargs="+", default=[Path("data/photos/val"), Path("data/photos/train")])
    parser.add_argument("--tune-limit", type=int, default=100, help="photos taken from each tuning folder")
    parser.add_argument("--points", type=int, default=7)
    parser.add_argument("--measure-only", action="store_true")
    args = parser.parse_args()
    channels = find_card(args.models[0]).config.channels
    test = load_photos([args.test], channels=channels)
    tune = load_photos(args.tune, args.tune_limit, channels=channels)
    curves = []
    for model in args.models:
        if find_card(model).config.channels != channels:
            # e.g. an RGB model on the gray scale's high end: tuned here, measured in its own family
            curves.append(curve_of(model, tune, args.points)[0])
            continue
        measured, rows = curve_of(model, test, args.points)
        card_path = models_dir() / f"{model}.json"
        card = json.loads(card_path.read_text())
        per_photo = {
            n: [{"step": float(s), "bpp": float(math.exp(r)), "psnr": float(v)} for s, r, v in zip(measured.steps, measured.log_bpp[n], measured.psnr[n])]
            for n in test
        }
        card["results"] = {
            "set": f"{len(test)} held-out photos in {args.test} (`walloc data photos`; never trained on)" + (", converted to gray" if channels == 1 else ""),
            "rate": "bits of the whole .wlc file per pixel (webp payload; ICC metadata dropped)",
            "distortion": f"PSNR over {'the gray' if channels == 1 else 'R, G, B'} 8-bit samples, peak 255; mean over photos",
            "points": rows,
            "per_photo": per_photo,
        }
        card_path.write_text(json.dumps(card, indent=2) + "\n")
        print(f"{model}: " + ", ".join(f"step {r['step']:g} {r['bpp']:.3f} bpp {r['psnr']:.2f} dB" for r in rows))
        if not args.measure_only:
            curves.append(curve_of(model, tune, args.points)[0])
    if args.measure_only:
        return
    spans = build(curves)
    total = sum(s["log_hi"] - s["log_lo"] for s in spans)
    q = 0.0
    edges = [0]
    for span in spans[:-1]:
        q += 100 * (span["log_hi"] - span["log_lo"]) / total
        edges.append(QUALITY_RUNG * int(round(q / QUALITY_RUNG)))  # hand-overs fall on rungs
    edges.append(100)
    for span, lo, hi in zip(spans, edges, edges[1:]):
        card_path = models_dir() / f"{span['model']}.json"
        card = json.loads(card_path.read_text())
        entry = {"family": args.family, "q": [lo, hi], "step": [float(f"{span['step_lo']:.4g}"), float(f"{span['step_hi']:.4g}")]}
        others = quality_entries(card)  # the one shape cards hold: a list of {family, q, step}
        card["quality"] = [q for q in others if q["family"] != args.family] + [entry]
        card_path.write_text(json.dumps(card, indent=2) + "\n")
        print(f"{span['model']}: q {lo}..{hi}, step {span['step_lo']:.3g} -> {span['step_hi']:.3g}, ~{math.exp(span['log_lo']):.3f}..{math.exp(span['log_hi']):.3f} bpp (tuning photos)")


if __name__ == "__main__":
    main()
