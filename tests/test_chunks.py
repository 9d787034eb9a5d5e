"""The AUDB/VOLT chunk heads (walloc_cli.format.chunks): the byte layout of formats/wlc.md,
exact round trips, and one clear refusal of a short head."""

from __future__ import annotations

import pytest

from walloc_cli.errors import FormatError
from walloc_cli.format.chunks import (
    AUDIO_BLOCK_HEAD_SIZE,
    AUDIO_BLOCK_SPAN_SIZE,
    VOLUME_TILE_HEAD_SIZE,
    AudioBlockHead,
    VolumeTileHead,
    audio_block_span,
    pack_audio_block_head,
    pack_volume_tile_head,
    unpack_audio_block_head,
    unpack_volume_tile_head,
)


def test_audio_block_head_layout() -> None:
    head = AudioBlockHead(first=(1 << 40) + 5, frames=65536, lead=1024, extent=67584)
    data = pack_audio_block_head(head)
    # u64 first | u32 frames | u32 lead | u32 extent, little-endian
    assert data == ((1 << 40) + 5).to_bytes(8, "little") + (65536).to_bytes(4, "little") + (1024).to_bytes(4, "little") + (67584).to_bytes(4, "little")
    assert len(data) == AUDIO_BLOCK_HEAD_SIZE == 20
    assert unpack_audio_block_head(data + b"images follow") == head
    assert audio_block_span(data[:AUDIO_BLOCK_SPAN_SIZE]) == (head.first, head.frames)
    assert audio_block_span(data[: AUDIO_BLOCK_SPAN_SIZE - 1]) is None  # too little peeked: read the chunk whole
    with pytest.raises(FormatError, match="^audio block chunk is too short$"):
        unpack_audio_block_head(data[:-1])


def test_volume_tile_head_layout() -> None:
    head = VolumeTileHead(origin=(0, 32, 64), extent=(16, 32, 7))
    data = pack_volume_tile_head(head)
    assert data == b"".join(v.to_bytes(4, "little") for v in (0, 32, 64, 16, 32, 7))
    assert len(data) == VOLUME_TILE_HEAD_SIZE == 24
    assert unpack_volume_tile_head(data + b"\x01\x00") == head
    with pytest.raises(FormatError, match="^volume tile chunk is too short$"):
        unpack_volume_tile_head(data[:10])
