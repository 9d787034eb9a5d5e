"""Lossless coding of integer latents as JPEG XL (payload ``"jxl"``, format 1.3) through imagecodecs.

Layout (normative, ``formats/wlc.md``, "The jxl payload"): latents ``q`` of shape ``(L, *S)`` are
viewed as ``(L, R, W)`` with ``R = prod(S[:-1])`` rows and ``W = S[-1]`` columns (an image's
``(L, h, w)`` as it is; a volume tile's ``(L, z, y, x)`` as its ``z`` slices stacked vertically;
an audio block's ``(L, n)`` folded into rows of ``min(n, FOLD)`` columns), and offset to unsigned by ``2**(bits-1)``:
``uint8`` samples up to 8 bits, ``uint16`` above. The channels are cut into groups of at most
:data:`MAX_CHANNELS`, each group's rows into bands of at most
``max(1, CHUNK_VALUES // (channels * W))`` rows; every (group, band) is one lossless JPEG XL
image, planar (a grey channel plus ``channels - 1`` extra channels, one per latent channel), stored
as a bare codestream (the ISO BMFF container libjxl adds for level-10 images is stripped: it
carries nothing a decoder needs). Groups come first, bands within a group in row order. The
chunk layout thus follows from the header's shape and bits alone.

Before a chunk is decoded its codestream header (size, bit depth, extra channel count) is parsed
here and checked against what the header implies, so a tiny crafted codestream that declares a
huge image is refused before libjxl allocates anything for it.
"""

from __future__ import annotations

from typing import Iterator

import imagecodecs
import numpy as np

from walloc_cli.errors import WallocError

MAX_CHANNELS = 256  # libjxl's level-10 limit is 256 extra channels; 1000 fails JxlEncoderSetBasicInfo
FOLD = 64  # columns of the rows 1-D latents are folded into (of 16, 64, 128: the smallest)
CHUNK_VALUES = 1 << 24  # latent values per JPEG XL image: libjxl holds ~4 bytes per value while coding
# walloc --effort 0..6 -> libjxl effort (bench/results/payload_coders.md). libjxl 1 codes these
# planar images exactly as 2 does, so 0 is 2 (faster than WebP effort 4, 11..40% larger). 4, the
# default, is libjxl 7: the last before the encode time triples, 0.4..13% smaller than WebP
# effort 4 on photos below q 75, at 3..9x its encode time. 6 is libjxl 9: 2..20% smaller on
# 9 of 10 photo sets, encoding about as slowly as WebP effort 6 (which saves 0..6%).
EFFORTS: dict[int, int] = {0: 2, 1: 3, 2: 4, 3: 5, 4: 7, 5: 8, 6: 9}

_SIGNATURE = b"\xff\x0a"
_CONTAINER = b"\x00\x00\x00\x0cJXL \r\n\x87\n"
# SizeHeader aspect ratios (ISO/IEC 18181-1, D.2): width = height * num // den
_RATIOS = {1: (1, 1), 2: (12, 10), 3: (4, 3), 4: (3, 2), 5: (16, 9), 6: (5, 4), 7: (2, 1)}


class JxlError(WallocError, ValueError):
    """A chunk is not the JPEG XL codestream the header implies."""


class _Bits:
    """LSB-first bit reader over a codestream, as ISO/IEC 18181-1 reads its headers."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def u(self, n: int) -> int:
        value = 0
        for i in range(n):
            byte, bit = divmod(self._pos, 8)
            if byte >= len(self._data):
                raise JxlError("JPEG XL header is truncated")
            value |= ((self._data[byte] >> bit) & 1) << i
            self._pos += 1
        return value

    def u32(self, *dists: tuple[int, int]) -> int:
        """``U32(d0, d1, d2, d3)``: each distribution is ``(bits, offset)``; ``bits == 0`` is a constant."""
        bits, offset = dists[self.u(2)]
        return offset + (self.u(bits) if bits else 0)


def _size(reader: _Bits) -> tuple[int, int]:
    """A SizeHeader: ``(width, height)``."""
    small = reader.u(1)
    dists = ((9, 1), (13, 1), (18, 1), (30, 1))
    height = 8 * (reader.u(5) + 1) if small else reader.u32(*dists)
    ratio = reader.u(3)
    if ratio:
        num, den = _RATIOS[ratio]
        return height * num // den, height
    return (8 * (reader.u(5) + 1) if small else reader.u32(*dists)), height


def codestream_info(data: bytes) -> tuple[int, int, int, int]:
    """``(width, height, channels, bits_per_sample)`` from a bare JPEG XL codestream's SizeHeader
    and ImageMetadata (ISO/IEC 18181-1, D.2 and A.6), read without decoding anything.

    Raises:
        JxlError: not a bare codestream, truncated, float samples, or a preview/animation (no
            payload image has them).
    """
    if not data.startswith(_SIGNATURE):
        raise JxlError("is not a bare JPEG XL codestream")
    reader = _Bits(data[2:66])  # the fields read here fit in far fewer bytes
    width, height = _size(reader)
    if reader.u(1):  # all_default: 8-bit samples, no extra channels
        return width, height, 1, 8
    if reader.u(1):  # extra_fields
        reader.u(3)  # orientation
        if reader.u(1):  # intrinsic size
            _size(reader)
        if reader.u(1) or reader.u(1):  # preview, animation
            raise JxlError("JPEG XL chunk has a preview or an animation")
    if reader.u(1):
        raise JxlError("JPEG XL chunk has float samples")
    bits = reader.u32((0, 8), (0, 10), (0, 12), (6, 1))
    reader.u(1)  # modular_16bit_buffers
    extra = reader.u32((0, 0), (0, 1), (4, 2), (12, 1))
    return width, height, 1 + extra, bits


def _bare(data: bytes) -> bytes:
    """The codestream inside libjxl's output: itself, or the ``jxlc``/``jxlp`` boxes' contents."""
    if data.startswith(_SIGNATURE):
        return data
    if not data.startswith(_CONTAINER):
        raise JxlError("libjxl wrote neither a codestream nor a container")
    parts: list[bytes] = []
    at = 0
    while at < len(data):
        size, kind = int.from_bytes(data[at : at + 4], "big"), data[at + 4 : at + 8]
        head = 8
        if size == 1:
            size, head = int.from_bytes(data[at + 8 : at + 16], "big"), 16
        elif size == 0:
            size = len(data) - at
        if kind == b"jxlc":
            parts.append(data[at + head : at + size])
        elif kind == b"jxlp":
            parts.append(data[at + head + 4 : at + size])  # after the part counter
        at += size
    return b"".join(parts)


def grid(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(R, W)``: rows and columns of the ``(L, R, W)`` view of latents of ``shape`` ``(L, *S)``.

    1-D latents ``(L, n)`` (audio) are folded into rows of ``FOLD`` columns (the last row padded
    with index 0): as one row of ``n`` they cost 70% more than WebP at libjxl effort 7, folded
    16% more (bench/results/payload_coders.md)."""
    if len(shape) == 2:
        width = min(shape[1], FOLD)
        return -(-shape[1] // width), width
    return int(np.prod(shape[1:-1], dtype=np.int64)), shape[-1]


def bands(shape: tuple[int, ...]) -> list[tuple[int, int, int, int]]:
    """The JPEG XL images of latents of ``shape`` ``(L, *S)``, in payload order:
    ``(first channel, channels, first row, rows)`` of the ``(L, R, W)`` view (:func:`grid`)."""
    latent = shape[0]
    rows, width = grid(shape)
    out = []
    for first in range(0, latent, MAX_CHANNELS):
        channels = min(MAX_CHANNELS, latent - first)
        step = max(1, CHUNK_VALUES // (channels * width))
        out.extend((first, channels, row, min(step, rows - row)) for row in range(0, rows, step))
    return out


def _view(q: np.ndarray) -> np.ndarray:
    """The ``(L, R, W)`` view of ``q`` (:func:`grid`): a reshape, or for 1-D latents a padded copy."""
    rows, width = grid(q.shape)
    if q.ndim != 2 or rows * width == q.shape[1]:
        return q.reshape(q.shape[0], rows, width)
    folded = np.zeros((q.shape[0], rows * width), q.dtype)
    folded[:, : q.shape[1]] = q
    return folded.reshape(q.shape[0], rows, width)


def encode(q: np.ndarray, bits: int, effort: int) -> Iterator[bytes]:
    """Code latents ``q`` ``(L, *S)`` (checked to fit ``bits``) as bare JPEG XL codestreams, one
    per :func:`bands` entry; ``effort`` is walloc's 0..6 (:data:`EFFORTS`)."""
    if effort not in EFFORTS:
        raise ValueError(f"effort must be 0..6, got {effort}")
    return encode_at(q, bits, EFFORTS[effort])


def encode_at(q: np.ndarray, bits: int, level: int) -> Iterator[bytes]:
    """As :func:`encode` at libjxl's own effort ``level`` 1..9 (``bench/payload_coders.py``
    measures every level, not only the seven ``--effort`` reaches)."""
    view = _view(q)
    dtype = np.uint8 if bits <= 8 else np.uint16
    for first, channels, row, rows in bands(q.shape):
        planes = (view[first : first + channels, row : row + rows].astype(np.int32) + (1 << (bits - 1))).astype(dtype)
        # numthreads=1: identical bytes on every machine (the reference files are checked byte for byte)
        data = imagecodecs.jpegxl_encode(planes, lossless=True, effort=level, planar=True, numthreads=1)
        yield _bare(bytes(data))


def decode(chunks: list[bytes], shape: tuple[int, ...], bits: int, q: np.ndarray) -> None:
    """Decode ``chunks`` into ``q`` (zeros, of ``shape`` ``(L, *S)``, int8/int16), one band at a
    time; each codestream's header is checked before libjxl sees it.

    Raises:
        JxlError: wrong chunk count, a chunk of the wrong size, channel count or bit depth, or
            one that libjxl cannot decode.
    """
    expected = bands(shape)
    if len(chunks) != len(expected):
        raise JxlError(f"payload has {len(chunks)} chunks, expected {len(expected)}")
    view = _view(q)  # for folded 1-D latents a padded copy, written back below
    width = grid(shape)[1]
    depth = 8 if bits <= 8 else 16
    offset = 1 << (bits - 1)
    info = np.iinfo(q.dtype)
    for index, (data, (first, channels, row, rows)) in enumerate(zip(chunks, expected)):
        try:
            found = codestream_info(data)
        except JxlError as error:
            raise JxlError(f"payload chunk {index} {error}") from None
        if found != (width, rows, channels, depth):
            w, h, c, b = found
            raise JxlError(f"payload chunk {index} is {w}x{h}, {c} channels of {b} bits; expected {width}x{rows}, {channels} of {depth}")
        try:
            planes = imagecodecs.jpegxl_decode(data, numthreads=1)
        except Exception as error:  # imagecodecs raises its own error types for corrupt data
            raise JxlError(f"payload chunk {index} does not decode as jxl: {error}") from None
        planes = planes.reshape(channels, rows, width) if planes.size == channels * rows * width else planes
        if planes.shape != (channels, rows, width) or planes.dtype != (np.uint8 if depth == 8 else np.uint16):
            raise JxlError(f"payload chunk {index} decodes to {planes.shape} {planes.dtype}, expected {(channels, rows, width)}")
        # corrupt payloads can hold samples no encoder writes: clip into the dtype, never wrap
        view[first : first + channels, row : row + rows] = np.clip(planes.astype(np.int32) - offset, info.min, info.max)
    if not np.shares_memory(view, q):
        q[...] = view.reshape(q.shape[0], -1)[:, : q.shape[1]]
