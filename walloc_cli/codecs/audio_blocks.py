"""Audio through WaLLoC: the file is coded as a stream of independently decodable blocks.

How channels become coded streams (``latent.streams`` in the header):

* ``mono``: one channel, one stream;
* ``mid-side``: stereo as M = (L + R) / 2 and S = (L - R) / 2. Most music puts little in S, so
  it costs few bits, and a one-channel model serves both; L = M + S, R = M - S on decoding;
* ``channels``: three or more channels, each its own stream (no inter-channel model; a 5.1 mix
  costs about six mono streams).

Level: the model sees ``x = gain * s / 2`` (about [-0.5, 0.5], as images do), with ``gain`` =
1 / (the file's peak), capped at 256, so quiet recordings use the model's whole range. The gain is
in the header and undone on decoding (``s = 2 x / gain``).

Blocks: ``BLOCK`` frames each, coded with ``MARGIN`` frames of real context on each side
(clamped at the file's ends, where the transform's symmetric extension takes over). The decoder
keeps only the block's own frames, so the transform and the decoder CNN (whose reach is about
``(10 + 9) * 2**J`` samples) never see an artificial edge inside the audio: no seam. Each block
is one ``AUDB`` chunk of the container (its own CRC), self-describing::

    u64 first frame | u32 frames | u32 lead (context frames before the block) | u32 extent
    u16 n | n x u32 image lengths | n lossless images (the latent planes, walloc_cli.format.payload)

Memory is one block at a time on both sides, whatever the duration.
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from walloc_cli.files.audio import AudioReader
from walloc_cli.model.runtime import Runtime
from walloc_cli.format.chunks import AUDIO_BLOCK_HEAD_SIZE, AudioBlockHead, pack_audio_block_head, unpack_audio_block_head
from walloc_cli.format.container import Chunk
from walloc_cli.errors import FormatError
from walloc_cli.format.header import MAX_GAIN, stream_layout  # noqa: F401 (stream_layout: part of this module's API)
from walloc_cli.format.payload import PayloadError, decode_planes, encode_planes, pack_images, unpack_images

BLOCK = 1 << 16  # frames per chunk: 1.5 s at 44.1 kHz
MARGIN = 1024  # context frames on each side of a block


def to_streams(block: np.ndarray, layout: str) -> np.ndarray:
    """``(channels, n)`` samples to ``(streams, n)`` coded signals."""
    if layout == "mid-side":
        return np.stack([(block[0] + block[1]) / 2, (block[0] - block[1]) / 2])
    return block


def from_streams(streams: np.ndarray, layout: str) -> np.ndarray:
    """Inverse of :func:`to_streams`."""
    if layout == "mid-side":
        return np.stack([streams[0] + streams[1], streams[0] - streams[1]])
    return streams


def gain_for_peak(peak: float) -> float:
    """The normalisation gain of a file whose largest magnitude is ``peak``: 1 / peak, capped at
    ``MAX_GAIN``; 1 for silence. Training (:mod:`walloc_cli.train.audio`) uses it too."""
    return float(min(MAX_GAIN, 1.0 / peak)) if peak > 0 else 1.0


def file_gain(reader: AudioReader) -> float:
    """:func:`gain_for_peak` of the whole file, found in one streamed pass."""
    peak = 0.0
    for block in reader.blocks(BLOCK):
        peak = max(peak, float(np.abs(block).max(initial=0.0)))
    return gain_for_peak(peak)


@dataclass(frozen=True)
class EncodedBlock:
    """One coded block: its chunk, and what the encoder already holds (so that measuring the
    result needs neither the lossless decode nor a second read of the file)."""

    chunk: Chunk
    header: AudioBlockHead
    q: np.ndarray  # (streams, latent_dim, T) int32 indices
    samples: np.ndarray  # (channels, frames) float64: the block's own source samples


def encode_block(model: Runtime, reader: AudioReader, first: int, gain: float, layout: str, step: float, payload: str, effort: int) -> EncodedBlock:
    """Code frames ``first .. first + BLOCK`` (with context) into one ``AUDB`` chunk."""
    frames = min(BLOCK, reader.info.frames - first)
    start = max(0, first - MARGIN)
    stop = min(reader.info.frames, first + frames + MARGIN)
    samples = reader.read(start, stop, np.float64)  # float64: exact for every PCM width
    signal = to_streams(samples, layout) * (gain / 2)
    x = signal.astype(np.float32)[:, None, :]  # (streams, 1, extent)
    q = model.encode(x, step)  # (streams, L, T)
    planes = encode_planes(q.reshape(-1, q.shape[-1]), model.index_bits(step), payload, effort)  # type: ignore[arg-type]
    header = AudioBlockHead(first, frames, first - start, stop - start)
    kept = samples[:, header.lead : header.lead + frames]
    return EncodedBlock(Chunk("AUDB", pack_audio_block_head(header) + pack_images(planes)), header, q, kept)


def parse_block(data: bytes, block_limit: int = BLOCK, margin_limit: int = MARGIN) -> tuple[AudioBlockHead, list[bytes]]:
    """Split an ``AUDB`` chunk into its header and latent images; every size is checked against
    the header's limits and the chunk's length before anything is allocated."""
    head = unpack_audio_block_head(data)
    first, frames, lead, extent = head
    if not (0 < frames <= block_limit and lead <= margin_limit and lead + frames <= extent <= frames + 2 * margin_limit):
        raise FormatError(f"audio block at frame {first} declares impossible sizes ({frames} frames, lead {lead}, extent {extent})")
    try:
        images = unpack_images(data, AUDIO_BLOCK_HEAD_SIZE)
    except PayloadError as error:
        raise FormatError(f"audio block at frame {first}: {error}") from None
    return head, images


def decode_block(model: Runtime, header: AudioBlockHead, images: list[bytes], streams: int, step: float, bits: int, payload: str, gain: float, layout: str, split: bool = False) -> np.ndarray:
    """Latent images of one block to its ``(channels, frames)`` float64 samples (``split``: the
    header's ``latent.split``)."""
    latent_len = -(-header.extent // model.cfg.block)
    shape = (streams * model.cfg.latent_dim, latent_len)
    try:
        q = decode_planes(images, shape, bits, payload, split)
    except PayloadError as error:
        raise FormatError(f"audio block at frame {header.first}: {error}") from None
    return synthesize_block(model, header, q.reshape(streams, model.cfg.latent_dim, latent_len), step, gain, layout)


def synthesize_block(model: Runtime, header: AudioBlockHead, q: np.ndarray, step: float, gain: float, layout: str) -> np.ndarray:
    """Indices ``(streams, latent_dim, T)`` of one block to its ``(channels, frames)`` float64 samples."""
    x = model.decode(q, (header.extent,), step)
    kept = x[:, 0, header.lead : header.lead + header.frames].astype(np.float64) * (2 / gain)
    if not np.abs(kept).max(initial=0.0) < np.finfo(np.float32).max:  # NaN, inf, or past float32: only an absurd gain does this
        raise FormatError(f"audio block at frame {header.first} decodes to non-finite samples (gain {gain!r} in the header)")
    return from_streams(kept, layout)


def stream_count(layout: str, channels: int) -> int:
    """Coded streams per block: 1 for mono, 2 for mid/side, one per channel otherwise."""
    return 1 if layout == "mono" else 2 if layout == "mid-side" else channels
