"""Reproducible music and speech sets for training and testing, from Debian and PyPI packages only.

Nothing is downloaded. ``build_music_set`` renders scores from the ``music21`` wheel's corpus
with ``fluidsynth`` and the FluidR3 General MIDI soundfont (Debian ``fluid-soundfont-gm``) and
decodes the game soundtracks of Debian ``singularity-music`` (Ogg Vorbis) and
``warzone2100-music`` (Ogg Opus). ``build_speech_set`` takes the telephone prompts of Debian
``asterisk-core-sounds-en-wav`` and the speech samples of ``codec2-examples``, at 8 kHz and, by
resampling, 16 kHz. Splits are fixed by name (``TEST_*``/``VALIDATION_*``), so every model and
benchmark agrees on what was never trained on; a rebuild on the same package versions gives
the same bytes (the manifest records every file's SHA-256 and the package versions).

What makes a good source (for a lossy codec's ground truth)
------------------------------------------------------------

- **Lossless**: a codec is measured by what it loses; a source that already went through a
  perceptual coder has lost its quiet details and highs, and a model trained or scored on it
  is rewarded for discarding the same things. MIDI renders are exact synthesiser output,
  stored as 16-bit PCM (the best ground truth here). The game music was Vorbis/Opus *at the
  source*: it adds what renders lack (drums, synths, dense mixes, mastering, real reverb) but
  it is not pristine. The speech prompts are 16-bit PCM recordings; one codec2 file is
  mu-law (``cross.wav``, 14-bit linear inside).
- **Varied**: timbre (piano, harpsichord, strings, winds, brass, organ, choir, orchestra,
  electronic), texture (solo to 15 parts), dynamics, stereo images, sample rates (44.1 and
  48 kHz music; 8 and 16 kHz speech), speakers (one professional voice for the prompts, several
  amateur and radio recordings in codec2).
- **Not overlapping**: the same material never lands on both sides of a split. Remasters stay
  together (warzone2100's ``menu``/``menu_enhanced`` and ``track3``/``track3_enhanced`` are all
  training); codec2's ``f2400``/``m2400`` carry the utterances of ``forig``/``morig`` (their
  envelopes correlate at 0.99) and ``all.wav``, ``hts1*``/``hts2*`` and ``ve9qrp_10s`` repeat
  other files, so they are left out; a 16 kHz version sits in its 8 kHz source's split.
- **Full scale, not clipped**: renders are peak-normalised to -1 dBFS; a decoded excerpt
  that reaches full scale is scaled to -0.1 dBFS; PCM is rounded (no dither, so it is
  deterministic) by :func:`walloc_cli.files.audio.quantise`. The few speech sources that touch full
  scale overshoot it by a hair when resampled: those samples are clipped and counted in the
  manifest (``clipped``), not rescaled, so both rates keep the recording's level.
- **No dead air**: leading and trailing silence (60 dB below the piece's peak) is trimmed from
  music, keeping 10 ms; long game tracks give their middle ``MAX_GAME_SECONDS`` (they loop and
  would otherwise dominate the set: singularity and warzone hold five hours of music).

Rendering the scores: :mod:`walloc_cli.data.render`; resampling speech:
:mod:`walloc_cli.data.resample`.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import importlib.util
import json
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import soundfile as sf

from walloc_cli.data import render
from walloc_cli.data.render import Score, render_score
from walloc_cli.data.resample import resample
from walloc_cli.files.audio import AudioInfo, AudioReader, AudioWriter, read_audio
from walloc_cli.errors import InputError
from walloc_cli.files.safe_io import atomic_write_bytes, package_versions, refuse_existing_set, remove_previous_set

__all__ = [
    "MUSIC_PACKAGES",
    "SCORES",
    "SPEECH_PACKAGES",
    "TEST_MUSIC",
    "TEST_SPEECH",
    "VALIDATION_MUSIC",
    "VALIDATION_SPEECH",
    "AudioRecord",
    "build_music_set",
    "build_speech_set",
    "split_summary",
]


SINGULARITY_MUSIC = Path("/usr/share/games/singularity/music")
WARZONE_MUSIC = Path("/usr/share/games/warzone2100/music")
ASTERISK_SOUNDS = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
CODEC2_SAMPLES = Path("/usr/share/codec2")

MUSIC_PACKAGES = (
    "apt-get install -y fluidsynth fluid-soundfont-gm singularity-music warzone2100-music; "
    "pip install music21"
)
SPEECH_PACKAGES = "apt-get install -y asterisk-core-sounds-en-wav codec2-examples"

#: Longest excerpt taken from one game track, in seconds (its middle part).
MAX_GAME_SECONDS = 120.0
SILENCE_DB = -60.0  # relative to the piece's peak
SILENCE_PAD_SECONDS = 0.01
RENDER_PEAK = 10 ** (-1 / 20)  # -1 dBFS
DECODED_LIMIT = 10 ** (-0.1 / 20)  # -0.1 dBFS
SPEECH_RATES = (8000, 16000)


_QUARTET = (40, 40, 41, 42)  # violin, violin, viola, cello
_PIANO = (0, 0)  # two staves, one piano
_CHOIR5 = (52, 53, 52, 53, 52)  # choir aahs / voice oohs

#: Every score rendered, with its instrumentation: 26 scores, about 55 minutes with repeats.
SCORES: tuple[Score, ...] = (
    # keyboard
    Score("joplin/maple_leaf_rag", _PIANO, "piano"),
    Score("bach/bwv846", (6, 6), "harpsichord"),
    Score("schumann_clara/polonaise_op1n1", _PIANO, "piano"),
    Score("schumann_clara/polonaise_op1n2", _PIANO, "piano"),
    Score("schumann_clara/polonaise_op1n3", _PIANO, "piano"),
    Score("cpebach/h186", _PIANO, "piano"),
    Score("mozart/k545/movement1_exposition", (4, 4), "electric piano"),
    # strings
    Score("beethoven/opus18no1/movement3", _QUARTET, "string quartet"),
    Score("mozart/k458/movement3", _QUARTET, "string quartet"),
    Score("schumann_robert/opus41no1/movement2", _QUARTET, "string quartet"),
    Score("corelli/opus3no1/1grave", (40, 40, 19), "two violins and organ"),
    Score("schumann_clara/opus17/movement3", (40, 42, 0, 0), "piano trio"),
    # voices, winds, brass, mixed
    Score("monteverdi/madrigal.3.1", _CHOIR5, "choir"),
    Score("bach/bwv227.1", (52, 52, 52, 52), "choir"),
    Score("bach/bwv10.7", (56, 60, 57, 58), "brass quartet"),
    Score("bach/bwv6.6", (56, 60, 57, 58), "brass quartet"),
    Score("bach/bwv4.8", (19, 19, 19, 19), "church organ"),
    Score("bach/bwv40.6", (73, 68, 71, 70), "wind quartet"),
    Score("bach/bwv244.29-a", (48, 48, 48, 48), "string orchestra"),
    Score("handel/rinaldo/Lascia_chio_pianga", (68, 6, 6), "oboe and harpsichord"),
    Score("weber/concertino_clarinet", (71, 0, 0), "clarinet and piano"),
    Score("schubert/Lindenbaum", (42, 0, 0), "cello and piano"),
    Score("verdi/laDonnaEMobile", (21, 21), "accordion"),
    Score(
        "bach/bwv248.64-6",
        (56, 56, 56, 47, 68, 68, 40, 40, 41, 52, 52, 52, 52, 19),
        "orchestra and choir (trumpets, timpani, oboes, strings, organ)",
    ),
    Score(
        "bach/bwv190.7-inst",
        (56, 56, 56, 47, 68, 68, 68, 40, 40, 41, 52, 52, 52, 52, 19),
        "orchestra and choir (trumpets, timpani, oboes, strings, organ)",
    ),
)
# Not rendered: chopin/mazurka06-2 and haydn/opus74no1/movement3 (music21 cannot expand their
# repeats), and more quartets/orchestra (the set would pass an hour without new timbres).

#: Never trained on: piano, strings with organ, choir, brass, and one track of each game.
TEST_MUSIC = frozenset({
    "music21:joplin/maple_leaf_rag",
    "music21:corelli/opus3no1/1grave",
    "music21:bach/bwv227.1",
    "music21:bach/bwv10.7",
    "singularity:Nebula",
    "warzone2100:albums/legacy_soundtrack/track9",
})
#: Validation during training (about 1.6 minutes).
VALIDATION_MUSIC = frozenset({
    "music21:mozart/k545/movement1_exposition",
    "music21:bach/bwv4.8",
    "singularity:lose/Chimes They Fade",
})

#: codec2-examples files used (the rest are modem signals, sine tests or repeat these).
CODEC2_FILES = (
    "wav/big_dog.wav", "wav/cross.wav", "wav/david4.wav", "wav/forig.wav", "wav/mmt1.wav",
    "wav/morig.wav", "wav/ve9qrp.wav", "wav/vk2tpm_004.wav", "wav/vk5qi.wav", "wav/wia_16kHz.wav",
    "raw/speech_orig_16k.wav", "raw/hts.raw", "raw/g3plx.raw", "raw/kristoff.raw", "raw/cq_ref.raw",
)
CODEC2_RAW_RATE = 8000  # codec2's .raw files: headerless 16-bit little-endian mono at 8 kHz
#: Never trained on (shell patterns over source keys): the conference prompts and four speakers.
TEST_SPEECH = (
    "asterisk:conf-*",
    "codec2:raw/hts.raw",
    "codec2:wav/david4.wav",
    "codec2:wav/forig.wav",
    "codec2:wav/morig.wav",
    "codec2:raw/speech_orig_16k.wav",
)
#: Validation during training.
VALIDATION_SPEECH = ("asterisk:dir-*", "codec2:wav/mmt1.wav", "codec2:wav/wia_16kHz.wav")


@dataclasses.dataclass
class AudioRecord:
    """One file of a set: where it came from, how it was made, what was written."""

    key: str
    package: str
    source: str
    split: str
    file: str
    samplerate: int
    channels: int
    frames: int
    seconds: float
    sha256: str
    detail: str = ""
    clipped: int = 0


@dataclasses.dataclass(frozen=True)
class _Source:
    """A source file and how to turn it into samples: ``score``, ``decode`` or ``raw``."""

    key: str
    package: str
    path: Path
    kind: str
    score: Score | None = None


# --------------------------------------------------------------------------------------------
# Shared
# --------------------------------------------------------------------------------------------


def split_summary(records: Iterable[AudioRecord]) -> dict[str, dict[str, float]]:
    """``{split: {"files": n, "seconds": s}}``, splits in alphabetical order."""
    summary: dict[str, dict[str, float]] = {}
    for record in records:
        entry = summary.setdefault(record.split, {"files": 0, "seconds": 0.0})
        entry["files"] += 1
        entry["seconds"] = round(entry["seconds"] + record.seconds, 3)
    return dict(sorted(summary.items()))


def _split_of(key: str, test: Iterable[str], validation: Iterable[str]) -> str:
    if any(fnmatch.fnmatchcase(key, pattern) for pattern in test):
        return "test"
    if any(fnmatch.fnmatchcase(key, pattern) for pattern in validation):
        return "val"
    return "train"


def _slug(key: str) -> str:
    """A file name from a source key: ``singularity:lose/Chimes They Fade`` -> ``singularity_lose_Chimes_They_Fade``."""
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", key).strip("_")


def _check_sources(sources: list[_Source], held_out: Iterable[str], packages: str) -> None:
    """Refuse when a held-out or validation source is absent: the split would silently change."""
    keys = [source.key for source in sources]
    missing = sorted(p for p in held_out if not any(fnmatch.fnmatchcase(k, p) for k in keys))
    if missing:
        raise InputError(f"held-out sources missing: {', '.join(missing)} (install them: {packages})")


def _write(out_dir: Path, split: str, name: str, samples: np.ndarray, rate: int) -> tuple[str, str, int]:
    """Write ``(channels, n)`` floats as 16-bit FLAC; return (relative file, SHA-256, clipped)."""
    target = out_dir / split / name
    target.parent.mkdir(parents=True, exist_ok=True)
    info = AudioInfo(rate, samples.shape[0], samples.shape[1], "FLAC", "PCM_16")
    with AudioWriter(target, info, overwrite=True, subtype="PCM_16") as writer:
        writer.write(samples)
    return target.relative_to(out_dir).as_posix(), hashlib.sha256(target.read_bytes()).hexdigest(), writer.clipped


def _finish(out_dir: Path, kind: str, records: list[AudioRecord]) -> list[AudioRecord]:
    records.sort(key=lambda r: r.file)
    manifest = {
        "description": __doc__.strip().splitlines()[0] if __doc__ else "",
        "set": kind,
        "packages": package_versions(sorted({r.package for r in records})),
        "splits": split_summary(records),
        "records": [dataclasses.asdict(r) for r in records],
    }
    atomic_write_bytes(out_dir / "manifest.json", (json.dumps(manifest, indent=2) + "\n").encode())
    return records


# --------------------------------------------------------------------------------------------
# Music
# --------------------------------------------------------------------------------------------


def _missing_music_packages() -> list[str]:
    """Debian/PyPI packages the music set needs that are not installed."""
    present = {
        "fluidsynth": shutil.which(render.FLUIDSYNTH) is not None,
        "fluid-soundfont-gm": render.SOUNDFONT.is_file(),
        "singularity-music": SINGULARITY_MUSIC.is_dir(),
        "warzone2100-music": WARZONE_MUSIC.is_dir(),
        "music21": importlib.util.find_spec("music21") is not None,
    }
    return [package for package, ok in present.items() if not ok]


def _music_sources() -> list[_Source]:
    """Every score of :data:`SCORES` and every track of the two game soundtracks."""
    from music21 import corpus

    found = [_Source(s.key, "music21", Path(str(corpus.getWork(s.path))), "score", s) for s in SCORES]
    for package, prefix, root, pattern in (
        ("singularity-music", "singularity", SINGULARITY_MUSIC, "*.ogg"),
        ("warzone2100-music", "warzone2100", WARZONE_MUSIC, "*.opus"),
    ):
        for path in sorted(root.rglob(pattern)):
            key = f"{prefix}:{path.relative_to(root).with_suffix('').as_posix()}"
            found.append(_Source(key, package, path, "decode"))
    return found


def _excerpt(path: Path, seconds: float) -> tuple[np.ndarray, int]:
    """``(channels, n)`` float32: the middle ``seconds`` of ``path`` (all of it when shorter)."""
    with AudioReader(path) as reader:
        frames = reader.info.frames
        length = min(frames, round(seconds * reader.info.samplerate))
        start = (frames - length) // 2
        return reader.read(start, start + length), reader.info.samplerate


def _trim(samples: np.ndarray, rate: int) -> np.ndarray:
    """Drop leading/trailing frames quieter than :data:`SILENCE_DB` below the peak, keeping a pad."""
    level = np.abs(samples).max(axis=0)
    loud = np.flatnonzero(level > level.max() * 10 ** (SILENCE_DB / 20))
    if loud.size == 0:
        return samples
    pad = round(SILENCE_PAD_SECONDS * rate)
    return samples[:, max(0, loud[0] - pad) : loud[-1] + 1 + pad]


def _music_audio(source: _Source, scratch: Path) -> tuple[np.ndarray, int, str]:
    """Samples, rate and a one-line description of how they were made."""
    if source.kind == "score":
        assert source.score is not None
        samples, rate = render_score(source.score, scratch)
        samples = _trim(samples, rate)
        samples *= np.float32(RENDER_PEAK / max(float(np.abs(samples).max()), 1e-12))
        return samples, rate, f"{source.score.ensemble}; fluidsynth FluidR3_GM render, -1 dBFS peak"
    samples, rate = _excerpt(source.path, MAX_GAME_SECONDS)
    samples = _trim(samples, rate)
    detail = "decoded from lossy " + ("Opus" if source.path.suffix == ".opus" else "Vorbis")
    peak = float(np.abs(samples).max())
    if peak > DECODED_LIMIT:
        samples *= np.float32(DECODED_LIMIT / peak)
        detail += f", scaled by {20 * np.log10(DECODED_LIMIT / peak):.2f} dB to avoid clipping"
    return samples, rate, detail


def build_music_set(out_dir: Path, overwrite: bool = False) -> list[AudioRecord]:
    """Write ``out_dir/{train,val,test}/*.flac`` and ``out_dir/manifest.json``; return the records.

    Renders (44.1 kHz) and game excerpts (48 kHz) are 16-bit stereo FLAC. Raises
    :class:`InputError` naming the missing packages (one line, with the install command) or
    the missing held-out sources, and :class:`FileExistsError` when ``out_dir`` already holds
    a set and ``overwrite`` is false.
    """
    out_dir = Path(out_dir)
    refuse_existing_set(out_dir, overwrite)
    missing = _missing_music_packages()
    if missing:
        raise InputError(f"missing packages: {', '.join(missing)} (install them: {MUSIC_PACKAGES})")
    sources = _music_sources()
    _check_sources(sources, TEST_MUSIC | VALIDATION_MUSIC, MUSIC_PACKAGES)
    remove_previous_set(out_dir, ".flac")
    records: list[AudioRecord] = []
    with tempfile.TemporaryDirectory(prefix="walloc-music-") as scratch:
        for source in sorted(sources, key=lambda s: s.key):
            split = _split_of(source.key, TEST_MUSIC, VALIDATION_MUSIC)
            samples, rate, detail = _music_audio(source, Path(scratch))
            name, digest, clipped = _write(out_dir, split, _slug(source.key) + ".flac", samples, rate)
            frames = samples.shape[1]
            records.append(AudioRecord(
                source.key, source.package, str(source.path), split, name, rate, samples.shape[0],
                frames, round(frames / rate, 3), digest, detail, clipped,
            ))
    return _finish(out_dir, "music", records)


# --------------------------------------------------------------------------------------------
# Speech
# --------------------------------------------------------------------------------------------


def _missing_speech_packages() -> list[str]:
    present = {
        "asterisk-core-sounds-en-wav": ASTERISK_SOUNDS.is_dir(),
        "codec2-examples": (CODEC2_SAMPLES / "wav").is_dir(),
    }
    return [package for package, ok in present.items() if not ok]


def _speech_sources() -> list[_Source]:
    """Asterisk prompts (its ``silence/`` folder excluded) and the :data:`CODEC2_FILES`."""
    found = []
    for path in sorted(ASTERISK_SOUNDS.rglob("*.wav")):
        relative = path.relative_to(ASTERISK_SOUNDS).as_posix()
        if not relative.startswith("silence/"):
            found.append(_Source(f"asterisk:{relative}", "asterisk-core-sounds-en-wav", path, "decode"))
    for relative in CODEC2_FILES:
        path = CODEC2_SAMPLES / relative
        if path.is_file():
            kind = "raw" if path.suffix == ".raw" else "decode"
            found.append(_Source(f"codec2:{relative}", "codec2-examples", path, kind))
    return found


def _speech_audio(source: _Source) -> tuple[np.ndarray, int]:
    """``(1, n)`` float32 mono and its rate (codec2's ``.raw`` files are headerless)."""
    if source.kind == "raw":
        samples, rate = sf.read(
            source.path, samplerate=CODEC2_RAW_RATE, channels=1, format="RAW", subtype="PCM_16",
            endian="LITTLE", dtype="float32", always_2d=True,
        )
        return np.ascontiguousarray(samples.T), rate
    samples, info = read_audio(source.path)
    return samples, info.samplerate


def build_speech_set(out_dir: Path, overwrite: bool = False) -> list[AudioRecord]:
    """Write ``out_dir/{train,val,test}/*.{8k,16k}.flac`` and ``out_dir/manifest.json``.

    Every source is written at its own rate and resampled to the other of 8/16 kHz (16-bit mono
    FLAC); both versions sit in the source's split. Same refusals as :func:`build_music_set`.
    """
    out_dir = Path(out_dir)
    refuse_existing_set(out_dir, overwrite)
    missing = _missing_speech_packages()
    if missing:
        raise InputError(f"missing packages: {', '.join(missing)} (install them: {SPEECH_PACKAGES})")
    sources = _speech_sources()
    _check_sources(sources, TEST_SPEECH + VALIDATION_SPEECH, SPEECH_PACKAGES)
    remove_previous_set(out_dir, ".flac")
    records: list[AudioRecord] = []
    for source in sorted(sources, key=lambda s: s.key):
        split = _split_of(source.key, TEST_SPEECH, VALIDATION_SPEECH)
        native, rate = _speech_audio(source)
        for target in SPEECH_RATES:
            samples, method = resample(native, rate, target)
            detail = "as recorded" if target == rate else f"resampled from {rate} Hz ({method})"
            name = f"{_slug(source.key.rsplit('.', 1)[0])}.{target // 1000}k.flac"
            file, digest, clipped = _write(out_dir, split, name, samples, target)
            frames = samples.shape[1]
            records.append(AudioRecord(
                source.key, source.package, str(source.path), split, file, target, 1, frames,
                round(frames / target, 3), digest, detail, clipped,
            ))
    return _finish(out_dir, "speech", records)
