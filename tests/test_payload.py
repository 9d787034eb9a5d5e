"""Tests of the lossless latent payload (``walloc_cli/format/payload.py``).

The normative plane layout is rebuilt here independently (``expected_plane``) and compared with
what a generic image decoder (Pillow) reads back from the chunks, so a layout change that the
encoder and decoder make together still fails.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from walloc_cli.format import payload as P
from walloc_cli.format.payload import MAX_SIDE, PayloadError, decode_planes, encode_planes

CODECS = ("webp", "png")


def bounds(bits: int) -> tuple[int, int]:
    top = 2 ** (bits - 1) - 1
    return -top, top


def random_latents(shape, bits, seed=0) -> np.ndarray:
    lo, hi = bounds(bits)
    rng = np.random.default_rng(seed)
    q = rng.integers(lo, hi + 1, size=shape).astype(np.int32)
    if q.size >= 2:
        q.flat[0], q.flat[-1] = lo, hi
    return q


def expected_plane(q: np.ndarray, bits: int) -> np.ndarray:
    """The documented layout, written out with loops: groups of 3 channels as RGB, stacked."""
    channels, *spatial = q.shape
    width = spatial[-1]
    rows = int(np.prod(spatial[:-1], dtype=np.int64))
    groups = -(-channels // 3)
    offset = (1 << (bits - 1)) + (128 if bits > 8 else 0)  # wide latents: zero mid low-byte
    plane = np.full((groups * rows, width, 3), offset, dtype=np.int64)
    for c in range(channels):
        g, k = divmod(c, 3)
        plane[g * rows : (g + 1) * rows, :, k] = q[c].reshape(rows, width).astype(np.int64) + offset
    if bits > 8:
        plane = np.concatenate([plane >> 8, plane & 0xFF])
    return plane.astype(np.uint8)


def read_chunk(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        assert image.mode == "RGB"
        return np.asarray(image)


# --- exact round trips ----------------------------------------------------------------------------


@st.composite
def latent_cases(draw):
    bits = draw(st.integers(1, 15))
    channels = draw(st.integers(1, 8))
    ndim = draw(st.integers(1, 3))
    side = {1: 40, 2: 12, 3: 6}[ndim]
    spatial = tuple(draw(st.integers(1, side)) for _ in range(ndim))
    seed = draw(st.integers(0, 2**32 - 1))
    return random_latents((channels,) + spatial, bits, seed), bits


@pytest.mark.parametrize("codec", CODECS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=latent_cases())
def test_encode_decode_round_trip_is_exact(codec, case):
    q, bits = case
    chunks = encode_planes(q, bits, codec)
    assert len(chunks) == len(P.chunk_rows(q.shape, bits))
    assert all(isinstance(c, bytes) for c in chunks)
    back = decode_planes(chunks, q.shape, bits, codec)
    assert back.dtype == P.index_dtype(bits)  # compact: int8 up to 8 bits, else int16
    assert back.shape == q.shape
    np.testing.assert_array_equal(back, q)


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("bits", range(1, 16))
def test_every_bit_width_round_trips_its_extreme_values(codec, bits):
    lo, hi = bounds(bits)
    q = np.array([lo, hi, 0, lo, hi, 0, hi], dtype=np.int32).reshape(7, 1, 1)  # 7 channels, 1x1
    q = np.concatenate([q, -q], axis=2)  # (7, 1, 2)
    np.testing.assert_array_equal(decode_planes(encode_planes(q, bits, codec), q.shape, bits, codec), q)


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(
    "shape,bits",
    [
        ((3, 20000, 1), 8),  # 20000 rows: two chunks
        ((4, 16384, 1), 8),  # 2 groups x 16384 rows: three chunks
        ((1, 9000, 1), 15),  # high and low byte planes straddle the chunk boundary
        ((5, 2, 3000, 1), 12),  # 3D, 2 groups x 6000 rows x 2 byte planes
        ((2, MAX_SIDE, 1), 8),  # exactly one full chunk
    ],
)
def test_tall_latents_split_into_chunks_and_round_trip(codec, shape, bits):
    q = random_latents(shape, bits, seed=sum(shape))
    chunks = encode_planes(q, bits, codec)
    rows = P.chunk_rows(shape, bits)
    assert len(chunks) == len(rows) == -(-sum(rows) // MAX_SIDE)
    assert all(r <= MAX_SIDE for r in rows)
    for data, r in zip(chunks, rows):
        with Image.open(io.BytesIO(data)) as image:
            assert image.size == (shape[-1], r)
    np.testing.assert_array_equal(decode_planes(chunks, shape, bits, codec), q)


# --- the normative layout -------------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(
    "shape,bits",
    [((1, 5), 8), ((4, 3, 5), 8), ((7, 2, 3, 4), 5), ((4, 3, 5), 12), ((2, 9000, 1), 15), ((3, 1, 1), 1)],
)
def test_chunks_hold_the_documented_rgb_plane_layout(codec, shape, bits):
    q = random_latents(shape, bits, seed=3)
    chunks = encode_planes(q, bits, codec)
    with Image.open(io.BytesIO(chunks[0])) as image:
        assert image.format == codec.upper()
    plane = np.concatenate([read_chunk(c) for c in chunks])
    np.testing.assert_array_equal(plane, expected_plane(q, bits))


def test_first_three_channels_are_red_green_blue_of_the_first_group():
    q = np.zeros((4, 1, 2), dtype=np.int32)
    q[0], q[1], q[2], q[3] = 1, 2, 3, -4
    plane = read_chunk(encode_planes(q, 8, "png")[0])
    assert plane.shape == (2, 2, 3)
    assert plane[0, 0].tolist() == [129, 130, 131]
    assert plane[1, 0].tolist() == [124, 128, 128]  # channel 3, then two zero (offset) pads


# --- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", range(1, 16))
def test_out_of_range_values_raise_value_error(bits):
    lo, hi = bounds(bits)
    for bad in (hi + 1, lo - 1 - (bits == 1)):  # 1-bit payloads also tolerate -1 (unsigned 0)
        q = np.zeros((3, 2, 2), dtype=np.int32)
        q[1, 1, 0] = bad
        with pytest.raises(ValueError):
            encode_planes(q, bits, "png")


@pytest.mark.parametrize("bits", [0, 17, -1])
def test_unsupported_bit_width_raises_value_error(bits):
    with pytest.raises(ValueError):
        encode_planes(np.zeros((3, 2, 2), dtype=np.int32), bits, "png")


def test_unknown_codec_raises_value_error():
    with pytest.raises(ValueError, match="codec"):
        encode_planes(np.zeros((3, 2, 2), dtype=np.int32), 8, "jpeg")


def test_too_wide_latents_raise_payload_error():
    with pytest.raises(PayloadError):
        encode_planes(np.zeros((1, 1, MAX_SIDE + 1), dtype=np.int32), 8, "png")


@pytest.fixture(scope="module")
def two_chunk_payloads():
    """Latents of 2 chunks (bits 8) and their chunks for both codecs."""
    shape, bits = (3, MAX_SIDE + 7, 1), 8
    q = random_latents(shape, bits, seed=5)
    return shape, bits, q, {codec: encode_planes(q, bits, codec) for codec in CODECS}


@pytest.mark.parametrize("codec", CODECS)
def test_wrong_chunk_count_raises_payload_error(codec, two_chunk_payloads):
    shape, bits, _, chunks = two_chunk_payloads
    chunks = chunks[codec]
    for wrong in ([], chunks[:1], chunks + chunks[-1:], chunks[::-1][:1]):
        with pytest.raises(PayloadError, match="chunks"):
            decode_planes(wrong, shape, bits, codec)


@pytest.mark.parametrize("codec", CODECS)
def test_swapped_chunks_raise_payload_error(codec, two_chunk_payloads):
    shape, bits, _, chunks = two_chunk_payloads
    with pytest.raises(PayloadError):
        decode_planes(chunks[codec][::-1], shape, bits, codec)  # second chunk has the wrong height


@pytest.mark.parametrize("codec", CODECS)
def test_truncated_empty_or_garbage_chunks_raise_payload_error(codec):
    q = random_latents((6, 8, 8), 8, seed=1)
    data = encode_planes(q, 8, codec)[0]
    for bad in (b"", data[:10], data[: len(data) // 2], data[:-30], b"\x00" * len(data), bytes(range(256)) * 4):
        with pytest.raises(PayloadError):
            decode_planes([bad], q.shape, 8, codec)


@pytest.mark.parametrize("codec", CODECS)
def test_chunk_of_the_wrong_size_raises_payload_error(codec):
    q = random_latents((3, 4, 5), 8, seed=2)
    chunks = encode_planes(q, 8, codec)
    for shape in [(3, 4, 6), (3, 5, 5), (3, 4, 4), (6, 4, 5), (3, 2, 3, 5)]:
        assert len(P.chunk_rows(shape, 8)) == 1
        with pytest.raises(PayloadError):
            decode_planes(chunks, shape, 8, codec)
    # same 8-bit plane read as 16 bits: needs twice the rows
    with pytest.raises(PayloadError):
        decode_planes(chunks, (3, 4, 5), 16, codec)


@pytest.mark.parametrize("given_codec,expected_codec", [("png", "webp"), ("webp", "png")])
def test_chunk_of_the_other_codec_raises_payload_error(given_codec, expected_codec):
    q = random_latents((3, 4, 5), 8, seed=4)
    chunks = encode_planes(q, 8, given_codec)
    with pytest.raises(PayloadError):
        decode_planes(chunks, q.shape, 8, expected_codec)


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16", "P"])
def test_png_of_the_right_size_but_not_rgb_raises_payload_error(mode):
    image = Image.new(mode, (5, 4))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    with pytest.raises(PayloadError):
        decode_planes([buffer.getvalue()], (3, 4, 5), 8, "png")


@pytest.fixture(scope="module")
def small_payloads():
    q = random_latents((5, 6, 7), 10, seed=8)
    return q, {codec: encode_planes(q, 10, codec)[0] for codec in CODECS}


@pytest.mark.parametrize("codec", CODECS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=4), cut=st.integers(0, 10**6))
def test_corrupted_chunk_bytes_raise_payload_error_or_decode_to_the_declared_shape(codec, small_payloads, edits, cut):
    # Image codecs do not checksum everything (the container's CRC-32 does), so a flipped byte may
    # still decode; what must never happen is any exception other than PayloadError.
    q, chunks = small_payloads
    data = bytearray(chunks[codec])
    for position, flip in edits:
        data[position % len(data)] ^= flip
    if cut % 3 == 0:
        data = data[: cut % len(data)]
    try:
        out = decode_planes([bytes(data)], q.shape, 10, codec)
    except PayloadError:
        return
    assert out.shape == q.shape and out.dtype == np.int16


def test_payload_error_is_a_value_error():
    assert issubclass(PayloadError, ValueError)
