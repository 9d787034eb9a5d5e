"""``walloc bench``: inputs built from real data, the per-process measurement, the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from typer.testing import CliRunner

from walloc_cli.cli.app import app
from walloc_cli.errors import InputError
from walloc_cli.eval.speed import _mirror_tile, make_audio, make_image, run_bench, worker

PHOTO = Path(__file__).resolve().parent.parent / "samples" / "photo.png"
runner = CliRunner()


def test_mirror_tile_has_no_seams_and_crops() -> None:
    tile = np.arange(6).reshape(2, 3)
    assert _mirror_tile(tile, (5, 7)).tolist() == [
        [0, 1, 2, 2, 1, 0, 0],
        [3, 4, 5, 5, 4, 3, 3],
        [3, 4, 5, 5, 4, 3, 3],
        [0, 1, 2, 2, 1, 0, 0],
        [0, 1, 2, 2, 1, 0, 0],
    ]
    assert _mirror_tile(tile, (1, 2)).tolist() == [[0, 1]]
    assert _mirror_tile(np.zeros((3, 2, 3)), (40, 4)).shape == (40, 4, 3)  # many mirror passes


def test_make_image_from_a_photo(tmp_path: Path) -> None:
    image = make_image(PHOTO, 0.5)
    assert image.dtype == np.uint8 and image.ndim == 3
    assert abs(image.shape[0] * image.shape[1] - 0.5e6) < 0.5e6 * 0.01 and image.shape[1] / image.shape[0] == pytest.approx(4 / 3, rel=0.01)
    with Image.open(PHOTO) as source:
        original = np.asarray(source.convert("RGB"))
    assert np.array_equal(image[: original.shape[0], : original.shape[1]], original[: image.shape[0], : image.shape[1]])


def test_make_audio_concatenates_to_the_frame(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    rng = np.random.default_rng(1)
    first = (rng.normal(0, 3000, (7000, 2))).astype(np.int16)
    sf.write(source / "a.wav", first, 8000, subtype="PCM_16")
    sf.write(source / "b.wav", rng.normal(0, 3000, (3000, 1)).astype(np.int16), 8000, subtype="PCM_16")  # other layout: left out
    out = make_audio(source, 2.0, tmp_path / "long.wav")
    data, rate = sf.read(out, dtype="int16", always_2d=True)
    assert rate == 8000 and data.shape == (16000, 2)
    assert np.array_equal(data[:7000], first) and np.array_equal(data[7000:14000], first)


def test_core_stages_time_in_process(tmp_path: Path) -> None:
    """The tensor-stage path (``--device cuda``) exercised on the CPU device, in this process."""
    with Image.open(PHOTO) as source:
        np.save(tmp_path / "in.npy", np.asarray(source.convert("RGB"))[:128, :160])
    for operation in ("encode core", "decode core"):
        spec = {"modality": "image", "codec": "walloc", "operation": operation, "input": str(tmp_path / "in.npy"), "coded": str(tmp_path / "c.bin"), "quality": 75.0, "threads": 1, "device": "cpu"}
        got = worker(spec)
        assert got["seconds"] > 0 and got["peak_mib"] >= got["before_mib"] > 0


def test_audio_calls_file_to_file_in_process(tmp_path: Path) -> None:
    """The audio calls (walloc streamed, FLAC in blocks) run by the worker, here in-process."""
    t = np.arange(16000) / 16000.0
    sf.write(tmp_path / "in.wav", np.stack([0.3 * np.sin(2 * np.pi * 220 * t), 0.2 * np.sin(2 * np.pi * 331 * t)], 1), 16000, subtype="PCM_16")
    for codec, quality in (("walloc", 75.0), ("flac", 5.0)):
        coded = tmp_path / f"{codec}.bin"
        for operation in ("encode", "decode"):
            spec = {"modality": "audio", "codec": codec, "operation": operation, "input": str(tmp_path / "in.wav"), "coded": str(coded), "quality": quality, "threads": 1, "device": "cpu"}
            assert worker(spec)["coded_bytes"] == coded.stat().st_size > 100
        decoded, rate = sf.read(coded.with_suffix(".decoded.wav"), always_2d=True)
        assert rate == 16000 and decoded.shape == (16000, 2)
    flac, _ = sf.read(tmp_path / "flac.decoded.wav", dtype="int16")
    assert np.array_equal(flac, sf.read(tmp_path / "in.wav", dtype="int16")[0])  # lossless
    if shutil.which("opusenc") and shutil.which("opusdec"):
        spec = {"modality": "audio", "codec": "opus", "operation": "encode", "input": str(tmp_path / "in.wav"), "coded": str(tmp_path / "o.opus"), "quality": 32.0, "threads": 1, "device": "cpu"}
        got = worker(spec)
        assert got["coded_bytes"] > 1000 and got["peak_mib"] is None  # a forked tool: not measured


def test_cli_bench_errors_are_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", "--modality", "video", "--source", str(PHOTO)])
    assert result.exit_code == 1 and "walloc: unknown modality 'video' (choose image, audio or volume)" in result.output
    result = runner.invoke(app, ["bench", "--sizes", "0,1", "--source", str(PHOTO)])
    assert result.exit_code == 1 and "walloc: size 0 MP is outside 0..64" in result.output
    existing = tmp_path / "bench.json"
    existing.write_text("keep")
    result = runner.invoke(app, ["bench", "--json", str(existing), "--source", str(PHOTO)])
    assert result.exit_code == 1 and "already exists" in result.output and existing.read_text() == "keep"
    import torch

    if not torch.cuda.is_available():
        result = runner.invoke(app, ["bench", "--device", "cuda", "--source", str(PHOTO)])
        assert result.exit_code == 1 and "no CUDA device is available" in result.output


def test_cli_bench_table_and_json(tmp_path: Path) -> None:
    """One fresh process per call: walloc and WebP, encode then decode, rows in the table and JSON."""
    out = tmp_path / "bench.json"
    result = runner.invoke(app, ["bench", "--sizes", "0.02", "--threads", "1", "--runs", "0", "--source", str(PHOTO), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "MP/s" in result.output and "webp" in result.output
    rows = json.loads(out.read_text())
    assert [(r["codec"], r["operation"]) for r in rows] == [("walloc", "encode"), ("walloc", "decode"), ("webp", "encode"), ("webp", "decode")]
    for row in rows:
        assert row["size_unit"] == "MP" and row["threads"] == 1
        assert row["throughput"] == pytest.approx(row["size"] / row["seconds"], rel=0.05)
        assert row["peak_mib"] > 50 and row["extra_mib"] >= 0 and row["coded_bytes"] > 100
    assert rows[0]["coded_bytes"] == rows[1]["coded_bytes"]  # the decode read what the encode wrote


def test_cli_bench_whole_process_rows_beside_cwebp(tmp_path: Path) -> None:
    """``--runs 1``: walloc compress/decompress as commands (``python -m walloc_cli``), timed whole,
    beside cwebp/dwebp when installed (else a note), and the ratio table."""
    out = tmp_path / "bench.json"
    result = runner.invoke(app, ["bench", "--sizes", "0.01", "--threads", "1", "--runs", "1", "--source", str(PHOTO), "--json", str(out)])
    assert result.exit_code == 0, result.output
    rows = [r for r in json.loads(out.read_text()) if r["operation"].endswith("(process)")]
    tools = shutil.which("cwebp") is not None and shutil.which("dwebp") is not None
    expected = [("walloc", "compress (process)"), ("walloc", "decompress (process)")] + ([("webp", "compress (process)"), ("webp", "decompress (process)")] if tools else [])
    assert [(r["codec"], r["operation"]) for r in rows] == expected
    for row in rows:
        assert row["runs"] == 1 and row["seconds"] > 0 and row["peak_mib"] is None and row["coded_bytes"] > 100
        assert row["throughput"] == pytest.approx(row["size"] / row["seconds"], rel=0.05)
    assert rows[0]["seconds"] > 0.05  # an interpreter starting, at the least
    if tools:
        assert "whole process, median of 1 run" in result.output and "cwebp" in result.output and "dwebp" in result.output
    else:
        assert "webp whole-process rows skipped" in result.output


def test_process_ratios_pair_walloc_with_the_tool() -> None:
    from walloc_cli.eval.speed import SpeedRow, process_ratios

    def row(codec: str, operation: str, seconds: float) -> SpeedRow:
        return SpeedRow("image", codec, operation, 0.25, "MP", seconds, 0.25 / seconds, "MP/s", None, None, None, 1000, "cpu", 1, 5)

    rows = [row("walloc", "encode", 0.1), row("walloc", "compress (process)", 0.6), row("webp", "compress (process)", 0.03), row("walloc", "decompress (process)", 0.5)]
    assert process_ratios(rows) == [{"size": 0.25, "operation": "compress (process)", "walloc_s": 0.6, "codec": "webp", "codec_s": 0.03, "ratio": pytest.approx(20.0)}]


def test_no_source_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="no audio data to build the bench inputs from: give --source"):
        run_bench("audio")
