"""The compact header of format 2.0 (``walloc_cli/format/compact.py``, ``formats/wlc.md``,
"Format 2.0"): lossless for every header, canonical, and small for the headers walloc writes."""

from __future__ import annotations

import glob
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from walloc_cli.errors import FormatError
from walloc_cli.format import compact
from walloc_cli.format.compact import (
    canonical_json,
    decode,
    decode_varint,
    encode,
    encode_varint,
    stored_form,
)
from walloc_cli.format.container import loads
from walloc_cli.format.header import MODES, validate_header

REFERENCE = Path(__file__).resolve().parents[1] / "formats" / "reference"
SHA = "bc3dd90ab782b8ae05f832f967f7c7271aaed41a7b8e7d3b347bc606b5420571"


def _photo_header(**image: Any) -> dict[str, Any]:
    """The header the image writer writes for a 3000 x 2000 JPEG photo with an sRGB profile."""
    return {
        "encoder": "walloc 0.1.0",
        "modality": "image",
        "image": {"height": 2000, "width": 3000, "channels": 3, "mode": "RGB", "bit_depth": 8, "source_format": "JPEG", "icc": "srgb", **image},
        "model": {"name": "rgb-16x-v", "sha256": SHA},
        "codec": {"dims": 2, "channels": 3, "levels": 3, "latent_dim": 12, "bits": 8, "decoder_channels": 64, "decoder_blocks": 4, "boundary": "symmetric", "step_input": True},
        "latent": {"shape": [12, 250, 375], "bits": 8, "step": 2.5, "payload": "webp", "chunks": 1},
        "normalisation": {"offset": 0.5, "peak": 255},
        "alpha": None,
    }


def _round_trip(header: dict[str, Any]) -> bytes:
    raw = encode(header)
    assert canonical_json(decode(raw)) == canonical_json(stored_form(header))
    return raw


def _reference_headers() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(glob.glob(str(REFERENCE / "**" / "*.wlc"), recursive=True)):
        header, _ = loads(Path(path).read_bytes())
        out.append((Path(path).name, header))
    return out


# --- varints -------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 16383, 16384, (1 << 20), (1 << 28), (1 << 64) - 1])
def test_varint_round_trip_and_length(value: int) -> None:
    raw = encode_varint(value)
    assert len(raw) == max(1, -(-value.bit_length() // 7))
    assert decode_varint(raw + b"\xff", 0, max(value, 1), "x") == (value, len(raw))


@pytest.mark.parametrize(("raw", "message"), [
    (b"\x80\x00", "overlong"), (b"\x81\x80\x00", "overlong"), (b"\x80", "cut short"), (b"", "cut short"),
    (b"\xc9\x01", "exceeds 200"), (b"\xff\xff\xff\xff\xff\x7f", "exceeds"),
])
def test_varint_refusals(raw: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        decode_varint(raw, 0, 200 if message == "exceeds 200" else (1 << 20), "x")


def test_negative_varint_is_a_bug() -> None:
    with pytest.raises(ValueError):
        encode_varint(-1)


# --- the headers walloc writes --------------------------------------------------------------------
def test_photo_header_is_small() -> None:
    """The core holds a photo's header: 31 bytes here (the 1.x JSON is 530), no extras."""
    header = _photo_header()
    raw = _round_trip(header)
    assert raw[0] & 0x03 == 1 and not raw[0] & 0x04  # image, no extras
    assert len(raw) <= 32, len(raw)
    assert len(canonical_json(header)) > 500
    decoded = decode(raw)
    assert "encoder" not in decoded and decoded["model"]["sha256"] == SHA[:16]
    validate_header(decoded)


@pytest.mark.parametrize(("name", "header"), _reference_headers(), ids=[name for name, _ in _reference_headers()])
def test_reference_headers_round_trip_in_core_form(name: str, header: dict[str, Any]) -> None:
    raw = _round_trip(header)
    assert raw[0] & 0x03 != 0, "a header walloc wrote is stored in the generic form"
    if header["modality"] == "image":
        assert not raw[0] & 0x04, f"{name}: an image header walloc wrote needs extras"
        # 21 bytes besides the model name's letters (a step of up to 2 bytes), and a second
        # varint byte for each side of 128..16383: 30 bytes for rgb-16x-v on a 16 x 16 crop
        sides = sum(1 for side in (header["image"]["width"], header["image"]["height"]) if side >= 128)
        assert len(raw) <= 22 + len(header["model"]["name"]) + sides
    validate_header(decode(raw))


def test_what_the_core_cannot_say_goes_into_the_extras() -> None:
    cases = [
        _photo_header(source_format="XBM"),  # a source format without a code
        _photo_header(icc="display-p3"),  # an icc value 1.3 does not define (kept, as 1.x keeps it)
        {**_photo_header(), "alpha": {"bit_depth": 8, "constant": 255, "note": "x"}},
        {**_photo_header(), "latent": {**_photo_header()["latent"], "chunks": 7}},  # a count other than the formula's
        {**_photo_header(), "normalisation": {"offset": 0.25, "peak": 255}},
        {**_photo_header(), "future": {"key": [1, 2.5, None, "x"]}},
        {**_photo_header(), "latent": {**_photo_header()["latent"], "shape": [12, 1, 1]}},
    ]
    for header in cases:
        raw = _round_trip(header)
        assert raw[0] & 0x03 == 1 and raw[0] & 0x04, header  # core form with extras


@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_mode_and_alpha_kind(mode: str) -> None:
    channels, has_alpha, depth = MODES[mode]
    for alpha in ([{"bit_depth": depth, "codec": "webp" if depth == 8 else "png"}, {"bit_depth": depth, "constant": (1 << depth) - 1}] if has_alpha else [None]):
        header = _photo_header(mode=mode, channels=channels, bit_depth=depth)
        header.update(alpha=alpha, normalisation={"offset": 0.5, "peak": (1 << depth) - 1})
        raw = _round_trip(header)
        assert not raw[0] & 0x04, (mode, alpha)


def test_headers_outside_the_core_use_the_generic_form() -> None:
    cases: list[dict[str, Any]] = [
        {}, {"a": 1}, {"encoder": "x"},
        {**_photo_header(), "latent": {**_photo_header()["latent"], "step": 2}},  # an integer step
        {**_photo_header(), "model": {"name": "rgb-16x-v", "sha256": "ABC"}},
        {**_photo_header(), "model": {"name": "naïve", "sha256": SHA}},
        {**_photo_header(), "codec": {**_photo_header()["codec"], "latent_dim": 5000}},
        {k: v for k, v in _photo_header().items() if k != "alpha"},  # lacks a derived key
    ]
    for header in cases:
        raw = _round_trip(header)
        assert raw[0] in (0x00, 0x04)
    assert encode({}) == b"\x00" and encode({"encoder": "x"}) == b"\x00"


@pytest.mark.parametrize("step", [0.25, 0.354, 1.0, 1.057, 2.5, 16.0, 0.1 + 0.2, 1e-5, 1.5e16, 5e-324, 1.7976931348623157e308])
def test_step_is_an_exact_decimal(step: float) -> None:
    header = {**_photo_header(), "latent": {**_photo_header()["latent"], "step": step}}
    decoded = decode(_round_trip(header))
    assert decoded["latent"]["step"] == step and type(decoded["latent"]["step"]) is float


# --- canonical form and hostile bytes --------------------------------------------------------------
def test_non_canonical_encodings_are_refused() -> None:
    photo = stored_form(_photo_header())
    raw = encode(photo)
    generic = b"\x04" + canonical_json(photo)  # a header the core holds, as extras only
    restated = bytes([raw[0] | 0x04]) + raw[1:] + b'{"alpha":null}'  # extras that restate a derived field
    empty_extras = bytes([raw[0] | 0x04]) + raw[1:] + b"{}"
    unsorted = b'\x04{"b":1,"a":2}'
    spaced = b'\x04{"a": 1}'
    for bad in (generic, restated, empty_extras, unsorted, spaced, b"\x04" + canonical_json({"encoder": "x"})):
        with pytest.raises(FormatError, match="canonical"):
            decode(bad)


@pytest.mark.parametrize(("raw", "message"), [
    (b"", "empty"), (b"\x80", "form byte"), (b"\x08", "form byte"), (b"\x22" + b"\x00" * 40, "form byte"),
    (b"\x01\x00" + b"\x00" * 30, "printable"),
    (b"\x04[1]", "not a JSON object"), (b'\x04{"a":NaN}', "NaN"), (b'\x04{"a":1,"a":1}', "duplicate"), (b"\x04\xff", "UTF-8"),
])
def test_bad_header_bytes(raw: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        decode(raw)


def test_every_truncation_and_byte_flip_of_a_header_is_one_line() -> None:
    raw = encode(_photo_header(source_format="XBM"))
    for cut in range(len(raw)):
        with pytest.raises(FormatError):
            decode(raw[:cut])
    for at in range(len(raw)):
        for bit in (0x01, 0x10, 0x80):
            damaged = raw[:at] + bytes([raw[at] ^ bit]) + raw[at + 1 :]
            try:
                header = decode(damaged)
            except FormatError as error:
                assert "\n" not in str(error)
            else:  # a flip that still gives a canonical header decodes to a different one
                assert encode(header) == damaged


def test_hostile_sizes_are_refused_before_anything_is_derived() -> None:
    raw = bytearray(encode(stored_form(_photo_header())))
    core = compact._core(stored_form(_photo_header()))
    assert core is not None
    huge = compact._pack({**core, "width": 1 << 20}, {})
    with pytest.raises(FormatError, match="image width exceeds"):
        decode(huge)
    wide = compact._pack({**core, "width": 131064, "height": 131064}, {})
    with pytest.raises(FormatError, match="image size"):
        decode(wide)
    assert raw  # the untouched header still decodes
    decode(bytes(raw))


# --- property tests: any header of each modality -----------------------------------------------------
_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8))
_json = st.recursive(_json_leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)


@st.composite
def _codec(draw: st.DrawFn, dims: int) -> dict[str, Any]:
    codec = {
        "dims": dims, "channels": draw(st.integers(1, 64)), "levels": draw(st.integers(1, 8)), "latent_dim": draw(st.integers(1, 4096)),
        "bits": draw(st.integers(2, 15)), "decoder_channels": draw(st.integers(1, 1024)), "decoder_blocks": draw(st.integers(0, 64)),
        "boundary": draw(st.sampled_from(["symmetric", "periodic"])),
    }
    if draw(st.booleans()):
        codec["step_input"] = draw(st.booleans())
    return codec


def _common(draw: st.DrawFn, modality: str, dims: int) -> dict[str, Any]:
    name = draw(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=40))
    sha = draw(st.text("0123456789abcdef", min_size=64, max_size=64))
    step = draw(st.one_of(st.floats(0.25, 16.0), st.sampled_from([0.354, 1.057, 0.4808, 1.0, 2.5])))
    latent = {"bits": draw(st.integers(1, 15)), "step": step, "payload": draw(st.sampled_from(["webp", "png", "jxl"]))}
    return {"encoder": "walloc 0.1.0", "modality": modality, "model": {"name": name, "sha256": sha}, "codec": draw(_codec(dims)), "latent": latent}


@st.composite
def _image_header(draw: st.DrawFn) -> dict[str, Any]:
    header = _common(draw, "image", 2)
    mode = draw(st.sampled_from(sorted(MODES)))
    channels, has_alpha, depth = MODES[mode]
    width, height = draw(st.integers(1, 20000)), draw(st.integers(1, 13000))
    image: dict[str, Any] = {"height": height, "width": width, "channels": channels, "mode": mode, "bit_depth": depth,
                             "source_format": draw(st.sampled_from(["PNG", "JPEG", "TIFF", "WEBP", "BMP", "ARRAY", "XBM"]))}
    if draw(st.booleans()):
        image["icc"] = "srgb"
    block = 1 << header["codec"]["levels"]
    from walloc_cli.format.payload import PayloadError, chunk_count

    shape = [header["codec"]["latent_dim"], -(-height // block), -(-width // block)]
    header["latent"]["shape"] = shape
    try:
        header["latent"]["chunks"] = chunk_count(tuple(shape), header["latent"]["bits"], header["latent"]["payload"])
    except PayloadError:
        pass
    fits_webp = header["latent"]["payload"] == "webp" and depth == 8 and max(width, height) <= 16383
    alpha = None
    if has_alpha:
        alpha = draw(st.sampled_from([{"bit_depth": depth, "codec": "webp" if fits_webp else "png"}, {"bit_depth": depth, "constant": draw(st.integers(0, (1 << depth) - 1))}]))
    header.update(image=image, normalisation={"offset": 0.5, "peak": (1 << depth) - 1}, alpha=alpha)
    return header


@st.composite
def _audio_header(draw: st.DrawFn) -> dict[str, Any]:
    header = _common(draw, "audio", 1)
    channels = draw(st.integers(1, 8))
    header["audio"] = {"samplerate": draw(st.sampled_from([8000, 44100, 48000])), "channels": channels, "frames": draw(st.integers(1, 1 << 40)), "subtype": "PCM_16", "format": "WAV"}
    header["latent"].update(block=65536, margin=1024, streams="mono" if channels == 1 else "mid-side")
    header["normalisation"] = {"gain": draw(st.floats(0.01, 256.0))}
    return header


@st.composite
def _volume_header(draw: st.DrawFn) -> dict[str, Any]:
    header = _common(draw, "volume", 3)
    shape = draw(st.lists(st.integers(1, 2000), min_size=3, max_size=3))
    header["volume"] = {"shape": shape, "dtype": "int16", "axes": "ZYX", "coding_axes": "ZYX", "format": "npy", "kind": "ct", "meta": {"shape": shape, "scl_slope": None}}
    header["latent"].update(tile=[16, 32, 32], decode_margin=8, encode_margin=16, condition=draw(st.floats(0.25, 16.0)))
    header["normalisation"] = {"min": -1024.0, "max": 1552.0, "offset": draw(st.floats(-1e4, 1e4)), "scale": draw(st.floats(1.0, 1e4))}
    return header


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_image_header())
def test_property_image_headers_round_trip_without_extras(header: dict[str, Any]) -> None:
    raw = _round_trip(header)
    assert raw[0] & 0x03 == 1
    # extras only for a source format without a code
    assert bool(raw[0] & 0x04) == (header["image"]["source_format"] == "XBM")


@settings(max_examples=80, deadline=None)
@given(st.one_of(_audio_header(), _volume_header()))
def test_property_audio_and_volume_headers_round_trip(header: dict[str, Any]) -> None:
    raw = _round_trip(header)
    assert raw[0] & 0x03 == (2 if header["modality"] == "audio" else 3)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_image_header(), _audio_header(), _volume_header()), st.dictionaries(st.text(max_size=6), _json, max_size=3), st.data())
def test_property_any_change_still_round_trips(header: dict[str, Any], extra: dict[str, Any], data: st.DataObject) -> None:
    """Whatever is added, replaced or removed, a header comes back as it went in (less encoder)."""
    header = {**header, **extra}
    table = data.draw(st.sampled_from(sorted(k for k, v in header.items() if isinstance(v, dict)) or ["x"]))
    if isinstance(header.get(table), dict) and header[table] and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(header[table])))
        header[table] = {k: v for k, v in header[table].items() if k != key}
    _round_trip(header)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=8), _json, max_size=5))
def test_property_arbitrary_dicts_round_trip(header: dict[str, Any]) -> None:
    _round_trip(header)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_property_arbitrary_bytes_decode_or_fail_in_one_line(raw: bytes) -> None:
    try:
        header = decode(raw)
    except FormatError as error:
        assert "\n" not in str(error)
    else:
        assert encode(header) == raw and json.loads(canonical_json(header)) == header
