"""Rate, PSNR and speed of the shipped RGB models against WebP, measured in one run.

For every shipped image model and every photo in DIR (default: the held-out test split that
``walloc data photos`` writes; no model was trained on it):

* walloc rate = bytes of the whole ``.wlc`` file (header included) * 8 / pixels; metadata is
  left out on both sides (the photos' ICC profiles are dropped before coding, as ``cwebp``
  drops metadata by default), so both rates count pixels only;
* PSNR = over the R, G, B samples of the decoded 8-bit image, peak 255;
* WebP (Pillow/libwebp, ``method=6``) is run at every quality 0..100 and its PSNR at walloc's
  exact bpp is read off WebP's rate-PSNR curve of that photo (linear interpolation between the
  two nearest qualities); the table reports the mean over photos;
* speed = megapixels per second of ``encode_image`` / ``decode_image`` (in-memory, no file I/O),
  beside WebP at its default settings (quality 80, method 4) on the same photos, same process.

    python bench/images.py [DIR] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from walloc_cli.codecs.image import decode_image, encode_image, quantized
from walloc_cli.files.images import read_image
from walloc_cli.metrics import bits_per_pixel, psnr
from walloc_cli.model.zoo import available_models


def webp_curve(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """WebP (method 6) bpp and PSNR at qualities 0..100 for an ``(H, W, 3)`` uint8 photo."""
    image = Image.fromarray(rgb)
    rates, scores = [], []
    for quality in range(0, 101, 5):
        buffer = io.BytesIO()
        image.save(buffer, format="WEBP", quality=quality, method=6)
        decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
        rates.append(bits_per_pixel(len(buffer.getvalue()), rgb.shape[0] * rgb.shape[1]))
        scores.append(psnr(rgb, decoded, 255))
    order = np.argsort(rates)
    return np.asarray(rates)[order], np.asarray(scores)[order]


def timed(action, repeats: int = 2) -> tuple[float, object]:
    """Best-of-``repeats`` wall time (after one warm-up call) and the last result."""
    result = action()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        result = action()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default="data/photos/test", type=Path)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    photos = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in {".png", ".jpg", ".tif", ".webp"})
    curves = {}
    webp_speed = []
    for path in photos:
        image = read_image(path)
        rgb = quantized(image).astype(np.uint8).transpose(1, 2, 0)
        curves[path.name] = webp_curve(rgb)
        pil = Image.fromarray(rgb)
        enc, data = timed(lambda: (lambda b: (pil.save(b, format="WEBP"), b.getvalue())[1])(io.BytesIO()))
        dec, _ = timed(lambda: np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
        webp_speed.append((rgb.shape[0] * rgb.shape[1], enc, dec))
    mp = sum(p for p, _, _ in webp_speed) / 1e6
    webp_enc = mp / sum(e for _, e, _ in webp_speed)
    webp_dec = mp / sum(d for _, _, d in webp_speed)
    results = {"machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads", "photos": [p.name for p in photos], "models": []}
    print(f"{len(photos)} photos from {args.folder}, {mp:.2f} MP in all; torch threads {torch.get_num_threads()}")
    header = f"{'model':<10}{'bpp':>8}{'PSNR':>8}{'WebP@bpp':>10}{'gap dB':>8}{'enc MP/s':>10}{'dec MP/s':>10}{'WebP enc':>10}{'WebP dec':>10}"
    print(header)
    for card in available_models():
        if card.modality != "image" or card.config.channels != 3:
            continue  # RGB models at their step 1; gray and audio models have their own benches
        rows = []
        enc_time = dec_time = 0.0
        for path in photos:
            image = dataclasses.replace(read_image(path), icc_profile=None)
            enc, data = timed(lambda: encode_image(image, model=card.name))
            dec, decoded = timed(lambda: decode_image(data))
            enc_time += enc
            dec_time += dec
            pixels = image.height * image.width
            bpp = bits_per_pixel(len(data), pixels)
            score = psnr(quantized(image), quantized(decoded), 255)
            rates, scores = curves[path.name]
            webp_at = float(np.interp(bpp, rates, scores)) if rates[0] <= bpp <= rates[-1] else float("nan")
            rows.append({"photo": path.name, "bpp": bpp, "psnr": score, "webp_psnr_at_bpp": webp_at})
        mean = {k: float(np.nanmean([r[k] for r in rows])) for k in ("bpp", "psnr", "webp_psnr_at_bpp")}
        entry = {"model": card.name, **mean, "gap_db": mean["psnr"] - mean["webp_psnr_at_bpp"], "encode_mp_s": mp / enc_time, "decode_mp_s": mp / dec_time, "webp_encode_mp_s": webp_enc, "webp_decode_mp_s": webp_dec, "per_photo": rows}
        results["models"].append(entry)
        print(f"{card.name:<10}{mean['bpp']:>8.3f}{mean['psnr']:>8.2f}{mean['webp_psnr_at_bpp']:>10.2f}{entry['gap_db']:>8.2f}{entry['encode_mp_s']:>10.2f}{entry['decode_mp_s']:>10.2f}{webp_enc:>10.2f}{webp_dec:>10.2f}")
        for row in rows:
            print(f"    {row['photo']:<34}{row['bpp']:>8.3f}{row['psnr']:>8.2f}{row['webp_psnr_at_bpp']:>10.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
