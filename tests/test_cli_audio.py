"""Audio through `walloc compress` / `decompress` with the shipped audio model: the same rate,
channels, frames and subtype come back, quality is measured and bounded, blocks leave no seam."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from walloc_cli.codecs.audio_blocks import BLOCK, MARGIN
from walloc_cli.cli.app import app


def music(frames: int, rate: int, channels: int, seed: int = 0) -> np.ndarray:
    """(frames, channels) float: a few decaying harmonic notes per channel, panned, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / rate
    out = np.zeros((frames, channels))
    for k in range(6):
        f0 = 110 * 2 ** (rng.integers(0, 24) / 12)
        onset = rng.uniform(0, max(t[-1], 1e-3))
        env = np.where(t >= onset, np.exp(-(t - onset) * 1.5), 0.0)
        note = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 5)) * env
        pan = rng.uniform(0.2, 0.8, channels)
        out += note[:, None] * pan[None, :] * 0.15
    return out + rng.normal(0, 0.002, out.shape)


def write(path: Path, data: np.ndarray, rate: int, subtype: str) -> Path:
    sf.write(path, data, rate, subtype=subtype)
    return path


def run(*args: object) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.parametrize(
    ("name", "frames", "rate", "channels", "subtype"),
    [
        ("stereo.wav", 70001, 44100, 2, "PCM_16"),
        ("mono24.flac", 4097, 48000, 1, "PCM_24"),
        ("speech.wav", 16001, 8000, 1, "PCM_16"),
        ("float.wav", 4095, 16000, 2, "FLOAT"),
        ("surround.wav", 3000, 44100, 6, "PCM_16"),
        ("one.wav", 1, 44100, 1, "PCM_16"),
        ("u8.wav", 300, 11025, 1, "PCM_U8"),
    ],
)
def test_round_trip_keeps_rate_channels_frames_and_subtype(tmp_path: Path, name: str, frames: int, rate: int, channels: int, subtype: str) -> None:
    src = write(tmp_path / name, music(frames, rate, channels), rate, subtype)
    result = run("compress", "--json", src)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["modality"] == "audio" and record["samplerate"] == rate and record["channels"] == channels
    assert record["kbps"] > 0 and (record["ratio"] > 1 or frames < 1000)  # tiny files are mostly header
    back = tmp_path / ("back" + src.suffix)
    decoded = run("decompress", src.with_suffix(".wlc"), "-o", back)
    assert decoded.exit_code == 0, decoded.output
    info = sf.info(back)
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (rate, channels, frames, subtype)
    original, _ = sf.read(src, always_2d=True)
    restored, _ = sf.read(back, always_2d=True)
    error = np.mean((original - restored) ** 2)
    # the report measured exactly what the user gets back
    assert record["psnr"] == pytest.approx(10 * np.log10(1 / error), abs=0.01) if error > 0 else True
    if frames > 1000:
        assert record["snr"] > 6


def test_quality_raises_rate_and_snr(tmp_path: Path) -> None:
    src = write(tmp_path / "a.wav", music(60000, 44100, 2, seed=3), 44100, "PCM_16")
    records = []
    for q in (0, 52, 100):
        result = run("compress", "--json", "-q", q, src, "-o", tmp_path / f"q{q}.wlc")
        assert result.exit_code == 0, result.output
        records.append(json.loads(result.stdout))
    assert [r["n_bytes"] for r in records] == sorted(r["n_bytes"] for r in records)
    assert records[-1]["snr"] > records[0]["snr"] + 6


def test_no_seam_at_block_boundaries(tmp_path: Path) -> None:
    """Error within 64 samples of each block boundary is no larger than elsewhere."""
    frames = 3 * BLOCK + 1234
    src = write(tmp_path / "long.wav", music(frames, 44100, 1, seed=5), 44100, "PCM_16")
    assert run("compress", src, "-q", "75").exit_code == 0
    assert run("decompress", tmp_path / "long.wlc", "-o", tmp_path / "back.wav").exit_code == 0
    error = (sf.read(src)[0] - sf.read(tmp_path / "back.wav")[0]) ** 2
    near = np.zeros(frames, bool)
    for boundary in range(BLOCK, frames, BLOCK):
        near[boundary - 64 : boundary + 64] = True
    assert error[near].mean() < 1.5 * error[~near].mean()
    assert MARGIN >= 1024


def test_pipes_and_stdin(tmp_path: Path) -> None:
    src = write(tmp_path / "p.flac", music(20000, 22050, 2), 22050, "PCM_16")
    encoded = subprocess.run([sys.executable, "-m", "walloc_cli", "compress", "-", "-o", "-"], input=src.read_bytes(), capture_output=True, timeout=120)
    assert encoded.returncode == 0, encoded.stderr
    assert b"kbit/s" in encoded.stderr  # the report goes to stderr when stdout is data
    decoded = subprocess.run([sys.executable, "-m", "walloc_cli", "decompress", "-", "-o", str(tmp_path / "out.wav")], input=encoded.stdout, capture_output=True, timeout=120)
    assert decoded.returncode == 0, decoded.stderr
    assert sf.info(tmp_path / "out.wav").frames == 20000


def test_a_damaged_block_is_one_line_and_leaves_no_output(tmp_path: Path) -> None:
    src = write(tmp_path / "d.wav", music(BLOCK + 5000, 44100, 1), 44100, "PCM_16")
    assert run("compress", src).exit_code == 0
    data = bytearray((tmp_path / "d.wlc").read_bytes())
    data[-200] ^= 0xFF  # inside the last audio block
    (tmp_path / "bad.wlc").write_bytes(bytes(data))
    result = run("decompress", tmp_path / "bad.wlc", "-o", tmp_path / "bad.wav")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"walloc: {tmp_path / 'bad.wlc'}: ") and "CRC" in lines[0]
    assert not (tmp_path / "bad.wav").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_target_searches_are_refused_for_audio(tmp_path: Path) -> None:
    src = write(tmp_path / "t.wav", music(2000, 8000, 1), 8000, "PCM_16")
    result = run("compress", src, "--target-psnr", "30")
    assert result.exit_code == 1 and "are for images in this version" in result.stderr


def test_keep_going_decodes_around_a_damaged_block(tmp_path: Path) -> None:
    frames = 3 * BLOCK + 100
    src = write(tmp_path / "k.wav", music(frames, 44100, 2, seed=9), 44100, "PCM_16")
    assert run("compress", src).exit_code == 0
    from walloc_cli.format.container import loads

    data = bytearray((tmp_path / "k.wlc").read_bytes())
    _, chunks = loads(bytes(data))
    second = bytes(data).index(chunks[1].data)  # damage the second block's payload
    data[second + 100] ^= 0xFF
    (tmp_path / "bad.wlc").write_bytes(bytes(data))
    result = run("decompress", "-F", tmp_path / "bad.wlc", "-o", tmp_path / "out.wav")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [f"walloc: {tmp_path / 'bad.wlc'}: chunk 2 (AUDB) is corrupt: CRC mismatch: frames {BLOCK}..{2 * BLOCK - 1} replaced by silence"]
    out, _ = sf.read(tmp_path / "out.wav", always_2d=True)
    good, _ = sf.read(src, always_2d=True)
    assert out.shape == good.shape
    assert not out[BLOCK : 2 * BLOCK].any()  # the damaged block is silence
    clean = run("decompress", tmp_path / "k.wlc", "-o", tmp_path / "clean.wav")
    assert clean.exit_code == 0
    reference, _ = sf.read(tmp_path / "clean.wav", always_2d=True)
    keep = np.r_[0:BLOCK, 2 * BLOCK : frames]
    assert np.array_equal(out[keep], reference[keep])  # every other block decodes as usual
