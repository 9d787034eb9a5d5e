"""Format 2.2, the ``ctx`` payload: exact round trips on real and crafted latents, the reference
files re-coded byte for byte, damaged payloads refused, and the version rules."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from walloc_cli.api.latents import read_latents
from walloc_cli.cli.app import app
from walloc_cli.codecs.image import decode_image, encode_image
from walloc_cli.errors import FormatError, InputError
from walloc_cli.files.images import image_from_array, read_image
from walloc_cli.format import ctx_model, payload_ctx
from walloc_cli.format.compact import decode_varint
from walloc_cli.format.container import WlcReader, WlcWriter, loads
from walloc_cli.format.payload import PayloadError, decode_planes, encode_planes, resolve_payload

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "formats" / "reference"
PHOTO = ROOT / "samples" / "photo.png"
runner = CliRunner()


def round_trip(q: np.ndarray, bits: int = 8) -> bytes:
    data = payload_ctx.encode(q)
    out = np.zeros(q.shape, np.int16)
    payload_ctx.decode(data, q.shape, bits, out)
    assert np.array_equal(out, q)
    return data


@pytest.mark.parametrize("quality", [10, 50, 95])
def test_photo_latents_round_trip_and_are_smaller_than_webp(quality: int) -> None:
    q, info = read_latents(encode_image(read_image(PHOTO), payload="webp", step={10: 3.0, 50: 1.2, 95: 0.5}[quality], model="rgb-4x-v"))
    data = round_trip(q, info.bits)
    webp = encode_planes(q, info.bits, "webp", 4, split=True)
    assert len(data) < 0.95 * sum(map(len, webp))  # ~10-16% smaller on this photo


def test_mode_2_predicts_smooth_channels_and_mode_1_codes_noise() -> None:
    yy, xx = np.mgrid[0:40, 0:50]
    smooth = (20 * np.sin(xx / 9) + 15 * np.cos(yy / 7)).round().astype(np.int64)
    noise = np.random.default_rng(1).laplace(0, 0.7, (2, 40, 50)).round().astype(np.int64)
    q = np.concatenate([smooth[None], noise, np.zeros((1, 40, 50), np.int64), noise])
    data = round_trip(q)
    modes = payload_ctx._records(data, len(q))[0]
    assert list(modes) == [2, 1, 1, 0, 1, 1]
    assert len(data) < 0.5 * q.size  # the smooth channel costs far less than its order-0 entropy


def test_mode_3_takes_channel_0s_residual_where_channels_1_2_repeat_it() -> None:
    yy, xx = np.mgrid[0:48, 0:64]
    texture = np.random.default_rng(4).laplace(0, 2.0, (48, 64))
    base = 30 * np.sin(xx / 11) + 20 * np.cos(yy / 9)
    q = np.stack([base + texture, 0.5 * base - 0.8 * texture, 0.3 * base]).round().astype(np.int64)
    data = round_trip(q)
    modes, codes, _ = payload_ctx._records(data, 3)
    assert modes[0] == 2 and modes[1] == 3 and modes[2] != 0
    assert codes[1, 4] - 128 < -32  # alpha about -0.8 x 64


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 1, 1), (5, 2, 3), (12, 7, 5), (48, 1, 17), (4, 1), (4, 2), (6, 130), (2, 1, 1, 1), (3, 5, 4, 9), (8, 3, 9, 2)])
def test_every_shape_round_trips(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(shape) * 100 + int(np.prod(shape)))
    round_trip(rng.integers(-4, 5, shape))


def test_escapes_carry_15_bit_values_of_both_signs() -> None:
    rng = np.random.default_rng(2)
    q = rng.integers(-3, 4, (6, 9, 11))
    q[0, 0, 0], q[1, 4, 4], q[5, 8, 10], q[2, 3, 3] = 16383, -16383, 128, -128
    q[0, 1:, 1:] = rng.integers(-16383, 16384, (8, 10))
    round_trip(q, 15)


def test_escapes_reach_past_16_bits() -> None:
    """A volume's coarse-grid difference reaches 8 x 16383 (18 bits), plus mode 3's share: the
    escape's length symbol must reach past 15 (it was a Uniform(16) model before this test)."""
    import constriction

    residual = np.array([0, 128, -129, 65535, -131064, 200000, 5, -127], np.int64)
    encoder = constriction.stream.queue.RangeEncoder()
    payload_ctx._encode_escapes(encoder, residual)
    decoder = constriction.stream.queue.RangeDecoder(encoder.get_compressed())
    symbols = ctx_model.symbols(residual)
    assert np.array_equal(payload_ctx._decode_escapes(decoder, symbols), residual)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 7), st.lists(st.integers(1, 9), min_size=1, max_size=3), st.integers(0, 300), st.integers(0, 2**31))
def test_any_latents_round_trip(channels: int, spatial: list[int], spread: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    q = np.clip(rng.laplace(0, spread / 10 + 1e-3, (channels, *spatial)).round(), -16383, 16383).astype(np.int64)
    round_trip(q, 15)


def test_classes_are_exact_at_their_boundaries() -> None:
    """The class rule (formats/wlc.md): the nearest j to 4*log2(e) + 36, by comparisons only."""
    weights = ctx_model.weights(np.array([[0, 0, 128]]))  # c = 1.0: E|x| = 1 is class 36
    assert ctx_model.classes(np.zeros((1, 1)), np.zeros(1), weights)[0, 0] == 36
    assert ctx_model.coefficient(128) == 1.0 and ctx_model.coefficient(0) == 0.0 and ctx_model.coefficient(144) == 2.0
    boundary = 2.0 ** (0.125)  # half a class above 1.0: the threshold itself is in the upper class
    for value, expected in ((np.nextafter(boundary, 0), 36), (boundary, 37), (2.0**-20, 0), (0.0, 0), (1e9, ctx_model.CLASSES - 1)):
        own = np.array([[value]])
        assert ctx_model.classes(own, np.zeros(1), ctx_model.weights(np.array([[128, 0, 0]])))[0, 0] == expected, value


def test_class_tables_are_the_specified_frequencies() -> None:
    """Class j's table (formats/wlc.md): floor(2**24 * theta**|k|) for |k| <= 127, then the
    escape; pinned by a digest, so that no platform or library change moves a table silently."""
    import hashlib
    import math

    tables = ctx_model.class_frequencies()
    assert tables.shape == (60, 256) and len(ctx_model.class_models()) == 60
    theta = math.sqrt(2) - 1  # class 36: E|x| = 1
    assert tables[36, 127] == 1 << 24 and tables[36, 128] == tables[36, 126] == math.floor(theta * 2**24)
    assert tables[0, 127] == 1 << 24 and tables[0, 255] == 1  # class 0: all but certain zeros
    assert hashlib.sha256(tables.tobytes()).hexdigest()[:16] == "2ad780d5f1e5ed74"


def _ctx_reference_files() -> list[Path]:
    return sorted(REFERENCE.glob("wlc22-*.wlc")) + sorted((REFERENCE / "audio").glob("wlc22-*.wlc")) + sorted((REFERENCE / "volume").glob("wlc22-*.wlc"))


def test_there_are_ctx_reference_files_of_every_modality() -> None:
    names = [p.relative_to(REFERENCE).as_posix() for p in _ctx_reference_files()]
    assert any("/" not in n for n in names) and any(n.startswith("audio/") for n in names) and any(n.startswith("volume/") for n in names)


@pytest.mark.parametrize("path", _ctx_reference_files(), ids=lambda p: p.name)
def test_reference_latents_are_recoded_byte_for_byte(path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Decoding a 2.2 reference file through its codec, every ctx chunk it holds comes out of
    the encoder again with the same bytes: the class tables, the schedule and the range coder
    are the same on this machine as on the one that wrote it."""
    seen: list[tuple[bytes, np.ndarray]] = []
    original = payload_ctx.decode

    def spy(data: bytes, shape: tuple[int, ...], bits: int, out: np.ndarray) -> None:
        original(data, shape, bits, out)
        seen.append((data, out.copy()))

    monkeypatch.setattr(payload_ctx, "decode", spy)
    result = runner.invoke(app, ["decompress", str(path), "-o", str(tmp_path / ("out" + {"": ".png", "audio": ".wav", "volume": ".npy"}[path.parent.name if path.parent != REFERENCE else ""]))])
    assert result.exit_code == 0, result.output
    assert seen and WlcReader(io.BytesIO(path.read_bytes())).version == (2, 2)
    for data, latents in seen:
        assert payload_ctx.encode(latents) == data


def test_reference_image_decodes_as_the_recorded_output() -> None:
    for name in ("wlc22-rgb-4x-v-256x256", "wlc22-gray-16x-v-264x256"):
        decoded = decode_image((REFERENCE / f"{name}.wlc").read_bytes())
        expected = read_image(REFERENCE / f"{name}.out.png")
        difference = np.abs(decoded.pixels.astype(np.int64) - expected.pixels)
        assert difference.max() <= 1 and (difference == 0).mean() > 0.99
    index = json.loads((REFERENCE / "index.json").read_text())
    assert index["wlc22-rgb-4x-v-256x256"]["bytes"] < 0.9 * index["wlc21-rgb-4x-v-256x256"]["bytes"]  # same crop, same latents


def _latents_chunk(path: Path) -> tuple[dict[str, Any], bytes]:
    header, chunks = loads(path.read_bytes())
    return header, next(c.data for c in chunks if c.type == "LATN")


def test_damaged_payloads_are_refused_never_wrong() -> None:
    header, data = _latents_chunk(REFERENCE / "wlc22-rgb-4x-v-256x256.wlc")
    shape, bits = tuple(header["latent"]["shape"]), header["latent"]["bits"]
    good = decode_planes([data], shape, bits, "ctx")
    rng = np.random.default_rng(3)
    cuts = [0, 1, 3, 47, 100, len(data) - 8, len(data) - 4, len(data) - 1]
    for cut in cuts:
        with pytest.raises(PayloadError):
            decode_planes([data[:cut]], shape, bits, "ctx")
    refused = 0
    for _ in range(40):
        damaged = bytearray(data)
        at = int(rng.integers(len(data) // 2, len(data)))  # inside the coded words
        damaged[at] ^= 1 << int(rng.integers(8))
        try:
            back = decode_planes([bytes(damaged)], shape, bits, "ctx")
        except PayloadError:
            refused += 1
            continue
        assert np.array_equal(back, good)  # a flip the coder never reads (the last word's slack)
    assert refused >= 35
    bad_mode = bytearray(data)
    bad_mode[0] = 3
    with pytest.raises(PayloadError, match="mode 3"):
        decode_planes([bytes(bad_mode)], shape, bits, "ctx")
    with pytest.raises(PayloadError, match="expected 1"):
        decode_planes([data, data], shape, bits, "ctx")


def test_a_crafted_file_with_a_damaged_ctx_chunk_is_one_line(tmp_path: Path) -> None:
    header, data = _latents_chunk(REFERENCE / "wlc22-rgb-4x-v-256x256.wlc")
    from walloc_cli.format.container import Chunk, dumps

    bad = tmp_path / "bad.wlc"
    bad.write_bytes(dumps(header, [Chunk("LATN", data[:-12])]))  # valid CRCs, words cut short
    result = runner.invoke(app, ["decompress", str(bad), "-o", str(tmp_path / "bad.png")])
    assert result.exit_code == 1
    assert "bad.wlc" in result.output and "ctx payload" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "bad.png").exists()


def test_version_rules_of_the_ctx_payload(tmp_path: Path) -> None:
    data = (REFERENCE / "wlc22-rgb-4x-v-256x256.wlc").read_bytes()
    assert data[8:10] == b"\x02\x02"
    length, at = decode_varint(data, 10, 1 << 20, "header length")
    assert data[at] >> 3 & 3 == 3  # payload code 3
    header, _ = loads(data)
    with pytest.raises(ValueError, match="2.2"):
        WlcWriter(io.BytesIO(), header, major=1)
    older = bytearray(data)
    older[9] = 1  # the same bytes declared 2.1
    import zlib

    older[at + length : at + length + 4] = zlib.crc32(bytes(older[: at + length])).to_bytes(4, "little")
    path = tmp_path / "older.wlc"
    path.write_bytes(bytes(older))
    with pytest.raises(FormatError, match="format 2.2 payload, this file is 2.1"):
        WlcReader(io.BytesIO(bytes(older)))
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 1 and "older.wlc" in result.output and "2.2" in result.output


def test_which_payload_a_writer_takes() -> None:
    assert resolve_payload(None, 2) == "webp" and resolve_payload(None, 2, 5) == "ctx" and resolve_payload(None, 1, 6) == "webp"
    assert resolve_payload("ctx", 2, 0) == "ctx"
    with pytest.raises(ValueError, match="2.2"):
        resolve_payload("ctx", 1)
    with pytest.raises(ValueError, match="unknown payload"):
        resolve_payload("zip", 2)


def test_cli_effort_6_writes_ctx_and_it_round_trips(tmp_path: Path) -> None:
    crop = tmp_path / "crop.png"
    from PIL import Image

    Image.open(PHOTO).convert("RGB").crop((0, 0, 320, 256)).save(crop)
    for index, (args, payload, version) in enumerate(((["-e", "6"], "ctx", b"\x02\x02"), (["--payload", "ctx"], "ctx", b"\x02\x02"), ([], "webp", b"\x02\x01"))):
        out = tmp_path / f"{payload}{index}.wlc"
        result = runner.invoke(app, ["compress", str(crop), "-o", str(out), "-q", "50", *args])
        assert result.exit_code == 0, result.output
        assert out.read_bytes()[8:10] == version and loads(out.read_bytes())[0]["latent"]["payload"] == payload
    ctx, webp = tmp_path / "ctx1.wlc", tmp_path / "webp2.wlc"
    assert ctx.stat().st_size < webp.stat().st_size
    assert np.array_equal(decode_image(ctx.read_bytes()).pixels, decode_image(webp.read_bytes()).pixels)  # same latents
    result = runner.invoke(app, ["compress", str(crop), "-o", str(tmp_path / "old.wlc"), "--payload", "ctx", "--wlc-version", "1"])
    assert result.exit_code != 0 and "2.2" in result.output and not (tmp_path / "old.wlc").exists()


def test_effort_6_keeps_the_smaller_of_ctx_and_webp() -> None:
    """Effort 6 codes an image's latents both ways: WebP's LZ77 wins on stripes, ctx on a photo;
    the file is never larger than either, and decodes to the same pixels."""
    from PIL import Image

    stripes = image_from_array((np.indices((64, 64)).sum(0) % 8 < 4).astype(np.uint8)[..., None].repeat(3, 2) * 200)
    photo = image_from_array(np.asarray(Image.open(PHOTO).convert("RGB")))
    for image, winner in ((stripes, "webp"), (photo, "ctx")):
        sizes = {effort: encode_image(image, model="rgb-4x-v", step=1.0, effort=effort) for effort in (4, 5, 6)}
        assert loads(sizes[6])[0]["latent"]["payload"] == winner
        assert len(sizes[6]) <= min(len(sizes[4]), len(sizes[5]))
        assert np.array_equal(decode_image(sizes[6]).pixels, decode_image(sizes[4]).pixels)


def test_audio_and_volume_files_round_trip_through_ctx(tmp_path: Path) -> None:
    from walloc_cli.api.files import compress_file, decompress_file

    for source, suffix in ((REFERENCE / "audio" / "stereo-44k-70000.src.wav", ".wav"), (REFERENCE / "volume" / "ct-int16-20x136x40.src.npy", ".npy")):
        paths = {payload: tmp_path / f"{source.stem}.{payload}.wlc" for payload in ("webp", "ctx")}
        for payload, path in paths.items():
            compress_file(source, path, quality=50, payload=payload, measure=False)
        assert loads(paths["ctx"].read_bytes())[0]["latent"]["payload"] == "ctx"
        outputs = {payload: tmp_path / f"{source.stem}.{payload}{suffix}" for payload in paths}
        for payload in paths:
            decompress_file(paths[payload], outputs[payload])
        assert outputs["ctx"].read_bytes() == outputs["webp"].read_bytes()  # the same latents, the same samples
    with pytest.raises(InputError, match="2.2"):
        compress_file(REFERENCE / "volume" / "ct-int16-20x136x40.src.npy", tmp_path / "v1.wlc", quality=50, payload="ctx", measure=False, wlc_version=1)
    assert not (tmp_path / "v1.wlc").exists()
