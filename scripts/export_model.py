"""Export a training checkpoint as a shipped model: weights + JSON card with measured results.

    python scripts/export_model.py CHECKPOINT NAME [--test data/photos/test] [--out models]

The card records the codec config, SHA-256 of the weights, the training recipe (read from the
checkpoint's JSON sidecar), the hardware, and the rate/PSNR measured here on the held-out test
photos: bpp of the whole .wlc file, PSNR over the 8-bit RGB samples with peak 255.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
from pathlib import Path

import numpy as np
import torch

from walloc_cli.codec import CodecConfig, WallocCodec
from walloc_cli.registry import export_model
from walloc_cli.training import load_checkpoint


def measure(card: str, folder: Path) -> dict[str, object]:
    """Mean bpp / PSNR of the exported model (its card path) over the photos in ``folder``."""
    from walloc_cli.api import decode_image, encode_image, quantized
    from walloc_cli.images import read_image
    from walloc_cli.metrics import bits_per_pixel, psnr
    from walloc_cli.registry import _load

    _load.cache_clear()
    rows = []
    for path in sorted(folder.glob("*.png")):
        image = dataclasses.replace(read_image(path), icc_profile=None)  # pixels only, as bench/images.py
        data = encode_image(image, model=card)
        decoded = decode_image(data, model=card)
        rows.append({"photo": path.name, "bpp": bits_per_pixel(len(data), image.height * image.width), "psnr": psnr(quantized(image), quantized(decoded), 255)})
    return {
        "test_set": f"{len(rows)} held-out photos ({folder}, built by scripts/build_photo_set.py; never trained on)",
        "rate": "bits of the whole .wlc file per pixel (webp payload; ICC metadata dropped)",
        "distortion": "PSNR over R,G,B 8-bit samples, peak 255; mean over photos",
        "bpp": float(np.mean([r["bpp"] for r in rows])),
        "psnr": float(np.mean([r["psnr"] for r in rows])),
        "per_photo": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("name")
    parser.add_argument("--test", type=Path, default=Path("data/photos/test"))
    parser.add_argument("--out", type=Path, default=Path("models"))
    parser.add_argument("--hardware", default=f"{platform.machine()} CPU, 2 cores, no GPU")
    parser.add_argument("--note", default="")
    parser.add_argument("--effort", type=int, default=4, help="default lossless WebP effort of the payload (bench/payload_effort.py)")
    args = parser.parse_args()
    meta = json.loads(args.checkpoint.with_name(args.checkpoint.name + ".json").read_text())
    model = WallocCodec(CodecConfig.from_dict(meta["codec"]))
    load_checkpoint(args.checkpoint, model, None)
    training = {
        "data": "data/photos/train: 31 real photos from Debian lomiri-wallpapers-16.04, mate-backgrounds, opencv-doc and the scikit-image wheel, downscaled 2-4x with Lanczos (scripts/build_photo_set.py; split in walloc_cli/datasets.py)",
        "steps": meta["step"],
        "config": meta["train"],
        "loss": "bpp_proxy + lambda * 255^2 * MSE (walloc_cli/training.py)",
        "hardware": args.hardware,
        "validation_history": meta.get("history", []),
    }
    if args.note:
        training["note"] = args.note
    card = export_model(model, args.out, args.name, "image", {"training": training, "payload_effort": args.effort})
    results = measure(str(args.out / f"{args.name}.json"), args.test)
    data = json.loads((args.out / f"{args.name}.json").read_text())
    data["results"] = results
    (args.out / f"{args.name}.json").write_text(json.dumps(data, indent=2) + "\n")
    print(f"{card.name}: {results['bpp']:.3f} bpp, {results['psnr']:.2f} dB on {results['test_set']}")


if __name__ == "__main__":
    torch.set_num_threads(max(1, torch.get_num_threads()))
    main()
