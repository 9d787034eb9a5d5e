"""Build the photo corpus from Debian and PyPI packages: fetch, unpack, pick, dedupe, split, write.

``build_photo_corpus(out, cache)`` downloads the packages of
:data:`~walloc_cli.data.corpus_sources.PHOTO_SOURCES` into ``cache`` (once; later builds are
offline), reads the chosen files straight out of the archives (photos inside Qt ``.rcc`` and
Eet ``.edj`` bundles too), and writes ``out/{train,val,test}/*.png`` and ``out/manifest.json``.

Rules, in order: a photo with transparent pixels, a palette or a grey-only image is dropped
(the set is RGB photographs); it is downscaled by its source's integer factor; one under 256 px
on a side is dropped; duplicates are dropped: the same pixels (SHA-256) or the same 256-bit
difference hash within :data:`DHASH_DISTANCE` bits, keeping the copy in the most held-out split
(test, then validation, then train), then the largest; photos that look like an ``avoid``
image (an independent test set) are dropped too. The split is by package: the test photos of
:data:`TEST_KEYS` as today, whole :data:`VALIDATION_PACKAGES` for validation, the rest training.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import io
import json
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from walloc_cli.data.corpus_sources import (
    PHOTO_SOURCES,
    TEST_KEYS,
    VALIDATION_PACKAGES,
    PhotoSource,
)
from walloc_cli.data.eet import EetFile
from walloc_cli.data.packages import (
    Package,
    deb_version,
    download,
    licences,
    read_members,
    wants,
)
from walloc_cli.data.rcc import RccBundle
from walloc_cli.errors import InputError
from walloc_cli.files.safe_io import refuse_existing_set

MIN_SIDE = 256
DHASH_DISTANCE = 24  # of 256 bits: re-encodes and rescales of one photo stay within it
SPLIT_RANK = {"test": 0, "val": 1, "train": 2}


@dataclasses.dataclass
class CorpusPhoto:
    """One photo of the corpus (or one dropped candidate, with ``dropped`` saying why)."""

    key: str  # package:member[!inner]
    package: str
    version: str
    member: str
    split: str
    licence: str
    source_sha256: str
    source_size: tuple[int, int]
    factor: int = 1
    size: tuple[int, int] = (0, 0)
    file: str = ""
    sha256: str = ""  # of the written PNG
    dhash: str = ""
    unique_colours: float = 0.0  # share of distinct colours in a 128x128 thumbnail
    flat: float = 0.0  # share of horizontally adjacent pixel pairs that are identical
    dropped: str = ""


def dhash(image: Image.Image) -> int:
    """256-bit difference hash: signs of horizontal steps on a 17x16 grey thumbnail of ``image``.

    64 bits (9x8) were too few: a smooth blue dusk lake and a sunlit dune with sky, both bright
    above and dark below, came within 6 bits; at 256 bits distinct photos of the corpus and the
    independent test sets stay 37 or more apart, a half-size JPEG re-encode within 9.
    """
    grey = np.asarray(image.convert("L").resize((17, 16), Image.Resampling.LANCZOS), dtype=np.float32)
    bits = (grey[:, 1:] > grey[:, :-1]).reshape(-1)
    return int("".join("1" if b else "0" for b in bits), 2)


def _statistics(rgb: np.ndarray) -> tuple[float, float]:
    """(unique colours, flat share) of an (H, W, 3) uint8 image: drawings are flat with few colours."""
    thumb = np.asarray(Image.fromarray(rgb).resize((128, 128), Image.Resampling.BILINEAR)).reshape(-1, 3)
    unique = len(np.unique(thumb, axis=0)) / len(thumb)
    flat = float((np.abs(np.diff(rgb.astype(np.int16), axis=1)).max(-1) == 0).mean())
    return round(unique, 4), round(flat, 4)


def _factor(source: PhotoSource, size: tuple[int, int]) -> int:
    return max(source.min_factor, min(4, round(max(size) / source.target_side)))


def _patterns(source: PhotoSource) -> tuple[list[str], dict[str, list[str]]]:
    """Plain member patterns, and inner patterns per bundle pattern (``outer!inner``)."""
    plain: list[str] = []
    bundles: dict[str, list[str]] = {}
    for pattern in source.include:
        outer, _, inner = pattern.partition("!")
        if inner:
            bundles.setdefault(outer, []).append(inner)
        else:
            plain.append(outer)
    return plain, bundles


def _matches(path: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(path, p) for p in patterns)


def _candidates(source: PhotoSource, members: dict[str, bytes]) -> Iterator[tuple[str, str, bytes]]:
    """(member, inner-or-empty, encoded bytes) for every file of ``source`` found in ``members``."""
    plain, bundles = _patterns(source)
    for path in sorted(members):
        if _matches(path, plain) and not _matches(path, source.exclude):
            yield path, "", members[path]
        for outer, inner_patterns in bundles.items():
            if not fnmatch.fnmatchcase(path, outer):
                continue
            blob = members[path]
            found: list[tuple[str, bytes]] = []
            if blob[:4] == b"qres":
                bundle = RccBundle(blob, name=path)
                found = [(e.path, bundle.read(e)) for e in bundle.entries() if _matches(e.path, inner_patterns)]
            else:
                eet = EetFile(blob, name=path)
                found = [(e.name, eet.read(e)) for e in eet.entries() if _matches(e.name, inner_patterns)]
            if source.largest_only and found:
                found = [max(found, key=lambda item: _pixel_count(item[1]))]
            for inner, data in found:
                if not _matches(f"{path}!{inner}", source.exclude):
                    yield path, inner, data


def _pixel_count(data: bytes) -> int:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.width * image.height
    except (OSError, ValueError, Image.DecompressionBombError):
        return 0


def _prepare(source: PhotoSource, data: bytes, record: CorpusPhoto) -> Image.Image | None:
    """The photo ready to write, or None with ``record.dropped`` set."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)
            record.source_size = opened.size
            mode = opened.mode
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        record.dropped = f"unreadable ({error})"
        return None
    if mode in ("P", "PA", "1"):
        record.dropped = "palette image (quantised colours)"
        return None
    if mode in ("L", "LA", "I", "I;16", "F"):
        record.dropped = "grey image (the corpus is RGB)"
        return None
    if "A" in image.getbands() and image.getchannel("A").getextrema()[0] < 255:
        record.dropped = "transparent pixels (a cut-out, not a photo)"
        return None
    image = image.convert("RGB")
    record.factor = _factor(source, image.size)
    if record.factor > 1:
        image = image.resize((image.width // record.factor, image.height // record.factor), Image.Resampling.LANCZOS)
    record.size = image.size
    if min(image.size) < MIN_SIDE:
        record.dropped = f"under {MIN_SIDE} px on a side ({image.width}x{image.height})"
        return None
    return image


def _file_name(record: CorpusPhoto, taken: set[str]) -> str:
    path = record.member.split("!")[-1]
    tail = "_".join(Path(path).with_suffix("").parts[-2:])
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{record.package}__{tail}")
    name, count = f"{stem}.png", 1
    while name in taken:
        count += 1
        name = f"{stem}_{count}.png"
    taken.add(name)
    return name


def _avoid_hashes(folder: Path | None) -> list[int]:
    """Difference hashes of the images under ``folder`` (an independent test set to keep out)."""
    if folder is None:
        return []
    hashes = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            try:
                with Image.open(path) as image:
                    hashes.append(dhash(image))
            except (OSError, ValueError, Image.DecompressionBombError):
                continue
    return hashes


def _near(a: int, b: int) -> bool:
    return (a ^ b).bit_count() <= DHASH_DISTANCE


def select(records: list[CorpusPhoto], images: dict[str, Image.Image], avoid: list[int]) -> None:
    """Mark duplicates and look-alikes of ``avoid`` as dropped (in place).

    ``images`` maps the keys of kept candidates to their prepared images. A duplicate group keeps
    the copy in the most held-out split, then the one with most pixels, then the first key.
    """
    live = sorted((r for r in records if not r.dropped), key=lambda r: (SPLIT_RANK[r.split], -r.size[0] * r.size[1], r.key))
    kept: list[tuple[CorpusPhoto, int, str]] = []
    for record in live:
        pixels = hashlib.sha256(images[record.key].tobytes()).hexdigest()
        value = int(record.dhash, 16)
        if any(_near(value, other) for other in avoid):
            record.dropped = "looks like a photo of an independent test set (--avoid)"
            continue
        twin = next((k for k, h, p in kept if p == pixels or _near(value, h)), None)
        if twin is not None:
            record.dropped = f"duplicate of {twin.key}"
            continue
        kept.append((record, value, pixels))


def build_photo_corpus(
    out_dir: Path,
    cache: Path,
    overwrite: bool = False,
    sources: tuple[PhotoSource, ...] = PHOTO_SOURCES,
    avoid: Path | None = None,
    test_keys: frozenset[str] = TEST_KEYS,
    val_packages: frozenset[str] = VALIDATION_PACKAGES,
    fetch: Callable[[Package, Path], Path] = download,
    progress: Callable[[str], None] = lambda line: None,
) -> list[CorpusPhoto]:
    """Write ``out_dir/{train,val,test}/*.png`` and ``out_dir/manifest.json``; return every record.

    Dropped candidates are in the returned list and the manifest with ``dropped`` set. Raises
    :class:`InputError` when a package cannot be fetched or read, when a test photo is missing
    (the split would silently change), or when ``out_dir`` holds a set (unless ``overwrite``).
    """
    refuse_existing_set(out_dir, overwrite)
    started = time.monotonic()
    records: list[CorpusPhoto] = []
    images: dict[str, Image.Image] = {}
    for source in sources:
        archive = fetch(source.package, cache)
        version = deb_version(archive) if source.package.kind == "deb" else source.package.version
        plain, bundles = _patterns(source)
        members = read_members(archive, wants(plain + list(bundles)))
        rights = licences(source.package, members, source.licence)
        count = 0
        for member, inner, data in _candidates(source, members):
            key = f"{source.package.name}:{member}" + (f"!{inner}" if inner else "")
            split = "test" if key in test_keys else "val" if source.package.name in val_packages else "train"
            licence = rights.licence(inner or member)
            record = CorpusPhoto(key, source.package.name, version, member + (f"!{inner}" if inner else ""), split, licence, hashlib.sha256(data).hexdigest(), (0, 0))
            image = _prepare(source, data, record)
            if image is not None:
                record.dhash = f"{dhash(image):064x}"
                record.unique_colours, record.flat = _statistics(np.asarray(image))
                images[key] = image
                count += 1
            records.append(record)
        progress(f"{source.package.name} {version}: {count} photos")
    missing = sorted(test_keys - {r.key for r in records if not r.dropped})
    if missing:
        raise InputError(f"test photos missing from the packages: {', '.join(missing)}")
    select(records, images, _avoid_hashes(avoid))
    # Written beside ``out_dir`` and swapped in at the end: an interrupted build leaves the old
    # set whole, and a rebuild leaves no stale photo of the previous one.
    partial = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    taken: set[str] = set()
    for record in records:
        if record.dropped:
            continue
        record.file = f"{record.split}/{_file_name(record, taken)}"
        target = partial / record.file
        target.parent.mkdir(parents=True, exist_ok=True)
        images[record.key].save(target)
        record.sha256 = hashlib.sha256(target.read_bytes()).hexdigest()
    split_rule = {"test": sorted(test_keys), "val_packages": sorted(val_packages), "train": "every other package"}
    write_manifest(partial, records, sources, split_rule, time.monotonic() - started)
    replace_folder(partial, out_dir)
    return records


def replace_folder(new: Path, target: Path) -> None:
    """Put the finished folder ``new`` at ``target``, removing what was there only once it is moved aside."""
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def corpus_summary(records: list[CorpusPhoto]) -> dict[str, dict[str, dict[str, float]]]:
    """``{package: {split: {"photos", "megapixels", "over_1mp"}}}`` over the kept photos."""
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for r in records:
        if r.dropped:
            continue
        cell = summary.setdefault(r.package, {}).setdefault(r.split, {"photos": 0, "megapixels": 0.0, "over_1mp": 0})
        cell["photos"] += 1
        cell["megapixels"] = round(cell["megapixels"] + r.size[0] * r.size[1] / 1e6, 3)
        cell["over_1mp"] += int(r.size[0] * r.size[1] >= 1_000_000)
    return summary


def write_manifest(out_dir: Path, records: list[CorpusPhoto], sources: tuple[PhotoSource, ...], split: dict[str, object], seconds: float) -> None:
    """``manifest.json``: sources, split rules, kept photos (like ``walloc data photos``) and dropped ones."""
    kept = [r for r in records if not r.dropped]
    manifest = {
        "description": __doc__.strip().splitlines()[0],
        "build_seconds": round(seconds, 1),
        "split": split,
        "sources": [
            {"package": s.package.name, "kind": s.package.kind, "version": next((r.version for r in records if r.package == s.package.name), s.package.version), "include": list(s.include), "exclude": list(s.exclude)}
            for s in sources
        ],
        "summary": corpus_summary(records),
        "photos": [{k: v for k, v in dataclasses.asdict(r).items() if k != "dropped"} for r in kept],
        "dropped": [{"key": r.key, "why": r.dropped} for r in records if r.dropped],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
