"""EXIF orientation, EXIF/XMP kept beside the pixels, and ``--metadata`` (walloc_cli.files.image_meta).

Orientation is applied to the pixels when an image is read (so it is never lost, whatever is
kept); EXIF and XMP travel in the ancillary ``exif``/``xmp `` chunks (format 1.2) and come back in
PNG, JPEG, TIFF and WebP outputs; the default keeps the ICC profile only."""

from __future__ import annotations

import io
import json
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageOps
from typer.testing import CliRunner

from icc_profiles import p3_like_profile
from walloc_cli.format import container
from walloc_cli.api.files import compress_file, decompress_file, describe
from walloc_cli.codecs.image import decode_image
from walloc_cli.cli.app import app
from walloc_cli.format.container import Chunk, loads
from walloc_cli.errors import FormatError, InputError
from walloc_cli.files.image_meta import exif_orientation, metadata_orientation, orient, parse_metadata
from walloc_cli.files.images import ImageData, image_to_array, read_image, write_image

ICC = p3_like_profile()  # not sRGB: kept byte for byte (an sRGB one becomes a flag, test_srgb.py)
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" '
    b'tiff:Orientation="6"><dc:creator>Ada</dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>'
)
runner = CliRunner()


def phone_exif(orientation: int = 6) -> Image.Exif:
    """What a phone writes: camera tags, the EXIF sub-IFD (exposure) and a GPS position."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Acme"  # Make
    exif[0x0110] = "Phone 9"  # Model
    exif[0x0132] = "2026:12:05 08:00:00"  # DateTime
    exif.get_ifd(0x8769)[0x829A] = 1 / 250  # ExposureTime
    exif.get_ifd(0x8769)[0x8827] = 100  # ISO
    exif.get_ifd(0x8825)[2] = (51.0, 30.0, 0.0)  # GPSLatitude
    return exif


def photo(height: int = 40, width: int = 56) -> np.ndarray:
    """A smooth (H, W, 3) uint8 picture whose left-right and top-bottom halves differ clearly."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // width, y * 255 // height, (x + y) * 127 // (width + height)], -1).astype(np.uint8)


def phone_jpeg(path: Path, orientation: int = 6) -> Path:
    """A JPEG stored sideways, with EXIF orientation ``orientation``, XMP and an ICC profile."""
    Image.fromarray(photo()).save(path, exif=phone_exif(orientation), xmp=XMP, icc_profile=ICC, quality=95)
    return path


def upright_reference(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((a.astype(float) - b.astype(float)) ** 2)))


def wlc_chunks(path: Path) -> set[str]:
    return {chunk.type for chunk in loads(path.read_bytes())[1]}


# ---------------------------------------------------------------------------------------------
# orientation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_applied_as_pillow_does(tmp_path: Path, orientation: int) -> None:
    Image.fromarray(photo(5, 7)).save(tmp_path / "o.png", exif=phone_exif(orientation))
    image = read_image(tmp_path / "o.png")
    np.testing.assert_array_equal(image_to_array(image), upright_reference(tmp_path / "o.png"))
    assert exif_orientation(image.exif) == 1  # applied once: a viewer must not rotate again


def test_phone_jpeg_with_orientation_6_reads_upright(tmp_path: Path) -> None:
    image = read_image(phone_jpeg(tmp_path / "phone.jpg"))
    assert (image.height, image.width) == (56, 40)  # stored 40 x 56, displayed rotated
    np.testing.assert_array_equal(image_to_array(image), upright_reference(tmp_path / "phone.jpg"))
    assert metadata_orientation(image.exif, image.xmp) == 1
    assert b'tiff:Orientation="1"' in image.xmp


def test_orientation_in_xmp_only_is_applied(tmp_path: Path) -> None:
    Image.fromarray(photo(5, 7)).save(tmp_path / "x.jpg", xmp=XMP.replace(b'"6"', b'"8"'), quality=95)
    image = read_image(tmp_path / "x.jpg")
    assert (image.height, image.width) == (7, 5)
    np.testing.assert_array_equal(image_to_array(image), upright_reference(tmp_path / "x.jpg"))


def test_orientation_of_16_bit_png_after_its_pixels_is_applied(tmp_path: Path) -> None:
    """16-bit PNGs are decoded by imagecodecs: their eXIf is read from the chunks, wherever it is."""
    import imagecodecs

    from walloc_cli.files.image_meta import png_metadata_chunks

    samples = (photo(5, 7).astype(np.uint16) * 257)
    png = bytes(imagecodecs.png_encode(samples))
    exif = phone_exif(8).tobytes()[6:]
    end = png.rindex(b"IEND") - 4
    (tmp_path / "o16.png").write_bytes(png[:end] + png_metadata_chunks(exif, None) + png[end:])
    image = read_image(tmp_path / "o16.png")
    assert image.mode == "RGB;16" and (image.height, image.width) == (7, 5)
    np.testing.assert_array_equal(image_to_array(image), np.rot90(samples, 1))


def test_tiff_orientation_tag_is_applied(tmp_path: Path) -> None:
    samples = photo(5, 7).astype(np.uint16) * 257
    tifffile.imwrite(tmp_path / "o.tif", samples, photometric="rgb", extratags=[(274, 3, 1, 6, True)])
    image = read_image(tmp_path / "o.tif")
    np.testing.assert_array_equal(image_to_array(image), np.rot90(samples, -1))


def test_xmp_orientation_mirror_is_set_upright_when_exif_wins(tmp_path: Path) -> None:
    """EXIF says 1 and XMP says 6: EXIF wins (as in Pillow), and the kept XMP must agree, else a
    reader of an output without the EXIF tag would turn the picture."""
    Image.fromarray(photo(5, 7)).save(tmp_path / "c.jpg", exif=phone_exif(1), xmp=XMP, quality=95)
    image = read_image(tmp_path / "c.jpg")
    assert (image.height, image.width) == (5, 7) and b'tiff:Orientation="1"' in image.xmp
    write_image(tmp_path / "c.tif", image)
    assert (read_image(tmp_path / "c.tif").height, read_image(tmp_path / "c.tif").width) == (5, 7)


def test_orient_keeps_leading_axes_and_dtype() -> None:
    planes = np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4)
    for orientation in range(1, 9):
        turned = orient(planes, orientation)
        assert turned.dtype == planes.dtype and turned.flags.c_contiguous
        assert turned.shape == ((2, 4, 3) if orientation >= 5 else (2, 3, 4))
        for index in range(2):
            reference = ImageOps.exif_transpose(_tagged(planes[index].astype(np.uint8), orientation))
            np.testing.assert_array_equal(turned[index], np.asarray(reference))


def _tagged(array: np.ndarray, orientation: int) -> Image.Image:
    image = Image.fromarray(array)
    image.getexif()[0x0112] = orientation
    return image


# ---------------------------------------------------------------------------------------------
# through walloc
# ---------------------------------------------------------------------------------------------


def test_orientation_6_jpeg_round_trips_upright(tmp_path: Path) -> None:
    source = phone_jpeg(tmp_path / "phone.jpg")
    result = runner.invoke(app, ["compress", str(source), "-q", "90", "--no-psnr", "--quiet"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["decompress", str(tmp_path / "phone.wlc"), "-o", str(tmp_path / "out.png"), "--quiet"])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "out.png") as out:
        assert out.size == (40, 56)  # (width, height): upright
        assert out.getexif().get(0x0112, 1) == 1
        assert psnr(np.asarray(out.convert("RGB")), upright_reference(source)) > 30


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif", ".webp"])
def test_exif_and_xmp_come_back_in_each_output_format(tmp_path: Path, ext: str) -> None:
    source = phone_jpeg(tmp_path / "phone.jpg")
    compress_file(source, tmp_path / "phone.wlc", quality=50, measure=False, metadata="all")
    assert wlc_chunks(tmp_path / "phone.wlc") >= {"ICCP", "exif", "xmp "}
    kept = read_image(source)  # what walloc keeps: the blocks with orientation 1
    decompress_file(tmp_path / "phone.wlc", tmp_path / f"out{ext}")
    back = read_image(tmp_path / f"out{ext}")
    assert back.xmp == kept.xmp and back.icc_profile == ICC
    if ext != ".tif":  # PNG eXIf, JPEG APP1 and WebP EXIF hold the block itself
        assert back.exif == kept.exif
    with Image.open(tmp_path / f"out{ext}") as out:
        exif = out.getexif()
        assert exif.get(0x010F) == "Acme" and exif.get(0x0110) == "Phone 9"
        assert exif.get_ifd(0x8769)[0x829A] == pytest.approx(1 / 250)
        assert exif.get_ifd(0x8825)[2] == (51.0, 30.0, 0.0)
        assert exif.get(0x0112, 1) == 1 and out.size == (40, 56)


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_exif_and_xmp_come_back_in_16_bit_outputs(tmp_path: Path, ext: str) -> None:
    xmp = XMP.replace(b'"6"', b'"1"')
    image = ImageData(photo(6, 9).transpose(2, 0, 1).astype(np.float32) / 255, None, 16, "RGB;16", None, "PNG", exif=phone_exif(1).tobytes()[6:], xmp=xmp)
    write_image(tmp_path / f"o{ext}", image)
    back = read_image(tmp_path / f"o{ext}")
    assert back.mode == "RGB;16" and back.xmp == xmp
    parsed = Image.Exif()
    parsed.load(back.exif)
    assert parsed.get(0x0110) == "Phone 9" and parsed.get_ifd(0x8825)[2] == (51.0, 30.0, 0.0)


def test_metadata_none_drops_blocks_but_never_the_orientation(tmp_path: Path) -> None:
    source = phone_jpeg(tmp_path / "phone.jpg")
    result = runner.invoke(app, ["compress", str(source), "--metadata", "none", "--no-psnr", "--quiet"])
    assert result.exit_code == 0, result.output
    assert wlc_chunks(tmp_path / "phone.wlc") == {"LATN"}
    decompress_file(tmp_path / "phone.wlc", tmp_path / "out.jpg")
    with Image.open(tmp_path / "out.jpg") as out:
        assert out.size == (40, 56)  # upright although no EXIF is left to say so
        assert "exif" not in out.info and "xmp" not in out.info and "icc_profile" not in out.info
        assert psnr(np.asarray(out), upright_reference(source)) > 25


def test_default_keeps_the_icc_profile_only(tmp_path: Path) -> None:
    source = phone_jpeg(tmp_path / "phone.jpg")
    report = compress_file(source, tmp_path / "phone.wlc", measure=False, wlc_version=1)
    data = Path(report.output).read_bytes()
    assert wlc_chunks(tmp_path / "phone.wlc") == {"LATN", "ICCP"}
    assert data[8:10] in (b"\x01\x00", b"\x01\x03")  # nothing of 1.2 used (1.3: tight latent bits)
    decoded = decode_image(data)
    assert decoded.icc_profile == ICC and decoded.exif is None and decoded.xmp is None
    assert (decoded.height, decoded.width) == (56, 40)


@pytest.mark.parametrize(
    "value,kept",
    [("all", {"icc", "exif", "xmp"}), ("none", set()), ("icc", {"icc"}), ("exif,xmp", {"exif", "xmp"}), (" EXIF , icc ", {"exif", "icc"}), (["xmp"], {"xmp"})],
)
def test_metadata_option_values(value: object, kept: set[str]) -> None:
    assert parse_metadata(value) == kept  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value,fragment",
    [("gps", "'gps' is not one of all, none, icc, exif, xmp"), ("icc,,exif", "'' is not one of"), ("all,icc", "'all' and 'none' stand alone"), ("", "'' is not one of")],
)
def test_bad_metadata_value_is_a_one_line_usage_error(tmp_path: Path, value: str, fragment: str) -> None:
    source = phone_jpeg(tmp_path / "phone.jpg")
    result = runner.invoke(app, ["compress", str(source), "--metadata", value])
    assert result.exit_code == 2
    assert "Traceback" not in result.output and not (tmp_path / "phone.wlc").exists()
    lines = [line for line in result.output.splitlines() if "--metadata" in line and fragment in line]
    assert len(lines) == 1, result.output
    with pytest.raises(InputError, match="metadata"):
        compress_file(source, tmp_path / "api.wlc", metadata=value)


def test_info_lists_the_metadata_kept(tmp_path: Path) -> None:
    source = phone_jpeg(tmp_path / "phone.jpg")
    compress_file(source, tmp_path / "all.wlc", metadata="all", measure=False, wlc_version=1)
    compress_file(source, tmp_path / "none.wlc", metadata="none", measure=False, wlc_version=1)
    assert describe(tmp_path / "all.wlc")["metadata"] == ["icc", "exif", "xmp"]
    result = runner.invoke(app, ["info", str(tmp_path / "all.wlc"), str(tmp_path / "none.wlc")])
    assert result.exit_code == 0, result.output
    assert "metadata  icc, exif, xmp" in result.output and "metadata  none" in result.output
    assert "v1.2" in result.output or "v1.3" in result.output  # exif/xmp came in 1.2 (1.3: tight latent bits)
    result = runner.invoke(app, ["info", "--json", str(tmp_path / "none.wlc")])
    assert json.loads(result.output)["metadata"] == []


# ---------------------------------------------------------------------------------------------
# the chunks
# ---------------------------------------------------------------------------------------------


def test_metadata_chunks_are_ancillary_an_old_reader_skips_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = phone_jpeg(tmp_path / "phone.jpg")
    compress_file(source, tmp_path / "all.wlc", metadata="all", quality=50, measure=False, wlc_version=1)  # 8-bit indices: no tight bits, so a 1.2 file
    data = (tmp_path / "all.wlc").read_bytes()
    assert data[8:10] == b"\x01\x02"
    assert all(chunk.type[0].islower() for chunk in loads(data)[1] if chunk.type in ("exif", "xmp "))
    full = decode_image(data)
    # a 1.0/1.1 reader does not know the types: it skips them and still shows the photo upright
    monkeypatch.setattr(container, "KNOWN_CHUNKS", frozenset({"LATN", "ALPH", "ICCP", "AUDB", "VOLT", "END "}))
    old = decode_image(data)
    assert old.exif is None and old.xmp is None
    np.testing.assert_array_equal(image_to_array(old), image_to_array(full))


def test_metadata_chunk_inflating_past_the_limit_is_refused(tmp_path: Path) -> None:
    source = phone_jpeg(tmp_path / "phone.jpg")
    compress_file(source, tmp_path / "all.wlc", metadata="all", quality=50, measure=False, wlc_version=1)  # 8-bit indices: the crafted 1.0 copy below is valid
    header, chunks = loads((tmp_path / "all.wlc").read_bytes())
    bomb = Chunk("xmp ", zlib.compress(bytes((16 << 20) + 1), 9))
    crafted = container.dumps(header, [bomb if chunk.type == "xmp " else chunk for chunk in chunks])
    with pytest.raises(FormatError, match="XMP chunk is corrupt or larger than"):
        decode_image(crafted)


def test_metadata_too_large_for_jpeg_is_refused_with_advice(tmp_path: Path) -> None:
    image = ImageData(photo(4, 4).transpose(2, 0, 1).astype(np.float32) / 255, None, 8, "RGB", xmp=b"<x>" + b" " * 70000 + b"</x>")
    with pytest.raises(InputError, match=r"XMP block \(70007 bytes\) does not fit a JPEG"):
        write_image(tmp_path / "o.jpg", image)
    assert not (tmp_path / "o.jpg").exists()
    write_image(tmp_path / "o.png", image)  # PNG holds it
    assert read_image(tmp_path / "o.png").xmp == image.xmp


def test_to_standard_output_keeps_metadata(tmp_path: Path) -> None:
    source = phone_jpeg(tmp_path / "phone.jpg")
    compress_file(source, tmp_path / "all.wlc", metadata="exif", measure=False)
    result = runner.invoke(app, ["decompress", str(tmp_path / "all.wlc"), "-o", "-"])
    assert result.exit_code == 0
    with Image.open(io.BytesIO(result.stdout_bytes)) as out:
        assert out.getexif().get(0x0110) == "Phone 9" and "xmp" not in out.info


# ---------------------------------------------------------------------------------------------
# damage: metadata never fails a picture; a format's limits are refused before encoding
# ---------------------------------------------------------------------------------------------


def test_damaged_exif_is_kept_as_bytes_and_refused_only_by_tiff(tmp_path: Path) -> None:
    block = bytearray(phone_exif(6).tobytes()[6:])
    block[0:2] = b"MX"  # no longer a TIFF header: Pillow cannot parse it, orientation unknown
    (tmp_path / "d.png").write_bytes(_png_with_exif(photo(5, 7), bytes(block)))
    image = read_image(tmp_path / "d.png")
    assert image.exif == bytes(block) and (image.height, image.width) == (5, 7)
    write_image(tmp_path / "back.png", image)
    assert read_image(tmp_path / "back.png").exif == bytes(block)
    with pytest.raises(InputError, match=r"EXIF block is damaged .* write a \.png, \.jpg or \.webp file"):
        write_image(tmp_path / "back.tif", image)
    assert not (tmp_path / "back.tif").exists()


def _png_with_exif(array: np.ndarray, exif: bytes) -> bytes:
    from walloc_cli.files.image_meta import png_metadata_chunks, splice_png

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return splice_png(buffer.getvalue(), png_metadata_chunks(exif, None))


def _tiff_with_tag_count(tag: int, count: int) -> bytes:
    """A small TIFF whose SHORT tag ``tag`` claims ``count`` (<= 2, inline) values."""
    import struct

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, photo(5, 7), photometric="rgb", rowsperstrip=5, extratags=[(274, 3, 1, 1, True)])
    data = bytearray(buffer.getvalue())
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as handle:
        entry = handle.pages.first.tags[tag].offset
    kind = struct.unpack_from("<H", data, entry + 2)[0]
    value = struct.unpack_from("<H" if kind == 3 else "<I", data, entry + 8)[0]
    struct.pack_into("<HIHH", data, entry + 2, 3, count, value, value)  # SHORT x count, inline
    return bytes(data)


def test_tiff_width_with_several_values_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "t.tif").write_bytes(_tiff_with_tag_count(256, 2))
    with pytest.raises(InputError, match="corrupt TIFF image"):
        read_image(tmp_path / "t.tif")


@pytest.mark.parametrize("ext,side", [(".webp", 16384)])
def test_output_too_large_for_the_format_is_refused_before_encoding(tmp_path: Path, ext: str, side: int) -> None:
    image = ImageData(np.zeros((3, 1, side), np.float32), None, 8, "RGB")
    with pytest.raises(InputError, match=f"holds at most {side - 1} pixels per side"):
        write_image(tmp_path / f"wide{ext}", image)
    assert not (tmp_path / f"wide{ext}").exists()


def test_orientation_in_a_crafted_exif_chunk_is_not_passed_on(tmp_path: Path) -> None:
    """The pixels in a .wlc are upright; a file whose exif chunk still says 6 (another writer)
    must not make the output's viewer turn the picture."""
    source = phone_jpeg(tmp_path / "phone.jpg")
    compress_file(source, tmp_path / "all.wlc", metadata="all", quality=50, measure=False, wlc_version=1)  # 8-bit indices: the crafted 1.0 copy below is valid
    header, chunks = loads((tmp_path / "all.wlc").read_bytes())
    sideways = phone_exif(6).tobytes()[6:]
    crafted = [Chunk("exif", zlib.compress(sideways)) if chunk.type == "exif" else chunk for chunk in chunks]
    (tmp_path / "crafted.wlc").write_bytes(container.dumps(header, crafted))
    decompress_file(tmp_path / "crafted.wlc", tmp_path / "out.jpg")
    with Image.open(tmp_path / "out.jpg") as out:
        assert out.size == (40, 56) and out.getexif().get(0x0112) == 1


@pytest.mark.parametrize("endian,kind", [("<", 3), (">", 3), (">", 4)], ids=["II-short", "MM-short", "MM-long"])
def test_orientation_is_rewritten_in_place_every_other_byte_kept(tmp_path: Path, endian: str, kind: int) -> None:
    """A hand-made block (not Pillow's): IFD0 with Make and Orientation 3, then a maker-note-like
    tail that holds absolute offsets; only the orientation value may change."""
    import struct

    order = b"II" if endian == "<" else b"MM"
    make = b"Acme\x00"
    value = struct.pack(endian + ("HH" if kind == 3 else "I"), *((3, 0) if kind == 3 else (3,)))
    entries = struct.pack(endian + "HHII", 0x010F, 2, len(make), 8 + 2 + 24 + 4) + struct.pack(endian + "HHI", 0x0112, kind, 1) + value
    block = order + struct.pack(endian + "HI", 42, 8) + struct.pack(endian + "H", 2) + entries + bytes(4) + make + b"tail\xff\x00"
    (tmp_path / "b.png").write_bytes(_png_with_exif(photo(5, 7), block))
    image = read_image(tmp_path / "b.png")
    assert (image.height, image.width) == (5, 7)  # orientation 3: rotated 180, same size
    with Image.open(tmp_path / "b.png") as stored:
        np.testing.assert_array_equal(image_to_array(image), np.asarray(stored)[::-1, ::-1])
    assert exif_orientation(image.exif) == 1
    changed = [i for i, (a, b) in enumerate(zip(block, image.exif)) if a != b]
    assert len(image.exif) == len(block) and len(changed) == 1
