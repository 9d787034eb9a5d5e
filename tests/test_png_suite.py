"""Every kind of valid PNG the PngSuite covers reads exactly (or is refused precisely), and the
16-bit transparency-key files (PngSuite tbbn2c16, tbgn2c16, tbwn0g16) round-trip with their
transparency. The PngSuite is not shipped: the PNGs are written here chunk by chunk, so the test
does not depend on the writer whose reader it checks."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from walloc_cli.cli.app import app
from walloc_cli.errors import InputError
from walloc_cli.files.images import image_to_array, read_image, write_image

# Adam7 passes: (first column, first row, column step, row step)
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def packed_rows(samples: np.ndarray, depth: int) -> bytes:
    """``(H, W, S)`` integers -> PNG scanlines (filter byte 0, big-endian, bits packed MSB first)."""
    out = b""
    for row in samples:
        flat = row.reshape(-1)
        if depth == 16:
            raw = flat.astype(">u2").tobytes()
        elif depth == 8:
            raw = flat.astype(np.uint8).tobytes()
        else:
            raw = np.packbits(np.unpackbits(flat.astype(np.uint8)[:, None], axis=1)[:, 8 - depth:]).tobytes()
        out += b"\x00" + raw
    return out


def make_png(samples: np.ndarray, colour_type: int, depth: int, *, trns: bytes | None = None, plte: bytes | None = None, interlace: bool = False) -> bytes:
    """A PNG of ``samples`` ``(H, W, S)`` (palette indices for colour type 3), optionally Adam7."""
    height, width = samples.shape[:2]
    if interlace:
        data = b"".join(
            packed_rows(samples[y0::dy, x0::dx], depth)
            for x0, y0, dx, dy in ADAM7
            if samples[y0::dy, x0::dx].size
        )
    else:
        data = packed_rows(samples, depth)
    out = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, int(interlace)))
    if plte is not None:
        out += png_chunk(b"PLTE", plte)
    if trns is not None:
        out += png_chunk(b"tRNS", trns)
    return out + png_chunk(b"IDAT", zlib.compress(data)) + png_chunk(b"IEND", b"")


def expected_samples(samples: np.ndarray, colour_type: int, depth: int, trns: bytes | None, plte: bytes | None) -> np.ndarray:
    """What a reader must return: 8/16-bit samples (low depths scaled to 0..255, palettes
    expanded), plus an alpha plane where a tRNS chunk gives transparency."""
    if colour_type == 3:
        assert plte is not None
        rgb = np.frombuffer(plte, np.uint8).reshape(-1, 3)[samples[..., 0]]
        if trns is None:
            return rgb
        alpha_table = np.full(256, 255, np.uint8)
        alpha_table[: len(trns)] = np.frombuffer(trns, np.uint8)
        return np.dstack([rgb, alpha_table[samples[..., 0]]])
    top = (1 << depth) - 1
    values = samples.astype(np.uint16 if depth == 16 else np.uint8) if depth >= 8 else (samples * (255 // top)).astype(np.uint8)
    if trns is None:
        return values
    key = np.array(struct.unpack(f">{len(trns) // 2}H", trns))
    peak = 65535 if depth == 16 else 255
    alpha = np.where((samples == key).all(-1), 0, peak).astype(values.dtype)
    return np.dstack([values, alpha])


# (colour type, bit depth): every combination PNG allows (the PngSuite's basn/basi files)
KINDS = [(0, 1), (0, 2), (0, 4), (0, 8), (0, 16), (2, 8), (2, 16), (3, 1), (3, 2), (3, 4), (3, 8), (4, 8), (4, 16), (6, 8), (6, 16)]


def suite_case(colour_type: int, depth: int, with_trns: bool, seed: int = 0) -> tuple[np.ndarray, bytes | None, bytes | None]:
    rng = np.random.default_rng(seed)
    samples_per_pixel = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour_type]
    samples = rng.integers(0, 1 << depth, (11, 13, samples_per_pixel))
    plte = trns = None
    if colour_type == 3:
        plte = bytes(rng.integers(0, 256, 3 << depth).astype(np.uint8))
        if with_trns:  # shorter than the palette, as allowed: the rest is opaque
            trns = bytes(rng.integers(0, 256, max(1, (1 << depth) - 1)).astype(np.uint8))
    elif with_trns:
        samples[0, 0] = samples[5, 7]  # the key occurs at least twice
        trns = b"".join(struct.pack(">H", int(v)) for v in samples[5, 7])
    return samples, trns, plte


@pytest.mark.parametrize("interlace", [False, True], ids=["plain", "adam7"])
@pytest.mark.parametrize("with_trns", [False, True], ids=["opaque", "trns"])
@pytest.mark.parametrize("colour_type,depth", KINDS)
def test_every_png_kind_round_trips_exactly(tmp_path: Path, colour_type: int, depth: int, with_trns: bool, interlace: bool) -> None:
    """Read exactly (low depths scaled, palettes expanded, tRNS as alpha), written back as PNG and
    read again unchanged."""
    if with_trns and colour_type in (4, 6):
        pytest.skip("tRNS is not allowed with an alpha channel")
    samples, trns, plte = suite_case(colour_type, depth, with_trns)
    path = tmp_path / "suite.png"
    path.write_bytes(make_png(samples, colour_type, depth, trns=trns, plte=plte, interlace=interlace))
    image = read_image(path)
    got = image_to_array(image)
    if image.mode == "1":
        got = got.astype(np.uint8) * 255
    want = expected_samples(samples, colour_type, depth, trns, plte)
    assert got.reshape(want.shape).dtype == want.dtype
    np.testing.assert_array_equal(got.reshape(want.shape), want)
    write_image(tmp_path / "back.png", image)
    again = read_image(tmp_path / "back.png")
    assert again.mode == image.mode
    np.testing.assert_array_equal(image_to_array(again), image_to_array(image))


@pytest.mark.parametrize("colour_type,mode", [(0, "LA;16"), (2, "RGBA;16")])
def test_sixteen_bit_png_with_trns_round_trips_with_transparency(tmp_path: Path, colour_type: int, mode: str) -> None:
    """PngSuite tbwn0g16 (gray) and tbbn2c16/tbgn2c16 (RGB): refused as corrupt before."""
    samples, trns, _ = suite_case(colour_type, 16, True, seed=3)
    source = tmp_path / "t16.png"
    source.write_bytes(make_png(samples, colour_type, 16, trns=trns))
    image = read_image(source)
    assert image.mode == mode and image.bit_depth == 16
    transparent = (samples == samples[5, 7]).all(-1)
    np.testing.assert_array_equal(image.alpha, np.where(transparent, 0, 65535))
    write_image(tmp_path / "back.png", image)
    again = read_image(tmp_path / "back.png")
    assert again.mode == mode
    np.testing.assert_array_equal(image_to_array(again), image_to_array(image))


def test_sixteen_bit_trns_png_through_walloc_keeps_transparency(tmp_path: Path) -> None:
    samples, trns, _ = suite_case(2, 16, True, seed=4)
    source = tmp_path / "tbgn2c16.png"
    source.write_bytes(make_png(samples, 2, 16, trns=trns))
    runner = CliRunner()
    result = runner.invoke(app, ["compress", str(source), "--no-psnr", "--quiet"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["decompress", str(tmp_path / "tbgn2c16.wlc"), "-o", str(tmp_path / "out.png"), "--quiet"])
    assert result.exit_code == 0, result.output
    out = read_image(tmp_path / "out.png")
    assert out.mode == "RGBA;16"
    np.testing.assert_array_equal(out.alpha, np.where((samples == samples[5, 7]).all(-1), 0, 65535))


@pytest.mark.parametrize("depth", [2, 4])
def test_low_bit_gray_trns_key_is_matched_before_scaling(tmp_path: Path, depth: int) -> None:
    """PngSuite tbbn0g04: Pillow compared the unscaled key with scaled samples (all opaque)."""
    samples = np.arange(1 << depth).reshape(1, -1, 1).repeat(2, axis=0)
    path = tmp_path / "g.png"
    path.write_bytes(make_png(samples, 0, depth, trns=struct.pack(">H", 1)))
    image = read_image(path)
    assert image.mode == "LA"
    np.testing.assert_array_equal(image.alpha, np.where(samples[..., 0] == 1, 0, 255))


def ihdr_only(width: int, height: int, depth: int, colour_type: int, interlace: int = 0) -> bytes:
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, interlace))
    return b"\x89PNG\r\n\x1a\n" + header + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + png_chunk(b"IEND", b"")


@pytest.mark.parametrize(
    "data,fragment",
    [
        (ihdr_only(4, 4, 8, 1), "colour type 1 does not exist"),  # PngSuite xc1n0g08
        (ihdr_only(4, 4, 8, 9), "colour type 9 does not exist"),  # xc9n2c08
        (ihdr_only(4, 4, 0, 2), "bit depth 0 is not allowed for colour type 2"),  # xd0n2c08
        (ihdr_only(4, 4, 3, 2), "bit depth 3 is not allowed for colour type 2"),  # xd3n2c08
        (ihdr_only(4, 4, 99, 2), "bit depth 99 is not allowed"),  # xd9n2c08
        (ihdr_only(4, 4, 16, 3), "bit depth 16 is not allowed for colour type 3, palette"),
        (ihdr_only(4, 4, 8, 2, interlace=2), "interlace method 2"),
        (ihdr_only(4, 4, 8, 3), "palette image without a palette"),  # was an AssertionError
        (make_png(np.zeros((4, 4, 1), np.uint16), 0, 16)[:-40] + png_chunk(b"IEND", b""), "corrupt or truncated PNG image"),
    ],
    ids=["ct1", "ct9", "d0", "d3", "d99", "palette16", "interlace2", "no-plte", "short16"],
)
def test_invalid_png_is_refused_precisely(tmp_path: Path, data: bytes, fragment: str) -> None:
    path = tmp_path / "bad.png"
    path.write_bytes(data)
    with pytest.raises(InputError) as caught:
        read_image(path)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)
