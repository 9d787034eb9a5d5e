"""Volume I/O: round trips per format, dtype and axis order; metadata kept; sniffing; refusals.

Every volume here is a small synthetic array made by the test (a few KB).
"""

from __future__ import annotations

import builtins
import gzip
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from PIL import Image

from walloc_cli.files import volumes
from walloc_cli.errors import InputError
from walloc_cli.files.volumes import (
    VolumeData,
    default_volume_suffix,
    read_volume,
    sniff_volume,
    volume_from_array,
    write_volume,
)

try:  # NIfTI is an optional extra; TIFF and .npy are tested without it
    import nibabel as nib
except ImportError:  # pragma: no cover - depends on the installation
    nib = None
needs_nibabel = pytest.mark.skipif(nib is None, reason="nibabel not installed (pip install 'walloc[volume]')")
NIFTI = [pytest.param(".nii", marks=needs_nibabel), pytest.param(".nii.gz", marks=needs_nibabel)]

DTYPES = ("uint8", "uint16", "int16", "float32")


def _ramp(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    """Distinct values over the dtype's range (negative ones for int16), same every call."""
    rng = np.random.default_rng(seed)
    if dtype == "float32":
        return rng.normal(0.0, 100.0, shape).astype(np.float32)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


def _round_trip(volume: VolumeData, path: Path, axes: str | None = None) -> VolumeData:
    write_volume(path, volume)
    return read_volume(path, axes=axes)


# --------------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("suffix", [".tif", ".ome.tif", ".npy", *NIFTI])
def test_every_format_and_dtype_round_trips_exactly(tmp_path: Path, suffix: str, dtype: str) -> None:
    array = _ramp((5, 7, 9), dtype)  # Z, Y, X
    write_volume(tmp_path / f"a{suffix}", volume_from_array(array, "ZYX"))
    # a .npy says nothing about its axes: by the rule 5 short slices would be bands
    first = read_volume(tmp_path / f"a{suffix}", axes="ZYX" if suffix == ".npy" else None)
    assert first.format == volumes.volume_format_for(tmp_path / f"a{suffix}")
    assert first.dtype == np.dtype(dtype) and first.coding_axes == "ZYX"
    np.testing.assert_array_equal(first.array, array)
    # and again from the file's own metadata: same format back, same bytes of data
    second = _round_trip(first, tmp_path / f"b{suffix}", "ZYX" if suffix == ".npy" else None)
    np.testing.assert_array_equal(second.array, array)
    assert second.axes == first.axes and second.format == first.format


def test_npy_in_its_own_axis_order_and_memory_mapped(tmp_path: Path) -> None:
    array = _ramp((6, 80, 70), "int16")  # first axis <= 64 and smallest: bands by the rule
    np.save(tmp_path / "cube.npy", array)
    volume = read_volume(tmp_path / "cube.npy")
    assert volume.axes == "CYX" and isinstance(volume.array.base, np.memmap | np.ndarray)
    assert not volume.array.flags.writeable  # a read-only map, not a copy
    write_volume(tmp_path / "back.npy", volume)
    np.testing.assert_array_equal(np.load(tmp_path / "back.npy"), array)


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((70, 80, 90), "ZYX"),  # nothing short: slices first
        ((8, 80, 90), "CYX"),  # short first axis: bands first
        ((80, 90, 8), "YXC"),  # short last axis: bands last
        ((5, 90, 3), "YXC"),  # both ends short: the smaller one is the band axis
        ((4, 90, 4), "CYX"),  # a tie: the first
    ],
)
def test_axis_rule_without_metadata(tmp_path: Path, shape: tuple[int, int, int], expected: str) -> None:
    array = _ramp(shape, "uint8")
    np.save(tmp_path / "v.npy", array)
    volume = read_volume(tmp_path / "v.npy")
    assert volume.axes == expected
    assert volume.coding_axes == ("C" if "C" in expected else "Z") + "YX"
    order = [expected.index(a) for a in volume.coding_axes]
    np.testing.assert_array_equal(volume.array, np.transpose(array, order))


def test_bands_last_tiff_is_coded_bands_first_and_restored_bands_last(tmp_path: Path) -> None:
    cube = _ramp((12, 10, 6), "uint16")  # Y, X, C: one page, 6 interleaved samples
    tifffile.imwrite(tmp_path / "yxc.tif", cube, photometric="minisblack", planarconfig="contig", metadata=None)
    assert sniff_volume(tmp_path / "yxc.tif") == "tiff"
    volume = read_volume(tmp_path / "yxc.tif")
    assert (volume.axes, volume.coding_axes, volume.shape) == ("YXC", "CYX", (6, 12, 10))
    assert volume.kind == "multispectral"
    np.testing.assert_array_equal(volume.array, np.moveaxis(cube, -1, 0))
    write_volume(tmp_path / "out.tif", volume)
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert len(tif.pages) == 1 and tif.pages.first.samplesperpixel == 6
        np.testing.assert_array_equal(tif.asarray(), cube)


def test_bands_first_planar_geotiff_keeps_layout_and_georeferencing(tmp_path: Path) -> None:
    cube = _ramp((8, 9, 11), "uint16")
    geo = [(33550, 12, 3, (2.0, 2.0, 0.0), True), (33922, 12, 6, (0.0, 0.0, 0.0, 7.0e5, 3.2e6, 0.0), True)]
    tifffile.imwrite(
        tmp_path / "geo.tif", cube, photometric="minisblack", planarconfig="separate", metadata=None,
        compression="zlib", predictor=2, extratags=geo, description="bandList = 1..8",
    )
    volume = read_volume(tmp_path / "geo.tif")
    assert (volume.axes, volume.meta["tiff_layout"], volume.meta["compression"]) == ("CYX", "planar", "ADOBE_DEFLATE")
    json.dumps(volume.meta)  # goes into the .wlc header
    write_volume(tmp_path / "out.tif", volume)
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        page = tif.pages.first
        assert page.planarconfig == 2 and page.compression == 8 and page.predictor == 2
        assert page.tags[33550].value == (2.0, 2.0, 0.0)
        assert page.tags[33922].value == (0.0, 0.0, 0.0, 7.0e5, 3.2e6, 0.0)
        assert page.description == "bandList = 1..8"
        np.testing.assert_array_equal(tif.asarray(), cube)
    assert read_volume(tmp_path / "out.tif").meta["description"] == "bandList = 1..8"  # and again


def test_axes_override_beats_metadata_and_rule(tmp_path: Path) -> None:
    array = _ramp((8, 30, 40), "uint8")
    np.save(tmp_path / "v.npy", array)
    assert read_volume(tmp_path / "v.npy").axes == "CYX"
    volume = read_volume(tmp_path / "v.npy", axes="zyx")
    assert (volume.axes, volume.coding_axes, volume.kind) == ("ZYX", "ZYX", "volume")
    sideways = read_volume(tmp_path / "v.npy", axes="YXZ")  # 40 slices of 8 x 30
    assert sideways.shape == (40, 8, 30)
    np.testing.assert_array_equal(sideways.array, np.transpose(array, (2, 0, 1)))
    write_volume(tmp_path / "back.npy", sideways)
    np.testing.assert_array_equal(np.load(tmp_path / "back.npy"), array)
    with pytest.raises(InputError, match="bad axes 'ZZX'"):
        read_volume(tmp_path / "v.npy", axes="ZZX")


@pytest.mark.parametrize("suffix", [".tif", ".npy", NIFTI[1]])
@pytest.mark.parametrize("shape", [(1, 6, 7), (3, 6, 7), (1, 1, 9)])
def test_odd_sizes_round_trip(tmp_path: Path, suffix: str, shape: tuple[int, int, int]) -> None:
    """One slice, three bands, a 1 x 1 x N line: same shape and values back."""
    axes = "CYX" if shape[0] == 3 else "ZYX"
    array = _ramp(shape, "int16")
    volume = volume_from_array(array, axes)
    write_volume(tmp_path / f"v{suffix}", volume)
    back = read_volume(tmp_path / f"v{suffix}", axes=volume.coding_axes if suffix != ".nii.gz" else None)
    assert back.shape == shape
    np.testing.assert_array_equal(back.array, array)


def test_two_d_npy_is_one_slice_and_comes_back_two_d(tmp_path: Path) -> None:
    np.save(tmp_path / "slice.npy", _ramp((5, 6), "float32"))
    assert sniff_volume(tmp_path / "slice.npy") == "npy"
    volume = read_volume(tmp_path / "slice.npy")
    assert volume.shape == (1, 5, 6) and volume.meta["shape"] == [5, 6]
    write_volume(tmp_path / "back.npy", volume)
    assert np.load(tmp_path / "back.npy").shape == (5, 6)


def test_singleton_fourth_axis_is_dropped_and_restored(tmp_path: Path) -> None:
    array = _ramp((1, 4, 5, 6), "uint16")  # e.g. a (batch, Z, Y, X) tensor
    np.save(tmp_path / "v.npy", array)
    assert sniff_volume(tmp_path / "v.npy") == "npy"
    volume = read_volume(tmp_path / "v.npy")
    assert volume.shape == (4, 5, 6)
    write_volume(tmp_path / "back.npy", volume)
    np.testing.assert_array_equal(np.load(tmp_path / "back.npy"), array)
    np.save(tmp_path / "4d.npy", _ramp((2, 4, 5, 6), "uint16"))
    assert sniff_volume(tmp_path / "4d.npy") is None
    with pytest.raises(InputError, match="4-D data"):
        read_volume(tmp_path / "4d.npy")


# --------------------------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------------------------


@needs_nibabel
def test_nifti_header_comes_back_field_for_field(tmp_path: Path) -> None:
    data = _ramp((9, 8, 7), "int16")  # i, j, k
    affine = np.array([[-0.8, 0, 0, 90], [0, 0.8, 0.1, -126], [0, 0, 2.5, -72], [0, 0, 0, 1]])
    # nibabel's own writer recomputes scl_slope/scl_inter, so the file is assembled here
    header = nib.Nifti1Header()
    header.set_data_shape(data.shape)
    header.set_data_dtype(data.dtype)
    header.set_sform(affine, code=2)
    header.set_qform(affine, code=1)
    header.set_xyzt_units("mm", "sec")
    header["descrip"] = b"test CT"
    header.set_slope_inter(1.0, -1024.0)  # HU stored with an offset
    header["vox_offset"] = 352
    raw = header.binaryblock + b"\x00" * 4 + data.tobytes(order="F")
    (tmp_path / "ct.nii.gz").write_bytes(gzip.compress(raw))
    image = nib.load(tmp_path / "ct.nii.gz")
    assert (image.dataobj.slope, image.dataobj.inter) == (1.0, -1024.0)  # nibabel keeps it there
    volume = read_volume(tmp_path / "ct.nii.gz")
    assert (volume.axes, volume.coding_axes, volume.shape) == ("XYZ", "ZYX", (7, 8, 9))
    np.testing.assert_array_equal(volume.array, np.transpose(data))
    assert volume.meta["unit"] == "mm" and volume.meta["descrip"] == "test CT"
    assert volume.spacing == pytest.approx((2.5, 0.8, 0.8), rel=1e-3)
    assert volume.meta["scl_inter"] == -1024.0 and volume.kind == "ct"
    json.dumps(volume.meta)
    for name in ("back.nii", "back.nii.gz"):
        write_volume(tmp_path / name, volume)
        again = nib.load(tmp_path / name)
        np.testing.assert_allclose(again.affine, image.affine, atol=1e-5)
        assert again.header.get_xyzt_units() == ("mm", "sec")
        assert (again.dataobj.slope, again.dataobj.inter) == (1.0, -1024.0)  # scaling kept
        assert int(again.header["qform_code"]) == 1 and int(again.header["sform_code"]) == 2
        np.testing.assert_array_equal(np.asarray(again.dataobj.get_unscaled()), data)
        assert again.get_data_dtype() == np.dtype("int16")


def test_kind_is_guessed_unless_given() -> None:
    assert volume_from_array(np.full((2, 3, 4), -1000, np.int16)).kind == "ct"
    assert volume_from_array(np.zeros((2, 3, 4), np.uint16), "CYX").kind == "multispectral"
    assert volume_from_array(np.zeros((2, 3, 4), np.float32)).kind == "volume"
    given = VolumeData(np.zeros((2, 3, 4), np.uint8), "ZYX", "ZYX", "nifti", {}, kind="ct")
    assert given.kind == "ct"  # e.g. what a .wlc header recorded
    assert VolumeData(np.zeros((2, 3, 4), np.uint8), "ZYX", "ZYX", "nifti", {}).kind == "mri"


@needs_nibabel
def test_mri_kind_and_nifti_with_a_trailing_time_axis(tmp_path: Path) -> None:
    data = _ramp((6, 5, 4, 1), "uint8")
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "t1.nii")
    volume = read_volume(tmp_path / "t1.nii")
    assert volume.shape == (4, 5, 6) and volume.kind == "mri"
    write_volume(tmp_path / "back.nii", volume)
    assert nib.load(tmp_path / "back.nii").shape == (6, 5, 4, 1)


@needs_nibabel
def test_spacing_maps_between_tiff_and_nifti(tmp_path: Path) -> None:
    array = _ramp((4, 6, 8), "int16")
    image = nib.Nifti1Image(np.transpose(array), np.diag([0.5, 0.6, 2.0, 1.0]))
    image.header.set_xyzt_units("mm")
    nib.save(image, tmp_path / "v.nii.gz")
    volume = read_volume(tmp_path / "v.nii.gz")
    for suffix in (".tif", ".ome.tif"):
        write_volume(tmp_path / f"v{suffix}", volume)
        tiff = read_volume(tmp_path / f"v{suffix}")
        assert tiff.axes == "ZYX" and tiff.meta["unit"] == "mm"
        assert tiff.spacing == pytest.approx((2.0, 0.6, 0.5), rel=1e-6)
        np.testing.assert_array_equal(tiff.array, array)
    write_volume(tmp_path / "again.nii", tiff)
    again = nib.load(tmp_path / "again.nii")
    assert again.header.get_zooms() == pytest.approx((0.5, 0.6, 2.0))
    np.testing.assert_array_equal(np.asarray(again.dataobj), np.transpose(array))


def test_ome_tiff_axes_and_physical_sizes(tmp_path: Path) -> None:
    cube = _ramp((5, 6, 7), "uint16")
    tifffile.imwrite(
        tmp_path / "c.ome.tif", cube, ome=True,
        metadata={"axes": "CYX", "PhysicalSizeX": 0.25, "PhysicalSizeY": 0.5, "PhysicalSizeXUnit": "µm",
                  "PhysicalSizeYUnit": "µm"},
    )
    assert sniff_volume(tmp_path / "c.ome.tif") == "ome-tiff"
    volume = read_volume(tmp_path / "c.ome.tif")
    assert (volume.axes, volume.format, volume.meta["unit"]) == ("CYX", "ome-tiff", "um")
    assert volume.spacing == (None, 0.5, 0.25)
    write_volume(tmp_path / "back.ome.tif", volume)
    back = read_volume(tmp_path / "back.ome.tif")
    assert back.axes == "CYX" and back.spacing == (None, 0.5, 0.25)
    np.testing.assert_array_equal(back.array, cube)


def test_imagej_hyperstack_keeps_z_spacing(tmp_path: Path) -> None:
    stack = _ramp((4, 5, 6), "uint16")
    tifffile.imwrite(
        tmp_path / "ij.tif", stack, imagej=True, resolution=(2.0, 4.0),
        metadata={"axes": "ZYX", "spacing": 1.5, "unit": "mm"},
    )
    volume = read_volume(tmp_path / "ij.tif")
    assert volume.axes == "ZYX" and volume.meta["imagej"]
    assert volume.spacing == pytest.approx((1.5, 0.25, 0.5))
    write_volume(tmp_path / "back.tif", volume)
    with tifffile.TiffFile(tmp_path / "back.tif") as tif:
        assert tif.is_imagej and tif.imagej_metadata["spacing"] == 1.5
    assert read_volume(tmp_path / "back.tif").spacing == pytest.approx((1.5, 0.25, 0.5))


def test_default_suffixes_and_output_formats() -> None:
    assert [default_volume_suffix(f) for f in ("tiff", "ome-tiff", "npy", "nifti")] == [
        ".tif", ".ome.tif", ".npy", ".nii.gz"
    ]
    assert default_volume_suffix("") == ".npy"  # a damaged header: the bare array
    assert volumes.volume_format_for(Path("a.OME.TIFF")) == "ome-tiff"
    assert volumes.volume_format_for(Path("a.nii.gz")) == "nifti"
    with pytest.raises(InputError, match="unknown volume output extension"):
        volumes.volume_format_for(Path("a.png"))


def test_write_refuses_to_overwrite_and_leaves_no_partial_file(tmp_path: Path) -> None:
    volume = volume_from_array(_ramp((2, 3, 4), "uint8"))
    write_volume(tmp_path / "v.npy", volume)
    with pytest.raises(FileExistsError):
        write_volume(tmp_path / "v.npy", volume)
    write_volume(tmp_path / "v.npy", volume, overwrite=True)
    bad = VolumeData(np.zeros((2, 3, 4), np.complex64), "ZYX", "ZYX", "npy", {"shape": [2, 3, 4]})
    with pytest.raises(InputError, match="complex64"):
        write_volume(tmp_path / "bad.tif", bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.npy"]


# --------------------------------------------------------------------------------------------
# Sniffing and refusals
# --------------------------------------------------------------------------------------------


def test_sniffing_tells_volumes_from_images(tmp_path: Path) -> None:
    rgb = _ramp((8, 9, 3), "uint8")
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    tifffile.imwrite(tmp_path / "gray.tif", rgb[..., 0])
    tifffile.imwrite(tmp_path / "pages.tif", _ramp((3, 8, 9), "uint8"), photometric="minisblack")
    tifffile.imwrite(tmp_path / "ct_slice.tif", _ramp((8, 9), "int16"))
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    np.save(tmp_path / "line.npy", np.arange(5))
    assert sniff_volume(tmp_path / "rgb.tif") is None
    assert sniff_volume(tmp_path / "gray.tif") is None
    assert sniff_volume(tmp_path / "pages.tif") == "tiff"
    assert sniff_volume(tmp_path / "ct_slice.tif") == "tiff"  # int16: not an image the image path codes
    assert sniff_volume(tmp_path / "rgb.png") is None
    assert sniff_volume(tmp_path / "line.npy") is None
    if nib is not None:
        nib.save(nib.Nifti1Image(_ramp((3, 4, 5), "uint8"), np.eye(4)), tmp_path / "brain.nii.gz")
        (tmp_path / "brain.nii.gz").rename(tmp_path / "brain.data")  # content, not extension
        assert sniff_volume(tmp_path / "brain.data") == "nifti"
        assert read_volume(tmp_path / "brain.data").shape == (5, 4, 3)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"\x00garbage bytes that are no volume" * 3, "not a volume file"),
        (b"II*\x00\x08\x00\x00\x00\xff\xff", "corrupt or unsupported TIFF"),
        (b"\x93NUMPY\x01\x00\x10\x00{'descr': '<i2'", "corrupt .npy header"),
        (gzip.compress(b"\x00" * 400), "not a volume file"),
    ],
)
def test_garbage_is_never_sniffed_and_reads_as_one_clean_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.bin"
    path.write_bytes(content)
    assert sniff_volume(path) is None
    with pytest.raises(InputError, match=message):
        read_volume(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    assert sniff_volume(tmp_path / "nope.npy") is None and sniff_volume(tmp_path) is None
    with pytest.raises(InputError, match="no such file"):
        read_volume(tmp_path / "nope.npy")
    with pytest.raises(InputError, match="is a directory"):
        read_volume(tmp_path)


def test_truncated_files(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", _ramp((4, 5, 6), "int16"))
    data = (tmp_path / "v.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[:-10])
    with pytest.raises(InputError, match="truncated .npy"):
        read_volume(tmp_path / "cut.npy")
    if nib is not None:
        nib.save(nib.Nifti1Image(_ramp((6, 7, 8), "int16"), np.eye(4)), tmp_path / "v.nii.gz")
        gz = (tmp_path / "v.nii.gz").read_bytes()
        (tmp_path / "cut.nii.gz").write_bytes(gz[: len(gz) // 2])
        with pytest.raises(InputError, match="corrupt or truncated NIfTI"):
            read_volume(tmp_path / "cut.nii.gz")
    tifffile.imwrite(tmp_path / "v.tif", _ramp((4, 50, 60), "uint16"), photometric="minisblack")
    tif = (tmp_path / "v.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(tif[: len(tif) // 2])
    with pytest.raises(InputError, match="TIFF"):
        read_volume(tmp_path / "cut.tif")


def test_nan_dtype_and_size_refusals(tmp_path: Path) -> None:
    array = _ramp((3, 4, 5), "float32")
    array[2, 1, 1] = np.nan
    np.save(tmp_path / "nan.npy", array)
    with pytest.raises(InputError, match="NaN or infinite"):
        read_volume(tmp_path / "nan.npy")
    tifffile.imwrite(tmp_path / "inf.tif", np.full((2, 3, 4), np.inf, np.float32), photometric="minisblack")
    with pytest.raises(InputError, match="NaN or infinite"):
        read_volume(tmp_path / "inf.tif")
    np.save(tmp_path / "c.npy", np.zeros((2, 3, 4), np.complex64))
    with pytest.raises(InputError, match="unsupported sample type complex64"):
        read_volume(tmp_path / "c.npy")
    np.save(tmp_path / "b.npy", np.zeros((2, 3, 4), bool))
    with pytest.raises(InputError, match="unsupported sample type bool"):
        read_volume(tmp_path / "b.npy")
    # a header that promises an absurd volume: refused before any data is read
    with open(tmp_path / "huge.npy", "wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "<u2", "fortran_order": False, "shape": (2048, 2048, 1024)}
        )
    with pytest.raises(InputError, match="too large"):
        read_volume(tmp_path / "huge.npy")
    with pytest.raises(InputError, match="axis too long"):
        volume_from_array(np.zeros((1, 1, 70000), np.uint8))


@needs_nibabel
def test_nibabel_missing_gives_the_install_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nib.save(nib.Nifti1Image(_ramp((3, 4, 5), "uint8"), np.eye(4)), tmp_path / "v.nii")
    real_import = builtins.__import__

    def no_nibabel(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "nibabel" or name.startswith("nibabel."):
            raise ImportError("No module named 'nibabel'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "nibabel", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_nibabel)
    assert sniff_volume(tmp_path / "v.nii") == "nifti"  # sniffing needs no nibabel
    with pytest.raises(InputError, match=r"reading NIfTI needs nibabel: pip install 'walloc\[volume\]'"):
        read_volume(tmp_path / "v.nii")
    with pytest.raises(InputError, match="writing NIfTI needs nibabel"):
        write_volume(tmp_path / "out.nii", volume_from_array(np.zeros((2, 2, 2), np.uint8)))
