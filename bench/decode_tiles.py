"""In-process image decode (and encode) speed of this checkout beside another commit's, in one run.

What ``walloc decompress`` (and the PSNR that ``walloc compress`` prints) spends in the decoder:
``codecs.image_tiles.synthesize_samples`` (CNN decoder, inverse transform, rounding to 8-bit
samples, tile by tile) on the latents of real photos, for every shipped image model, best of
``--repeats`` runs after a warm-up, 2 worker threads (the machine's cores). Pictures: a 640x400
version of ``samples/photo.png`` (Lanczos), libjxl's ``flower.png`` (2268x1512, 3.4 MP; Debian
``libjxl-testdata``) and, for the default model only, that photo upscaled 2x (Lanczos, 13.7 MP).
The latents are each model's indices at its ``-q 75`` step's neighbourhood (step 1.0).

``--base DIR`` (``git archive REV | tar -x -C DIR``) times that checkout too, in a child process
with ``PYTHONPATH=DIR``, on the same latents. ``--encode`` times the encoder instead
(``codecs.image_tiles.image_indices`` at step 1.0: transform, projection, companding,
quantisation; no lossless coding) beside Pillow's WebP (lossy, q 75, method 4, libwebp's
default) on the same pictures. Writes Markdown to standard output.

    python bench/decode_tiles.py --photo-3mp flower.png [--base DIR] [--repeats 2] [--encode]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from lean_speed import best  # bench/, beside this script: least time of N calls after a warm-up

ROOT = Path(__file__).resolve().parent.parent
FLOWER = Path("/work/data/sources/libjxl-testdata/usr/share/libjxl-testdata/jxl/flower/flower.png")
DEFAULT_MODEL = "rgb-4x-v"


def pictures(flower: Path) -> dict[str, np.ndarray]:
    """``(H, W, 3)`` uint8 pictures by label."""
    from PIL import Image

    with Image.open(ROOT / "samples" / "photo.png") as photo:
        small = np.asarray(photo.convert("RGB").resize((640, 400), Image.LANCZOS))
    with Image.open(flower) as image:
        large = image.convert("RGB")
        huge = np.asarray(large.resize((large.width * 2, large.height * 2), Image.LANCZOS))
        large_array = np.asarray(large)
    return {"640x400": small, f"{large_array.shape[1]}x{large_array.shape[0]}": large_array, f"{huge.shape[1]}x{huge.shape[0]}": huge}


def cases(flower: Path, folder: Path) -> list[dict[str, object]]:
    """Encode every (model, picture) once with this checkout; latents saved in ``folder``."""
    from walloc_cli.codecs.image_tiles import image_indices
    from walloc_cli.files.images import image_from_array
    from walloc_cli.model.zoo import available_models, load_model

    out = []
    for label, array in pictures(flower).items():
        image = image_from_array(array)
        picture_file = folder / f"{label}.npy"
        np.save(picture_file, array)
        for card in available_models():
            if card.modality != "image" or (array.size > 20e6 and card.name != DEFAULT_MODEL):
                continue
            codec, _ = load_model(card.name)
            q = image_indices(codec, image, 1.0, {}, label)
            path = folder / f"{card.name}-{label}.npy"
            np.save(path, q)
            out.append({"model": card.name, "picture": label, "latents": str(path), "height": array.shape[0], "width": array.shape[1], "channels": codec.cfg.channels, "picture_file": str(picture_file)})
    return out


def timed(case_list: list[dict[str, object]], repeats: int, encode: bool = False) -> list[float]:
    """Best decode (or ``encode``) seconds of each case with the ``walloc_cli`` on the path."""
    from walloc_cli.codecs.image_tiles import image_indices, synthesize_samples
    from walloc_cli.files.images import image_from_array
    from walloc_cli.model.runtime import set_threads
    from walloc_cli.model.zoo import load_model

    set_threads(2)
    seconds = []
    for case in case_list:
        codec, _ = load_model(str(case["model"]))
        q = np.load(str(case["latents"]))
        image = image_from_array(np.load(str(case["picture_file"]))) if encode else None

        def run() -> None:
            if image is not None:
                image_indices(codec, image, 1.0, {}, "u")
            else:
                synthesize_samples(codec, q, int(case["height"]), int(case["width"]), int(case["channels"]), 8, 1.0)  # type: ignore[arg-type]

        seconds.append(best(run, repeats))
    return seconds


def webp_seconds(case_list: list[dict[str, object]], repeats: int) -> dict[str, float]:
    """Best Pillow WebP (lossy, q 75, method 4) encode seconds per picture."""
    import io

    from PIL import Image

    out = {}
    for case in case_list:
        label = str(case["picture"])
        if label not in out:
            picture = Image.fromarray(np.load(str(case["picture_file"])))
            out[label] = best(lambda: picture.save(io.BytesIO(), "WEBP", quality=75, method=4), repeats)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo-3mp", type=Path, default=FLOWER)
    parser.add_argument("--base", type=Path, help="also time this checkout (another commit), as 'before'")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--encode", action="store_true", help="time the encoder (and WebP) instead of the decoder")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # internal: time the cases in this JSON file
    args = parser.parse_args()
    if args.child:
        print(json.dumps(timed(json.loads(args.child.read_text()), args.repeats, args.encode)))
        return
    with tempfile.TemporaryDirectory(prefix="walloc-decode-") as name:
        folder = Path(name)
        case_list = cases(args.photo_3mp, folder)
        (folder / "cases.json").write_text(json.dumps(case_list))
        after = timed(case_list, args.repeats, args.encode)
        webp = webp_seconds(case_list, args.repeats) if args.encode else {}
        before = None
        if args.base:
            child = subprocess.run([sys.executable, __file__, "--child", str(folder / "cases.json"), "--repeats", str(args.repeats), *(["--encode"] if args.encode else [])],
                                   env={**os.environ, "PYTHONPATH": str(args.base)}, capture_output=True, text=True, check=True)
            before = json.loads(child.stdout)
    what = "encode (`image_indices`)" if args.encode else "decode (`synthesize_samples`)"
    print(f"# In-process image {what} (`bench/decode_tiles.py`), {os.cpu_count()} cores, 2 worker threads, best of {args.repeats}\n")
    print("| model | picture | after s | after MP/s |" + (" before s | before MP/s | speed-up |" if before else "") + "\n|---|---|---|---|" + ("---|---|---|" if before else ""))
    for i, case in enumerate(case_list):
        mp = int(case["height"]) * int(case["width"]) / 1e6  # type: ignore[arg-type]
        line = f"| {case['model']} | {case['picture']} | {after[i]:.3f} | {mp / after[i]:.2f} |"
        if before:
            line += f" {before[i]:.3f} | {mp / before[i]:.2f} | {before[i] / after[i]:.2f}x |"
        print(line)
    for label, seconds in webp.items():
        print(f"\nWebP (Pillow, lossy q 75, method 4, one thread), {label}: {seconds:.3f} s, {math.prod(map(int, label.split('x'))) / 1e6 / seconds:.2f} MP/s")


if __name__ == "__main__":
    main()
