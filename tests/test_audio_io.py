"""Audio I/O: bit-exact PCM round trips, bounded-memory random access, one-line errors."""

from __future__ import annotations

import io
import os
import sys
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from walloc_cli.files.audio import (
    OUTPUT_EXTENSIONS,
    PCM_BITS,
    AudioInfo,
    AudioReader,
    AudioWriter,
    audio_info,
    output_subtype,
    quantise,
    read_audio,
    sniff_audio,
)
from walloc_cli.errors import InputError

RNG = np.random.default_rng(20250101)


def _pcm_file(path: Path, bits: int, frames: int, channels: int, rate: int, subtype: str, fmt: str) -> np.ndarray:
    """Write random full-scale ``bits``-bit integers (extremes included); return them ``(frames, channels)``."""
    ints = RNG.integers(-(2 ** (bits - 1)), 2 ** (bits - 1), size=(frames, channels), dtype=np.int64)
    ints[0, 0], ints[-1, -1] = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1  # both rails
    # int32 left-aligned: libsndfile keeps the top ``bits`` bits, i.e. exactly these integers
    sf.write(path, (ints << (32 - bits)).astype(np.int32), rate, subtype=subtype, format=fmt)
    return ints


def _stored_ints(path: Path, bits: int) -> np.ndarray:
    """The integers a PCM file stores, ``(frames, channels)``, read by soundfile directly."""
    return sf.read(path, dtype="int32", always_2d=True)[0].astype(np.int64) >> (32 - bits)


def _sine(frames: int, channels: int, rate: int = 44100, amplitude: float = 0.5) -> np.ndarray:
    """``(channels, frames)`` float32: one sine per channel at a different pitch."""
    t = np.arange(frames) / rate
    return np.stack([amplitude * np.sin(2 * np.pi * (220 + 110 * c) * t) for c in range(channels)]).astype(np.float32)


def _copy(src: Path, dst: Path, dtype: type[np.floating] = np.float32) -> AudioWriter:
    """Read ``src`` with AudioReader and write it back with AudioWriter (same subtype)."""
    with AudioReader(src) as reader, AudioWriter(dst, reader.info) as writer:
        for block in reader.blocks(1000, dtype):
            writer.write(block)
    return writer


@pytest.mark.parametrize(
    ("fmt", "subtype", "ext"),
    [
        ("WAV", "PCM_U8", ".wav"),
        ("WAV", "PCM_16", ".wav"),
        ("WAV", "PCM_24", ".wav"),
        ("FLAC", "PCM_16", ".flac"),
        ("FLAC", "PCM_24", ".flac"),
        ("AIFF", "PCM_16", ".aiff"),
    ],
)
def test_pcm_round_trip_is_bit_exact(tmp_path: Path, fmt: str, subtype: str, ext: str) -> None:
    bits = PCM_BITS[subtype]
    ints = _pcm_file(tmp_path / f"in{ext}", bits, 5000, 2, 44100, subtype, fmt)
    writer = _copy(tmp_path / f"in{ext}", tmp_path / f"out{ext}")
    assert writer.clipped == 0 and writer.frames == 5000
    assert sf.info(tmp_path / f"out{ext}").subtype == subtype
    np.testing.assert_array_equal(_stored_ints(tmp_path / f"out{ext}", bits), ints)


def test_pcm_32_round_trips_exactly_through_float64(tmp_path: Path) -> None:
    ints = _pcm_file(tmp_path / "in.wav", 32, 3000, 2, 48000, "PCM_32", "WAV")
    _copy(tmp_path / "in.wav", tmp_path / "out.wav", np.float64)
    np.testing.assert_array_equal(_stored_ints(tmp_path / "out.wav", 32), ints)
    # float32 keeps 24 significant bits: exact for 24-bit content, within 2**-24 of full scale else
    _copy(tmp_path / "in.wav", tmp_path / "out32.wav", np.float32)
    error = np.abs(_stored_ints(tmp_path / "out32.wav", 32) - ints)
    assert error.max() <= 2**7


@pytest.mark.parametrize("subtype", ["FLOAT", "DOUBLE"])
def test_float_round_trip_is_bit_exact(tmp_path: Path, subtype: str) -> None:
    samples = (RNG.standard_normal((4000, 3)) * 0.4).astype(np.float64)
    samples[0, 0] = 1.75  # float files may exceed full scale: kept, never clipped
    sf.write(tmp_path / "in.wav", samples, 96000, subtype=subtype)
    dtype = np.float64 if subtype == "DOUBLE" else np.float32
    writer = _copy(tmp_path / "in.wav", tmp_path / "out.wav", dtype)
    assert writer.clipped == 0
    original = sf.read(tmp_path / "in.wav", dtype="float64")[0]
    np.testing.assert_array_equal(sf.read(tmp_path / "out.wav", dtype="float64")[0], original)
    assert "PEAK" not in sf.info(tmp_path / "out.wav").extra_info  # no time stamp: same bytes each time


@pytest.mark.parametrize(("channels", "rate"), [(1, 8000), (2, 44100), (6, 192000)])
@pytest.mark.parametrize("frames", [1, 4095, 4096, 4097])
def test_channels_rates_and_lengths(tmp_path: Path, channels: int, rate: int, frames: int) -> None:
    ints = _pcm_file(tmp_path / "in.wav", 16, frames, channels, rate, "PCM_16", "WAV")
    samples, info = read_audio(tmp_path / "in.wav")
    assert info == AudioInfo(rate, channels, frames, "WAV", "PCM_16")
    assert samples.shape == (channels, frames) and samples.dtype == np.float32
    np.testing.assert_array_equal(samples, ints.T / np.float32(32768))  # PCM scaled by 2**15
    _copy(tmp_path / "in.wav", tmp_path / "out.flac")
    assert audio_info(tmp_path / "out.flac") == AudioInfo(rate, channels, frames, "FLAC", "PCM_16")
    np.testing.assert_array_equal(_stored_ints(tmp_path / "out.flac", 16), ints)


def test_ogg_vorbis_reads_and_writes(tmp_path: Path) -> None:
    signal = _sine(22050, 2)
    sf.write(tmp_path / "in.ogg", signal.T, 44100, format="OGG", subtype="VORBIS")
    samples, info = read_audio(tmp_path / "in.ogg")
    assert (info.format, info.subtype, info.bits, info.frames) == ("OGG", "VORBIS", None, 22050)
    assert np.corrcoef(samples.ravel(), signal.ravel())[0, 1] > 0.99  # lossy, but the same sound
    with AudioWriter(tmp_path / "out.ogg", info) as writer:
        writer.write(samples)
    assert audio_info(tmp_path / "out.ogg").subtype == "VORBIS"
    with AudioReader(tmp_path / "in.ogg") as reader:  # seeking in Vorbis is sample-exact
        np.testing.assert_array_equal(reader.read(10000, 10100), samples[:, 10000:10100])


def test_clipping_is_counted_and_the_rails_are_kept(tmp_path: Path) -> None:
    info = AudioInfo(8000, 1, 0, "WAV", "PCM_16")
    block = np.array([[0.5, 1.0, 1.5, -1.0, -1.2, 32767 / 32768, 0.25 / 32768]], dtype=np.float32)
    with AudioWriter(tmp_path / "out.wav", info) as writer:
        writer.write(block)
    assert writer.clipped == 3  # 1.0 and 1.5 above 32767, -1.2 below -32768; -1.0 fits
    stored = _stored_ints(tmp_path / "out.wav", 16)[:, 0]
    np.testing.assert_array_equal(stored, [16384, 32767, 32767, -32768, -32768, 32767, 0])
    ints, clipped = quantise(np.array([[-1.0, 0.99, 1.0]]), 8)
    assert ints.tolist() == [[-128, 127, 127]] and clipped == 1


def test_output_subtype_table() -> None:
    assert output_subtype("FLOAT", "FLAC") == "PCM_24"
    assert output_subtype("PCM_32", "FLAC") == "PCM_24"
    assert output_subtype("PCM_U8", "FLAC") == "PCM_S8"
    assert output_subtype("PCM_S8", "WAV") == "PCM_U8"
    assert output_subtype("PCM_24", "AIFF") == "PCM_24"
    assert output_subtype("ULAW", "WAV") == "PCM_16"
    assert output_subtype("VORBIS", "FLAC") == "PCM_16"
    assert output_subtype("PCM_16", "OGG") == "VORBIS"


def _error(path: Path) -> str:
    with pytest.raises(InputError) as caught:
        read_audio(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) not in message  # one line; the CLI adds the name
    return message


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0


def test_bad_inputs_give_one_line_errors(tmp_path: Path) -> None:
    descriptors = _open_descriptors()
    (tmp_path / "empty.wav").write_bytes(b"")
    assert _error(tmp_path / "empty.wav") == "empty file"
    (tmp_path / "text.wav").write_text("this is not audio\n" * 20)
    assert _error(tmp_path / "text.wav") == "not an audio file (format not recognised by its content)"
    assert _error(tmp_path / "missing.wav") == "no such file"
    sf.write(tmp_path / "whole.wav", _sine(10000, 1).T, 8000, subtype="PCM_16")
    data = (tmp_path / "whole.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])
    assert _error(tmp_path / "cut.wav").startswith("truncated WAV file (the header promises 20000 bytes")
    (tmp_path / "header.wav").write_bytes(data[:30])
    assert _error(tmp_path / "header.wav").startswith("corrupt or truncated audio file")
    nan = _sine(1000, 2).T.copy()
    nan[500, 1] = np.nan
    sf.write(tmp_path / "nan.wav", nan, 8000, subtype="FLOAT")
    assert _error(tmp_path / "nan.wav") == "audio contains NaN or infinite samples"
    sf.write(tmp_path / "none.wav", np.zeros((0, 1)), 8000, subtype="PCM_16")
    assert _error(tmp_path / "none.wav") == "empty audio (no samples)"
    sf.write(tmp_path / "slow.wav", np.zeros((10, 1)), 500, subtype="PCM_16")
    assert _error(tmp_path / "slow.wav") == "sample rate 500 Hz is outside 1000..768000 Hz"
    sf.write(tmp_path / "wide.wav", np.zeros((2, 65)), 8000, subtype="PCM_16")
    assert _error(tmp_path / "wide.wav") == "65 channels (at most 64 are supported)"
    assert _open_descriptors() == descriptors  # failed opens leave no file descriptor behind


def test_truncated_flac_and_ogg_are_refused(tmp_path: Path) -> None:
    signal = _sine(20000, 2).T
    sf.write(tmp_path / "a.flac", signal, 44100, subtype="PCM_16")
    sf.write(tmp_path / "a.ogg", signal, 44100, format="OGG", subtype="VORBIS")
    for name in ("a.flac", "a.ogg"):
        data = (tmp_path / name).read_bytes()
        (tmp_path / f"cut-{name}").write_bytes(data[: len(data) // 2])
        assert _error(tmp_path / f"cut-{name}").startswith(("corrupt or truncated", "truncated"))


def test_streamed_wav_with_unknown_length_is_not_truncated(tmp_path: Path) -> None:
    sf.write(tmp_path / "a.wav", _sine(1000, 1).T, 8000, subtype="PCM_16")
    data = bytearray((tmp_path / "a.wav").read_bytes())
    at = data.find(b"data")
    data[4:8] = data[at + 4 : at + 8] = b"\xff\xff\xff\xff"  # what ffmpeg writes to a pipe
    (tmp_path / "piped.wav").write_bytes(bytes(data))
    assert audio_info(tmp_path / "piped.wav").frames == 1000


def test_sniffing_is_by_content(tmp_path: Path) -> None:
    sf.write(tmp_path / "audio.txt", _sine(100, 1).T, 8000, subtype="PCM_16", format="WAV")
    (tmp_path / "text.wav").write_text("RIFF? no.\n")
    (tmp_path / "noise.raw").write_bytes(bytes(range(256)) * 4)  # libsndfile would guess by name
    assert sniff_audio(tmp_path / "audio.txt")
    assert not sniff_audio(tmp_path / "text.wav")
    assert not sniff_audio(tmp_path / "noise.raw")
    assert not sniff_audio(tmp_path / "missing.flac")


def test_random_access_matches_a_full_read_in_bounded_memory(tmp_path: Path) -> None:
    frames = 1_000_000  # ~23 s of stereo: 8 MB as float32, 4 MB on disk
    ints = RNG.integers(-32768, 32768, size=(frames, 2), dtype=np.int16)
    sf.write(tmp_path / "long.flac", ints, 44100, subtype="PCM_16")
    full, _ = read_audio(tmp_path / "long.flac")
    with AudioReader(tmp_path / "long.flac") as reader:
        for start, stop in [(frames - 1, frames), (123_457, 140_000), (0, 1), (999_000, 1_000_000), (40, 41)]:
            np.testing.assert_array_equal(reader.read(start, stop), full[:, start:stop])
        tracemalloc.start()
        for start in range(0, frames - 4096, frames // 7):
            reader.read(start, start + 4096)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 1 << 20, peak  # a few 4096-frame blocks, not the 8 MB file
        for start, stop in [(-1, 10), (10, 5), (0, frames + 1)]:
            with pytest.raises(ValueError):
                reader.read(start, stop)


def test_standard_input_is_spooled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sf.write(tmp_path / "a.flac", _sine(3000, 2).T, 22050, subtype="PCM_24")
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO((tmp_path / "a.flac").read_bytes())))
    with AudioReader("-") as reader:
        assert reader.info == AudioInfo(22050, 2, 3000, "FLAC", "PCM_24")
        block = reader.read(0, 3000)
        spool = reader._spool.name if reader._spool else ""
    np.testing.assert_array_equal(block, read_audio(tmp_path / "a.flac")[0])
    assert spool and not Path(spool).exists()


def test_standard_output_gets_a_wav(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = SimpleNamespace(buffer=io.BytesIO())
    monkeypatch.setattr(sys, "stdout", out)
    signal = _sine(2000, 2)
    with AudioWriter("-", AudioInfo(16000, 2, 0, "FLAC", "PCM_24")) as writer:
        writer.write(signal)
    samples, rate = sf.read(io.BytesIO(out.buffer.getvalue()), dtype="float32", always_2d=True)
    assert rate == 16000 and sf.info(io.BytesIO(out.buffer.getvalue())).subtype == "PCM_24"
    np.testing.assert_allclose(samples.T, signal, atol=2**-23)


def test_writer_leaves_nothing_when_interrupted(tmp_path: Path) -> None:
    info = AudioInfo(8000, 1, 0, "WAV", "PCM_16")
    with pytest.raises(KeyboardInterrupt), AudioWriter(tmp_path / "out.flac", info) as writer:
        writer.write(_sine(1000, 1))
        raise KeyboardInterrupt
    with pytest.raises(ValueError, match="shape"), AudioWriter(tmp_path / "out.wav", info) as writer:
        writer.write(_sine(1000, 2))  # wrong channel count, mid-write
    assert list(tmp_path.iterdir()) == []


def test_writer_refuses_to_overwrite_and_checks_the_extension(tmp_path: Path) -> None:
    info = AudioInfo(8000, 1, 0, "WAV", "PCM_16")
    (tmp_path / "out.wav").write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="already exists"):
        AudioWriter(tmp_path / "out.wav", info)
    assert (tmp_path / "out.wav").read_bytes() == b"keep me"
    with AudioWriter(tmp_path / "out.wav", info, overwrite=True) as writer:
        writer.write(_sine(100, 1))
    assert audio_info(tmp_path / "out.wav").frames == 100
    with pytest.raises(InputError) as caught:
        AudioWriter(tmp_path / "out.mp3", info)
    assert str(caught.value) == f"unsupported output extension '.mp3' (use one of {', '.join(OUTPUT_EXTENSIONS)})"
    with pytest.raises(InputError, match="cannot be written as FLOAT"):
        AudioWriter(tmp_path / "out.flac", info, subtype="FLOAT")
