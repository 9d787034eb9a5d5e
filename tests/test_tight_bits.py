"""Tight latent bits (format 1.3): ``latent.bits`` declares the bits the indices need, and
``walloc info`` reports the coded latents' bytes (``payload_bytes``) beside the file's.

A writer declares ``format.header.tight_bits``: the fewest bits that hold the largest index, never
fewer than 8 nor more than the model's index bits, so a 9-15-bit file whose indices fit a byte
stores one byte plane instead of two. Readers accept ``bits <= index_bits(step)`` in 1.3 files and
keep requiring equality in older ones (so 1.0-1.2 files read exactly as before).
"""

from __future__ import annotations

from collections.abc import Iterator

import io
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from walloc_cli.api.files import describe
from walloc_cli.api.latents import read_latents
from walloc_cli.cli.app import app
from walloc_cli.codecs.image import decode_image, encode_image
from walloc_cli.errors import FormatError
from walloc_cli.files.images import image_from_array, read_image
from walloc_cli.format.container import Chunk, WlcReader, WlcWriter, loads, wlc_version
from walloc_cli.format.header import check_latent_bits, tight_bits
from walloc_cli.format.payload import decode_planes, encode_planes
from walloc_cli.model.zoo import load_model


@pytest.fixture(autouse=True, scope="module")
def _format_1() -> Iterator[None]:
    """These tests are of the 1.x writer's minor versions (1.3 for this feature): write 1.x."""
    with wlc_version(1):
        yield

REFERENCE = Path(__file__).resolve().parent.parent / "formats" / "reference"


def photo(height: int = 24, width: int = 32) -> np.ndarray:
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:height, 0:width] / 6.0
    planes = [0.5 + 0.3 * np.sin(x + 1.7 * y + k) + 0.03 * rng.standard_normal((height, width)) for k in range(3)]
    return np.rint(np.clip(np.stack(planes, -1), 0, 1) * 255).astype(np.uint8)


@pytest.mark.parametrize(
    "largest, index_bits, expected",
    [(0, 7, 7), (8, 7, 7), (15, 8, 8), (69, 10, 8), (127, 10, 8), (128, 10, 9), (255, 10, 9), (256, 10, 10), (511, 10, 10)],
)
def test_tight_bits_drops_only_a_byte_plane(largest: int, index_bits: int, expected: int) -> None:
    q = np.array([[-largest, 0], [largest // 2, 1]], np.int16)
    assert tight_bits(q, index_bits) == expected


def test_negative_extreme_counts() -> None:
    assert tight_bits(np.array([-128, 5], np.int16), 10) == 9  # |k| = 128 needs 9 bits


def _with_version(data: bytes, minor: int, bits: int | None = None) -> bytes:
    header, chunks = loads(data)
    if bits is not None:
        header["latent"]["bits"] = bits
    buffer = io.BytesIO()
    with WlcWriter(buffer, header, minor=minor) as writer:
        for chunk in chunks:
            writer.write_chunk(chunk)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def tight_file() -> bytes:
    """rgb-2x-v at step 0.354 (q 95): 10-bit indices the model can make, 8 the photo needs."""
    return encode_image(image_from_array(photo()), model="rgb-2x-v", step=0.354)


def test_a_file_whose_indices_fit_a_byte_declares_8_bits_and_is_1_3(tight_file: bytes) -> None:
    header, chunks = loads(tight_file)
    codec, _ = load_model("rgb-2x-v")
    assert codec.index_bits(0.354) == 10 and header["latent"]["bits"] == 8 and tight_file[8:10] == b"\x01\x03"
    q = decode_planes([c.data for c in chunks if c.type == "LATN"], tuple(header["latent"]["shape"]), 8, "webp")
    assert np.abs(q.astype(int)).max() < 128
    two_planes = sum(len(c) for c in encode_planes(q, 10, "webp"))
    assert sum(len(c.data) for c in chunks if c.type == "LATN") < two_planes  # the constant high plane is gone


def test_a_file_at_the_model_bits_keeps_its_version() -> None:
    data = encode_image(image_from_array(photo()), model="rgb-16x-v", step=1.0)  # 8-bit model indices
    assert loads(data)[0]["latent"]["bits"] == 8 and data[8:10] == b"\x01\x00"


def test_decoders_read_tight_1_3_files_exactly(tight_file: bytes) -> None:
    decoded = decode_image(tight_file)
    q, info = read_latents(tight_file)
    assert info.bits == 8 and q.dtype == np.int32
    # the same indices written with the model's 10 bits (two planes, a 1.0 file) decode the same
    header, _ = loads(tight_file)
    wide = io.BytesIO()
    with WlcWriter(wide, {**header, "latent": {**header["latent"], "bits": 10}}) as writer:
        for plane in encode_planes(q, 10, "webp"):
            writer.write_chunk(Chunk("LATN", plane))
    assert np.array_equal(decode_image(wide.getvalue()).pixels, decoded.pixels)


def test_fewer_bits_in_an_old_version_file_are_refused_as_before(tight_file: bytes) -> None:
    """Equality stays the rule for 1.0-1.2 files: an old reader's message, word for word."""
    for minor in (0, 1, 2):
        with pytest.raises(FormatError, match="invalid header: latent bits 8 do not match step 0.354 for this model"):
            decode_image(_with_version(tight_file, minor))


def test_more_bits_than_the_model_makes_are_refused(tight_file: bytes) -> None:
    with pytest.raises(FormatError, match="invalid header: latent bits 11 exceed the 10 of step 0.354 for this model"):
        decode_image(_with_version(tight_file, 3, bits=11))
    with pytest.raises(FormatError, match="latent bits 11 exceed"):
        read_latents(_with_version(tight_file, 3, bits=11))


def test_check_latent_bits_rule() -> None:
    header = {"latent": {"bits": 8, "step": 0.5}}
    check_latent_bits(header, (1, 3), 9)
    check_latent_bits(header, (1, 7), 8)  # later minors keep the 1.3 rule
    check_latent_bits(header, (1, 0), 8)
    with pytest.raises(FormatError, match="do not match"):
        check_latent_bits(header, (1, 2), 9)
    with pytest.raises(FormatError, match="exceed"):
        check_latent_bits(header, (1, 3), 7)


def test_tight_reference_files_decode_and_are_1_3() -> None:
    image = REFERENCE / "rgb-2x-v-step0.354-tight-bits-32x24.wlc"
    data = image.read_bytes()
    assert data[8:10] == b"\x01\x03" and loads(data)[0]["latent"]["bits"] == 8
    assert np.array_equal(decode_image(data).pixels, read_image(image.with_name(image.name.replace(".wlc", ".out.png"))).pixels)
    volume = REFERENCE / "volume" / "ms-uint16-tight-bits-8x40x48.wlc"
    with open(volume, "rb") as handle:
        reader = WlcReader(handle)
        assert reader.version == (1, 3) and reader.header["latent"]["bits"] == 8
        assert load_model(reader.header["model"]["name"])[0].index_bits(reader.header["latent"]["step"]) == 10


def test_volume_writer_declares_tight_bits() -> None:
    from walloc_cli.codecs.volume import compress_volume, decode_volume
    from walloc_cli.files.volumes import volume_from_array

    cube = np.load(REFERENCE / "volume" / "ms-uint16-8x48x56.src.npy")[:, :24, :24]
    buffer = io.BytesIO()
    report = compress_volume(volume_from_array(np.ascontiguousarray(cube), "CYX"), buffer, quality=90)
    reader = WlcReader(io.BytesIO(buffer.getvalue()))
    codec, _ = load_model(report.model)
    assert reader.header["latent"]["bits"] == 8 < codec.index_bits(report.step) and reader.version == (1, 3)
    decoded = decode_volume(reader)
    # the report's PSNR is measured on the encoder's own indices: the file decodes to them
    peak = float(cube.max()) - float(cube.min())
    mse = float(np.mean(((decoded.array.astype(np.float64) - cube) / peak) ** 2))
    assert -10 * np.log10(mse) == pytest.approx(report.psnr, abs=1e-6)


def test_info_reports_payload_bytes(tmp_path: Path, tight_file: bytes) -> None:
    path = tmp_path / "a.wlc"
    path.write_bytes(tight_file)
    info = describe(path)
    _, chunks = loads(tight_file)
    assert info["payload_bytes"] == sum(len(c.data) for c in chunks if c.type == "LATN") > 0
    assert info["payload_bytes"] < info["bytes"]
    result = CliRunner().invoke(app, ["info", "--json", str(path)])
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["payload_bytes"] == info["payload_bytes"] and record["bytes"] == len(tight_file)
    text = CliRunner().invoke(app, ["info", str(path)]).output
    assert f"({info['payload_bytes']} B coded latents, {len(tight_file) - info['payload_bytes']} B header and metadata)" in text


@pytest.mark.parametrize("path", ["audio/stereo-44k-70000.wlc", "volume/ct-int16-20x136x40.wlc"])
def test_payload_bytes_of_audio_and_volumes(path: str) -> None:
    data = (REFERENCE / path).read_bytes()
    _, chunks = loads(data)
    assert describe(REFERENCE / path)["payload_bytes"] == sum(len(c.data) for c in chunks if c.type in ("AUDB", "VOLT")) > 0
