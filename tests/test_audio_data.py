"""Music and speech sets: split by name, manifest, byte-identical rebuilds, one-line refusals.

Sources are tiny synthetic files standing in for the packages' (no MIDI is rendered here).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from walloc_cli.data import audio as audio_data
from walloc_cli.data import render, resample
from walloc_cli.files.audio import read_audio
from walloc_cli.data.audio import _Source
from walloc_cli.errors import InputError


def _tone(seconds: float, rate: int, channels: int, silence: float = 0.0, freq: float = 440.0) -> np.ndarray:
    """``(frames, channels)``: a noisy tone with ``silence`` seconds of zeros at both ends (same every call)."""
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * np.random.default_rng(int(freq)).standard_normal(t.size)
    pad = np.zeros(int(silence * rate))
    mono = np.concatenate([pad, tone, pad])
    return np.stack([mono * (1 - 0.2 * c) for c in range(channels)], axis=1)


def _fake_music(folder: Path) -> list[_Source]:
    """Every held-out/validation key plus two training ones; games as short Vorbis files."""
    folder.mkdir()
    scores = {score.key: score for score in audio_data.SCORES}
    keys = sorted(audio_data.TEST_MUSIC | audio_data.VALIDATION_MUSIC) + [
        "music21:bach/bwv846",
        "warzone2100:albums/original_soundtrack/track1",
    ]
    sources = []
    for index, key in enumerate(keys):
        if key in scores:
            sources.append(_Source(key, "music21", folder / f"{index}.mxl", "score", scores[key]))
            continue
        path = folder / f"{index}.ogg"
        sf.write(path, _tone(0.6, 48000, 2, silence=0.2), 48000, format="OGG", subtype="VORBIS")
        package = "singularity-music" if key.startswith("singularity") else "warzone2100-music"
        sources.append(_Source(key, package, path, "decode"))
    return sources


def _fake_render(score: render.Score, scratch: Path) -> tuple[np.ndarray, int]:
    """Stands in for music21 + fluidsynth: a tone with silence around it, as float (2, n)."""
    freq = 200.0 + 10 * len(score.path)
    return np.ascontiguousarray(_tone(0.5, 44100, 2, silence=0.3, freq=freq).T.astype(np.float32)), 44100


@pytest.fixture
def music(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    sources = _fake_music(tmp_path / "src")
    monkeypatch.setattr(audio_data, "_missing_music_packages", list)
    monkeypatch.setattr(audio_data, "_music_sources", lambda: sources)
    monkeypatch.setattr(audio_data, "render_score", _fake_render)
    monkeypatch.setattr(audio_data, "MAX_GAME_SECONDS", 0.5)
    return tmp_path / "set"


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_music_set_is_split_by_name_and_rebuilds_byte_for_byte(music: Path) -> None:
    records = audio_data.build_music_set(music)
    splits = {r.key: r.split for r in records}
    assert all(splits[k] == "test" for k in audio_data.TEST_MUSIC)
    assert all(splits[k] == "val" for k in audio_data.VALIDATION_MUSIC)
    assert splits["music21:bach/bwv846"] == splits["warzone2100:albums/original_soundtrack/track1"] == "train"
    manifest = json.loads((music / "manifest.json").read_text())
    held_out = len(audio_data.TEST_MUSIC) + len(audio_data.VALIDATION_MUSIC)
    assert manifest["set"] == "music" and len(manifest["records"]) == len(records) == held_out + 2
    assert manifest["splits"]["test"]["files"] == len(audio_data.TEST_MUSIC)
    assert manifest["splits"]["val"]["files"] == len(audio_data.VALIDATION_MUSIC)
    for record in manifest["records"]:
        samples, info = read_audio(music / record["file"])
        assert (info.format, info.subtype, info.channels) == ("FLAC", "PCM_16", 2)
        assert (info.samplerate, info.frames) == (record["samplerate"], record["frames"])
        assert record["file"].startswith(record["split"] + "/") and record["clipped"] == 0
        if record["package"] == "music21":  # silence trimmed to 10 ms, peak at -1 dBFS
            assert info.samplerate == 44100 and abs(record["seconds"] - 0.52) < 0.005
            assert abs(np.abs(samples).max() - 10 ** (-1 / 20)) < 1e-4
        else:  # the middle 0.5 s of a 1 s track: no silence left to trim
            assert info.samplerate == 48000 and info.frames == 24000
    files = _files(music)
    with pytest.raises(FileExistsError, match=r"already exists \(use -f to rebuild\)"):
        audio_data.build_music_set(music)
    assert _files(music) == files
    audio_data.build_music_set(music, overwrite=True)
    assert _files(music) == files  # same samples, same FLAC bytes, same manifest


def test_rebuild_removes_files_of_the_old_set(music: Path) -> None:
    audio_data.build_music_set(music)
    (music / "train" / "stray.flac").write_bytes(b"not ours")  # not in the manifest: kept
    manifest = json.loads((music / "manifest.json").read_text())
    manifest["records"][0]["file"] = "train/old-name.flac"
    (music / "train" / "old-name.flac").write_bytes(b"ours")
    (music / "manifest.json").write_text(json.dumps(manifest))
    audio_data.build_music_set(music, overwrite=True)
    assert not (music / "train" / "old-name.flac").exists() and (music / "train" / "stray.flac").exists()


def test_missing_packages_are_named_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "FLUIDSYNTH", "no-such-fluidsynth")
    monkeypatch.setattr(render, "SOUNDFONT", tmp_path / "none.sf2")
    monkeypatch.setattr(audio_data, "WARZONE_MUSIC", tmp_path / "none")
    with pytest.raises(InputError) as caught:
        audio_data.build_music_set(tmp_path / "set")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("missing packages: fluidsynth, fluid-soundfont-gm, ")
    assert "warzone2100-music" in message and "(install them: apt-get install -y fluidsynth" in message
    monkeypatch.setattr(audio_data, "ASTERISK_SOUNDS", tmp_path / "none")
    monkeypatch.setattr(audio_data, "CODEC2_SAMPLES", tmp_path / "none")
    expected = r"^missing packages: asterisk-core-sounds-en-wav, codec2-examples \(install them: apt-get"
    with pytest.raises(InputError, match=expected):
        audio_data.build_speech_set(tmp_path / "speech")
    assert not (tmp_path / "set").exists() and not (tmp_path / "speech").exists()


def test_a_missing_held_out_source_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sources = [s for s in _fake_music(tmp_path / "src") if s.key != "singularity:Nebula"]
    monkeypatch.setattr(audio_data, "_missing_music_packages", list)
    monkeypatch.setattr(audio_data, "_music_sources", lambda: sources)
    with pytest.raises(InputError, match=r"^held-out sources missing: singularity:Nebula \(install them"):
        audio_data.build_music_set(tmp_path / "set")


def _fake_fluidsynth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    program = tmp_path / "fluidsynth"
    program.write_text("#!/bin/sh\n" + script + "\n")
    program.chmod(0o755)
    monkeypatch.setattr(render, "FLUIDSYNTH", str(program))


def test_a_render_that_never_ends_is_cut_at_the_wanted_length(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_fluidsynth(tmp_path, monkeypatch, "exec cat /dev/zero")  # a player that never stops
    samples = render.fluidsynth_render(tmp_path / "any.mid", 0.5)
    assert samples.shape == (2, 22050) and samples.dtype == np.float32 and not samples.any()
    # one that stops early: the rest is silence; one that hangs: the watchdog ends it
    _fake_fluidsynth(tmp_path, monkeypatch, "head -c 800 /dev/zero")
    assert render.fluidsynth_render(tmp_path / "any.mid", 0.01).shape == (2, 441)
    _fake_fluidsynth(tmp_path, monkeypatch, "exec sleep 30")
    monkeypatch.setattr(render, "RENDER_TIMEOUT", 0.3)
    with pytest.raises(RuntimeError, match="fluidsynth took more than 0.3 s"):
        render.fluidsynth_render(tmp_path / "any.mid", 1.0)


def test_midi_length_follows_the_tempo_map(tmp_path: Path) -> None:
    pytest.importorskip("music21")
    from music21 import note, stream, tempo

    part = stream.Part()
    part.append(tempo.MetronomeMark(number=60))
    part.append(note.Note("C4", quarterLength=4))  # 4 s at 60 bpm
    part.append(tempo.MetronomeMark(number=120))
    part.append(note.Note("E4", quarterLength=4))  # 2 s at 120 bpm
    part.write("midi", fp=str(tmp_path / "two.mid"))
    # music21 ends each track one beat (here 0.5 s) after its last note
    assert abs(render.midi_seconds(tmp_path / "two.mid") - 6.5) < 1e-6


@pytest.fixture
def speech(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fake asterisk and codec2 folders holding the files the speech split names, and a few more."""
    asterisk, codec2 = tmp_path / "asterisk", tmp_path / "codec2"
    for name in ("conf-adminmenu.wav", "dir-intro.wav", "vm-hello.wav", "digits/1.wav", "silence/1.wav"):
        (asterisk / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(asterisk / name, _tone(0.25, 8000, 1), 8000, subtype="PCM_16")
    (codec2 / "wav").mkdir(parents=True)
    (codec2 / "raw").mkdir()
    for name in audio_data.CODEC2_FILES:
        rate = 16000 if "16k" in name else 8000
        tone = _tone(0.2, rate, 1)
        if name.endswith(".raw"):
            (codec2 / name).write_bytes(np.round(tone[:, 0] * 32768).astype("<i2").tobytes())
        else:
            sf.write(codec2 / name, tone, rate, subtype="PCM_16")
    monkeypatch.setattr(audio_data, "ASTERISK_SOUNDS", asterisk)
    monkeypatch.setattr(audio_data, "CODEC2_SAMPLES", codec2)
    return tmp_path / "speech"


def test_speech_set_has_both_rates_in_the_source_split(speech: Path) -> None:
    records = audio_data.build_speech_set(speech)
    by_file = {r.file: r for r in records}
    assert "test/asterisk_conf-adminmenu.8k.flac" in by_file and "test/asterisk_conf-adminmenu.16k.flac" in by_file
    assert by_file["val/asterisk_dir-intro.16k.flac"].detail.startswith("resampled from 8000 Hz (")
    assert by_file["train/asterisk_digits_1.8k.flac"].detail == "as recorded"
    assert not any("silence" in r.key for r in records)
    native = by_file["test/codec2_raw_speech_orig_16k.16k.flac"]
    assert native.detail == "as recorded" and by_file["test/codec2_raw_speech_orig_16k.8k.flac"].frames == 1600
    assert by_file["test/codec2_raw_hts.8k.flac"].frames == 1600  # headerless raw read at 8 kHz
    assert {r.split for r in records if r.key.startswith("codec2:wav/mmt1")} == {"val"}
    assert len(records) == 2 * (4 + len(audio_data.CODEC2_FILES))
    for record in records:
        _, info = read_audio(speech / record.file)
        assert (info.channels, info.subtype, info.samplerate) == (1, "PCM_16", record.samplerate)
    # the 16 kHz version of an 8 kHz prompt is the same sound: compare away from the ends
    low, _ = read_audio(speech / "train/asterisk_vm-hello.8k.flac")
    high, _ = read_audio(speech / "train/asterisk_vm-hello.16k.flac")
    assert high.shape[1] == 2 * low.shape[1]
    np.testing.assert_allclose(high[0, 200:-200:2], low[0, 100:-100], atol=0.03)
    files = _files(speech)
    with pytest.raises(FileExistsError, match="use -f to rebuild"):
        audio_data.build_speech_set(speech)
    audio_data.build_speech_set(speech, overwrite=True)
    assert _files(speech) == files


def test_resampling_is_clean_and_numpy_matches_scipy() -> None:
    t8, t16 = np.arange(8000) / 8000, np.arange(16000) / 16000
    tone8 = (0.5 * np.sin(2 * np.pi * 1000 * t8))[None].astype(np.float32)
    up, method = resample.resample(tone8, 8000, 16000)
    assert "Kaiser FIR 513 taps" in method
    np.testing.assert_allclose(up[0, 1000:-1000], 0.5 * np.sin(2 * np.pi * 1000 * t16[1000:-1000]), atol=1e-5)
    alias = (0.5 * np.sin(2 * np.pi * 6000 * t16))[None]  # above 4 kHz: must not fold down
    down, _ = resample.resample(alias, 16000, 8000)
    assert np.sqrt(np.mean(down[0, 500:-500] ** 2)) < 1e-5
    taps = resample.kaiser_lowpass(2, 1)
    by_numpy = resample.resample_numpy(tone8.astype(np.float64), 2, 1, taps)
    np.testing.assert_allclose(by_numpy, up, atol=1e-6)
