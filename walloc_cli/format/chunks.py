"""The fixed heads that open the self-describing chunks (normative, ``formats/wlc.md``).

Every ``AUDB`` and ``VOLT`` chunk's data is ``head · image list`` (the image list:
:func:`walloc_cli.format.payload.pack_images`). The heads are little-endian:

* ``AUDB`` (one block of audio)::

      u64 first frame | u32 frames | u32 lead | u32 extent          (20 bytes)

  Its first 12 bytes (``first · frames``) are what a range reader peeks at to skip a block
  without reading it (:func:`audio_block_span`).
* ``VOLT`` (one tile of a volume's latent grid)::

      3 x u32 latent origin | 3 x u32 latent extent                  (24 bytes)

This module only packs and unpacks: what the values may be (block sizes within the header's
limits, a tile inside the grid) is checked by the codec that knows the limits
(:mod:`walloc_cli.codecs.audio_blocks`, :mod:`walloc_cli.codecs.volume_tiles`). Bytes only.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from walloc_cli.errors import FormatError

_AUDIO_BLOCK = struct.Struct("<QIII")
_AUDIO_SPAN = struct.Struct("<QI")  # the first two fields of _AUDIO_BLOCK
_VOLUME_TILE = struct.Struct("<6I")

AUDIO_BLOCK_HEAD_SIZE: int = _AUDIO_BLOCK.size  # 20
AUDIO_BLOCK_SPAN_SIZE: int = _AUDIO_SPAN.size  # 12: first frame and frame count
VOLUME_TILE_HEAD_SIZE: int = _VOLUME_TILE.size  # 24


class AudioBlockHead(NamedTuple):
    """The head of an ``AUDB`` chunk: the block's ``frames`` own frames start at frame ``first``
    of the file; ``extent`` frames were coded, starting ``lead`` frames before ``first``."""

    first: int
    frames: int
    lead: int
    extent: int


class VolumeTileHead(NamedTuple):
    """The head of a ``VOLT`` chunk: the tile's place in the latent grid, in latents per axis."""

    origin: tuple[int, int, int]
    extent: tuple[int, int, int]


def pack_audio_block_head(head: AudioBlockHead) -> bytes:
    """The 20 head bytes of an ``AUDB`` chunk."""
    return _AUDIO_BLOCK.pack(head.first, head.frames, head.lead, head.extent)


def unpack_audio_block_head(data: bytes) -> AudioBlockHead:
    """The head at the start of ``AUDB`` chunk data; the image list follows at
    :data:`AUDIO_BLOCK_HEAD_SIZE`.

    Raises:
        FormatError: the data is shorter than the head.
    """
    if len(data) < _AUDIO_BLOCK.size:
        raise FormatError("audio block chunk is too short")
    return AudioBlockHead(*_AUDIO_BLOCK.unpack_from(data))


def audio_block_span(peeked: bytes) -> tuple[int, int] | None:
    """``(first, frames)`` from the first :data:`AUDIO_BLOCK_SPAN_SIZE` bytes of ``AUDB`` chunk
    data, or ``None`` when fewer were there (the chunk is then read whole and refused by
    :func:`unpack_audio_block_head`)."""
    if len(peeked) < _AUDIO_SPAN.size:
        return None
    first, frames = _AUDIO_SPAN.unpack_from(peeked)
    return first, frames


def pack_volume_tile_head(head: VolumeTileHead) -> bytes:
    """The 24 head bytes of a ``VOLT`` chunk."""
    return _VOLUME_TILE.pack(*head.origin, *head.extent)


def unpack_volume_tile_head(data: bytes) -> VolumeTileHead:
    """The head at the start of ``VOLT`` chunk data; the image list follows at
    :data:`VOLUME_TILE_HEAD_SIZE`.

    Raises:
        FormatError: the data is shorter than the head.
    """
    if len(data) < _VOLUME_TILE.size:
        raise FormatError("volume tile chunk is too short")
    values = _VOLUME_TILE.unpack_from(data)
    return VolumeTileHead((values[0], values[1], values[2]), (values[3], values[4], values[5]))


__all__ = [
    "AUDIO_BLOCK_HEAD_SIZE", "AUDIO_BLOCK_SPAN_SIZE", "VOLUME_TILE_HEAD_SIZE", "AudioBlockHead", "VolumeTileHead",
    "audio_block_span", "pack_audio_block_head", "pack_volume_tile_head", "unpack_audio_block_head", "unpack_volume_tile_head",
]
