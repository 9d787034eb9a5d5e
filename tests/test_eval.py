"""``walloc eval``: loading, the codec registry, the measurement rows, the summaries and the CLI.

Small real inputs (a crop of the sample photo), a short synthetic chord for audio and a smooth
small volume keep this file fast.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from typer.testing import CliRunner

from walloc_cli.cli.app import app
from walloc_cli.errors import InputError
from walloc_cli.eval.codecs import CODECS, Codec, OpusAudio, Sample, register
from walloc_cli.api.batch import expand_inputs
from walloc_cli.eval.run import (
    bd_table,
    expand_one_level,
    load_sample,
    parse_qualities,
    run_eval,
    summary,
)

PHOTO = Path(__file__).resolve().parent.parent / "samples" / "photo.png"
runner = CliRunner()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("eval")
    with Image.open(PHOTO) as image:
        crop = image.convert("RGB").crop((0, 0, 96, 72))
        crop.save(root / "photo.png")
        crop.convert("L").save(root / "gray.png")
    t = np.arange(16000) / 16000.0
    chord = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 330 * t) * np.exp(-2 * t)
    sf.write(root / "chord.wav", chord, 16000, subtype="PCM_16")
    z, y, x = np.mgrid[0:8, 0:64, 0:64]
    volume = 800 * np.exp(-((z - 4) ** 2 + (y - 30) ** 2 + (x - 34) ** 2) / 300.0) - 200 + 40 * np.sin(x / 3.0) * np.cos(y / 5.0)
    np.save(root / "blob.npy", volume.astype(np.int16))
    return root


def test_load_sample_by_content(folder: Path) -> None:
    image = load_sample(folder / "photo.png")
    assert (image.modality, image.data.shape, image.data.dtype, image.peak, image.units) == ("image", (72, 96, 3), np.uint8, 255.0, 72 * 96)
    assert load_sample(folder / "gray.png").data.shape == (72, 96)
    audio = load_sample(folder / "chord.wav")
    assert (audio.modality, audio.data.shape, audio.samplerate, audio.units) == ("audio", (16000, 1), 16000, 1.0)
    volume = load_sample(folder / "blob.npy")
    assert volume.modality == "volume" and volume.data.dtype == np.int16
    assert volume.peak == float(volume.data.max()) - float(volume.data.min())
    assert volume.rate(volume.data.size // 8) == 1.0  # bits per voxel


def test_bad_inputs_are_one_clear_message(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="not an image, audio or volume"):
        load_sample(tmp_path / "notes.txt")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(InputError, match="not an image, audio or volume"):
        load_sample(tmp_path / "objects.npy")  # never unpickled: not sniffed as a volume
    np.save(tmp_path / "flat.npy", np.zeros((4, 4)))
    assert load_sample(tmp_path / "flat.npy").data.shape == (1, 4, 4)  # a 2-D array is one slice
    with pytest.raises(InputError, match="no such file"):
        load_sample(tmp_path / "absent.png")


def test_parse_qualities() -> None:
    assert parse_qualities(["10,30", "webp=50,75"]) == {"*": [10.0, 30.0], "webp": [50.0, 75.0]}
    with pytest.raises(InputError, match="expected numbers separated by commas"):
        parse_qualities(["webp=high"])


def test_eval_takes_one_level_of_a_folder_by_the_compress_rule(tmp_path: Path) -> None:
    """``walloc eval FOLDER`` takes that folder's own media files (its help: "folders of them
    (one level)"); ``compress -r`` walks subfolders too. Which file counts is one rule for both
    (content, not name); what is left out is a note for eval, never a failure."""
    with Image.open(PHOTO) as image:
        crop = image.convert("RGB").crop((0, 0, 32, 24))
    crop.save(tmp_path / "b.png")
    crop.save(tmp_path / "a.jpeg.txt", format="JPEG")  # an image whatever its name says
    (tmp_path / "notes.txt").write_text("not media")
    crop.save(tmp_path / ".hidden.png")
    (tmp_path / "sub").mkdir()
    crop.save(tmp_path / "sub" / "deeper.png")
    (tmp_path / "empty").mkdir()
    files, notes = expand_one_level([tmp_path, tmp_path / "empty", tmp_path / "sub" / "deeper.png"])
    assert files == [tmp_path / "a.jpeg.txt", tmp_path / "b.png", tmp_path / "sub" / "deeper.png"]
    assert notes == [f"{tmp_path / 'notes.txt'}: skipped (not an image, audio or volume file)", f"{tmp_path / 'empty'}: folder holds no files"]
    walked = expand_inputs([tmp_path], "compress", recursive=True)
    assert {item.src for item in walked.items} == {tmp_path / "a.jpeg.txt", tmp_path / "b.png", tmp_path / "sub" / "deeper.png"}
    assert walked.skipped == [tmp_path / "notes.txt"]


def test_image_rows_are_measured(folder: Path) -> None:
    result = run_eval([folder / "photo.png"], ["walloc", "webp", "jpeg"], {"walloc": [0, 50, 100], "webp": [10, 50, 90], "jpeg": [10, 50, 90]})
    assert not result.failed and len(result.rows) == 9
    walloc = [r for r in result.rows if r.codec == "walloc"]
    # quality buys rate and PSNR; SSIM follows PSNR; PSNR is over the same pixels the row names
    assert [r.rate for r in walloc] == sorted(r.rate for r in walloc)
    assert walloc[0].psnr < walloc[1].psnr < walloc[2].psnr and walloc[2].psnr > 35
    assert all(0 < r.ssim <= 1 for r in result.rows) and walloc[0].ssim < walloc[2].ssim
    assert all(r.rate == pytest.approx(r.bytes * 8 / (72 * 96)) and r.rate_unit == "bpp" and r.peak == 255 for r in result.rows)
    # WebP's own decode agrees with the row: rate and PSNR recomputed independently
    from io import BytesIO

    from PIL import Image as PILImage

    with PILImage.open(folder / "photo.png") as source:
        pixels = np.asarray(source.convert("RGB"))
    buffer = BytesIO()
    PILImage.fromarray(pixels).save(buffer, format="WEBP", quality=50, method=6)
    decoded = np.asarray(PILImage.open(BytesIO(buffer.getvalue())).convert("RGB")).astype(float)
    row = next(r for r in result.rows if r.codec == "webp" and r.quality == 50)
    assert row.bytes == len(buffer.getvalue())
    assert row.psnr == pytest.approx(10 * math.log10(255**2 / np.mean((decoded - pixels) ** 2)), abs=1e-9)


def test_audio_rows_flac_is_lossless_and_missing_tool_is_a_note(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(OpusAudio, "missing", classmethod(lambda cls: "opusenc not found (Debian package opus-tools)"))
    result = run_eval([folder / "chord.wav"], ["walloc", "opus", "flac"], {"walloc": [30, 90]})
    assert any("opus (audio) skipped: opusenc not found" in n for n in result.notes)
    flac = [r for r in result.rows if r.codec == "flac"]
    assert len(flac) == 1 and flac[0].psnr == math.inf and flac[0].snr == math.inf
    walloc = [r for r in result.rows if r.codec == "walloc"]
    assert len(walloc) == 2 and walloc[0].rate < walloc[1].rate and walloc[0].snr < walloc[1].snr
    # SNR and PSNR describe the same error: their gap is the signal's power in dB (peak 1.0)
    power = float(np.mean(load_sample(folder / "chord.wav").data ** 2))
    assert walloc[1].psnr - walloc[1].snr == pytest.approx(-10 * math.log10(power), abs=1e-6)
    assert all(r.rate_unit == "kbit/s" for r in result.rows)


def test_volume_baselines_and_the_extension_point(folder: Path) -> None:
    class RawVolume(Codec):
        """A stand-in volume codec (raw bytes, lossless): proves one class plugs in."""

        name, modality = "walloc", "volume"
        qualities: ClassVar[tuple[float, ...]] = (1,)
        quality_scale = "none"

        def encode(self, sample: Sample, quality: float) -> bytes:
            return sample.data.tobytes()

        def decode(self, data: bytes, sample: Sample) -> np.ndarray:
            return np.frombuffer(data, sample.data.dtype).reshape(sample.data.shape)

    result = run_eval([folder / "blob.npy"], ["jpeg2000", "sperr"], {"jpeg2000": [60, 70, 80, 90], "sperr": [0.25, 0.5, 1, 2]})
    for codec in ("jpeg2000", "sperr"):
        rows = [r for r in result.rows if r.codec == codec]
        assert len(rows) == 4 and all(a.psnr < b.psnr for a, b in zip(rows, rows[1:]))
    sperr = [r for r in result.rows if r.codec == "sperr"]
    assert all(0 <= r.rate - r.quality < 0.1 for r in sperr)  # SPERR hits its bit budget (header aside)
    assert all(r.rate_unit == "bits/voxel" and r.peak == load_sample(folder / "blob.npy").peak for r in result.rows)
    shipped = CODECS[("volume", "walloc")]
    register(RawVolume)
    try:
        plugged = run_eval([folder / "blob.npy"], ["walloc"])
    finally:
        CODECS[("volume", "walloc")] = shipped
    assert [(r.codec, r.rate, r.psnr) for r in plugged.rows] == [("walloc", 16.0, math.inf)]  # int16, raw


def test_bd_table_and_summary(folder: Path) -> None:
    result = run_eval([folder / "photo.png", folder / "gray.png"], ["webp", "jpeg"])
    table = bd_table(result.rows, "webp", "image")
    value, valid, total = table["jpeg"]
    assert total == 2 and valid >= 1 and value > 0  # JPEG needs more bits than WebP here
    entries = {e["codec"]: e for e in summary(result.rows, "image")}
    assert entries["webp"]["files"] == 2 and entries["webp"]["rate_min"] < entries["webp"]["rate_max"]


def test_cli_eval_writes_files_and_refuses_overwrite(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (folder / "junk.txt").write_text("not media")
    try:
        args = ["eval", str(folder / "photo.png"), str(folder / "junk.txt"), "--codecs", "walloc,webp", "--quality", "walloc=10,50,90", "--quality", "webp=20,50,80", "--out", str(out)]
        result = runner.invoke(app, args)
    finally:
        (folder / "junk.txt").unlink()
    assert result.exit_code == 1  # the unreadable input fails alone
    assert f"walloc: {folder / 'junk.txt'}: not an image, audio or volume file walloc reads" in result.output
    assert "BD-rate vs webp" in result.output and "anchor" in result.output
    with open(out / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6 and {r["codec"] for r in rows} == {"walloc", "webp"}
    document = json.loads((out / "results.json").read_text())
    assert document["bd_rate"]["image"]["anchor"] == "webp" and len(document["rows"]) == 6
    if (out / "rd_image.png").exists():  # matplotlib installed
        assert (out / "rd_image.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in (out / "rd_image.svg").read_bytes()[:2000]
    before = (out / "results.csv").read_bytes()
    again = runner.invoke(app, ["eval", str(folder / "photo.png"), "--codecs", "webp", "--out", str(out)])
    assert again.exit_code == 1 and "already exists (use -f to overwrite)" in again.output
    assert (out / "results.csv").read_bytes() == before


def test_cli_eval_unknown_codec(folder: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["eval", str(folder / "photo.png"), "--codecs", "webp,h266", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "walloc: unknown codec 'h266' (choose from" in result.output
    assert "Traceback" not in result.output


def test_a_codec_failing_on_a_file_is_a_note(folder: Path) -> None:
    class Broken(Codec):
        name, modality = "broken", "image"
        qualities: ClassVar[tuple[float, ...]] = (1, 2)
        quality_scale = "none"

        def encode(self, sample: Sample, quality: float) -> bytes:
            raise RuntimeError("encoder crashed")

        def decode(self, data: bytes, sample: Sample) -> np.ndarray:
            raise AssertionError("never reached")

    register(Broken)
    try:
        result = run_eval([folder / "photo.png"], ["broken", "jpeg"], {"jpeg": [50]})
    finally:
        del CODECS[("image", "broken")]
    assert [r.codec for r in result.rows] == ["jpeg"]
    assert f"{folder / 'photo.png'}: broken at quality 1 failed: encoder crashed" in result.notes


def test_plots_are_skipped_with_a_note_without_matplotlib(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from walloc_cli.eval.run import plot_curves

    rows = run_eval([folder / "photo.png"], ["jpeg"], {"jpeg": [30, 60]}).rows
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    assert plot_curves(rows, "image", tmp_path / "rd") == "matplotlib is not installed: no plots (pip install 'walloc[eval]')"
    assert not list(tmp_path.iterdir())


def test_eval_works_without_the_optional_packages(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default install (no ``walloc[eval]``): SSIM, BD-rate and plots are one note each,
    every point is still measured and the CSV/JSON are written."""
    import sys

    for module in ("pytorch_msssim", "bjontegaard", "matplotlib"):
        monkeypatch.setitem(sys.modules, module, None)  # `import module` raises ImportError
    out = tmp_path / "out"
    args = ["eval", str(folder / "photo.png"), str(folder / "gray.png"), "--codecs", "walloc,webp,jpeg", "--quality", "20,60", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "nothing was measured" not in result.output and "failed" not in result.output
    for package in ("pytorch-msssim", "bjontegaard", "matplotlib"):
        assert result.output.count(f"{package}") == 1, f"{package} should be named in one note"
    assert "SSIM" not in result.output.replace("SSIM not measured", "")  # no empty SSIM column
    assert "BD-rate" not in result.output.replace("BD-rate not computed", "")
    with open(out / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 3 * 2 and {r["codec"] for r in rows} == {"walloc", "webp", "jpeg"}
    assert all(r["ssim"] == "" and float(r["psnr"]) > 20 for r in rows)
    document = json.loads((out / "results.json").read_text())
    assert len(document["rows"]) == 12 and document["bd_rate"]["image"]["codecs"] == {}
    assert any("bjontegaard" in note for note in document["notes"])
    assert sorted(p.name for p in out.iterdir()) == ["results.csv", "results.json"]


def test_missing_ssim_package_keeps_bd_rate(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pytorch_msssim", None)
    result = run_eval([folder / "photo.png", folder / "gray.png"], ["webp", "jpeg"])
    assert not [n for n in result.notes if "failed" in n]
    assert [n for n in result.notes if "pytorch-msssim" in n] == ["SSIM not measured: the pytorch-msssim package is not installed (pip install 'walloc[eval]')"]
    assert len(result.rows) == 2 * (13 + 11) and all(r.ssim is None for r in result.rows)
    value, valid, _ = bd_table(result.rows, "webp", "image")["jpeg"]
    assert valid >= 1 and value > 0
