"""Scores to audio: a music21 corpus score -> MIDI (music21) -> a float render (fluidsynth with
the FluidR3 General MIDI soundfont), for :func:`walloc_cli.data.audio.build_music_set`.

Rendering: each score is converted to MIDI by music21 (repeats expanded) with the General MIDI
programs named in :data:`walloc_cli.data.audio.SCORES` (0-based), rendered by ``fluidsynth -F``
at 44.1 kHz as raw float into a pipe (fluidsynth's own 16-bit output is dithered), for exactly
the MIDI file's length plus 2 s of release (fluidsynth does not always stop by itself), then
trimmed, normalised and stored as 16-bit stereo FLAC. Reverb and chorus stay on: fluidsynth renders
them deterministically (checked by building twice).
"""

from __future__ import annotations

import dataclasses
import subprocess
import threading
import warnings
from pathlib import Path

import numpy as np

__all__ = ["FLUIDSYNTH", "RENDER_RATE", "SOUNDFONT", "Score", "fluidsynth_render", "midi_seconds", "render_score"]

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
FLUIDSYNTH = "fluidsynth"

RENDER_RATE = 44100
RELEASE_SECONDS = 2.0  # rendered past a score's last MIDI event: releases and reverb tails
RENDER_TIMEOUT = 60.0  # seconds of wall clock one fluidsynth render may take
FADE_SECONDS = 0.25  # fade-out at the very end of a render (inside the release time)


@dataclasses.dataclass(frozen=True)
class Score:
    """A music21 corpus score and the General MIDI programs (0-based) of its parts, in order."""

    path: str
    programs: tuple[int, ...]
    ensemble: str

    @property
    def key(self) -> str:
        """The source key: ``music21:`` and the corpus path."""
        return f"music21:{self.path}"


def _score_to_midi(score: Score, midi: Path) -> None:
    """Write ``score`` as a MIDI file, each part playing its program from ``score.programs``."""
    from music21 import corpus, instrument

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # music21 warns about harmless MusicXML oddities
        parsed = corpus.parse(score.path)
        parts = list(parsed.parts)
        if len(parts) != len(score.programs):
            raise RuntimeError(f"{score.path} has {len(parts)} parts, {len(score.programs)} programs given")
        for part, program in zip(parts, score.programs):
            for old in list(part.recurse().getElementsByClass(instrument.Instrument)):
                old.activeSite.remove(old)
            part.insert(0, instrument.instrumentFromMidiProgram(program))
        parsed.write("midi", fp=str(midi))


def midi_seconds(midi: Path) -> float:
    """Time of a MIDI file's last event (end of track included), through its tempo map."""
    from music21 import midi as m21midi

    song = m21midi.MidiFile()
    song.open(str(midi))
    song.read()
    song.close()
    tempos: list[tuple[int, int]] = [(0, 500_000)]  # (tick, microseconds per quarter): 120 bpm
    end = 0
    for track in song.tracks:
        tick = 0
        for event in track.events:
            if isinstance(event, m21midi.DeltaTime):
                tick += int(event.time or 0)
                continue
            end = max(end, tick)
            if event.type == m21midi.MetaEvents.SET_TEMPO and isinstance(event.data, bytes):
                tempos.append((tick, int.from_bytes(event.data, "big")))
    tempos.sort(key=lambda change: change[0])  # stable: a change at tick 0 replaces the default
    seconds = 0.0
    for (tick, tempo), (following, _) in zip(tempos, [*tempos[1:], (max(end, tempos[-1][0]), 0)]):
        seconds += max(0, min(following, end) - tick) * tempo / 1e6 / song.ticksPerQuarterNote
    return seconds


def fluidsynth_render(midi: Path, seconds: float) -> np.ndarray:
    """The first ``seconds`` of fluidsynth's float render of ``midi``: ``(2, n)`` float32.

    fluidsynth's fast render stops when its MIDI player says the song is over, which for some
    files it never does (it then fills the disk at ~100x real time). So the render goes to a
    pipe, exactly the frames wanted are read, fluidsynth is killed, and a watchdog kills it
    after :data:`RENDER_TIMEOUT` seconds whatever happens.
    """
    frames = round(seconds * RENDER_RATE)
    command = [
        FLUIDSYNTH, "-ni", "-q", "-r", str(RENDER_RATE), "-O", "float", "-T", "raw", "-E", "little",
        "-F", "-", str(SOUNDFONT), str(midi),
    ]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    timed_out = threading.Event()

    def expire() -> None:
        timed_out.set()
        process.kill()

    watchdog = threading.Timer(RENDER_TIMEOUT, expire)
    watchdog.start()
    try:
        assert process.stdout is not None
        data = process.stdout.read(frames * 8)  # float32 stereo, interleaved
    finally:
        watchdog.cancel()
        process.kill()
        process.wait()
    if timed_out.is_set():
        raise RuntimeError(f"fluidsynth took more than {RENDER_TIMEOUT:g} s to render {midi.name}")
    if not data:
        raise RuntimeError(f"fluidsynth rendered nothing from {midi.name}")
    samples = np.zeros((frames, 2), dtype=np.float32)  # it may stop early: the rest is silence
    rendered = np.frombuffer(data[: len(data) // 8 * 8], dtype="<f4").reshape(-1, 2)
    samples[: len(rendered)] = rendered
    return np.ascontiguousarray(samples.T)


def render_score(score: Score, scratch: Path) -> tuple[np.ndarray, int]:
    """``(2, n)`` float32 stereo at :data:`RENDER_RATE`: music21 -> MIDI -> fluidsynth (float).

    Rendered to the MIDI file's last event plus :data:`RELEASE_SECONDS` for the last notes'
    release and the reverb tail.
    """
    midi = scratch / "score.mid"
    _score_to_midi(score, midi)
    samples = fluidsynth_render(midi, midi_seconds(midi) + RELEASE_SECONDS)
    # A note the score never releases would end in a click: fade the last moments of the tail.
    fade = min(round(FADE_SECONDS * RENDER_RATE), samples.shape[1])
    samples[:, samples.shape[1] - fade :] *= np.cos(np.linspace(0, np.pi / 2, fade, dtype=np.float32)) ** 2
    return samples, RENDER_RATE
