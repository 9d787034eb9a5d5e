"""Rate-distortion of walloc on held-out photos against WebP, JPEG, AVIF and JPEG XL, and the
bytes of each ``.wlc`` file that are not coded latents (issue 16's yardstick).

For every photo in each DIR (one level; each DIR is one *set* with its own summary):

* walloc at ``-q`` 10/50/75/95 (the default ladder, chosen as ``walloc compress -q`` chooses),
  with ``--payload`` passed through to ``compress_image`` (left out: the library's default), the
  photo read as ``walloc compress`` reads it, so its ICC profile is kept as by default;
  ``walloc-nometa`` is the same with ``metadata="none"``, coded only for photos that carry
  metadata (elsewhere the two files are the same bytes and the row is copied);
* WebP, JPEG, AVIF and JPEG XL from :mod:`walloc_cli.eval.codecs` over their whole default
  quality grids, plus a few lower or higher settings on a photo where walloc's rates reach past
  that grid (:data:`EXTRA_LOW`, :data:`EXTRA_HIGH`), so their curves span walloc's rates;
  metadata dropped (they code the pixels);
* rate = bytes of the whole file x 8 / pixels; PSNR = 10 log10(255^2 / MSE) over every R, G, B
  sample of the decoded 8-bit image (:func:`walloc_cli.eval.run.measure`);
* BD-rate of walloc against each codec (anchor = the codec, test = walloc, pchip over the PSNR
  range both curves cover; negative = walloc needs fewer bytes), per photo, and the mean, median,
  min and max over the photos of a set; needs the ``bjontegaard`` package, else the tables say so;
* "at matching rates": each codec's PSNR at walloc's own bpp, read off that photo's curve
  (linear in log-rate), minus walloc's PSNR, averaged per walloc quality;
* overhead: bytes of each walloc file that are not coded latents = file size minus the data of
  its ``LATN`` chunks (header, chunk framing, ICC profile, alpha ...), split into ICC profile
  and the rest; mean and max per quality.

    python bench/rd_holdout.py /work/data/photos/test /work/data/holdout [--payload jxl] [--refine N] [--json OUT]
    python bench/rd_holdout.py --from-json OUT     # the tables again, from the rows of a --json run

``--build-holdout OUT`` instead writes the held-out set that ``walloc data photos`` never
touches: real photos from Debian ``plasma-workspace-wallpapers`` and ``libjxl-testdata`` (both
kept out of every training set by issue 18), fetched with ``apt-get download`` (or read from
``--debs DIR`` holding the ``.deb`` files) and unpacked with ``dpkg -x`` into a scratch folder,
never installed (installing wallpaper packages would change ``/usr/share/backgrounds`` and so
``walloc data photos``'s training set). Each is downscaled by 2-4 with Lanczos like the
project's set (:func:`walloc_cli.data.photos._factor`'s rule), its ICC profile kept, and saved
as PNG with ``manifest.json`` (package, version, file, license, factor, size, SHA-256).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import itertools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from walloc_cli.eval.codecs import Sample, WallocImage
from walloc_cli.eval.measures import bd_rate_missing, bd_rate_values
from walloc_cli.eval.run import (
    Row,
    expand_one_level,
    load_sample,
    measure,
    select_codecs,
)
from walloc_cli.format.container import loads

WALLOC_QUALITIES = (10.0, 50.0, 75.0, 95.0)
BASELINES = ("webp", "jpeg", "avif", "jxl")
# Settings past the registry's default grids, run on a photo only when walloc's lowest or highest
# rate there lies outside the codec's default curve, so every curve spans walloc's rates.
EXTRA_LOW = {"jpeg": (1.0, 2.0, 3.0), "jxl": (1.0, 3.0, 5.0), "webp": (), "avif": ()}
EXTRA_HIGH = {"jpeg": (98.0, 100.0), "jxl": (98.0, 99.0), "webp": (), "avif": ()}

# --- the held-out set -------------------------------------------------------------------------
PLASMA = "plasma-workspace-wallpapers"
PLASMA_ROOT = "usr/share/wallpapers"
# The real photographs among plasma-workspace-wallpapers' themes (the others are renders and
# drawings; "Grey" is a photo but left out: it is gray like ColdRipple, and one gray photo is enough).
PLASMA_PHOTOS = (
    "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow",
    "FallenLeaf", "Kite", "OneStandsOut", "Path", "summer_1am",
)
LIBJXL = "libjxl-testdata"
LIBJXL_PHOTOS = ("usr/share/libjxl-testdata/jxl/flower/flower.png",)
TARGET_LONG_SIDE = 1400  # as walloc_cli.data.photos


def _factor(size: tuple[int, int]) -> int:
    """Downscale factor 2-4, the rule of :mod:`walloc_cli.data.photos` for its large photos."""
    return max(2, min(4, round(max(size) / TARGET_LONG_SIDE)))


def _unpack(package: str, debs: Path | None, scratch: Path) -> tuple[Path, str]:
    """``dpkg -x`` one package's ``.deb`` (from ``debs`` or ``apt-get download``) into
    ``scratch``; returns the unpacked root and the package version."""
    if debs is None:
        subprocess.run(["apt-get", "download", package], cwd=scratch, check=True, capture_output=True)
        folder = scratch
    else:
        folder = debs
    deb = max(folder.glob(f"{package}_*.deb"))
    root = scratch / package
    subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True, text=True).stdout.strip()
    return root, version


def _pixels(path: Path) -> int:
    """Width x height of an image file (its header only)."""
    with Image.open(path) as image:
        return image.width * image.height


def _plasma_license(theme: Path) -> str:
    """The license the theme's ``metadata.json`` names (the package's copyright file: GPL-2+)."""
    try:
        meta = json.loads((theme / "metadata.json").read_text())
        return str(meta["KPlugin"].get("License", "")) or "GPL-2+ (debian/copyright)"
    except (OSError, KeyError, ValueError):
        return "GPL-2+ (debian/copyright)"


def build_holdout(out_dir: Path, debs: Path | None = None) -> list[dict[str, Any]]:
    """Write ``out_dir/*.png`` and ``out_dir/manifest.json`` (see the module docstring)."""
    if out_dir.exists() and any(out_dir.iterdir()):
        raise SystemExit(f"{out_dir}: not empty; remove it first")
    out_dir.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rd-holdout-") as folder:
        scratch = Path(folder)
        sources: list[tuple[str, str, Path, str, str]] = []  # (name, package, file, version, license)
        root, version = _unpack(PLASMA, debs, scratch)
        for theme in PLASMA_PHOTOS:
            images = root / PLASMA_ROOT / theme / "contents" / "images"
            # The themes ship one original and links named by screen size: take the largest.
            best = max((p.resolve() for p in images.iterdir()), key=_pixels)
            sources.append((theme, PLASMA, best, version, _plasma_license(root / PLASMA_ROOT / theme)))
        root, version = _unpack(LIBJXL, debs, scratch)
        for rel in LIBJXL_PHOTOS:
            sources.append((Path(rel).stem, LIBJXL, root / rel, version, "BSD-3-clause-Google (debian/copyright)"))
        for name, package, path, version, license_ in sources:
            with Image.open(path) as source:
                icc = source.info.get("icc_profile")
                image = source.convert("RGB")
            factor = _factor(image.size)
            image = image.resize((image.width // factor, image.height // factor), Image.Resampling.LANCZOS)
            target = out_dir / f"{name}.png"
            image.save(target, **({"icc_profile": icc} if icc else {}))
            records.append({
                "file": target.name, "package": package, "version": version,
                "source": str(path.relative_to(scratch / package)), "license": license_,
                "factor": factor, "size": list(image.size), "icc_bytes": len(icc) if icc else 0,
                "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
            })
    manifest = {
        "description": "Held-out real photos for rate-distortion checks: never in any training set, never used for tuning (bench/rd_holdout.py --build-holdout)",
        "photos": records,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return records


# --- measuring --------------------------------------------------------------------------------
@dataclasses.dataclass
class Overhead:
    """Bytes of one walloc file that are not coded latents."""

    file: str
    quality: float
    bytes: int
    latents: int  # data of the LATN chunks
    icc: int  # data of the ICCP chunk
    setting: str = ""  # "model @ step" compress_image chose: equal settings = the same latents

    @property
    def overhead(self) -> int:
        return self.bytes - self.latents


class WallocFile(WallocImage):
    """walloc as ``walloc compress`` writes a photo: read from its file (ICC profile and the
    default metadata kept), ``payload`` passed through; records each file's overhead."""

    def __init__(self, payload: str | None, metadata: str | None = None, name: str = "walloc", refine: int = 0, effort: int | None = None) -> None:
        self.payload = payload
        self.refine = refine
        self.effort = effort
        self.metadata = metadata
        self.name = name  # type: ignore[misc]
        self.overheads: list[Overhead] = []
        self.payloads: set[str] = set()

    def encode(self, sample: Sample, quality: float) -> bytes:
        from walloc_cli.codecs.image import compress_image
        from walloc_cli.files.images import read_image

        options: dict[str, Any] = {}
        if self.payload is not None:
            options["payload"] = self.payload
        if self.metadata is not None:
            options["metadata"] = self.metadata
        if self.refine:
            options["refine"] = self.refine
        if self.effort is not None:
            options["effort"] = self.effort
        encoded = compress_image(read_image(sample.path), quality=quality, **options)
        data = encoded.data
        header, chunks = loads(data)
        self.payloads.add(str(header.get("latent", {}).get("payload", "?")))
        latents = sum(len(c.data) for c in chunks if c.type == "LATN")
        icc = sum(len(c.data) for c in chunks if c.type == "ICCP")
        setting = f"{encoded.setting.model} @ {encoded.setting.step:g}"
        self.overheads.append(Overhead(str(sample.path), float(quality), len(data), latents, icc, setting))
        return data


def has_metadata(path: Path) -> bool:
    """Whether the photo carries an ICC profile, EXIF or XMP that ``walloc compress`` may keep."""
    from walloc_cli.files.images import read_image

    image = read_image(path)
    return any(getattr(image, key, None) for key in ("icc_profile", "exif", "xmp"))


def at_rate(points: list[tuple[float, float]], rate: float) -> float | None:
    """PSNR of a curve ``[(rate, psnr)]`` at ``rate``, linear in log-rate between the two
    nearest points, or None outside the measured range."""
    points = sorted(p for p in points if math.isfinite(p[1]) and p[0] > 0)
    for (r0, p0), (r1, p1) in itertools.pairwise(points):
        if r0 <= rate <= r1 and r1 > r0:
            t = (math.log(rate) - math.log(r0)) / (math.log(r1) - math.log(r0))
            return p0 + t * (p1 - p0)
    return None


def bd_of(rows: list[Row], file: str, test: str, anchor: str) -> float:
    """BD-rate (%) of ``test`` against ``anchor`` on one photo (NaN: too little overlap)."""
    a = [r for r in rows if r.file == file and r.codec == anchor]
    t = [r for r in rows if r.file == file and r.codec == test]
    if not a or not t:
        return math.nan
    return bd_rate_values(np.array([r.rate for r in a]), np.array([r.psnr for r in a]), np.array([r.rate for r in t]), np.array([r.psnr for r in t]))


def run_set(folder: Path, payload: str | None, progress: bool = True, anchors: list[Row] | None = None, refine: int = 0, effort: int | None = None) -> tuple[list[Row], list[Overhead], list[str], set[str]]:
    """Measure every photo of ``folder``: rows of every codec, walloc's overheads, notes, and the
    payload codecs the walloc files named.

    ``anchors``: rows of the other codecs from an earlier ``--json`` run of the same photos
    (``--anchors``): reused instead of coding the photos again (their bytes do not depend on
    walloc), except that a codec whose reused points no longer reach below or above walloc's new
    rates is coded at its extra settings as in a fresh run. ``refine``: walloc's ``--refine`` steps."""
    files, notes = expand_one_level([folder])
    baselines, skipped = select_codecs(list(BASELINES), "image")
    notes += skipped
    walloc = WallocFile(payload, refine=refine, effort=effort)
    bare = WallocFile(payload, metadata="none", name="walloc-nometa", refine=refine, effort=effort)
    rows: list[Row] = []
    for path in files:
        sample = load_sample(path)
        started = time.perf_counter()
        mine = [measure(sample, walloc, q, with_ssim=False) for q in WALLOC_QUALITIES]
        rows += mine
        if has_metadata(path):
            rows += [measure(sample, bare, q, with_ssim=False) for q in WALLOC_QUALITIES]
        else:
            rows += [dataclasses.replace(r, codec="walloc-nometa") for r in mine]
        low, high = min(r.rate for r in mine), max(r.rate for r in mine)
        for codec in baselines:
            reused = [r for r in anchors or [] if r.codec == codec.name and Path(r.file).name == path.name]
            theirs = [dataclasses.replace(r, file=str(path)) for r in reused] or [measure(sample, codec, q, with_ssim=False) for q in codec.qualities]
            done = {r.quality for r in theirs}
            if min(r.rate for r in theirs) > low:
                theirs += [measure(sample, codec, q, with_ssim=False) for q in EXTRA_LOW[codec.name] if q not in done]
            if max(r.rate for r in theirs) < high:
                theirs += [measure(sample, codec, q, with_ssim=False) for q in EXTRA_HIGH[codec.name] if q not in done]
            rows += theirs
        if progress:
            print(f"  {path.name}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return rows, walloc.overheads, notes, walloc.payloads | bare.payloads


# --- tables -----------------------------------------------------------------------------------
def _fmt(value: float | None, digits: int = 1, sign: bool = True) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def set_tables(name: str, rows: list[Row], overheads: list[Overhead], with_bd: bool) -> tuple[list[str], dict[str, Any]]:
    """Markdown lines for one set and its summary numbers."""
    files = list(dict.fromkeys(r.file for r in rows))
    codecs = [c for c in BASELINES if any(r.codec == c for r in rows)]
    lines = [f"### {name} ({len(files)} photos)", ""]
    # walloc per photo and quality
    lines += ["walloc per photo (whole `.wlc` file, ICC kept as `walloc compress` keeps it):", ""]
    lines += ["| photo | size | " + " | ".join(f"q {q:g}: bytes / bpp / PSNR" for q in WALLOC_QUALITIES) + " |", "|---|---|" + "---|" * len(WALLOC_QUALITIES)]
    sizes = {}
    for file in files:
        with Image.open(file) as image:
            sizes[file] = image.size
        cells = []
        for q in WALLOC_QUALITIES:
            row = next(r for r in rows if r.file == file and r.codec == "walloc" and r.quality == q)
            cells.append(f"{row.bytes:,} / {row.rate:.3f} / {row.psnr:.2f}")
        lines.append(f"| {Path(file).stem} | {sizes[file][0]}×{sizes[file][1]} | " + " | ".join(cells) + " |")
    lines.append("")
    chosen = {(o.file, o.quality): o.setting for o in overheads if o.setting}
    if chosen:
        lines += ["The setting `compress_image` chose (model @ step; the same setting = the same latents, whatever the payload):", ""]
        lines += ["| photo | " + " | ".join(f"q {q:g}" for q in WALLOC_QUALITIES) + " |", "|---|" + "---|" * len(WALLOC_QUALITIES)]
        for file in files:
            lines.append(f"| {Path(file).stem} | " + " | ".join(chosen.get((file, q), "–") for q in WALLOC_QUALITIES) + " |")
        lines.append("")
    # mean curve per quality
    lines += ["Mean over the photos per walloc quality, and each codec's PSNR at walloc's bpp minus walloc's (dB; + = the codec is better there):", ""]
    lines += ["| q | bytes | bpp | PSNR | " + " | ".join(f"Δ {c}" for c in codecs) + " |", "|---|---|---|---|" + "---|" * len(codecs)]
    summary: dict[str, Any] = {"photos": len(files), "ladder": {}, "bd": {}, "bd_nometa": {}, "overhead": {}}
    for q in WALLOC_QUALITIES:
        mine = [r for r in rows if r.codec == "walloc" and r.quality == q]
        deltas = []
        for codec in codecs:
            diffs = []
            for r in mine:
                other = at_rate([(o.rate, o.psnr) for o in rows if o.file == r.file and o.codec == codec], r.rate)
                if other is not None:
                    diffs.append(other - r.psnr)
            deltas.append((float(np.mean(diffs)) if diffs else None, len(diffs)))
        mean_bytes, mean_bpp, mean_psnr = (float(np.mean([getattr(r, k) for r in mine])) for k in ("bytes", "rate", "psnr"))
        summary["ladder"][q] = {"bytes": mean_bytes, "bpp": mean_bpp, "psnr": mean_psnr}
        lines.append(f"| {q:g} | {mean_bytes:,.0f} | {mean_bpp:.3f} | {mean_psnr:.2f} | " + " | ".join(f"{_fmt(d, 2)}" + (f" ({n}/{len(mine)})" if n != len(mine) else "") for d, n in deltas) + " |")
    lines.append("")
    # BD-rate per photo: the file as written, then the pixels only
    if with_bd:
        for test, key, title in (
            ("walloc", "bd", "the `.wlc` file as `walloc compress` writes it (ICC profile kept)"),
            ("walloc-nometa", "bd_nometa", "pixels only (`metadata=\"none\"`: no ICC profile, as the other codecs here)"),
        ):
            lines += [f"BD-rate of walloc against each codec, {title} (%, pchip; negative = walloc smaller at equal PSNR):", ""]
            lines += ["| photo | " + " | ".join(codecs) + " |", "|---|" + "---|" * len(codecs)]
            per: dict[str, list[float]] = {c: [] for c in codecs}
            for file in files:
                values = [bd_of(rows, file, test, c) for c in codecs]
                for c, v in zip(codecs, values):
                    per[c].append(v)
                lines.append(f"| {Path(file).stem} | " + " | ".join(_fmt(v) for v in values) + " |")
            for label, pick in (("**mean**", statistics.fmean), ("median", statistics.median), ("min", min), ("max", max)):
                cells = []
                for c in codecs:
                    valid = [v for v in per[c] if math.isfinite(v)]
                    cell = _fmt(pick(valid)) if valid else "–"
                    cells.append(f"**{cell}**" if label == "**mean**" else cell)
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
            for c in codecs:
                valid = [v for v in per[c] if math.isfinite(v)]
                summary[key][c] = {"mean": statistics.fmean(valid) if valid else None, "median": statistics.median(valid) if valid else None, "photos": len(valid), "of": len(files)}
            missing = {c: len(files) - summary[key][c]["photos"] for c in codecs if summary[key][c]["photos"] < len(files)}
            lines.append("")
            if missing:
                lines += ["Photos without a BD-rate (too little PSNR overlap) are left out of the mean: " + ", ".join(f"{c} {n}" for c, n in missing.items()) + ".", ""]
    else:
        lines += [bd_rate_missing() or "", ""]
    # overhead
    lines += ["Bytes of each walloc file that are not coded latents (file size − LATN chunk data), and its ICC part:", ""]
    lines += ["| q | mean | max | mean ICC | mean other (header, framing) | share of the file (mean) |", "|---|---|---|---|---|---|"]
    for q in WALLOC_QUALITIES:
        these = [o for o in overheads if o.quality == q and o.file in files]
        if not these:
            continue
        values = [o.overhead for o in these]
        share = float(np.mean([o.overhead / o.bytes for o in these]))
        summary["overhead"][q] = {"mean": float(np.mean(values)), "max": max(values), "icc_mean": float(np.mean([o.icc for o in these])), "share": share}
        lines.append(f"| {q:g} | {np.mean(values):.0f} | {max(values)} | {np.mean([o.icc for o in these]):.0f} | {np.mean([o.overhead - o.icc for o in these]):.0f} | {100 * share:.1f}% |")
    lines.append("")
    return lines, summary


def machine() -> str:
    """The CPU model (Linux: /proc/cpuinfo) and core count."""

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def libraries() -> str:
    """Versions of the libraries behind the baseline codecs."""
    import PIL
    from PIL import features

    parts = [f"Pillow {PIL.__version__} (libwebp {features.version('webp')}, libjpeg-turbo {features.version('libjpeg_turbo') or features.version('jpg')}, libavif {features.version('avif')})"]
    try:
        import imagecodecs

        parts.append(f"imagecodecs {imagecodecs.__version__} ({imagecodecs.jpegxl_version()})")
    except (ImportError, AttributeError):
        pass
    return ", ".join(parts)


def render_json(document: dict[str, Any]) -> str:
    """The report of an earlier ``--json`` run, tables recomputed from its rows."""
    with_bd = bd_rate_missing() is None
    lines = [document["head"], ""]
    for name, part in document["sets"].items():
        rows = [Row(**{k: (math.inf if v == "inf" else v) for k, v in r.items()}) for r in part["rows"]]
        overheads = [Overhead(**{k: v for k, v in o.items() if k != "overhead"}) for o in part["overheads"]]
        table, _ = set_tables(name, rows, overheads, with_bd)
        lines += table + [f"Note: {n}" for n in part["notes"]] + ([""] if part["notes"] else [])
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="*", type=Path, help="folders of photos; each is one set")
    parser.add_argument("--payload", default=None, help="walloc's payload codec (passed to compress_image; default: the library's)")
    parser.add_argument("--effort", type=int, default=None, help="walloc's lossless effort (compress -e; default: the model card's)")
    parser.add_argument("--refine", type=int, default=0, metavar="N", help="walloc's encoder-side search steps (compress --refine N; default 0)")
    parser.add_argument("--json", type=Path, help="also write every row, overhead and summary here")
    parser.add_argument("--from-json", type=Path, metavar="JSON", help="re-render the tables of an earlier --json run without measuring")
    parser.add_argument("--anchors", type=Path, metavar="JSON", help="reuse the other codecs' rows of an earlier --json run of the same photos (walloc is coded afresh)")
    parser.add_argument("--build-holdout", type=Path, metavar="OUT", help="write the held-out photo set into OUT and stop")
    parser.add_argument("--debs", type=Path, help="with --build-holdout: folder holding the .deb files (else apt-get download)")
    args = parser.parse_args()
    if args.build_holdout:
        records = build_holdout(args.build_holdout, args.debs)
        print(f"wrote {len(records)} photos to {args.build_holdout}")
        return
    if args.from_json:
        print(render_json(json.loads(args.from_json.read_text())))
        return
    if not args.dirs:
        parser.error("give at least one folder of photos (or --build-holdout OUT)")
    anchor_rows: list[Row] = []
    if args.anchors:
        earlier = json.loads(args.anchors.read_text())
        anchor_rows = [Row(**{k: (math.inf if v in ("inf", None) and k == "psnr" else v) for k, v in r.items()}) for part in earlier["sets"].values() for r in part["rows"] if not str(r["codec"]).startswith("walloc")]
    with_bd = bd_rate_missing() is None
    started = time.time()
    cpu = time.process_time()
    lines: list[str] = []
    document: dict[str, Any] = {"sets": {}}
    payloads: set[str] = set()
    for folder in args.dirs:
        print(f"{folder}:", file=sys.stderr, flush=True)
        rows, overheads, notes, used = run_set(folder, args.payload, anchors=anchor_rows, refine=args.refine, effort=args.effort)
        payloads |= used
        table, summary = set_tables(str(folder), rows, overheads, with_bd)
        lines += table + [f"Note: {n}" for n in notes] + ([""] if notes else [])
        document["sets"][str(folder)] = {"summary": summary, "notes": notes, "rows": [dataclasses.asdict(r) for r in rows], "overheads": [dataclasses.asdict(o) | {"overhead": o.overhead} for o in overheads]}
    from walloc_cli import __version__

    head = [
        (
            f"walloc {__version__}, payload {args.payload or 'library default'} (files name: {', '.join(sorted(payloads))}), effort {args.effort if args.effort is not None else 'of the cards'}, refine {args.refine};"
            f" {machine()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; {libraries()};"
            f" {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; {time.time() - started:.0f} s wall, {time.process_time() - cpu:.0f} s CPU"
        ),
        "",
    ]
    print("\n".join(head + lines))
    if args.json:
        document["head"] = head[0]
        args.json.write_text(json.dumps(document, indent=1, default=lambda v: None if isinstance(v, float) and not math.isfinite(v) else str(v)) + "\n")


if __name__ == "__main__":
    main()
