"""Which rate term to train with: compare checkpoints trained alike except for the rate proxy.

Each checkpoint (configs/experiments/ratecmp-*.toml: 16x RGB, PCA start, 3000 steps, one CPU
thread) codes the photos of DIR at step 1; rate = lossless-WebP payload bits per pixel, PSNR over
8-bit RGB with peak 255. As the runs land at different rates, each is scored by its PSNR gap to
WebP (method 6) at the same bpp on the same photo (WebP's curve over quality 0..100, linear
interpolation), averaged over photos; the BD-rate needs curves, which fixed-rate runs lack.

    python bench/rate_term.py CHECKPOINT... [--photos data/photos/test data/photos/val]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from walloc_cli.codec import CodecConfig, WallocCodec
from walloc_cli.evaluation import baseline_points
from walloc_cli.training import load_checkpoint, load_photos, validate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--photos", nargs="+", type=Path, default=[Path("data/photos/test"), Path("data/photos/val")])
    args = parser.parse_args()
    for folder in args.photos:
        photos = load_photos(folder)
        curves = [baseline_points("webp", p.permute(1, 2, 0).numpy(), list(range(0, 101, 5))) for p in photos]
        print(f"{folder} ({len(photos)} photos)")
        for checkpoint in args.checkpoints:
            meta = json.loads(checkpoint.with_name(checkpoint.name + ".json").read_text())
            model = WallocCodec(CodecConfig.from_dict(meta["codec"]))
            load_checkpoint(checkpoint, model, None)
            rows = [validate(model, [photo]) for photo in photos]
            gaps = []
            for row, curve in zip(rows, curves):
                order = sorted(curve, key=lambda p: p.bpp)
                webp = np.interp(row["bpp"], [p.bpp for p in order], [p.psnr for p in order])
                gaps.append(row["psnr"] - webp)
            print(f"  {meta['train']['rate']:<9} steps {meta['step']:>6}  {np.mean([r['bpp'] for r in rows]):.4f} bpp  {np.mean([r['psnr'] for r in rows]):.2f} dB  gap to WebP {np.mean(gaps):+.2f} dB")


if __name__ == "__main__":
    main()
