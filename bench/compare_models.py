"""Compare models (training checkpoints or shipped models) by BD-rate over a sweep of steps.

Each model codes the photos of each folder at every quantisation step of ``--steps``; rate =
lossless-WebP payload bits per pixel (the header is the same for all and left out), PSNR over
8-bit samples with peak 255. Reported per model: rate and PSNR at the first step, the PSNR gap
to WebP (method 6) at that rate (WebP's own curve over quality 0..100, interpolated), and the
BD-rate (bjontegaard pchip, per photo, mean) of the model's step sweep against the first
model's. Used for two decisions (results in bench/results/):

* which rate term to train with (``rate_term.txt``; configs/experiments/ratecmp-*.toml: 16x
  RGB from PCA, 3000 steps, one CPU thread; swept over steps 0.7..1.4 around the trained step);
* whether variable-rate training and the decoder's step input pay (``variable_rate.txt``).

    python bench/compare_models.py MODEL... [--steps 1 2 4] [--photos data/photos/test data/photos/val]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from walloc_cli.model.config import CodecConfig
from walloc_cli.model.network import WallocCodec
from walloc_cli.eval.measures import Point, baseline_points, bd_rate
from walloc_cli.model.zoo import load_network
from walloc_cli.train.loop import load_checkpoint, load_photos, validate


def load(spec: str) -> tuple[WallocCodec, str]:
    """A checkpoint (``.safetensors`` with its ``.json`` sidecar) or a model name/card."""
    path = Path(spec)
    sidecar = path.with_name(path.name + ".json")
    if path.suffix == ".safetensors" and sidecar.exists():
        meta = json.loads(sidecar.read_text())
        model = WallocCodec(CodecConfig.from_dict(meta["codec"]))
        load_checkpoint(path, model, None)
        return model.eval(), f"{path.stem} ({meta['train'].get('rate', 'mixture')}, {meta['step']} steps)"
    model, card = load_network(spec)
    return model, card.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--steps", nargs="+", type=float, default=[1.0, 0.7, 0.8, 0.9, 1.15, 1.3, 1.4])
    parser.add_argument("--photos", nargs="+", type=Path, default=[Path("data/photos/test"), Path("data/photos/val")])
    args = parser.parse_args()
    models = [load(spec) for spec in args.models]
    channels = models[0][0].cfg.channels
    for folder in args.photos:
        photos = load_photos(folder, channels)
        curves = [baseline_points("webp", p.permute(1, 2, 0).numpy().squeeze(), list(range(0, 101, 5))) for p in photos]
        print(f"{folder} ({len(photos)} photos); steps {' '.join(f'{s:g}' for s in args.steps)}")
        sweeps = []
        for model, label in models:
            sweep = [[Point("walloc", s, *validate(model, [photo], s).values()) for s in args.steps] for photo in photos]
            sweeps.append(sweep)
            first = [points[0] for points in sweep]
            gaps = []
            for point, curve in zip(first, curves):
                order = sorted(curve, key=lambda p: p.bpp)
                gaps.append(point.psnr - np.interp(point.bpp, [p.bpp for p in order], [p.psnr for p in order]))
            bd = np.nanmean([bd_rate(a, b) for a, b in zip(sweeps[0], sweep)])
            print(f"  {label:<44} step {args.steps[0]:g}: {np.mean([p.bpp for p in first]):.4f} bpp {np.mean([p.psnr for p in first]):.2f} dB, gap to WebP {np.mean(gaps):+.2f} dB;  BD-rate vs first {bd:+.1f}%")


if __name__ == "__main__":
    main()
