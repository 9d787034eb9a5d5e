"""The library behind ``walloc eval``: every file x codec x quality, measured alike.

For each input file (:func:`load_sample` decides its modality by content: an image walloc reads,
audio libsndfile reads, or a volume: multi-page TIFF, ``.npy``, NIfTI) and each codec of that modality
(:mod:`walloc_cli.eval.codecs`) at each of its quality settings, one :class:`Row`:

* ``rate``: bytes of the whole coded file x 8 / pixels (bpp), / seconds / 1000 (kbit/s) or /
  voxels (bits per voxel);
* ``psnr``: 10 log10(peak^2 / MSE) over every sample, ``peak`` stated in the row (255 for 8-bit
  images, 1.0 = full scale for audio, the data range max - min for volumes);
* ``ssim`` (images: :func:`walloc_cli.eval.measures.ssim`; None, with one note, when its optional
  package pytorch-msssim is absent) and ``snr`` (audio: signal energy / error energy), else None;
* ``encode_s`` / ``decode_s``: wall time of the codec's encode and decode calls (in memory for
  the libraries; the command-line tools include their temporary files).

BD-rate (:func:`bd_table`) is computed per file (codec against the anchor, over the PSNR range
both cover, ``pchip`` by default) and averaged over the files where it exists.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import platform
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from walloc_cli.api.batch import is_supported
from walloc_cli.errors import InputError, WallocError
from walloc_cli.eval.codecs import (
    CODECS,
    DEFAULT_ANCHORS,
    MODALITIES,
    RATE_UNITS,
    Codec,
    Sample,
    codec_names,
)
from walloc_cli.eval.measures import bd_rate_values, ssim, ssim_missing
from walloc_cli.files.safe_io import atomic_output
from walloc_cli.metrics import mse

MAX_VOLUME_BYTES = 2 << 30  # a .npy volume larger than this is refused before it is read


# --- inputs -----------------------------------------------------------------------------------
def load_sample(path: Path) -> Sample:
    """Read one file for evaluation; :class:`InputError` names the problem when it is none of an
    image, audio or a volume (multi-page TIFF, ``.npy``, NIfTI). The kind is
    :func:`walloc_cli.files.sniff.detect`'s, as for ``walloc compress``."""
    from walloc_cli.files.sniff import Kind, detect

    if not path.is_file():
        raise InputError("not a file" if path.exists() else "no such file")
    kind = detect(path)
    if kind is Kind.VOLUME:
        return _volume_sample(path)
    if kind is Kind.IMAGE:
        return _image_sample(path)
    if kind is Kind.AUDIO:
        return _audio_sample(path)
    if kind is Kind.WLC:
        raise InputError("a .wlc file: evaluate the original it was made from")
    raise InputError("not an image, audio or volume file walloc reads")


def _image_sample(path: Path) -> Sample:
    from walloc_cli.codecs.image import quantized
    from walloc_cli.files.images import read_image

    image = read_image(path)
    planes = quantized(image)  # (C, H, W) integers at the file's bit depth
    if image.bit_depth > 8:
        planes = np.rint(planes * 255.0 / (2**image.bit_depth - 1))  # every codec here codes 8 bits
    array = np.moveaxis(planes.astype(np.uint8), 0, -1)
    array = array[..., 0] if array.shape[-1] == 1 else array
    return Sample(path, "image", np.ascontiguousarray(array), 255.0, float(image.height * image.width))


def _audio_sample(path: Path) -> Sample:
    import soundfile as sf

    try:
        data, rate = sf.read(path, dtype="float64", always_2d=True)
        subtype = sf.info(path).subtype
    except (sf.LibsndfileError, RuntimeError) as error:
        raise InputError(f"cannot read audio: {error}") from None
    if len(data) == 0:
        raise InputError("audio file has no samples")
    return Sample(path, "audio", data, 1.0, len(data) / rate, samplerate=int(rate), subtype=subtype)


def _volume_sample(path: Path) -> Sample:
    if path.stat().st_size > MAX_VOLUME_BYTES:
        raise InputError(f"volume is larger than {MAX_VOLUME_BYTES >> 30} GiB")
    from walloc_cli.files.volumes import read_volume

    volume = read_volume(path)
    data = np.asarray(volume.array)  # coding order (slices or bands first), any volume format
    if data.ndim != 3 or min(data.shape) < 1:
        raise InputError(f"expected a 3-D volume (D, H, W), got shape {data.shape}")
    if not (np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.floating)):
        raise InputError(f"volume dtype {data.dtype} is not an integer or float type")
    data = np.ascontiguousarray(data)
    peak = float(data.max()) - float(data.min())
    if not math.isfinite(peak):
        raise InputError("volume holds NaN or infinite values")
    return Sample(path, "volume", data, peak if peak > 0 else 1.0, float(data.size), kind=volume.kind)


def expand_one_level(paths: Iterable[Path]) -> tuple[list[Path], list[str]]:
    """Files to evaluate: files as given, and in folders the regular non-hidden files of that
    folder only (one level, sorted; subfolders are not entered) whose content is an image, audio
    or a volume. Returns the files and notes for what was left out: never a failure.

    Which files count is the same rule as ``walloc compress -r``'s
    (:func:`walloc_cli.api.batch.is_supported`, by content); how arguments expand is not:
    :func:`walloc_cli.api.batch.expand_inputs` also walks subfolders, expands quoted globs,
    reads ``-`` and refuses a folder without ``-r``, none of which an evaluation wants (its
    help says "folders of them (one level)")."""
    files: list[Path] = []
    notes: list[str] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            if not inside:
                notes.append(f"{path}: folder holds no files")
            for file in inside:
                if is_supported(file, "compress"):
                    files.append(file)
                else:
                    notes.append(f"{file}: skipped (not an image, audio or volume file)")
        else:
            files.append(path)
    return files, notes


# --- the run ----------------------------------------------------------------------------------
@dataclasses.dataclass
class Row:
    """One file x codec x quality measurement (see the module docstring for the units)."""

    file: str
    modality: str
    codec: str
    quality: float
    bytes: int
    rate: float
    rate_unit: str
    psnr: float
    peak: float
    ssim: float | None
    snr: float | None
    encode_s: float
    decode_s: float


@dataclasses.dataclass
class EvalResult:
    rows: list[Row]
    notes: list[str]  # skipped codecs and files, one line each
    failed: list[tuple[str, str]]  # (file, problem) of inputs that could not be read


def parse_qualities(specs: Iterable[str]) -> dict[str, list[float]]:
    """``["10,30,50"]`` -> ``{"*": [10, 30, 50]}`` (every codec); ``["webp=50,75"]`` -> for one
    codec. :class:`InputError` for anything else."""
    table: dict[str, list[float]] = {}
    for spec in specs:
        codec, _, values = spec.rpartition("=")
        try:
            numbers = [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise InputError(f"--quality {spec!r}: expected numbers separated by commas, e.g. 10,50,90 or webp=50,75") from None
        if not numbers or not all(math.isfinite(v) for v in numbers):
            raise InputError(f"--quality {spec!r}: expected numbers separated by commas, e.g. 10,50,90 or webp=50,75")
        table[codec.strip() or "*"] = numbers
    return table


def select_codecs(names: list[str] | None, modality: str) -> tuple[list[Codec], list[str]]:
    """Instances of the requested codecs that exist for ``modality`` and can run here (all
    registered ones when ``names`` is None), and a note for each that cannot."""
    notes: list[str] = []
    chosen: list[Codec] = []
    if names is None and (modality, "walloc") not in CODECS:
        notes.append(f"walloc has no {modality} codec installed yet: only the baselines ran on {modality} files")
    for name in names if names is not None else codec_names(modality):
        cls = CODECS.get((modality, name))
        if cls is None:
            if name == "walloc":  # the others belong to other modalities: expected, not news
                notes.append(f"walloc has no {modality} codec installed yet: only the baselines ran on {modality} files")
            continue
        reason = cls.missing()
        if reason:
            notes.append(f"{name} ({modality}) skipped: {reason}")
            continue
        chosen.append(cls())
    return chosen, notes


def measure(sample: Sample, codec: Codec, quality: float, with_ssim: bool = True) -> Row:
    """Code ``sample`` once with ``codec`` at ``quality`` and measure rate, distortion and time
    (SSIM of images only when ``with_ssim``: its package is optional)."""
    started = time.perf_counter()
    data = codec.encode(sample, quality)
    middle = time.perf_counter()
    decoded = codec.decode(data, sample)
    ended = time.perf_counter()
    reference = sample.data
    if sample.modality == "audio":
        frames = min(len(reference), len(decoded))  # a codec may drop a few trailing frames
        reference, decoded = reference[:frames], decoded[:frames]
        if decoded.shape[1] != reference.shape[1]:
            raise InputError(f"{codec.name} returned {decoded.shape[1]} channels, the file has {reference.shape[1]}")
    error = mse(reference, decoded)
    score = math.inf if error == 0 else 10 * math.log10(sample.peak**2 / error)
    structural = ssim(reference, decoded, sample.peak) if sample.modality == "image" and with_ssim else None
    snr = None
    if sample.modality == "audio":
        energy = float(np.mean(reference.astype(np.float64) ** 2))
        snr = math.inf if error == 0 else (10 * math.log10(energy / error) if energy > 0 else -math.inf)
    return Row(
        file=str(sample.path), modality=sample.modality, codec=codec.name, quality=float(quality),
        bytes=len(data), rate=sample.rate(len(data)), rate_unit=RATE_UNITS[sample.modality],
        psnr=score, peak=sample.peak, ssim=structural, snr=snr,
        encode_s=middle - started, decode_s=ended - middle,
    )


# One line of status text as a run goes ("photo.png: webp x 5"); not the codecs' ``(done, total)``
# progress callbacks: the CLI prints each note on standard error.
Note = Callable[[str], None]


def run_eval(paths: Iterable[Path], codecs: list[str] | None = None, qualities: dict[str, list[float]] | None = None, progress: Note | None = None) -> EvalResult:
    """Evaluate every readable file with every requested codec of its modality.

    ``codecs`` None: all registered codecs of each modality. ``qualities``: as
    :func:`parse_qualities` returns (codec name or ``"*"``) overriding each codec's defaults.
    A codec that cannot run (library or tool absent) or fails on a file is noted and skipped;
    an unreadable file goes to ``failed``. An optional metric whose package is absent (SSIM) is
    one note and None in every row, never a failed point.
    """
    files, notes = expand_one_level(paths)
    if codecs is not None:
        unknown = [c for c in codecs if c not in codec_names()]
        if unknown:
            raise InputError(f"unknown codec {', '.join(map(repr, unknown))} (choose from {', '.join(codec_names())})")
    qualities = qualities or {}
    rows: list[Row] = []
    failed: list[tuple[str, str]] = []
    chosen: dict[str, list[Codec]] = {}
    with_ssim: bool | None = None  # checked at the first image: audio-only runs never need it
    for path in files:
        try:
            sample = load_sample(path)
        except (WallocError, OSError) as error:
            failed.append((str(path), str(error)))
            continue
        if sample.modality not in chosen:
            chosen[sample.modality], skipped = select_codecs(codecs, sample.modality)
            notes += skipped
            if not chosen[sample.modality]:
                notes.append(f"no codec to run on {sample.modality} files")
        if sample.modality == "image" and with_ssim is None:
            reason = ssim_missing()
            with_ssim = reason is None
            notes += [reason] if reason else []
        for codec in chosen[sample.modality]:
            settings = qualities.get(codec.name, qualities.get("*", list(codec.qualities)))
            if progress:
                progress(f"{path.name}: {codec.name} x {len(settings)}")
            for quality in settings:
                try:
                    rows.append(measure(sample, codec, quality, with_ssim is not False))
                except (WallocError, ValueError, RuntimeError, OSError) as error:  # one codec failing on one file is a note, not the end of the run
                    notes.append(f"{path}: {codec.name} at quality {quality:g} failed: {error}")
    return EvalResult(rows, notes, failed)


# --- summaries --------------------------------------------------------------------------------
def anchor_for(modality: str, requested: str | None, rows: list[Row]) -> str | None:
    """The anchor of ``modality``'s BD-rate table: ``requested`` when that codec ran on these
    files, else the modality's default (:data:`DEFAULT_ANCHORS`) when it ran, else None."""
    ran = {r.codec for r in rows if r.modality == modality}
    for name in (requested, DEFAULT_ANCHORS.get(modality)):
        if name and name in ran:
            return name
    return None


def bd_table(rows: list[Row], anchor: str, modality: str, method: str = "pchip") -> dict[str, tuple[float, int, int]]:
    """``{codec: (mean BD-rate %, files where it exists, files)}`` against ``anchor`` for one
    modality; the mean is NaN where no file gave one (too little PSNR overlap, or a lossless
    codec's single point)."""
    by_file: dict[str, dict[str, list[Row]]] = {}
    for row in rows:
        if row.modality == modality:
            by_file.setdefault(row.file, {}).setdefault(row.codec, []).append(row)
    table: dict[str, list[float]] = {}
    for curves in by_file.values():
        if anchor not in curves:
            continue
        base = curves[anchor]
        for codec, points in curves.items():
            if codec == anchor:
                continue
            value = bd_rate_values(
                np.array([p.rate for p in base]), np.array([p.psnr for p in base]),
                np.array([p.rate for p in points]), np.array([p.psnr for p in points]), method,
            )
            table.setdefault(codec, []).append(value)
    out = {}
    for codec, values in table.items():
        valid = [v for v in values if math.isfinite(v)]
        out[codec] = (float(np.mean(valid)) if valid else math.nan, len(valid), len(values))
    return out


def bd_rates(rows: list[Row], anchor: str | None, method: str = "pchip", skipped: bool = False) -> dict[str, dict[str, Any]]:
    """BD-rates of every modality measured in ``rows`` (in :data:`MODALITIES` order), as
    ``results.json`` holds them: ``{modality: {"anchor": codec or None, "method": method,
    "codecs": {codec: {"bd_rate_percent", "files", "of"}}}}`` (:func:`bd_table` against
    :func:`anchor_for`'s anchor). ``skipped`` (BD-rate's package is absent): no codecs."""
    document: dict[str, dict[str, Any]] = {}
    for modality in [m for m in MODALITIES if any(r.modality == m for r in rows)]:
        reference = anchor_for(modality, anchor, rows)
        table = bd_table(rows, reference, modality, method) if reference and not skipped else {}
        document[modality] = {"anchor": reference, "method": method, "codecs": {c: {"bd_rate_percent": v, "files": n, "of": total} for c, (v, n, total) in table.items()}}
    return document


def mean_curves(rows: list[Row], modality: str) -> dict[str, list[tuple[float, float, float]]]:
    """``{codec: [(quality, mean rate, mean PSNR), ...]}`` over the files, by quality setting;
    infinite PSNRs (lossless) are left out of the means."""
    grouped: dict[str, dict[float, list[Row]]] = {}
    for row in rows:
        if row.modality == modality:
            grouped.setdefault(row.codec, {}).setdefault(row.quality, []).append(row)
    curves: dict[str, list[tuple[float, float, float]]] = {}
    for codec, by_quality in grouped.items():
        points = []
        for quality, group in sorted(by_quality.items()):
            finite = [r.psnr for r in group if math.isfinite(r.psnr)]
            points.append((quality, float(np.mean([r.rate for r in group])), float(np.mean(finite)) if finite else math.inf))
        curves[codec] = points
    return curves


def summary(rows: list[Row], modality: str) -> list[dict[str, Any]]:
    """Per codec of ``modality``: points, files, rate and PSNR ranges of the mean curve, mean
    SSIM/SNR ranges, and total encode/decode seconds."""
    out = []
    curves = mean_curves(rows, modality)
    for codec, points in curves.items():
        mine = [r for r in rows if r.modality == modality and r.codec == codec]
        extra_key = "ssim" if modality == "image" else "snr" if modality == "audio" else None
        extra = [getattr(r, extra_key) for r in mine] if extra_key else []
        extra = [v for v in extra if v is not None and not math.isnan(v)]  # inf stays: lossless
        out.append({
            "codec": codec,
            "points": len(mine),
            "files": len({r.file for r in mine}),
            "rate_min": min(p[1] for p in points), "rate_max": max(p[1] for p in points),
            "psnr_min": min(p[2] for p in points), "psnr_max": max(p[2] for p in points),
            "extra": extra_key, "extra_min": min(extra) if extra else None, "extra_max": max(extra) if extra else None,
            "encode_s": sum(r.encode_s for r in mine), "decode_s": sum(r.decode_s for r in mine),
        })
    return out


# --- outputs ----------------------------------------------------------------------------------
FIELDS = [f.name for f in dataclasses.fields(Row)]


def write_csv(rows: list[Row], path: Path, overwrite: bool = False) -> None:
    """One line per row, columns :data:`FIELDS` (floats at full precision)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in dataclasses.asdict(row).items()})
    with atomic_output(path, overwrite) as handle:
        handle.write(text.getvalue().encode())


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_json(result: EvalResult, bd: dict[str, dict[str, Any]], path: Path, overwrite: bool = False) -> None:
    """Rows, BD-rate tables, notes and how everything was measured, as one JSON document
    (infinite PSNR as the string ``"inf"``, a missing BD-rate as null)."""
    from walloc_cli.model.lean_wpt import worker_count  # the codecs' threads: no torch needed to say

    document = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip() + f", {worker_count()} threads",
        "rate": "bytes of the whole coded file x 8 / (pixels | seconds x 1000 | voxels)",
        "psnr": "10 log10(peak^2 / MSE) over every sample; peak per row (255 images, 1.0 audio full scale, data range volumes)",
        "ssim": "images: 11x11 Gaussian window sigma 1.5, K 0.01/0.03, mean over channels (pytorch-msssim)",
        "bd_rate": bd,
        "notes": result.notes,
        "failed": [{"file": f, "problem": p} for f, p in result.failed],
        "rows": [dataclasses.asdict(r) for r in result.rows],
    }
    with atomic_output(path, overwrite) as handle:
        handle.write((json.dumps(_json_safe(document), indent=1) + "\n").encode())


def plot_curves(rows: list[Row], modality: str, prefix: Path, overwrite: bool = False) -> list[Path] | str:
    """Mean rate-PSNR curve per codec (log rate axis) as ``PREFIX.png`` and ``PREFIX.svg``; the
    written paths, or a note when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no plots (pip install 'walloc[eval]')"
    curves = mean_curves(rows, modality)
    figure, axis = plt.subplots(figsize=(7, 5))
    for codec, points in curves.items():
        finite = [(r, p) for _, r, p in points if math.isfinite(p) and r > 0]
        if not finite:
            continue
        xs, ys = zip(*finite)
        axis.plot(xs, ys, marker="o" if codec == "walloc" else ".", linewidth=2.5 if codec == "walloc" else 1.2, label=codec)
    files = len({r.file for r in rows if r.modality == modality})
    peak = {"image": "peak 255", "audio": "peak = full scale", "volume": "peak = data range"}[modality]
    axis.set_xscale("log")
    axis.set_xlabel(f"rate ({RATE_UNITS[modality]}, whole file)")
    axis.set_ylabel(f"PSNR (dB, {peak})")
    axis.set_title(f"{files} {modality} file{'s' if files != 1 else ''}: mean rate and PSNR per quality setting")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    written = []
    for suffix in (".png", ".svg"):
        target = prefix.with_suffix(suffix)
        buffer = io.BytesIO()
        figure.savefig(buffer, format=suffix[1:], dpi=120, bbox_inches="tight")
        with atomic_output(target, overwrite) as handle:
            handle.write(buffer.getvalue())
        written.append(target)
    plt.close(figure)
    return written


def write_results(result: EvalResult, bd: dict[str, dict[str, Any]], out_dir: Path, overwrite: bool = False, plots: bool = True) -> tuple[list[Path], str | None]:
    """Write ``results.csv``, ``results.json`` (with the BD-rates ``bd`` of :func:`bd_rates`) and,
    with ``plots``, ``rd_MODALITY.png``/``.svg`` for each modality of ``bd`` into ``out_dir``.
    Returns the files written and a note when the plots could not be drawn (matplotlib absent)."""
    write_csv(result.rows, out_dir / "results.csv", overwrite)
    write_json(result, bd, out_dir / "results.json", overwrite)
    written = [out_dir / "results.csv", out_dir / "results.json"]
    for modality in bd if plots else ():
        plotted = plot_curves(result.rows, modality, out_dir / f"rd_{modality}", overwrite)
        if isinstance(plotted, str):
            return written, plotted
        written += plotted
    return written, None


def output_paths(out_dir: Path, modalities: Iterable[str]) -> list[Path]:
    """Every file ``walloc eval`` writes into ``out_dir`` for these modalities."""
    paths = [out_dir / "results.csv", out_dir / "results.json"]
    for modality in modalities:
        paths += [out_dir / f"rd_{modality}.png", out_dir / f"rd_{modality}.svg"]
    return paths


def check_outputs(out_dir: Path, overwrite: bool) -> None:
    """Refuse (before any work) when ``out_dir`` already holds a result file and no ``-f``."""
    if overwrite:
        return
    existing = [p for p in output_paths(out_dir, MODALITIES) if p.exists()]
    if existing:
        raise FileExistsError(f"{existing[0]}: already exists (use -f to overwrite)")
