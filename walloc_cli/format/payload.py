"""Lossless coding of integer latents: 8-bit image planes (WebP lossless or PNG), a
context-modelled range code, or JPEG XL.

The ``"ctx"`` payload (format 2.2, what efforts 5-6 take) and the ``"jxl"`` payload (format
1.3) have layouts of their own, in :mod:`walloc_cli.format.payload_ctx` and
:mod:`walloc_cli.format.payload_jxl`; what follows is the layout of ``"webp"`` and ``"png"``.

Layout (normative, see ``formats/wlc.md``): a latent array ``q`` of shape ``(L, *S)`` with
values in ``[-(2**(bits-1)-1), 2**(bits-1)-1]`` is offset to unsigned (by ``2**(bits-1)``, plus 128
for latents wider than 8 bits, see :func:`_offset`). The
channels are padded with zeros (offset value) to a multiple of 3 and taken three at a time as the
R, G, B samples of an image of ``prod(S[:-1])`` rows by ``S[-1]`` columns; the groups are stacked
vertically. Every row holds spatial neighbours, so WebP's/PNG's spatial predictors see a natural
image, and WebP's cross-colour transform exploits what the three channels share (measured on a
4.1 MP photo: 6% smaller and 1.8x faster than one grey plane per channel). Latents wider than
8 bits become two byte planes (high byte rows first, then low byte rows). The plane is cut into
chunks of at most ``MAX_SIDE`` rows (WebP's limit), each coded as its own RGB image; in format
2.1 (``latent.split``) the first group of each byte half also ends a chunk (:func:`chunk_rows`).
Both stages are integer-only, hence exact on any machine.
"""

from __future__ import annotations

import io
import struct
from typing import Iterator, Literal

import numpy as np
from PIL import Image

from walloc_cli.errors import WallocError
from walloc_cli.format import payload_jxl
from walloc_cli.format.pixels import pillow_samples

PayloadCodec = Literal["webp", "ctx", "png", "jxl"]
PAYLOAD_CODECS: tuple[str, ...] = ("webp", "ctx", "png", "jxl")
# The 1.x minor that introduced each payload a 1.x file can hold: a file whose payload needs a
# newer minor is written as that. ``ctx`` is a format 2.2 payload: no 1.x file holds it.
PAYLOAD_MINOR: dict[str, int] = {"webp": 0, "png": 0, "jxl": 3}
MAX_SIDE = 16383  # WebP's largest width/height
# WebP lossless effort (default 4 = method 4 / quality 50) codes the latents of the 8 test photos 2% larger
# than method 6 in 1/20 of the time, and 1.2% smaller than method 3 (bench/payload_effort.py).
# Decoding speed does not depend on it.
DEFAULT_EFFORT = 4

# The effort from which a format 2 writer not told a payload takes ctx. On 8 validation photos
# of the corpus (shipped ladder, bench/results/payload_ctx.md) ctx codes the same latents in
# 14.8% / 14.3% / 9.4% / 9.0% fewer bytes than WebP effort 4 at q 10 / 50 / 75 / 95, but
# `walloc compress` at q 75 runs 1.35x longer in-process and decompress 1.25x: the default
# (effort 4, the cards' payload_effort) must not encode slower, so it stays WebP. WebP effort
# 6 saves only 2-4% for ~20x effort 4's time, so efforts 5 and 6 take ctx.
CTX_EFFORT = 5
# At this effort an image writer not told a payload codes the latents both ways and keeps the
# smaller, ctx or WebP (effort 4): WebP's LZ77 wins on repetitive patterns and tiny images
# (stripes 64x64: 512 B against ctx's 1,112 B) and on some smooth photos at q 10 (2 of the 11
# held-out photos), ctx on the rest; 1.5x effort 5's payload time.
BEST_OF_EFFORT = 6


def resolve_payload(payload: str | None, major: int, effort: int = DEFAULT_EFFORT) -> str:
    """The payload a writer of format ``major`` uses at ``effort``: ``payload``, or for ``None``
    ``ctx`` from :data:`CTX_EFFORT` in format 2, else ``webp``; refuses a payload the format
    cannot hold."""
    if payload is None:
        return "ctx" if major >= 2 and effort >= CTX_EFFORT else "webp"
    if payload not in PAYLOAD_CODECS:
        raise ValueError(f"unknown payload codec {payload!r} (choose {', '.join(PAYLOAD_CODECS)})")
    if major == 1 and payload not in PAYLOAD_MINOR:
        raise ValueError(f"payload {payload} needs .wlc format 2.2; format 1 holds {', '.join(PAYLOAD_MINOR)}")
    return payload


MAX_BITS = 15  # the high byte of a centred 15-bit value (see _offset) still fits in 8 bits
# libwebp lossless: ``method`` picks the search, ``quality`` how hard it tries; paired as cwebp -z does.
_EFFORT_SETTINGS = {0: (0, 0), 1: (1, 10), 2: (2, 25), 3: (3, 40), 4: (4, 50), 5: (5, 75), 6: (6, 100)}


def webp_settings(effort: int) -> dict[str, int]:
    """Pillow WebP-lossless save options for ``effort`` 0 (fastest) .. 6 (smallest)."""
    if effort not in _EFFORT_SETTINGS:
        raise ValueError(f"effort must be 0..6, got {effort}")
    method, quality = _EFFORT_SETTINGS[effort]
    return {"method": method, "quality": quality}


class PayloadError(WallocError, ValueError):
    """The payload bytes do not decode to the declared latent shape, or cannot be laid out."""


def _groups(shape: tuple[int, ...]) -> int:
    return -(-shape[0] // 3)


def _offset(bits: int) -> int:
    """What is added to a signed latent to store it unsigned.

    2**(bits-1) up to 8 bits. Wider latents are split into a high and a low byte, and there the
    offset is 2**(bits-1) + 128: zero then sits in the middle of a low byte (high byte constant
    for |k| < 128) instead of on a byte boundary, where -1 and +1 would differ in both bytes and
    the low plane would flicker between 0 and 255. Measured on the 8 test photos, rgb-4x-v at
    step 0.909 (9-bit indices): 0.998 bpp with the plain offset, 0.721 with the centred one;
    rgb-2x-v at step 0.707: 1.746 against 1.236.
    """
    return (1 << (bits - 1)) + (128 if bits > 8 else 0)


def index_dtype(bits: int) -> np.dtype:
    """The compact dtype that holds signed latent indices of ``bits`` bits: int8 up to 8 bits,
    else int16 (a 150 MP photo through ``rgb-2x-v`` has 225 M indices: 225 MB as int8, 900 MB
    as the int32 this module returned before)."""
    return np.dtype(np.int8 if bits <= 8 else np.int16)


# Rows converted at a time between indices and bytes: bounds the int32 scratch to ~4 MiB
# whatever the latent width, instead of a whole plane in int64 (a GB for the largest images).
_BATCH_VALUES = 1 << 20


def _segments(shape: tuple[int, ...], bits: int, start: int, stop: int) -> Iterator[tuple[int, int, int, int, int]]:
    """The plane rows ``start..stop`` as runs within one byte half and one channel group:
    ``(row offset from start, half, group, first spatial row, rows)``; spatial rows index the
    latents flattened to ``(L, prod(S[1:-1]), S[-1])``. Runs are cut to at most
    ``_BATCH_VALUES`` values."""
    rows_per_group = int(np.prod(shape[1:-1]))
    half_rows = _groups(shape) * rows_per_group
    batch = max(1, _BATCH_VALUES // max(1, shape[-1]))
    row = start
    while row < stop:
        half, inside = divmod(row, half_rows)
        group, first = divmod(inside, rows_per_group)
        count = min(stop - row, rows_per_group - first, batch)
        yield row - start, half, group, first, count
        row += count


def _plane_rows(q: np.ndarray, bits: int, start: int, stop: int) -> np.ndarray:
    """Rows ``start..stop`` of the uint8 plane ``(rows, S[-1], 3)`` of latents ``q`` ``(L, *S)``
    (the layout in the module docstring), built without materialising the whole plane."""
    flat = q.reshape(q.shape[0], -1, q.shape[-1])
    offset = _offset(bits)
    out = np.empty((stop - start, q.shape[-1], 3), np.uint8)
    for at, half, group, first, count in _segments(q.shape, bits, start, stop):
        for k in range(3):
            channel = 3 * group + k
            if channel < q.shape[0]:
                values = flat[channel, first : first + count].astype(np.int32) + offset
            else:  # channels padded to a multiple of 3 hold the offset (index 0)
                values = np.full((count, q.shape[-1]), offset, np.int32)
            if bits > 8:
                values = values >> 8 if half == 0 else values & 0xFF
            out[at : at + count, :, k] = values
    return out


def _add_plane_rows(q: np.ndarray, rows: np.ndarray, bits: int, start: int) -> None:
    """Inverse of :func:`_plane_rows`: write the plane rows ``rows`` ``(n, S[-1], 3)`` uint8
    that start at plane row ``start`` into ``q`` ``(L, *S)`` (zeros beforehand; a high-byte row
    must come before its low-byte row, as in the plane)."""
    flat = q.reshape(q.shape[0], -1, q.shape[-1])
    offset = _offset(bits)
    info = np.iinfo(q.dtype)
    for at, half, group, first, count in _segments(q.shape, bits, start, start + rows.shape[0]):
        for k in range(3):
            channel = 3 * group + k
            if channel >= q.shape[0]:
                continue  # padding channel: carries nothing
            values = rows[at : at + count, :, k].astype(np.int32)
            if bits <= 8:
                values -= offset
            elif half == 0:
                values = (values << 8) - offset
            else:
                values += flat[channel, first : first + count]
            # corrupt payloads can hold bytes no encoder writes: clip into the dtype, never wrap
            flat[channel, first : first + count] = np.clip(values, info.min, info.max)


def _cut(rows: int) -> list[int]:
    """``rows`` plane rows as chunks of at most ``MAX_SIDE`` rows."""
    return [min(MAX_SIDE, rows - start) for start in range(0, rows, MAX_SIDE)]


def chunk_rows(shape: tuple[int, ...], bits: int, split: bool = False) -> list[int]:
    """Row counts of the image chunks for a latent ``shape``; the container stores none of it.

    ``split`` (the header's ``latent.split``, format 2.1): the first channel group of each byte
    half (channels 0-2: the low-pass bands of an RGB or 3-channel signal, whose statistics are
    nothing like the near-zero high-pass ones) ends a chunk of its own, so WebP's and PNG's
    per-image choices (transforms, entropy codes) fit each part. The plane's rows are the same;
    only where the chunks are cut moves. Measured on 8 validation photos of the corpus, the
    shipped ladder, WebP effort 4, chunk framing counted: -4.3% bytes at q 10, -2.4% q 50, -4.1%
    q 75, -2.7% q 95, at the same encode time (bench/results/payload_layouts.md; every group in
    an image of its own: -0.7..-2.5%).
    """
    width = shape[-1]
    if width > MAX_SIDE:
        raise PayloadError(f"latent width {width} exceeds {MAX_SIDE}; the caller must tile the signal")
    group_rows = int(np.prod(shape[1:-1]))
    halves = 2 if bits > 8 else 1
    groups = _groups(shape)
    if not split or groups == 1:
        return _cut(groups * group_rows * halves)
    return [rows for _ in range(halves) for part in (group_rows, (groups - 1) * group_rows) for rows in _cut(part)]


# The split costs one more image (~25 bytes of WebP header, 7 of chunk framing): measured on
# centre crops of 6 validation photos of the corpus, q 10 / q 75, it pays from about 1024 latent
# positions (a 256x256 photo at 8x8 per position): 36 positions +71% / +6%, 144 +18% / -1.8%,
# 400 +0.4% / -3.0%, 1024 -1.9% / -3.9%, 2304 -3.5% / -3.5% (bench/results/payload_layouts.md).
SPLIT_MIN_POSITIONS = 1024


def chooses_split(shape: tuple[int, ...], codec: str, major: int) -> bool:
    """Whether a writer of format ``major`` lays latents of ``shape`` ``(L, *S)`` out split
    (:func:`chunk_rows`): format 2 (2.1), ``webp`` or ``png``, more than one channel group, and
    at least :data:`SPLIT_MIN_POSITIONS` positions ``prod(S)``."""
    return major == 2 and codec in ("webp", "png") and _groups(shape) > 1 and int(np.prod(shape[1:])) >= SPLIT_MIN_POSITIONS


def chunk_count(shape: tuple[int, ...], bits: int, codec: PayloadCodec, split: bool = False) -> int:
    """How many chunks (images) the payload ``codec`` codes latents of ``shape`` into
    (``split``: see :func:`chunk_rows`; the ``jxl`` and ``ctx`` layouts have no split)."""
    if codec == "ctx":
        return 1
    if codec == "jxl":
        if shape[-1] > MAX_SIDE:  # the same bound as WebP's: the callers tile on it
            raise PayloadError(f"latent width {shape[-1]} exceeds {MAX_SIDE}; the caller must tile the signal")
        return len(payload_jxl.bands(shape))
    return len(chunk_rows(shape, bits, split))


def encode_planes(q: np.ndarray, bits: int, codec: PayloadCodec = "webp", effort: int = DEFAULT_EFFORT, split: bool = False) -> list[bytes]:
    """Code latents ``q`` ``(L, *S)`` (int) into a list of image byte strings, one per chunk.

    ``effort`` (0..6) trades encode time for size; the decoder does not need to know it.
    ``split``: the chunk layout of format 2.1 (:func:`chunk_rows`); the decoder must be told.
    """
    settings = webp_settings(effort)
    if not 1 <= bits <= MAX_BITS:
        raise ValueError(f"bits must be in 1..{MAX_BITS}, got {bits}")
    limit = (1 << (bits - 1)) - 1 if bits > 1 else 0
    if q.size and (q.min() < -limit - (bits == 1) or q.max() > limit):
        raise ValueError(f"latents exceed the {bits}-bit range")
    if codec == "ctx":  # no effort setting: one context model, one pass
        from walloc_cli.format import payload_ctx  # here: 13 ms of imports a WebP file never needs

        return [payload_ctx.encode(q)]
    if codec == "jxl":
        chunk_count(q.shape, bits, codec)  # refuses what the other payloads refuse
        return list(payload_jxl.encode(q, bits, effort))
    chunks: list[bytes] = []
    start = 0
    for rows in chunk_rows(q.shape, bits, split):
        image = Image.fromarray(_plane_rows(q, bits, start, start + rows), mode="RGB")
        start += rows
        buffer = io.BytesIO()
        if codec == "webp":
            image.save(buffer, format="WEBP", lossless=True, **settings)
        elif codec == "png":
            image.save(buffer, format="PNG", compress_level=9)
        else:
            raise ValueError(f"unknown payload codec {codec!r}; choose one of {', '.join(PAYLOAD_CODECS)}")
        chunks.append(buffer.getvalue())
    return chunks


def decode_planes(chunks: list[bytes], shape: tuple[int, ...], bits: int, codec: PayloadCodec, split: bool = False) -> np.ndarray:
    """Inverse of :func:`encode_planes` (given the same ``split``); returns latents of ``shape``
    as :func:`index_dtype` (int8 up to 8 bits, else int16), written chunk by chunk (no whole
    plane in memory).

    Raises:
        PayloadError: a chunk is not a valid image of the expected codec and size.
    """
    if codec == "ctx":
        from walloc_cli.format import payload_ctx

        if len(chunks) != 1:
            raise PayloadError(f"payload has {len(chunks)} chunks, expected 1")
        q = np.zeros(shape, index_dtype(bits))
        try:
            payload_ctx.decode(chunks[0], shape, bits, q)
        except payload_ctx.CtxError as error:
            raise PayloadError(str(error)) from None
        return q
    if codec == "jxl":
        chunk_count(shape, bits, codec)
        q = np.zeros(shape, index_dtype(bits))
        try:
            payload_jxl.decode(chunks, shape, bits, q)
        except payload_jxl.JxlError as error:
            raise PayloadError(str(error)) from None
        return q
    expected = chunk_rows(shape, bits, split)
    if len(chunks) != len(expected):
        raise PayloadError(f"payload has {len(chunks)} chunks, expected {len(expected)}")
    width = shape[-1]
    q = np.zeros(shape, index_dtype(bits))
    start = 0
    wanted_format = {"webp": "WEBP", "png": "PNG"}[codec]
    for index, (data, rows) in enumerate(zip(chunks, expected)):
        try:
            with Image.open(io.BytesIO(data), formats=[wanted_format]) as image:
                if image.size != (width, rows):
                    raise PayloadError(f"payload chunk {index} is {image.size[0]}x{image.size[1]}, expected {width}x{rows}")
                image.load()
                if image.mode != "RGB":
                    raise PayloadError(f"payload chunk {index} is {image.mode}, expected RGB")
                array = pillow_samples(image)  # not np.asarray: that holds the chunk twice more
        except PayloadError:
            raise
        except Image.UnidentifiedImageError:  # its message names a BytesIO object: say it plainly
            raise PayloadError(f"payload chunk {index} is not a {codec} image") from None
        except Exception as error:  # Pillow raises many types for corrupt data
            raise PayloadError(f"payload chunk {index} does not decode as {codec}: {error}") from None
        _add_plane_rows(q, array, bits, start)
        start += rows
    return q


_IMAGE_COUNT = struct.Struct("<H")
_IMAGE_LENGTH = struct.Struct("<I")


def pack_images(images: list[bytes]) -> bytes:
    """The image list of a self-describing chunk (``AUDB``, ``VOLT``):
    ``u16 n · n x u32 lengths · n images`` (normative, ``formats/wlc.md``)."""
    return _IMAGE_COUNT.pack(len(images)) + b"".join(_IMAGE_LENGTH.pack(len(i)) for i in images) + b"".join(images)


def unpack_images(data: bytes, offset: int) -> list[bytes]:
    """Inverse of :func:`pack_images` for the list that starts at ``offset`` and runs to the end
    of ``data``; every length is checked against the chunk before anything is sliced.

    Raises:
        PayloadError: the list is empty or truncated, or its lengths do not fill the chunk.
    """
    if len(data) < offset + _IMAGE_COUNT.size:
        raise PayloadError("image list is truncated")
    (count,) = _IMAGE_COUNT.unpack_from(data, offset)
    offset += _IMAGE_COUNT.size
    if count == 0 or len(data) < offset + _IMAGE_LENGTH.size * count:
        raise PayloadError("image list is truncated")
    lengths = [_IMAGE_LENGTH.unpack_from(data, offset + _IMAGE_LENGTH.size * i)[0] for i in range(count)]
    offset += _IMAGE_LENGTH.size * count
    if offset + sum(lengths) != len(data):
        raise PayloadError("image lengths do not add up to the chunk size")
    images = []
    for length in lengths:
        images.append(data[offset : offset + length])
        offset += length
    return images
