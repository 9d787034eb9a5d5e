"""The numcodecs / Zarr codec (:mod:`walloc_cli.api.zarr_codec`, :mod:`walloc_cli.api.zarr3`).

Real signals: the sample photo (gray and RGB) and nibabel's test MRI (``anatomical.nii``, a real
T1 head scan, 33 x 41 x 25 int16, shipped in the nibabel wheel of the dev extra). Zarr arrays are
written in both formats the current numcodecs serves (Zarr v2 format with the codec as
``compressor``, Zarr v3 with it as the serializer, zarr-python 3), read back from their
metadata alone, and read through ``dask.array`` in parallel.
"""

from __future__ import annotations

import json
import math
import tomllib
from importlib import import_module
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

numcodecs = pytest.importorskip("numcodecs")
zarr = pytest.importorskip("zarr")
nibabel = pytest.importorskip("nibabel")
nibabel_testing = pytest.importorskip("nibabel.testing")

import walloc_cli as walloc  # noqa: E402 - after the skips
from walloc_cli.api.zarr_codec import Walloc  # noqa: E402
from walloc_cli.api.zarr3 import WallocZarr3, register  # noqa: E402
from walloc_cli.errors import InputError, WallocError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "samples" / "photo.png"


@pytest.fixture(scope="module", autouse=True)
def registered() -> None:
    """What the entry points do for an installed walloc (this checkout may not be the installed
    one; test_entry_points_name_these_classes checks the declarations themselves)."""
    register()


def psnr(reference: np.ndarray, decoded: np.ndarray, peak: float) -> float:
    error = np.mean((reference.astype(np.float64) - decoded.astype(np.float64)) ** 2)
    return math.inf if error == 0 else 10 * math.log10(peak**2 / error)


def mri() -> np.ndarray:
    """(33, 41, 25) int16: a real T1 MRI, values -610..30393 (a scanner's raw range)."""
    return np.asarray(nibabel.load(Path(nibabel_testing.data_path) / "anatomical.nii").dataobj).astype(np.int16)


def gray_photo() -> np.ndarray:
    return np.asarray(Image.open(PHOTO).convert("L"))  # (300, 451) uint8


def test_config_round_trips_and_numcodecs_builds_the_codec_from_it() -> None:
    codec = Walloc(quality=40, model="rgb-4x-v", axes="yxc", payload="jxl")
    config = codec.get_config()
    assert config == {"id": "walloc", "quality": 40.0, "model": "rgb-4x-v", "axes": "YXC", "payload": "jxl"}
    assert json.loads(json.dumps(config)) == config  # stored in .zarray as JSON
    again = numcodecs.get_codec(config)
    assert isinstance(again, Walloc) and again.get_config() == config
    assert Walloc.from_config(config) == again  # numcodecs' Codec compares configs


def test_each_chunk_is_the_wlc_walloc_compress_writes() -> None:
    """Self-describing: the chunk bytes are a .wlc file that walloc.decompress reads alone."""
    image = gray_photo()[:128, :160]
    data = Walloc(quality=60).encode(image)
    assert data == walloc.compress(image, quality=60)
    decoded, meta = walloc.decompress(data)
    assert meta["modality"] == "image" and decoded.shape == image.shape


@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (37, 129)])
def test_chunks_of_any_size_come_back_in_their_shape(shape: tuple[int, int]) -> None:
    """Edge blocks smaller than the chunk shape (dask.array.map_blocks hands them as they are)."""
    image = np.ascontiguousarray(gray_photo()[100 : 100 + shape[0], 200 : 200 + shape[1]])
    codec = Walloc(quality=90)
    decoded = codec.decode(codec.encode(image))
    assert decoded.shape == image.shape and decoded.dtype == np.uint8
    if min(shape) > 4:
        assert psnr(image, decoded, 255) > 30


@pytest.mark.parametrize("shape", [(1, 3, 2), (5, 41, 25), (33, 9, 7)])
def test_volume_blocks_of_any_size_come_back_in_their_shape(shape: tuple[int, int, int]) -> None:
    block = np.ascontiguousarray(mri()[: shape[0], : shape[1], : shape[2]])
    codec = Walloc(quality=75)
    out = np.zeros_like(block)
    codec.decode(codec.encode(block), out=out)  # numcodecs' out= path
    assert out.shape == block.shape
    if block.size > 1000:
        assert psnr(block, out, float(block.max() - block.min())) > 22  # a noisy scan, thin blocks


def test_a_volume_chunk_in_another_axis_order_comes_back_in_that_order() -> None:
    volume = mri()
    stored = np.ascontiguousarray(np.transpose(volume, (1, 2, 0)))  # (Y, X, Z)
    codec = Walloc(axes="YXZ", quality=75)
    decoded = codec.decode(codec.encode(stored))
    assert decoded.shape == stored.shape
    assert psnr(stored, decoded, float(volume.max() - volume.min())) > 28


def test_zarr_v2_format_round_trip_of_a_photo_with_edge_chunks(tmp_path: Path) -> None:
    image = gray_photo()  # 300 x 451: chunks of 128 x 128 leave 44- and 67-wide edge chunks
    array = zarr.create_array(tmp_path / "gray.zarr", shape=image.shape, chunks=(128, 128), dtype="uint8", zarr_format=2, compressors=Walloc(quality=75))
    array[:] = image
    metadata = json.loads((tmp_path / "gray.zarr" / ".zarray").read_text())
    assert metadata["compressor"] == {"id": "walloc", "quality": 75.0, "model": None, "axes": None, "payload": None}  # None: walloc's default coder
    stored = sum(p.stat().st_size for p in (tmp_path / "gray.zarr").iterdir() if p.name[0].isdigit())
    assert stored < image.size / 4  # under 2 bits per pixel, padding of the edge chunks included
    decoded = zarr.open_array(tmp_path / "gray.zarr", mode="r")[:]
    assert decoded.shape == image.shape and decoded.dtype == np.uint8
    assert psnr(image, decoded, 255) > 30
    window = zarr.open_array(tmp_path / "gray.zarr", mode="r")[250:300, 400:451]  # one edge chunk alone
    assert np.array_equal(window, decoded[250:300, 400:451])


def test_zarr_v3_round_trip_of_an_mri_volume_and_dask_reads_it_in_parallel(tmp_path: Path) -> None:
    da = pytest.importorskip("dask.array")
    volume = mri()
    path = tmp_path / "mri.zarr"
    array = zarr.create_array(path, shape=volume.shape, chunks=(16, 32, 32), dtype="int16", serializer=WallocZarr3(quality=75), compressors=None)
    array[:] = volume
    codecs = json.loads((path / "zarr.json").read_text())["codecs"]
    assert codecs == [{"name": "walloc", "configuration": {"quality": 75.0}}]  # the payload left to walloc's default
    decoded = zarr.open_array(path, mode="r")[:]
    assert decoded.dtype == np.int16 and decoded.shape == volume.shape
    peak = float(volume.max() - volume.min())
    assert psnr(volume, decoded, peak) > 28
    lazy = da.from_zarr(str(path))
    assert lazy.numblocks == (3, 2, 1)
    assert np.array_equal(lazy.compute(scheduler="threads", num_workers=2), decoded)


def test_one_chunk_holding_the_array_decodes_as_walloc_compress_does(tmp_path: Path) -> None:
    """Same setting, same data: the chunk path loses exactly what ``walloc.compress`` loses."""
    volume = mri()
    array = zarr.create_array(tmp_path / "one.zarr", shape=volume.shape, chunks=volume.shape, dtype="int16", zarr_format=2, compressors=Walloc(quality=50))
    array[:] = volume
    direct, _ = walloc.decompress(walloc.compress(volume, quality=50, axes="ZYX"))
    assert np.array_equal(zarr.open_array(tmp_path / "one.zarr", mode="r")[:], direct)


def test_rgb_chunks_with_the_channel_axis_last(tmp_path: Path) -> None:
    rgb = np.asarray(Image.open(PHOTO).convert("RGB"))
    array = zarr.create_array(tmp_path / "rgb.zarr", shape=rgb.shape, chunks=(160, 240, 3), dtype="uint8", serializer=WallocZarr3(axes="YXC"), compressors=None)
    array[:] = rgb
    assert psnr(rgb, zarr.open_array(tmp_path / "rgb.zarr", mode="r")[:], 255) > 28


@pytest.mark.parametrize(
    ("array", "axes", "message"),
    [
        (np.zeros((8, 8), np.float32), None, "walloc codes images (YX) of dtype bool, uint8, uint16, not float32"),
        (np.zeros((2, 8, 8, 3), np.uint8), None, "walloc codes 2-D (image) and 3-D (image or volume) chunks, not 4-D ones"),
        (np.zeros((8, 8), np.uint8), "YXC", "axes 'YXC' need 3-D chunks, not 2-D ones"),
        (np.zeros((8, 8), np.int16), "ZYX", "axes 'ZYX' name a volume, which needs 3-D chunks, not 2-D ones"),
        (np.zeros((4, 8, 8), np.complex64), None, "walloc codes volumes (ZYX) of dtype"),
    ],
)
def test_chunks_it_cannot_code_are_refused_in_one_line(array: np.ndarray, axes: str | None, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Walloc(axes=axes).encode(array)


def test_zarr_refuses_a_layout_the_codec_cannot_code_when_the_array_is_created(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not float64"):
        zarr.create_array(tmp_path / "bad.zarr", shape=(64, 64), chunks=(32, 32), dtype="float64", serializer=WallocZarr3(), compressors=None)


def test_a_damaged_chunk_fails_with_a_walloc_error(tmp_path: Path) -> None:
    image = gray_photo()[:64, :64].copy()
    data = bytearray(Walloc().encode(image))
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(WallocError, match="CRC"):
        Walloc().decode(bytes(data))


def test_entry_points_name_these_classes() -> None:
    """pyproject declares the codec in numcodecs' and Zarr's entry-point groups under the name
    its metadata uses (tests/test_wheel.py resolves them in an installed wheel)."""
    points = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]

    def load(target: str) -> type:
        module, name = target.split(":")
        return getattr(import_module(module), name)

    assert load(points["numcodecs.codecs"]["walloc"]) is Walloc and Walloc.codec_id == "walloc"
    assert load(points["zarr.codecs"]["walloc"]) is WallocZarr3
    assert WallocZarr3().to_dict()["name"] == "walloc"
