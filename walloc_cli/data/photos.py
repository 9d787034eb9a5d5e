"""Reproducible training/test sets built from real photos that Debian and PyPI packages ship.

Nothing is downloaded: the sources are Debian ``lomiri-wallpapers-16.04`` and
``mate-backgrounds`` (``/usr/share/backgrounds``), ``opencv-doc`` example photos, and the
photos inside the ``scikit-image`` wheel. Most sources are JPEGs, so they are downscaled with a
Lanczos filter by an integer factor (2 to 4) to wash out JPEG artefacts before they serve as
ground truth. The split is fixed by file name (``TEST_PHOTOS``) so every model and benchmark
agrees on which photos were never trained on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from PIL import Image

from walloc_cli.errors import InputError
from walloc_cli.files.safe_io import refuse_existing_set

BACKGROUNDS = Path("/usr/share/backgrounds")
OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")

# Held out from every training set: 4 scikit-image photos + 4 wallpapers.
TEST_PHOTOS = {
    "skimage:astronaut.png",
    "skimage:coffee.png",
    "skimage:chelsea.png",
    "skimage:rocket.jpg",
    "backgrounds:Bridge_by_Sander_Klootwijk.jpg",
    "backgrounds:sunset_by_Aitzol_Berasategi.jpg",
    "backgrounds:mate/nature/LadyBird.jpg",
    "backgrounds:mate/nature/Storm.jpg",
}
# Validation during training: real photos, not in the test set.
VALIDATION_PHOTOS = {"backgrounds:mate/nature/Garden.jpg", "opencv:fruits.jpg"}
# Natural photos among opencv-doc's examples (the rest are charts, logos and renders).
OPENCV_PHOTOS = (
    "baboon.jpg", "building.jpg", "butterfly.jpg", "home.jpg", "messi5.jpg", "orange.jpg",
    "fruits.jpg", "aero1.jpg", "aero3.jpg", "leuvenA.jpg", "leuvenB.jpg", "HappyFish.jpg",
    "apple.jpg", "graf1.png", "graf3.png", "squirrel_cls.jpg", "stuff.jpg", "lena.jpg",
)
SKIMAGE_PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png")
TARGET_LONG_SIDE = 1400


@dataclasses.dataclass
class PhotoRecord:
    """One photo of the set: where it came from and how it was prepared."""

    key: str
    source: str
    split: str
    factor: int
    size: tuple[int, int]
    file: str
    sha256: str = ""  # of the written PNG: lets anyone check they rebuilt the same set


def _sources() -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    if BACKGROUNDS.is_dir():
        for path in sorted(BACKGROUNDS.glob("*.jpg")):
            found.append((f"backgrounds:{path.name}", path))
        for path in sorted((BACKGROUNDS / "mate" / "nature").glob("*.jpg")):
            found.append((f"backgrounds:mate/nature/{path.name}", path))
    for name in OPENCV_PHOTOS:
        if (OPENCV_DATA / name).exists():
            found.append((f"opencv:{name}", OPENCV_DATA / name))
    try:
        import skimage

        skdata = Path(skimage.__file__).parent / "data"
        for name in SKIMAGE_PHOTOS:
            if (skdata / name).exists():
                found.append((f"skimage:{name}", skdata / name))
    except ImportError:
        pass
    return found


def _factor(key: str, size: tuple[int, int]) -> int:
    """Downscale factor: 2-4 for large JPEGs, 1 for the small scikit-image photos (used as is)."""
    if key.startswith("skimage:"):
        return 1
    long_side = max(size)
    return max(2, min(4, round(long_side / TARGET_LONG_SIDE)))


PHOTO_PACKAGES = "apt-get install lomiri-wallpapers-16.04 mate-backgrounds opencv-doc; pip install scikit-image"


def build_photo_set(out_dir: Path, overwrite: bool = False) -> list[PhotoRecord]:
    """Write ``out_dir/{train,val,test}/*.png`` and ``out_dir/manifest.json``; return the records.

    Refuses (:class:`InputError`) when a held-out or validation photo's package is missing, since
    the split would silently change, and when ``out_dir`` already holds a set (unless ``overwrite``).
    """
    refuse_existing_set(out_dir, overwrite)
    sources = _sources()
    missing = sorted((TEST_PHOTOS | VALIDATION_PHOTOS) - {key for key, _ in sources})
    if missing:
        raise InputError(f"source photos missing: {', '.join(missing)} (install them: {PHOTO_PACKAGES})")
    records: list[PhotoRecord] = []
    for key, path in sources:
        split = "test" if key in TEST_PHOTOS else "val" if key in VALIDATION_PHOTOS else "train"
        with Image.open(path) as source:
            image = source.convert("RGB")
            factor = _factor(key, image.size)
            if factor > 1:
                image = image.resize((image.width // factor, image.height // factor), Image.Resampling.LANCZOS)
            if min(image.size) < 256 and split == "train":
                continue  # too small to give a training crop
            name = key.split(":", 1)[1].replace("/", "_").rsplit(".", 1)[0] + ".png"
            target = out_dir / split / name
            target.parent.mkdir(parents=True, exist_ok=True)
            image.save(target)
            digest = hashlib.sha256(target.read_bytes()).hexdigest()
            records.append(PhotoRecord(key, str(path), split, factor, image.size, str(target.relative_to(out_dir)), digest))
    manifest = {"description": __doc__.strip().splitlines()[0], "photos": [dataclasses.asdict(r) for r in records]}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return records
