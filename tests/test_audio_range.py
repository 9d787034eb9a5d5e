"""Starting to decode mid-file: a range decode equals the same frames of a full decode, exactly;
the blocks before the range are neither decoded nor (for a seekable file) read; the CLI's
``decompress --start/--duration`` writes exactly that stretch."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from walloc_cli.codecs.audio import (
    compress_audio,
    decode_audio_range,
    decode_audio_seconds,
    decompress_audio,
    seconds_to_frames,
)
from walloc_cli.codecs.audio_blocks import BLOCK
from walloc_cli.cli.app import app
from walloc_cli.format.container import WlcReader, wlc_version
from walloc_cli.errors import FormatError, InputError

RATE = 44100
FRAMES = 2 * BLOCK + 18_000  # three blocks: two full, one short


def _signal(frames: int, channels: int, seed: int = 1) -> np.ndarray:
    """(frames, channels): decaying harmonic notes and a little noise, like tests/test_cli_audio.py."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / RATE
    out = np.zeros((frames, channels))
    for _ in range(5):
        f0 = 110 * 2 ** (rng.integers(0, 24) / 12)
        onset = rng.uniform(0, t[-1])
        env = np.where(t >= onset, np.exp(-(t - onset) * 1.5), 0.0)
        note = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 5)) * env
        out += note[:, None] * rng.uniform(0.2, 0.8, channels)[None, :] * 0.15
    return out + rng.normal(0, 0.002, out.shape)


@pytest.fixture(scope="module")
def coded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, np.ndarray]:
    """A three-block stereo file: its source path, its .wlc bytes and its full decode."""
    folder = tmp_path_factory.mktemp("range")
    src = folder / "song.wav"
    sf.write(src, _signal(FRAMES, 2), RATE, subtype="PCM_16")
    buffer = io.BytesIO()
    with wlc_version(1):  # the block offsets below are found in 1.x's layout
        compress_audio(src, buffer, measure=False)
    data = buffer.getvalue()
    full, rate = decode_audio_range(data)
    assert full.shape == (FRAMES, 2) and rate == RATE
    return src, data, full


def _audb_offsets(data: bytes) -> list[int]:
    """Byte offset of each AUDB chunk's data in a .wlc file (framing per formats/wlc.md)."""
    (header_length,) = struct.unpack_from("<I", data, 10)
    offset, found = 14 + header_length + 4, []
    while offset < len(data):
        kind, length = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        if kind == b"AUDB":
            found.append(offset + 8)
        offset += 8 + length + 4
    return found


@pytest.mark.parametrize(
    ("start", "frames"),
    [
        (0, 1),  # the very first frame
        (100, 500),  # inside the first block
        (BLOCK, 1000),  # on a block boundary
        (BLOCK - 700, 2000),  # across a boundary
        (2 * BLOCK + 5000, 4000),  # inside the last block
        (FRAMES - 300, 10**6),  # past the end: clipped
        (BLOCK + 1, None),  # to the end
    ],
)
def test_a_range_equals_the_same_slice_of_a_full_decode(coded: tuple[Path, bytes, np.ndarray], start: int, frames: int | None) -> None:
    _, data, full = coded
    part, rate = decode_audio_range(data, start, frames)
    stop = FRAMES if frames is None else min(FRAMES, start + frames)
    assert rate == RATE and part.shape == (stop - start, 2)
    assert np.array_equal(part, full[start:stop])


def test_blocks_before_the_range_are_not_read(coded: tuple[Path, bytes, np.ndarray]) -> None:
    _, data, full = coded
    first = _audb_offsets(data)[0]
    broken = bytearray(data)
    broken[first + 200 : first + 260] = bytes(60)  # the first block's payload, CRC now wrong
    with pytest.raises(FormatError, match="CRC mismatch"):
        decode_audio_range(bytes(broken))
    # The first block is passed over unread (its CRC never checked), from a seekable stream ...
    part, _ = decode_audio_range(bytes(broken), BLOCK + 10, 100)
    assert np.array_equal(part, full[BLOCK + 10 : BLOCK + 110])

    # ... and from a pipe, which is read through without being kept.
    class Pipe(io.RawIOBase):
        def __init__(self, payload: bytes) -> None:
            self._inner = io.BytesIO(payload)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
            chunk = self._inner.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    assert not io.BufferedReader(Pipe(bytes(broken))).seekable()
    part, _ = decode_audio_range(io.BufferedReader(Pipe(bytes(broken))), BLOCK + 10, 100)
    assert np.array_equal(part, full[BLOCK + 10 : BLOCK + 110])


def test_decoding_stops_at_the_end_of_the_range(coded: tuple[Path, bytes, np.ndarray]) -> None:
    _, data, full = coded
    cut = data[: _audb_offsets(data)[1] + 100]  # ends inside the second block
    part, _ = decode_audio_range(cut, 10, 1000)
    assert np.array_equal(part, full[10:1010])
    with pytest.raises(FormatError, match="truncated"):
        decode_audio_range(cut, BLOCK + 10, 1000)
    # a file that ends inside a block being passed over is truncated too, not silently short
    early = data[: _audb_offsets(data)[0] + 100]
    with pytest.raises(FormatError, match=r"truncated: file ends inside chunk \d \(AUDB\)"):
        decode_audio_range(early, BLOCK + 10, 1000)


def test_a_skipped_block_that_lies_about_its_place_is_caught(coded: tuple[Path, bytes, np.ndarray]) -> None:
    _, data, _ = coded
    second = _audb_offsets(data)[1]
    lying = bytearray(data)
    struct.pack_into("<Q", lying, second, 0)  # block 1 now claims to start at frame 0: skipped
    with pytest.raises(FormatError, match="out of place"):
        decode_audio_range(bytes(lying), BLOCK + 10, 100)


def test_range_requests_outside_the_file_are_refused(coded: tuple[Path, bytes, np.ndarray]) -> None:
    _, data, _ = coded
    with pytest.raises(InputError, match="past the end"):
        decode_audio_range(data, FRAMES)
    with pytest.raises(InputError, match="empty"):
        decode_audio_range(data, 0, 0)
    with pytest.raises(InputError, match="negative"):
        decode_audio_range(data, -1)
    with pytest.raises(InputError, match="duration"):
        seconds_to_frames(RATE, 0.0, -1.0)
    assert seconds_to_frames(RATE, 1.5, 0.25) == (66150, 11025)
    part, _ = decode_audio_seconds(data, 1.5, 0.25)
    assert part.shape == (11025, 2)


def test_damaged_block_inside_a_range_becomes_silence_with_keep_going(tmp_path: Path, coded: tuple[Path, bytes, np.ndarray]) -> None:
    _, data, full = coded
    second = _audb_offsets(data)[1]
    broken = bytearray(data)
    broken[second + 300] ^= 0xFF
    damaged: list[str] = []
    out = tmp_path / "part.wav"
    info = decompress_audio(WlcReader(io.BytesIO(bytes(broken))), out, damaged=damaged, start=BLOCK - 100, frames=BLOCK + 200)
    assert info.frames == BLOCK + 200 and len(damaged) == 1 and "CRC mismatch" in damaged[0]
    assert f"frames {BLOCK}..{2 * BLOCK - 1} replaced by silence" in damaged[0]
    samples, _ = sf.read(out, always_2d=True)
    assert np.all(samples[100 : 100 + BLOCK] == 0)
    assert np.abs(samples[:100] - full[BLOCK - 100 : BLOCK]).max() <= 1 / 32768  # only quantised
    assert np.abs(samples[-100:] - full[2 * BLOCK : 2 * BLOCK + 100]).max() <= 1 / 32768


def test_cli_start_and_duration_write_exactly_that_stretch(tmp_path: Path, coded: tuple[Path, bytes, np.ndarray]) -> None:
    _, data, _ = coded
    wlc = tmp_path / "song.wlc"
    wlc.write_bytes(data)
    runner = CliRunner()
    whole = runner.invoke(app, ["decompress", str(wlc), "-o", str(tmp_path / "whole.wav")])
    assert whole.exit_code == 0, whole.output
    part = runner.invoke(app, ["decompress", str(wlc), "-o", str(tmp_path / "part.wav"), "--start", "1.2", "--duration", "0.5"])
    assert part.exit_code == 0, part.output
    start, count = round(1.2 * RATE), round(0.5 * RATE)
    info = sf.info(tmp_path / "part.wav")
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (RATE, 2, count, "PCM_16")
    reference, _ = sf.read(tmp_path / "whole.wav", dtype="int16")
    stretch, _ = sf.read(tmp_path / "part.wav", dtype="int16")
    assert np.array_equal(stretch, reference[start : start + count])
    # to the end, and a duration past the end, are clipped
    tail = runner.invoke(app, ["decompress", str(wlc), "-o", str(tmp_path / "tail.wav"), "--start", "3", "--duration", "60"])
    assert tail.exit_code == 0, tail.output
    assert sf.info(tmp_path / "tail.wav").frames == FRAMES - 3 * RATE
    # past the end: one line, no output
    late = runner.invoke(app, ["decompress", str(wlc), "-o", str(tmp_path / "late.wav"), "--start", "10"])
    assert late.exit_code == 1 and "past the end" in late.stderr and not (tmp_path / "late.wav").exists()
    assert "Traceback" not in late.output
    # the library report says that only a stretch was written (not a stand-in for the .wlc)
    from walloc_cli.api.files import decompress_file

    report = decompress_file(wlc, tmp_path / "lib.wav", start=0.5)
    assert report.partial and report.frames == FRAMES - RATE // 2  # type: ignore[union-attr]
    assert not decompress_file(wlc, tmp_path / "lib2.wav").partial  # type: ignore[union-attr]


def test_cli_start_on_an_image_is_refused(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "p.png")
    runner = CliRunner()
    assert runner.invoke(app, ["compress", str(tmp_path / "p.png")]).exit_code == 0
    result = runner.invoke(app, ["decompress", str(tmp_path / "p.wlc"), "-o", str(tmp_path / "q.png"), "--start", "1"])
    assert result.exit_code == 1 and "for audio" in result.stderr and not (tmp_path / "q.png").exists()
