"""Round trips and refusals of the image I/O layer (walloc_cli.files.images)."""

from __future__ import annotations

import io
import struct
import time
import zlib
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms

from walloc_cli.errors import InputError
from walloc_cli.files.images import (
    MAX_PIXELS,
    MODES,
    ImageData,
    image_from_array,
    image_to_array,
    read_image,
    sniff_image,
    write_image,
)

ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
SIZES = [(1, 1), (5, 7), (17, 33)]  # (H, W): 1x1, 7x5, 33x17


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def synth(height: int, width: int, samples: int, depth: int, seed: int = 0) -> np.ndarray:
    """(H, W, S) uint8/uint16: smooth gradients plus noise, alpha (last) hitting 0 and peak."""
    rng = np.random.default_rng(seed)
    peak = 255 if depth == 8 else 65535
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    planes = []
    for s in range(samples):
        smooth = 0.5 + 0.4 * np.sin(2.0 * x / max(width, 2) + 3.0 * y / max(height, 2) + s)
        planes.append(smooth + rng.normal(0, 0.08, (height, width)))
    array = np.clip(np.rint(np.stack(planes, -1) * peak), 0, peak)
    if height * width > 4:  # make sure extremes occur (full transparency included)
        array.flat[0] = 0
        array.flat[-1] = peak
        array[0, -1, -1] = 0
    return array.astype(np.uint8 if depth == 8 else np.uint16)


def png_with_iccp(png: bytes, icc: bytes) -> bytes:
    """Independent iCCP splicer (for 16-bit PNGs written by imagecodecs, which has no ICC option)."""
    body = b"sRGB\x00\x00" + zlib.compress(icc)
    chunk = struct.pack(">I", len(body)) + b"iCCP" + body + struct.pack(">I", zlib.crc32(b"iCCP" + body))
    return png[:33] + chunk + png[33:]


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def expect_input_error(path: Path, fragment: str) -> InputError:
    with pytest.raises(InputError) as info:
        read_image(path)
    message = str(info.value)
    assert fragment in message, message
    assert str(path) not in message and path.name not in message, message  # caller adds the path
    assert "\n" not in message and message[:1] == message[:1].lower(), message
    return info.value


def ground_truth(mode: str, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Array in image_to_array layout for ``mode``."""
    if mode == "1":
        return synth(height, width, 1, 8, seed)[..., 0] >= 128
    channels, has_alpha, depth = MODES[mode]
    array = synth(height, width, channels + has_alpha, depth, seed)
    return array[..., 0] if array.shape[-1] == 1 else array


def write_reference(path: Path, fmt: str, mode: str, truth: np.ndarray) -> bool:
    """Write ``truth`` with a library other than ours; False where none can (BMP RGBA)."""
    depth = MODES[mode][2]
    if fmt == "TIFF":
        colour, has_alpha, _ = MODES[mode]
        extra = {"extrasamples": ["unassalpha"], "planarconfig": "contig"} if has_alpha else {}
        tifffile.imwrite(
            path, truth, photometric="rgb" if colour == 3 else "minisblack",
            compression="zlib" if mode != "1" else None, iccprofile=ICC, **extra,
        )
        return True
    if fmt == "PNG" and depth == 16 and mode != "I;16":
        path.write_bytes(png_with_iccp(bytes(imagecodecs.png_encode(truth)), ICC))
        return True
    if fmt == "BMP" and mode == "RGBA":
        return False  # Pillow writes 32-bit BMP without an alpha mask (reads back as RGB)
    image = Image.fromarray(truth)
    options: dict[str, object] = {} if fmt == "BMP" else {"icc_profile": ICC}
    if fmt == "WEBP":
        options.update(lossless=True, exact=True)
    if fmt == "JPEG":
        options.update(quality=95, subsampling=0)
    image.save(path, format=fmt, **options)
    return True


LOSSLESS_CASES = (
    [("PNG", ".png", m) for m in MODES]
    + [("TIFF", ".tif", m) for m in MODES]
    + [("WEBP", ".webp", m) for m in ("RGB", "RGBA")]
    + [("BMP", ".bmp", m) for m in ("1", "L", "RGB", "RGBA")]
)


# ---------------------------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[1]}x{s[0]}")
@pytest.mark.parametrize("fmt,ext,mode", LOSSLESS_CASES)
def test_lossless_round_trip(tmp_path: Path, fmt: str, ext: str, mode: str, size: tuple[int, int]) -> None:
    height, width = size
    truth = ground_truth(mode, height, width)
    first = tmp_path / f"first{ext}"
    if not write_reference(first, fmt, mode, truth):
        data = image_from_array(truth)
        write_image(first, data)
    icc_expected = None if fmt == "BMP" else ICC  # BMP: Pillow neither reads nor writes ICC

    data = read_image(first)
    assert (data.mode, data.bit_depth, data.source_format) == (mode, MODES[mode][2], fmt)
    assert (data.height, data.width, data.channels) == (height, width, MODES[mode][0])
    assert data.pixels.dtype == (np.uint8 if data.bit_depth == 8 else np.uint16)  # samples as stored
    assert data.pixels.shape == (data.channels, height, width)
    np.testing.assert_array_equal(image_to_array(data), truth)
    assert data.icc_profile == icc_expected

    second = tmp_path / f"second{ext}"
    write_image(second, data)
    again = read_image(second)
    assert (again.mode, again.bit_depth, again.height, again.width) == (mode, data.bit_depth, height, width)
    np.testing.assert_array_equal(again.pixels, data.pixels)
    if data.alpha is None:
        assert again.alpha is None
    else:
        assert again.alpha is not None and again.alpha.dtype == data.alpha.dtype
        np.testing.assert_array_equal(again.alpha, data.alpha)
    assert again.icc_profile == icc_expected


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[1]}x{s[0]}")
@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_jpeg_round_trip(tmp_path: Path, mode: str, size: tuple[int, int]) -> None:
    height, width = size
    truth = ground_truth(mode, height, width)
    first = tmp_path / "first.jpg"
    write_reference(first, "JPEG", mode, truth)
    data = read_image(first)
    assert (data.mode, data.bit_depth, data.source_format, data.height, data.width) == (
        mode, 8, "JPEG", height, width,
    )
    assert data.alpha is None and data.icc_profile == ICC
    error = np.abs(image_to_array(data).astype(np.int32) - truth.astype(np.int32))
    assert error.mean() < 8  # noise-heavy synthetic content; quality 95

    second = tmp_path / "second.jpeg"
    write_image(second, data)
    again = read_image(second)
    assert (again.mode, again.height, again.width, again.icc_profile) == (mode, height, width, ICC)
    assert np.abs(again.pixels.astype(np.int32) - data.pixels).mean() < 4


def test_gray16_png_values_survive(tmp_path: Path) -> None:
    extremes = np.array([[0, 1, 255, 256], [32767, 32768, 65534, 65535]], dtype=np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(extremes).save(path)  # Pillow "I;16"
    data = read_image(path)
    assert data.mode == "I;16" and data.bit_depth == 16
    np.testing.assert_array_equal(image_to_array(data), extremes)
    write_image(tmp_path / "back.png", data)
    with Image.open(tmp_path / "back.png") as image:
        assert image.mode == "I;16"
        np.testing.assert_array_equal(np.asarray(image), extremes)


def test_sixteen_bit_colour_png_is_really_16_bit(tmp_path: Path) -> None:
    truth = ground_truth("RGB;16", 5, 7)
    data = image_from_array(truth)
    write_image(tmp_path / "c16.png", data)
    decoded = imagecodecs.png_decode((tmp_path / "c16.png").read_bytes())
    assert decoded.dtype == np.uint16
    np.testing.assert_array_equal(decoded, truth)
    assert np.any(truth % 257 != 0)  # not just 8-bit values scaled up


def test_palette_png_expands_to_rgb(tmp_path: Path) -> None:
    indices = np.array([[0, 1, 2], [3, 2, 1]], dtype=np.uint8)
    palette = [10, 20, 30, 200, 0, 0, 0, 200, 0, 1, 2, 250]
    image = Image.frombytes("P", (3, 2), indices.tobytes())
    image.putpalette(palette)
    image.save(tmp_path / "p.png")
    data = read_image(tmp_path / "p.png")
    assert data.mode == "RGB" and data.alpha is None
    expected = np.array(palette, dtype=np.uint8).reshape(4, 3)[indices]
    np.testing.assert_array_equal(image_to_array(data), expected)
    write_image(tmp_path / "back.png", data)
    with Image.open(tmp_path / "back.png") as back:
        assert back.mode == "RGB"


def test_palette_with_transparency_expands_to_rgba(tmp_path: Path) -> None:
    indices = np.array([[0, 1], [2, 0]], dtype=np.uint8)
    image = Image.frombytes("P", (2, 2), indices.tobytes())
    image.putpalette([1, 2, 3, 4, 5, 6, 7, 8, 9])
    image.save(tmp_path / "pt.png", transparency=0)
    data = read_image(tmp_path / "pt.png")
    assert data.mode == "RGBA"
    np.testing.assert_array_equal(data.alpha, np.where(indices == 0, 0, 255))
    write_image(tmp_path / "back.png", data)
    assert read_image(tmp_path / "back.png").mode == "RGBA"


@pytest.mark.parametrize("mode,key,expected_mode", [("L", 5, "LA"), ("RGB", (1, 2, 3), "RGBA")])
def test_transparency_key_becomes_alpha(tmp_path: Path, mode: str, key: object, expected_mode: str) -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    array = gray if mode == "L" else np.stack([gray * 0 + 1, gray * 0 + 2, gray], -1)
    Image.fromarray(array).save(tmp_path / "k.png", transparency=key)
    data = read_image(tmp_path / "k.png")
    assert data.mode == expected_mode and data.alpha is not None
    transparent = (gray == 5) if mode == "L" else (gray == 3)
    np.testing.assert_array_equal(data.alpha == 0, transparent)


def test_cmyk_jpeg_reads_as_rgb(tmp_path: Path) -> None:
    rgb = np.zeros((8, 8, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 30
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    data = read_image(tmp_path / "c.jpg")
    assert data.mode == "RGB" and data.icc_profile is None
    assert np.abs(image_to_array(data).astype(int) - rgb).max() <= 4


def test_float_tiff_reads_as_16_bit(tmp_path: Path) -> None:
    values = np.linspace(0, 1, 5 * 7 * 3, dtype=np.float32).reshape(5, 7, 3)
    tifffile.imwrite(tmp_path / "f.tif", values, photometric="rgb")
    data = read_image(tmp_path / "f.tif")
    assert data.mode == "RGB;16" and data.bit_depth == 16
    np.testing.assert_allclose(np.moveaxis(data.pixels, 0, -1) / 65535, values, atol=0.5 / 65535 + 1e-7)
    write_image(tmp_path / "back.tif", data)
    again = read_image(tmp_path / "back.tif")
    assert again.mode == "RGB;16"
    np.testing.assert_array_equal(again.pixels, data.pixels)


@pytest.mark.parametrize("mode", ["L", "RGBA"])
def test_tiff_codec_pillow_lacks_falls_back_to_tifffile(tmp_path: Path, mode: str) -> None:
    truth = ground_truth(mode, 5, 7)
    extra = {"extrasamples": ["unassalpha"]} if mode == "RGBA" else {}
    tifffile.imwrite(
        tmp_path / "png_in.tif", truth, compression="png", iccprofile=ICC,
        photometric="rgb" if mode == "RGBA" else "minisblack", **extra,
    )
    data = read_image(tmp_path / "png_in.tif")
    assert data.mode == mode and data.icc_profile == ICC
    np.testing.assert_array_equal(image_to_array(data), truth)


def test_miniswhite_16_bit_tiff_is_inverted(tmp_path: Path) -> None:
    stored = np.array([[0, 65535], [1000, 30000]], dtype=np.uint16)
    tifffile.imwrite(tmp_path / "w.tif", stored, photometric="miniswhite")
    data = read_image(tmp_path / "w.tif")
    np.testing.assert_array_equal(image_to_array(data), 65535 - stored)


def test_sniffing_ignores_extension(tmp_path: Path) -> None:
    truth = ground_truth("RGB", 5, 7)
    wrong = tmp_path / "actually_png.jpg"
    Image.fromarray(truth).save(wrong, format="PNG")
    data = read_image(wrong)
    assert data.source_format == "PNG"
    np.testing.assert_array_equal(image_to_array(data), truth)


def test_sniff_image_magic_bytes() -> None:
    def encoded(fmt: str, **options: object) -> bytes:
        buffer = io.BytesIO()
        Image.new("RGB", (2, 2)).save(buffer, format=fmt, **options)
        return buffer.getvalue()[:32]

    for fmt in ("PNG", "JPEG", "TIFF", "WEBP", "BMP"):
        assert sniff_image(encoded(fmt)) == fmt
    assert sniff_image(b"MM\x00*\x00\x00\x00\x08") == "TIFF"  # big-endian TIFF
    assert sniff_image(b"II+\x00\x08\x00\x00\x00") == "TIFF"  # BigTIFF
    assert sniff_image(b"") is None
    assert sniff_image(b"BM this is just text, not a bitmap") is None
    assert sniff_image(b"GIF89a\x01\x00\x01\x00") is None
    assert sniff_image(b"RIFF\x00\x00\x00\x00WAVEfmt ") is None


# ---------------------------------------------------------------------------------------------
# refusals on read
# ---------------------------------------------------------------------------------------------


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    expect_input_error(tmp_path / "empty.png", "empty file")


def test_missing_file_and_directory(tmp_path: Path) -> None:
    expect_input_error(tmp_path / "missing.png", "no such file")
    (tmp_path / "dir.png").mkdir()
    expect_input_error(tmp_path / "dir.png", "directory")


def test_text_file(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("hello, this is not an image\n")
    expect_input_error(tmp_path / "notes.png", "unsupported input format (")


def test_gif_named_in_refusal(tmp_path: Path) -> None:
    Image.new("P", (3, 3)).save(tmp_path / "a.gif")
    error = expect_input_error(tmp_path / "a.gif", "unsupported input format")
    assert "GIF" in str(error)


@pytest.mark.parametrize("fmt,ext", [("PNG", ".png"), ("JPEG", ".jpg"), ("WEBP", ".webp"), ("TIFF", ".tif")])
def test_truncated(tmp_path: Path, fmt: str, ext: str) -> None:
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    options = {"compression": "tiff_deflate"} if fmt == "TIFF" else {}
    Image.fromarray(noise).save(buffer, format=fmt, **options)
    blob = buffer.getvalue()
    path = tmp_path / f"cut{ext}"
    path.write_bytes(blob[: len(blob) // 2])
    expect_input_error(path, "corrupt or truncated " + fmt)


def test_corrupt_16_bit_png(tmp_path: Path) -> None:
    blob = bytes(imagecodecs.png_encode(ground_truth("RGB;16", 17, 33)))
    path = tmp_path / "cut16.png"
    path.write_bytes(blob[: len(blob) // 2])
    expect_input_error(path, "corrupt or truncated PNG")


def crafted_png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IEND", b"")


def test_huge_png_header_refused_quickly(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(crafted_png(100000, 100000))
    start = time.perf_counter()
    error = expect_input_error(path, "too large")
    assert "100000x100000" in str(error)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("side", [20000, 70000])  # 4e8 px: our check; 4.9e9 px: Pillow's guard
def test_huge_bmp_header_refused_quickly(tmp_path: Path, side: int) -> None:
    header = struct.pack("<IiiHHIIiiII", 40, side, side, 1, 24, 0, 0, 2835, 2835, 0, 0)
    path = tmp_path / "bomb.bmp"
    path.write_bytes(b"BM" + struct.pack("<IHHI", 54, 0, 0, 54) + header)
    start = time.perf_counter()
    expect_input_error(path, "too large")
    assert time.perf_counter() - start < 1.0
    assert side * side > MAX_PIXELS


def test_huge_tiff_header_refused_quickly(tmp_path: Path) -> None:
    path = tmp_path / "bomb.tif"
    with tifffile.TiffWriter(path) as tif:  # header only: no data is written for shape-only pages
        tif.write(shape=(30000, 30000), dtype=np.uint8)
    start = time.perf_counter()
    expect_input_error(path, "too large")
    assert time.perf_counter() - start < 1.0


def test_zero_size_png(tmp_path: Path) -> None:
    path = tmp_path / "zero.png"
    path.write_bytes(crafted_png(0, 5))
    expect_input_error(path, "zero size")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_float_tiff(tmp_path: Path, bad: float) -> None:
    values = np.full((4, 5), 0.5, dtype=np.float32)
    values[2, 3] = bad
    tifffile.imwrite(tmp_path / "nan.tif", values)
    expect_input_error(tmp_path / "nan.tif", "NaN")


def test_out_of_range_float_tiff(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "hu.tif", np.full((4, 5), 1000.0, dtype=np.float32))
    expect_input_error(tmp_path / "hu.tif", "[0, 1]")


def test_multi_page_tiff(tmp_path: Path) -> None:
    with tifffile.TiffWriter(tmp_path / "stack.tif") as tif:
        for _ in range(3):
            tif.write(np.zeros((4, 5), dtype=np.uint8))
    expect_input_error(tmp_path / "stack.tif", "volume")


def test_multi_band_tiff(tmp_path: Path) -> None:
    cube = np.zeros((4, 5, 10), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "cube.tif", cube, photometric="minisblack", planarconfig="contig")
    expect_input_error(tmp_path / "cube.tif", "volume")


@pytest.mark.parametrize("fmt,ext", [("PNG", ".png"), ("WEBP", ".webp")])
def test_animated(tmp_path: Path, fmt: str, ext: str) -> None:
    frames = [Image.new("RGB", (4, 4), (i * 80, 0, 0)) for i in range(3)]
    options = {"lossless": True} if fmt == "WEBP" else {}
    frames[0].save(tmp_path / f"anim{ext}", format=fmt, save_all=True, append_images=frames[1:], **options)
    expect_input_error(tmp_path / f"anim{ext}", "animated")


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------


def test_overwrite_refused_and_no_temp_files(tmp_path: Path) -> None:
    data = image_from_array(ground_truth("RGB", 5, 7))
    target = tmp_path / "out.png"
    write_image(target, data)
    before = target.read_bytes()
    other = image_from_array(ground_truth("RGB", 5, 7, seed=9))
    with pytest.raises(FileExistsError):
        write_image(target, other)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
    write_image(target, other, overwrite=True)
    np.testing.assert_array_equal(image_to_array(read_image(target)), ground_truth("RGB", 5, 7, seed=9))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        write_image(tmp_path / "out.gif", image_from_array(ground_truth("RGB", 2, 2)))
    assert ".png" in str(info.value) and ".tif" in str(info.value) and ".gif" in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ext", [".jpg", ".bmp", ".webp"])
def test_sixteen_bit_refused_for_8_bit_formats(tmp_path: Path, ext: str) -> None:
    with pytest.raises(InputError) as info:
        write_image(tmp_path / f"out{ext}", image_from_array(ground_truth("RGB;16", 2, 2)))
    assert ".png" in str(info.value) and ".tif" in str(info.value)
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary left


def test_alpha_refused_for_jpeg(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="alpha"):
        write_image(tmp_path / "out.jpg", image_from_array(ground_truth("RGBA", 2, 2)))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "mode,ext,read_mode",
    [("L", ".webp", "RGB"), ("LA", ".webp", "RGBA"), ("1", ".webp", "RGB"), ("LA", ".bmp", "RGBA"), ("1", ".jpg", "L")],
)
def test_documented_write_conversions(tmp_path: Path, mode: str, ext: str, read_mode: str) -> None:
    truth = ground_truth(mode, 5, 7)
    data = image_from_array(truth)
    write_image(tmp_path / f"out{ext}", data)
    again = read_image(tmp_path / f"out{ext}")
    assert again.mode == read_mode
    if ext != ".jpg":
        gray = truth.astype(np.uint8) * 255 if mode == "1" else (truth if truth.ndim == 2 else truth[..., 0])
        for c in range(3):
            np.testing.assert_array_equal(image_to_array(again)[..., c], gray)
        if MODES[mode][1]:
            np.testing.assert_array_equal(again.alpha, truth[..., 1])


def test_pixels_are_rounded_to_bit_depth(tmp_path: Path) -> None:
    pixels = np.array([[[0.0, 0.4 / 255, 0.6 / 255, 1.0, 1.2, -0.3]]], dtype=np.float32)
    data = ImageData(pixels, None, 8, "L", None)
    write_image(tmp_path / "r.png", data)
    np.testing.assert_array_equal(image_to_array(read_image(tmp_path / "r.png")), [[0, 0, 1, 255, 255, 0]])


def test_one_bit_threshold_at_half(tmp_path: Path) -> None:
    data = ImageData(np.array([[[0.2, 0.49, 0.5, 0.9]]], dtype=np.float32), None, 8, "1", None)
    write_image(tmp_path / "b.png", data)
    again = read_image(tmp_path / "b.png")
    assert again.mode == "1"
    np.testing.assert_array_equal(again.pixels, [[[0, 0, 255, 255]]])  # mode "1" samples are 0/255


def test_nan_pixels_not_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError):  # refused where the samples are made, before any writing
        write_image(tmp_path / "n.png", ImageData(np.full((1, 2, 2), np.nan, dtype=np.float32), None, 8, "L", None))
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# arrays and validation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(MODES))
def test_array_round_trip(mode: str) -> None:
    truth = ground_truth(mode, 5, 7)
    data = image_from_array(truth)
    assert data.mode == mode and data.source_format == "ARRAY"
    back = image_to_array(data)
    assert back.dtype == truth.dtype
    np.testing.assert_array_equal(back, truth)


def test_float_array() -> None:
    values = np.random.default_rng(2).random((5, 7, 4))
    data = image_from_array(values)
    assert data.mode == "RGBA" and data.bit_depth == 8 and data.alpha.dtype == np.uint8
    np.testing.assert_allclose(data.pixels, np.moveaxis(values[..., :3], -1, 0) * 255, atol=0.5 + 1e-6)  # rounded to 8 bits
    assert image_from_array(values, bit_depth=16).mode == "RGBA;16"


@pytest.mark.parametrize(
    "array,fragment",
    [
        (np.zeros((4, 4), dtype=np.int32), "dtype"),
        (np.full((4, 4), np.nan), "NaN"),
        (np.full((4, 4), 2.0), "[0, 1]"),
        (np.zeros((4, 4, 5), dtype=np.uint8), "shape"),
        (np.zeros((0, 4), dtype=np.uint8), "zero size"),
        (np.zeros((4,), dtype=np.uint8), "shape"),
    ],
)
def test_bad_arrays(array: np.ndarray, fragment: str) -> None:
    with pytest.raises(InputError, match=None) as info:
        image_from_array(array)
    assert fragment in str(info.value)


def test_imagedata_validates_shapes() -> None:
    with pytest.raises(ValueError):
        ImageData(np.zeros((3, 2, 2), np.float32), None, 8, "L", None)
    with pytest.raises(ValueError):
        ImageData(np.zeros((3, 2, 2), np.float32), None, 8, "RGBA", None)
    with pytest.raises(ValueError):
        ImageData(np.zeros((3, 2, 2), np.float32), np.zeros((2, 2), np.uint8), 16, "RGBA;16", None)
