"""One file, one kind: walloc_cli/files/sniff.py decides image / audio / volume / .wlc by content, and
compress (one file and ``-r`` batches), eval's file listing, info and the library API all follow
it. A stack of gray TIFF pages is slices (the CT/MRI model) unless the file names its axis
bands (ImageJ/OME channels, samples per pixel).
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import tifffile
from PIL import Image
from typer.testing import CliRunner

import walloc_cli
from walloc_cli.api.files import compress_file, describe
from walloc_cli.cli.app import app
from walloc_cli.format.container import WlcReader
from walloc_cli.errors import FormatError, InputError
from walloc_cli.eval.run import expand_one_level as eval_inputs
from walloc_cli.eval.run import load_sample
from walloc_cli.files.sniff import Kind, detect


def mri_stack(slices: int = 62) -> np.ndarray:
    """A smooth gray ``(slices, 24, 20)`` uint8 stack, non-negative (so not guessed as CT by sign)."""
    z, y, x = np.mgrid[0:slices, 0:24, 0:20]
    return np.rint(120 + 100 * np.sin(z / 9.0 + y / 5.0) * np.cos(x / 6.0)).astype(np.uint8)


def header_of(data: bytes | Path) -> dict:
    raw = data.read_bytes() if isinstance(data, Path) else data
    return WlcReader(io.BytesIO(raw)).header


def test_gray_multipage_tiff_without_metadata_is_coded_as_slices_with_the_ct_mri_model(tmp_path: Path) -> None:
    # 62 slices used to be taken for 62 bands (an axis of at most 64 at the first place): the
    # multispectral model, 27.8 dB where the CT/MRI model gives 32.9 on a real MRI
    for name, options in (("plain.tif", {"metadata": None}), ("tifffile.tif", {})):
        tifffile.imwrite(tmp_path / name, mri_stack(), photometric="minisblack", **options)
        report = compress_file(tmp_path / name, tmp_path / f"{name}.wlc", measure=False)
        assert report.model.startswith("ct-3d"), (name, report.model)
        volume = header_of(tmp_path / f"{name}.wlc")["volume"]
        assert (volume["coding_axes"], volume["shape"]) == ("ZYX", [62, 24, 20])


@pytest.mark.parametrize("writer", ["imagej", "ome"])
def test_channels_named_by_imagej_or_ome_pick_the_multispectral_model(tmp_path: Path, writer: str) -> None:
    path = tmp_path / "cube.tif"
    tifffile.imwrite(path, mri_stack(), **{writer: True}, metadata={"axes": "CYX"})
    report = compress_file(path, tmp_path / "cube.wlc", measure=False)
    assert report.model.startswith("ms-3d")
    assert header_of(tmp_path / "cube.wlc")["volume"]["coding_axes"] == "CYX"
    # and slices named as slices stay slices
    tifffile.imwrite(path, mri_stack(), **{writer: True}, metadata={"axes": "ZYX"})
    assert compress_file(path, tmp_path / "z.wlc", measure=False).model.startswith("ct-3d")


def _zoo(folder: Path) -> dict[str, Kind]:
    """One file of every kind, named so that no extension tells the truth."""
    folder.mkdir()
    kinds: dict[str, Kind] = {}
    tifffile.imwrite(folder / "mri.png", mri_stack(), photometric="minisblack", metadata=None)
    kinds["mri.png"] = Kind.VOLUME  # a multi-page TIFF, whatever its name
    tifffile.imwrite(folder / "gray.npy", mri_stack(1)[0], photometric="minisblack")
    kinds["gray.npy"] = Kind.IMAGE  # one gray uint8 page: an image
    rgb = np.stack([mri_stack(1)[0]] * 3, -1)
    Image.fromarray(rgb).save(folder / "photo.tif", format="PNG")
    kinds["photo.tif"] = Kind.IMAGE
    with open(folder / "ct.bin", "wb") as handle:  # np.save would append ".npy" to a path
        np.save(handle, mri_stack(4).astype(np.int16) - 100)
    kinds["ct.bin"] = Kind.VOLUME
    nifti = bytearray(352)
    nifti[0:4] = (348).to_bytes(4, "little")
    nifti[40:56] = np.array([3, 8, 8, 4, 1, 1, 1, 1], "<i2").tobytes()
    nifti[70:74] = np.array([2, 8], "<i2").tobytes()  # uint8
    nifti[76:108] = np.array([1, 1, 1, 1, 0, 0, 0, 0], "<f4").tobytes()
    nifti[108:112] = np.array([352], "<f4").tobytes()
    nifti[344:348] = b"n+1\x00"
    (folder / "brain.txt").write_bytes(gzip.compress(bytes(nifti) + bytes(range(256))))
    kinds["brain.txt"] = Kind.VOLUME  # gzipped NIfTI
    t = np.arange(2000) / 8000
    sf.write(folder / "tone.jpg", 0.3 * np.sin(2 * np.pi * 440 * t), 8000, format="WAV", subtype="PCM_16")
    kinds["tone.jpg"] = Kind.AUDIO
    (folder / "notes.wav").write_text("not a signal\n")
    kinds["notes.wav"] = Kind.UNKNOWN
    return kinds


def test_one_file_is_one_kind_in_compress_batch_eval_info_and_the_library(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    kinds = _zoo(folder)
    assert {name: detect(folder / name) for name in kinds} == kinds
    modality = {Kind.IMAGE: "image", Kind.AUDIO: "audio", Kind.VOLUME: "volume"}
    codable = {name: modality[kind] for name, kind in kinds.items() if kind in modality}
    # compress -r: the same files are taken and coded as the same modality, the rest skipped
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["compress", "-r", str(folder), "-O", str(out), "--no-psnr", "--json"])
    assert result.exit_code == 0, result.output
    coded = {Path(p).name: header_of(p)["modality"] for p in out.iterdir()}
    assert coded == {Path(name).stem + ".wlc": m for name, m in codable.items()}
    assert f"{folder / 'notes.wav'}: skipped" in result.stderr
    assert header_of(out / "mri.wlc")["model"]["name"].startswith("ct-3d")
    # the library API: the same modality from a path and from a stream
    for name, expected in codable.items():
        assert header_of(walloc_cli.compress(folder / name))["modality"] == expected, name
    with open(folder / "mri.png", "rb") as stream:
        assert header_of(walloc_cli.compress(stream))["model"]["name"].startswith("ct-3d")
    # eval's listing takes the same files, as the same modality
    files, notes = eval_inputs([folder])
    assert {f.name: load_sample(f).modality for f in files} == codable
    assert notes == [f"{folder / 'notes.wav'}: skipped (not an image, audio or volume file)"]
    # info names what a non-.wlc input is, as compress would code it
    for name, expected in codable.items():
        with pytest.raises(FormatError, match=f"not a .wlc file: by its content it is (an |a )?{expected}"):
            describe(folder / name)
    result = CliRunner().invoke(app, ["info", str(folder / "mri.png"), str(out / "mri.wlc"), "--json"])
    assert result.exit_code == 1
    assert f"walloc: {folder / 'mri.png'}: not a .wlc file: by its content it is a volume" in result.stderr
    assert json.loads(result.stdout)["header"]["volume"]["coding_axes"] == "ZYX"


def test_detect_never_raises(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "cut.tif").write_bytes(b"II*\x00\x08\x00\x00\x00\xff\xff")
    for path in (tmp_path / "missing", tmp_path, tmp_path / "empty"):
        assert detect(path) is Kind.UNKNOWN
    assert detect(tmp_path / "cut.tif") is Kind.IMAGE  # TIFF magic, no volume: the image reader explains
    (tmp_path / "x.wlc").write_bytes(walloc_cli.compress(np.zeros((8, 8, 3), np.uint8)))
    assert detect(tmp_path / "x.wlc") is Kind.WLC


def test_a_multipage_tiff_is_a_volume_and_a_4d_one_is_refused_as_one(tmp_path: Path) -> None:
    """Pages of RGB are a 4-D stack: the volume reader names the shape (the image reader said
    "looks like a volume", and the volume reader was never asked)."""
    tifffile.imwrite(tmp_path / "rgb_pages.tif", np.zeros((4, 8, 8, 3), np.uint8), photometric="rgb")
    assert detect(tmp_path / "rgb_pages.tif") is Kind.VOLUME
    result = CliRunner().invoke(app, ["compress", str(tmp_path / "rgb_pages.tif")])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"walloc: {tmp_path / 'rgb_pages.tif'}: 4-D data (shape (4, 8, 8, 3), axes ?YXC) is not a volume: walloc codes 3-D volumes (slices or bands, rows, columns)"


def test_compressing_a_wlc_says_it_is_one(tmp_path: Path) -> None:
    (tmp_path / "x.png").write_bytes(walloc_cli.compress(np.zeros((8, 8, 3), np.uint8)))  # named as a PNG
    result = CliRunner().invoke(app, ["compress", str(tmp_path / "x.png"), "-o", str(tmp_path / "y.wlc")])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"walloc: {tmp_path / 'x.png'}: already a .wlc file (walloc decompress decodes it)"
    with pytest.raises(InputError, match="already a .wlc file"):
        walloc_cli.compress(tmp_path / "x.png")
