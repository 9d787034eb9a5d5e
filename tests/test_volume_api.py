"""Volumes end to end through the shipped 3-D models: every reader, dtype, axis order and odd size."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
import tifffile

from walloc_cli.api.files import compress_file, decompress_file, describe
from walloc_cli.format.container import WlcReader, WlcWriter
from walloc_cli.errors import FormatError, InputError
from walloc_cli.files.volumes import read_volume


REFERENCE = Path(__file__).resolve().parent.parent / "formats" / "reference" / "volume"


def real_ct(dtype: str = "int16") -> np.ndarray:
    """A 20 x 136 x 40 crop of the held-out head CT (int16 HU, shipped as a reference input),
    or the same values mapped onto another dtype's range."""
    ct = np.load(REFERENCE / "ct-int16-20x136x40.src.npy")
    if dtype == "int16":
        return ct
    x = (ct.astype(np.float64) + 1024) / 4096
    return x.astype(np.float32) if dtype == "float32" else np.round(x * np.iinfo(dtype).max).astype(dtype)


def real_cube() -> np.ndarray:
    """An 8 x 48 x 56 uint16 crop of the held-out WorldView-2 scene, bands first."""
    return np.load(REFERENCE / "ms-uint16-8x48x56.src.npy")


def psnr_range(a: np.ndarray, b: np.ndarray) -> float:
    peak = float(a.max()) - float(a.min())
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)


def round_trip(tmp_path: Path, name: str, write, read, quality: float = 75, axes: str | None = None):
    src = tmp_path / name
    write(src)
    report = compress_file(src, tmp_path / "v.wlc", quality=quality, axes=axes)
    out = tmp_path / ("out" + "".join(src.suffixes))
    decompress_file(tmp_path / "v.wlc", out)
    return report, read(src), read(out)


@pytest.mark.parametrize("dtype", ["int16", "uint8", "uint16", "float32"])
def test_npy_round_trip_keeps_dtype_and_shape(tmp_path: Path, dtype: str) -> None:
    volume = real_ct(dtype)
    # 20 slices in a bare .npy would read as 20 bands (the documented rule): say ZYX, as --axes does
    report, original, decoded = round_trip(tmp_path, "ct.npy", lambda p: np.save(p, volume), np.load, axes="ZYX")
    assert report.model.startswith("ct-3d")
    assert decoded.dtype == original.dtype and decoded.shape == original.shape
    assert psnr_range(original, decoded) > 27  # 28.9 dB measured at q 75 on this crop
    assert report.psnr == pytest.approx(psnr_range(original, decoded), abs=0.01)  # the report tells the truth
    assert report.bpv == pytest.approx(8 * (tmp_path / "v.wlc").stat().st_size / volume.size)


def test_higher_quality_costs_more_bits_and_gains_psnr(tmp_path: Path) -> None:
    np.save(tmp_path / "ct.npy", real_ct())
    low = compress_file(tmp_path / "ct.npy", tmp_path / "low.wlc", quality=10)
    high = compress_file(tmp_path / "ct.npy", tmp_path / "high.wlc", quality=90)
    assert low.n_bytes < high.n_bytes and low.psnr < high.psnr


def test_multispectral_tiff_bands_last_comes_back_bands_last(tmp_path: Path) -> None:
    cube = np.ascontiguousarray(np.moveaxis(real_cube(), 0, -1))  # (Y, X, C): bands last
    report, original, decoded = round_trip(tmp_path, "cube.tif", lambda p: tifffile.imwrite(p, cube, photometric="minisblack", planarconfig="contig"), tifffile.imread, axes="YXC")
    assert decoded.shape == (48, 56, 8) and decoded.dtype == np.uint16
    assert report.model.startswith("ms-3d") and psnr_range(original, decoded) > 27  # 29.2 dB measured


@pytest.mark.parametrize("shape", [(1, 30, 30), (3, 17, 9), (1, 1, 37), (5, 1, 1)])
def test_odd_sizes(tmp_path: Path, shape: tuple[int, int, int]) -> None:
    volume = np.ascontiguousarray(real_ct()[: shape[0], : shape[1], : shape[2]])
    report, original, decoded = round_trip(tmp_path, "odd.npy", lambda p: np.save(p, volume), np.load, axes="ZYX")
    assert decoded.shape == shape and decoded.dtype == np.int16
    assert decoded.min() >= volume.min() and decoded.max() <= volume.max()  # clipped to the original range


def test_nifti_keeps_its_affine(tmp_path: Path) -> None:
    nib = pytest.importorskip("nibabel")
    volume = real_ct()[:, :28, :20].copy()
    affine = np.diag([0.9, 0.9, 1.5, 1.0])
    affine[:3, 3] = [-10, 20, 5]
    _, _, _ = round_trip(tmp_path, "head.nii.gz", lambda p: nib.save(nib.Nifti1Image(volume, affine), p), lambda p: np.asarray(nib.load(p).dataobj))
    assert np.allclose(nib.load(tmp_path / "out.nii.gz").affine, affine)


def test_a_volume_wlc_is_described_and_truncation_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "ct.npy", real_ct()[:12, :20, :20].copy())
    compress_file(tmp_path / "ct.npy", tmp_path / "v.wlc")
    info = describe(tmp_path / "v.wlc")
    assert info["header"]["modality"] == "volume" and info["bpv"] > 0 and info["reduction"] in (2, 8)
    data = (tmp_path / "v.wlc").read_bytes()
    (tmp_path / "cut.wlc").write_bytes(data[: len(data) - 40])
    with pytest.raises(FormatError, match="truncated|ends inside"):
        decompress_file(tmp_path / "cut.wlc", tmp_path / "cut.npy")
    assert not (tmp_path / "cut.npy").exists()


def test_nan_and_targets_are_refused(tmp_path: Path) -> None:
    volume = real_ct("float32")[:8, :16, :16].copy()
    volume[3, 4, 5] = np.nan
    np.save(tmp_path / "nan.npy", volume)
    with pytest.raises(InputError, match="NaN|finite"):
        compress_file(tmp_path / "nan.npy", tmp_path / "nan.wlc")
    np.save(tmp_path / "ok.npy", real_ct()[:8, :16, :16].copy())
    with pytest.raises(InputError, match="for images"):
        compress_file(tmp_path / "ok.npy", tmp_path / "ok.wlc", target_psnr=40)
    assert not (tmp_path / "nan.wlc").exists() and not (tmp_path / "ok.wlc").exists()


def test_reader_sees_the_volume_the_writer_wrote(tmp_path: Path) -> None:
    np.save(tmp_path / "ct.npy", real_ct()[:6, :10, :12].copy())
    compress_file(tmp_path / "ct.npy", tmp_path / "v.wlc")
    decompress_file(tmp_path / "v.wlc", tmp_path / "back.tif")  # another container than the source
    back = read_volume(tmp_path / "back.tif")
    assert back.shape == (6, 10, 12) and back.dtype == np.int16


def test_long_jobs_report_progress_per_tile_and_block(tmp_path: Path) -> None:
    """The callbacks behind the single-file progress bar: every tile (coded, then measured;
    decoded) and every audio block, ending at the total."""
    np.save(tmp_path / "ct.npy", real_ct())
    calls: list[tuple[int, int]] = []
    compress_file(tmp_path / "ct.npy", tmp_path / "v.wlc", axes="ZYX", progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 4) for i in range(1, 5)]  # 2 tiles along the rows, coded then measured
    calls.clear()
    decompress_file(tmp_path / "v.wlc", tmp_path / "back.npy", progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 2), (2, 2)]
    audio = Path(__file__).resolve().parent.parent / "formats" / "reference" / "audio" / "stereo-44k-70000.src.wav"
    calls.clear()
    compress_file(audio, tmp_path / "a.wlc", progress=lambda done, total: calls.append((done, total)))
    assert calls == [(65536, 70000), (70000, 70000)]


@pytest.mark.parametrize("shape", [(2, 1, 1), (2, 3, 1), (2, 1, 5)])
def test_thin_tiff_volumes_come_back_in_their_shape(tmp_path: Path, shape: tuple[int, int, int]) -> None:
    """tifffile's JSON without axes: tifffile guessed ``YQX`` for (2, 1, 1), which came back (1, 2, 1)."""
    volume = (np.arange(math.prod(shape), dtype=np.uint16).reshape(shape) * 1000).astype(np.uint16)
    report, original, decoded = round_trip(tmp_path, "thin.tif", lambda p: tifffile.imwrite(p, volume), tifffile.imread)
    assert original.shape == shape and decoded.shape == shape and decoded.dtype == np.uint16
    assert read_volume(tmp_path / "thin.tif").coding_axes == "ZYX"  # a stack of pages: slices


def _worldview2_like(path: Path) -> dict[int, object]:
    """An 8 x 16 x 20 uint16 cube laid out and tagged as the dgsamples WorldView-2 scene is: one
    page of 8 band-separate samples, photometric RGB + 5 unspecified extra samples, a foreign
    ImageDescription, DateTime, Copyright, Min/MaxSampleValue, Orientation, GeoTIFF tags, no
    tifffile JSON. Returns the tags the round trip must keep."""
    cube = real_cube()[:, :16, :20].copy()
    tags = [
        (274, 3, 1, 1, True),
        (280, 3, 8, (0,) * 8, True),
        (281, 3, 8, (2047,) * 8, True),
        (306, 2, 20, "2014:08:06 00:13:59", True),
        (33432, 2, 61, "(C) COPYRIGHT 2014 DigitalGlobe, Inc., Longmont CO USA 80503", True),
        (33550, 12, 3, (2.0, 2.0, 0.0), True),
        (33922, 12, 6, (0.5, 0.5, 0.0, 487549.0, 4443553.0, 0.0), True),
    ]
    description = "{\n  bandList = \n  [\n    6;\n    2;\n    3;\n    7;\n    4;\n    8;\n    5;\n    9;\n  ]\n}"
    tifffile.imwrite(
        path, cube, photometric="rgb", planarconfig="separate", extrasamples=(0,) * 5, metadata=None,
        software=False, description=description, extratags=tags,
    )
    return _tags(path)


def _tags(path: Path) -> dict[int, object]:
    """Every tag of the first page but the strip layout, by code (repeated codes as a list)."""
    found: dict[int, object] = {}
    with tifffile.TiffFile(path) as tif:
        for tag in tif.pages.first.tags.values():
            if tag.code not in (273, 278, 279, 282, 283, 296):  # offsets, rows per strip, the resolution tifffile always writes
                found.setdefault(tag.code, []).append(tag.value)  # type: ignore[union-attr]
    return found


def test_tiff_tags_of_a_worldview2_scene_come_back(tmp_path: Path) -> None:
    source = _worldview2_like(tmp_path / "wv2.tif")
    report, original, decoded = round_trip(tmp_path, "wv2.tif", lambda p: None, tifffile.imread)
    assert report.model.startswith("ms-3d") and decoded.shape == original.shape == (8, 16, 20)
    back = _tags(tmp_path / "out.tif")
    assert len(back[270]) == 1  # one ImageDescription: no tifffile JSON added  # type: ignore[arg-type]
    for code in (262, 270, 274, 280, 281, 306, 338, 33432, 33550, 33922):
        assert back.get(code) == source[code], tifffile.TIFF.TAGS.get(code, code)
    assert set(back) == set(source) - {339}  # SampleFormat: unsigned is TIFF's default, not written


def test_nifti_unused_dim_and_pixdim_come_back(tmp_path: Path) -> None:
    """nibabel writes 1 into dim[4:] and pixdim[4:]; a file holding 0 there gets 0 back."""
    nib = pytest.importorskip("nibabel")
    data = np.ascontiguousarray(real_ct()[:6, :20, :16].T)  # (i, j, k)
    header = nib.Nifti1Header()
    header.set_data_shape(data.shape)
    header.set_data_dtype(data.dtype)
    header.set_zooms((0.9, 0.9, 2.0))
    header["dim"][4:] = 0
    header["pixdim"][4:] = 0
    header["vox_offset"] = 352
    (tmp_path / "head.nii").write_bytes(header.binaryblock + b"\x00" * 4 + data.tobytes(order="F"))
    round_trip(tmp_path, "head.nii", lambda p: None, lambda p: None)
    with open(tmp_path / "head.nii", "rb") as a, open(tmp_path / "out.nii", "rb") as b:
        source, back = nib.Nifti1Header.from_fileobj(a), nib.Nifti1Header.from_fileobj(b)
    for name in source.keys():
        np.testing.assert_array_equal(back[name], source[name], err_msg=name)


def test_a_carried_tiff_tag_that_does_not_fit_its_type_is_an_invalid_header(tmp_path: Path) -> None:
    """The carried tags come from the .wlc header: a CRC-valid header with a tag value that does
    not fit its TIFF type raised struct.error past the per-file handler."""
    _worldview2_like(tmp_path / "wv2.tif")
    compress_file(tmp_path / "wv2.tif", tmp_path / "v.wlc", measure=False)
    with open(tmp_path / "v.wlc", "rb") as handle:
        reader = WlcReader(handle)
        header, chunks, minor = reader.header, list(reader.iter_chunks()), reader.version[1]
    header["volume"]["meta"]["extratags"] = [[274, 3, 1, "top left"]]
    crafted = io.BytesIO()
    with WlcWriter(crafted, header, minor=minor) as writer:
        for chunk in chunks:
            writer.write_chunk(chunk)
    (tmp_path / "bad.wlc").write_bytes(crafted.getvalue())
    with pytest.raises(FormatError, match="invalid header: the volume metadata cannot be written back"):
        decompress_file(tmp_path / "bad.wlc", tmp_path / "bad.tif")
    assert not (tmp_path / "bad.tif").exists()
