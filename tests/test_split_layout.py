"""Format 2.1, ``latent.split``: the low-pass channel group of a webp/png payload in chunks of its
own (formats/wlc.md, "Format 2.1"; walloc_cli/format/payload.py:chunk_rows)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from walloc_cli.cli.app import app
from walloc_cli.codecs.image import decode_image, encode_image
from walloc_cli.errors import FormatError
from walloc_cli.files.images import image_from_array, read_image
from walloc_cli.format.compact import decode_varint
from walloc_cli.format.container import MAGIC, WlcReader, WlcWriter, loads, wlc_version
from walloc_cli.format.header import validate_header
from walloc_cli.format.payload import PayloadError, chooses_split, chunk_rows, decode_planes, encode_planes

PHOTO = Path(__file__).resolve().parent.parent / "samples" / "photo.png"
REFERENCE = Path(__file__).resolve().parent.parent / "formats" / "reference"


def test_split_cuts_after_the_first_group_of_each_byte_half() -> None:
    # 12 channels = 4 groups of 40 rows (a 40 x 30 latent grid)
    assert chunk_rows((12, 40, 30), 8) == [160]
    assert chunk_rows((12, 40, 30), 8, split=True) == [40, 120]
    assert chunk_rows((12, 40, 30), 10, split=True) == [40, 120, 40, 120]  # high bytes, then low bytes
    # each part is still cut at WebP's 16383 rows
    assert chunk_rows((6, 20000, 8), 8, split=True) == [16383, 3617, 16383, 3617]
    # one group: nothing to split
    assert chunk_rows((3, 40, 30), 8, split=True) == [40]


@pytest.mark.parametrize("bits", [8, 10])
@pytest.mark.parametrize("codec", ["webp", "png"])
def test_split_planes_round_trip_and_need_the_flag(bits: int, codec: str) -> None:
    rng = np.random.default_rng(bits)
    limit = (1 << (bits - 1)) - 1
    q = np.clip(np.round(rng.laplace(0, 20, (12, 20, 24))), -limit, limit).astype(np.int32)
    q[:3] += 60  # a low-pass group unlike the rest
    q = np.clip(q, -limit, limit)
    chunks = encode_planes(q, bits, codec, 4, split=True)  # type: ignore[arg-type]
    assert len(chunks) == (4 if bits > 8 else 2)
    assert np.array_equal(decode_planes(chunks, q.shape, bits, codec, split=True), q)  # type: ignore[arg-type]
    with pytest.raises(PayloadError):  # read as the stacked layout: wrong count or sizes, never wrong latents
        decode_planes(chunks, q.shape, bits, codec, split=False)  # type: ignore[arg-type]


def test_writers_split_from_1024_positions_in_format_2_only() -> None:
    assert chooses_split((12, 32, 32), "webp", 2) and chooses_split((48, 32, 32), "png", 2)
    assert not chooses_split((12, 31, 32), "webp", 2)  # 992 positions: the extra image costs more
    assert not chooses_split((12, 32, 32), "webp", 1)  # no 1.x minor defines latent.split
    assert not chooses_split((12, 32, 32), "jxl", 2)  # jxl has its own layout
    assert not chooses_split((3, 64, 64), "webp", 2)  # one group


def _photo(side: int = 256) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(PHOTO).convert("RGB"))[:side, :side].copy()


def test_a_photo_is_written_split_as_2_1_and_smaller_than_stacked() -> None:
    image = image_from_array(_photo())
    data = encode_image(image, model="rgb-4x-v", step=0.78, payload="webp")
    assert data[8:10] == b"\x02\x01"
    header, chunks = loads(data)
    assert header["latent"]["split"] is True and header["latent"]["chunks"] == 2
    planes = [c.data for c in chunks if c.type == "LATN"]
    assert len(planes) == 2
    q = decode_planes(planes, tuple(header["latent"]["shape"]), header["latent"]["bits"], "webp", split=True)
    stacked = encode_planes(q, header["latent"]["bits"], "webp", 4, split=False)
    assert sum(map(len, planes)) < sum(map(len, stacked))  # -5% on this crop at q 75's step
    with wlc_version(1):  # 1.x: stacked, as before; the same latents, so the same pixels
        old = encode_image(image, model="rgb-4x-v", step=0.78)
    assert old[8] == 1 and "split" not in loads(old)[0]["latent"]
    assert np.array_equal(decode_image(data).pixels, decode_image(old).pixels)


def test_form_byte_bit_7_is_the_split_flag() -> None:
    data = (REFERENCE / "wlc21-rgb-4x-v-256x256.wlc").read_bytes()
    length, at = decode_varint(data, 10, 1 << 20, "header length")
    assert data[at] & 0x80
    assert WlcReader(io.BytesIO(data)).header["latent"]["split"] is True


def _as_version(data: bytes, minor: int) -> bytes:
    """``data`` (a 2.x file) relabelled as 2.``minor``, header CRC recomputed."""
    length, at = decode_varint(data, 10, 1 << 20, "header length")
    head = data[:8] + bytes([2, minor]) + data[10 : at + length]
    return head + struct.pack("<I", zlib.crc32(head)) + data[at + length + 4 :]


def test_a_2_0_file_cannot_declare_split() -> None:
    data = (REFERENCE / "wlc21-rgb-4x-v-256x256.wlc").read_bytes()
    assert data.startswith(MAGIC)
    with pytest.raises(FormatError, match=r"latent.split is a format 2.1 field, this file is 2.0"):
        WlcReader(io.BytesIO(_as_version(data, 0)))
    assert WlcReader(io.BytesIO(_as_version(data, 7))).header["latent"]["split"] is True  # a later minor reads


def test_cli_names_a_2_0_file_that_declares_split(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wlc"
    bad.write_bytes(_as_version((REFERENCE / "wlc21-rgb-4x-v-256x256.wlc").read_bytes(), 0))
    result = CliRunner().invoke(app, ["decompress", str(bad), "-o", str(tmp_path / "out.png")])
    assert result.exit_code != 0
    assert "bad.wlc" in result.output and "latent.split is a format 2.1 field" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out.png").exists()


def test_a_1_x_writer_refuses_split() -> None:
    header, _ = loads((REFERENCE / "wlc21-rgb-4x-v-256x256.wlc").read_bytes())
    with pytest.raises(ValueError, match="1.x file cannot declare it"):
        WlcWriter(io.BytesIO(), header, major=1)


@pytest.mark.parametrize("split, payload", [(False, "webp"), (1, "webp"), (True, "jxl")])
def test_header_split_must_be_true_with_webp_or_png(split: object, payload: str) -> None:
    header, _ = loads((REFERENCE / "wlc21-rgb-4x-v-256x256.wlc").read_bytes())
    header["latent"].update(split=split, payload=payload)
    with pytest.raises(FormatError, match=r"invalid header: split="):
        validate_header(header)


def test_cli_round_trip_of_a_split_file(tmp_path: Path) -> None:
    from PIL import Image

    source = tmp_path / "crop.png"
    Image.fromarray(_photo(320)).save(source)
    runner = CliRunner()
    result = runner.invoke(app, ["compress", str(source), "-o", str(tmp_path / "a.wlc"), "-q", "50", "--payload", "webp"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a.wlc").read_bytes()[8:10] == b"\x02\x01"
    result = runner.invoke(app, ["decompress", str(tmp_path / "a.wlc"), "-o", str(tmp_path / "a.png")])
    assert result.exit_code == 0, result.output
    decoded = read_image(tmp_path / "a.png").pixels.astype(np.float64)
    mse = np.mean((decoded - _photo(320).transpose(2, 0, 1)) ** 2)
    assert 10 * np.log10(255**2 / mse) > 30  # q 50 of the sample photo: ~33 dB
