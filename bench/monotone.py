"""Does the file size rise with -q on every photo? Checks all 26 rungs of the shipped ladders.

For every photo under the given folders (default: the test, validation and training photos of
``walloc data photos``), codes it at every rung q = 0, 4, ..., 100 through
:func:`walloc_cli.codecs.image.compress_image` (exactly what ``walloc compress -q`` does, the monotone
guard included), as RGB and as gray (the photo converted to one channel), and prints the rungs
where the size falls, if any, plus how many extra encodes the guard spent.

    python bench/monotone.py [DIR ...] [--family rgb|gray|both]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from walloc_cli.codecs import image as api
from walloc_cli.files.images import ImageData, read_image
from walloc_cli.model.quality import QUALITY_RUNG


def gray_version(image: ImageData) -> ImageData:
    """The photo as one 8-bit gray channel (ITU-R 601 luma, as Pillow's ``convert("L")``)."""
    pixels = image.float_pixels()
    luma = np.round((0.299 * pixels[0] + 0.587 * pixels[1] + 0.114 * pixels[2]) * 255) / 255
    return dataclasses.replace(image, pixels=luma[None].astype(np.float32), mode="L", icc_profile=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dirs", nargs="*", type=Path, default=[Path("data/photos") / s for s in ("test", "val", "train")])
    parser.add_argument("--family", choices=("rgb", "gray", "both"), default="both")
    args = parser.parse_args()
    encodes = 0
    original = api.encode_image

    def counting(*a: object, **k: object) -> bytes:
        nonlocal encodes
        encodes += 1
        return original(*a, **k)  # type: ignore[arg-type]

    api.encode_image = counting  # type: ignore[assignment]
    families = ("rgb", "gray") if args.family == "both" else (args.family,)
    failures, photos, started = [], 0, time.perf_counter()
    for folder in args.dirs:
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"):
                continue
            rgb = dataclasses.replace(read_image(path), icc_profile=None)
            photos += 1
            for family in families:
                image = rgb if family == "rgb" else gray_version(rgb)
                sizes = [len(api.compress_image(image, quality=q).data) for q in range(0, 101, QUALITY_RUNG)]
                drops = [QUALITY_RUNG * i for i in range(1, len(sizes)) if sizes[i] < sizes[i - 1]]
                if drops:
                    failures.append((f"{folder.name}/{path.name}", family, drops))
                    print(f"{folder.name}/{path.name} {family}: size falls at q {drops}")
    rungs = photos * len(families) * (100 // QUALITY_RUNG + 1)
    print(f"{photos} photos x {len(families)} families x {100 // QUALITY_RUNG + 1} rungs: "
          f"{'size rises with q everywhere' if not failures else f'{len(failures)} sequences fall'}; "
          f"{encodes} encodes for {rungs} files ({encodes / rungs:.2f} per file); {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
