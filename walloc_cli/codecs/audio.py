"""Compress and decompress audio files (``.wav``, ``.flac``, ``.ogg``, ``.aiff`` ...) to ``.wlc``.

The file is streamed: one block of samples is read, coded, written (and, for the report, decoded
and compared) at a time, so memory does not grow with duration. See
:mod:`walloc_cli.codecs.audio_blocks` for the block format and ``formats/wlc.md`` for the header.

Decoding can start mid-file (:func:`decode_audio_range`, :func:`decode_audio_seconds`,
``decompress_audio(start=, frames=)``): each block's chunk opens with its first frame, so the
blocks before the range are passed over unread and undecoded, and reading stops at its end.
Blocks are coded with real context, never with their neighbours' output, so a range decodes to
exactly the samples a full decode has there.

Report (:class:`AudioReport`): kbit/s = file bits / duration / 1000; compression ratio = raw PCM
size at the source's bits per sample (16 for compressed sources) / file size; SNR = signal energy
/ error energy; PSNR with peak = PCM full scale (1.0 in float units, the largest sample value of
the format), both over every sample of every channel as the user gets them back (quantised to
the output subtype).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from walloc_cli._version import __version__
from walloc_cli.codecs.base import Progress, ReportBase, WlcSource, checked_payload, human_bytes, open_wlc, setting_label
from walloc_cli.files.audio import (
    PCM_BITS,
    AudioInfo,
    AudioReader,
    AudioWriter,
    output_subtype,
    quantise,
)
from walloc_cli.codecs.audio_blocks import (
    BLOCK,
    MARGIN,
    decode_block,
    encode_block,
    file_gain,
    parse_block,
    stream_count,
    stream_layout,
    synthesize_block,
)
from walloc_cli.format.chunks import AUDIO_BLOCK_SPAN_SIZE, audio_block_span
from walloc_cli.format.container import WlcReader, WlcWriter
from walloc_cli.files.safe_io import CountingWriter
from walloc_cli.errors import FormatError, InputError, ModelError
from walloc_cli.format.header import check_codec_matches, check_latent_bits, chunk_tally, declares_split, validate_audio_header, validate_header
from walloc_cli.format.payload import DEFAULT_EFFORT, PAYLOAD_MINOR
from walloc_cli.model.quality import choose_setting, ladder
from walloc_cli.model.zoo import find_card, load_by_identity, load_model
from walloc_cli.model.runtime import Runtime


@dataclasses.dataclass
class AudioReport(ReportBase):
    """What compressing one audio file cost and lost."""

    input: str
    output: str
    n_bytes: int
    seconds: float
    duration: float
    samplerate: int
    channels: int
    raw_bytes: int
    reduction: float
    model: str
    step: float
    quality: float | None
    snr: float | None = None
    psnr: float | None = None
    clipped: int = 0

    @property
    def kbps(self) -> float:
        return self.n_bytes * 8 / max(self.duration, 1e-9) / 1000

    @property
    def ratio(self) -> float:
        return self.raw_bytes / max(1, self.n_bytes)

    modality = "audio"  # a class attribute: not a field

    def summary(self) -> str:
        measured = f"SNR {self.snr:.2f} dB  PSNR {self.psnr:.2f} dB" if self.psnr is not None else "PSNR skipped"
        clipped = f"  {self.clipped} samples clipped" if self.clipped else ""
        return (
            f"{self.input} -> {self.output}  {human_bytes(self.n_bytes)}  {self.kbps:.1f} kbit/s  {self.ratio:.1f}:1  "
            f"{measured}  DR {self.reduction:g}x  {setting_label(self.model, self.step, self.quality)}{clipped}  {self.seconds:.2f} s"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "modality": "audio", "kbps": self.kbps, "ratio": self.ratio}


@dataclasses.dataclass
class AudioDecompressReport(ReportBase):
    """What one audio decompression wrote; ``damaged`` blocks (with ``keep_going``) are its problems."""

    input: str
    output: str
    samplerate: int
    channels: int
    frames: int
    seconds: float
    damaged: list[str] = dataclasses.field(default_factory=list)  # with keep_going: what became silence
    # With --start/--duration only a stretch was written: the output is not the whole file, so
    # nothing may treat it as a replacement for the .wlc (e.g. to delete the input).
    partial: bool = False

    modality = "audio"

    @property
    def problems(self) -> list[str]:
        return self.damaged

    def summary(self) -> str:
        return f"{self.input} -> {self.output}  {self.samplerate} Hz, {self.channels} ch, {self.frames} frames  {self.seconds:.2f} s"


def sample_bits(info: AudioInfo) -> int:
    """Bits per raw sample a compression ratio divides by (16 for compressed sources, whose
    decoded form is 16-bit PCM, see :mod:`walloc_cli.files.audio`)."""
    return info.bits or 16


def compress_audio(src: Path | str, dst_stream: BinaryIO, *, model: str | None = None, quality: float | None = None, payload: str | None = None, effort: int | None = None, measure: bool = True, progress: Progress | None = None) -> AudioReport:
    """Code audio file ``src`` into ``dst_stream`` (written front to back: a pipe works);
    ``progress(frames_done, frames_total)`` is called after each block."""
    checked_payload(payload)  # refused before the input is opened
    card = find_card(model) if model else None
    started = time.perf_counter()
    with AudioReader(src) as reader:
        info = reader.info
        setting, quality_used = choose_setting(quality, audio_family(info.samplerate), card)
        codec, card = load_model(model if card is not None else setting.model)  # a path stays a path
        if card.modality != "audio":
            raise InputError(f"model {card.name!r} is a {card.modality} model, not an audio model")
        step = setting.step
        effort = int(card.card.get("payload_effort", DEFAULT_EFFORT)) if effort is None else effort
        payload = checked_payload(payload, effort)
        gain = file_gain(reader)
        layout = stream_layout(info.channels)
        header = {
            "encoder": f"walloc {__version__}",
            "modality": "audio",
            "audio": {"samplerate": info.samplerate, "channels": info.channels, "frames": info.frames, "subtype": info.subtype, "format": info.format},
            "model": {"name": card.name, "sha256": card.sha256},
            "codec": codec.cfg.to_dict(),
            # The model's index bits, not the tight ones of format 1.3: the header precedes the
            # blocks, which are coded as they are read (memory does not grow with duration), so
            # knowing the largest index would take a second analysis pass, and one byte plane
            # measured larger for audio anyway (+4-7% on music at q 90-100; formats/wlc.md,
            # "Format 1.3: tight latent bits").
            "latent": {"bits": codec.index_bits(step), "step": float(step), "payload": payload, "block": BLOCK, "margin": MARGIN, "streams": layout},
            "normalisation": {"gain": gain},
        }
        out_bits = PCM_BITS.get(output_subtype(info.subtype, "WAV" if info.format not in ("FLAC", "AIFF") else info.format))
        signal = squared = 0.0
        clipped = 0
        counted = CountingWriter(dst_stream)
        with WlcWriter(counted, header, minor=PAYLOAD_MINOR.get(payload, 0)) as writer:  # type: ignore[arg-type]
            for first in range(0, info.frames, BLOCK):
                block = encode_block(codec, reader, first, gain, layout, step, payload, effort)
                writer.write_chunk(block.chunk)
                if progress is not None:
                    progress(first + block.header.frames, info.frames)
                if measure:  # from the indices themselves: the lossless stage is exact
                    decoded = synthesize_block(codec, block.header, block.q, step, gain, layout)
                    original = block.samples
                    if out_bits is not None:
                        ints, count = quantise(decoded, out_bits)
                        decoded = ints / float(1 << (out_bits - 1))
                        clipped += count
                    signal += float(np.sum(original**2))
                    squared += float(np.sum((decoded - original) ** 2))
        seconds = time.perf_counter() - started
    total = info.frames * info.channels
    report = AudioReport(
        input=str(src), output="", n_bytes=counted.count, seconds=seconds,
        duration=info.frames / info.samplerate, samplerate=info.samplerate, channels=info.channels,
        raw_bytes=total * sample_bits(info) // 8, reduction=codec.cfg.reduction, model=card.name, step=step,
        quality=quality_used,
        clipped=clipped,
    )
    if measure:
        mse = squared / max(total, 1)
        report.psnr = 10 * math.log10(1.0 / mse) if mse > 0 else math.inf
        report.snr = 10 * math.log10(signal / squared) if squared > 0 and signal > 0 else math.inf
    return report


NARROWBAND = 16000  # Hz: at this rate and below, audio is coded by the speech models when they ship
TELEPHONE = 8000  # Hz: at this rate and below, by the telephone-band speech models when they ship


def audio_family(samplerate: int) -> str:
    """``speech8k`` for telephone-band audio (<= 8 kHz), ``speech`` up to 16 kHz, when those
    ladders are installed, else ``audio`` (the music-trained models)."""
    for limit, family in ((TELEPHONE, "speech8k"), (NARROWBAND, "speech")):
        if samplerate <= limit:
            try:
                ladder(family)
                return family
            except ModelError:
                pass
    return "audio"


@dataclasses.dataclass(frozen=True)
class _Decoding:
    """What a validated audio header tells the decoder."""

    codec: Runtime
    info: AudioInfo
    layout: str
    streams: int
    gain: float
    step: float
    bits: int
    payload: str
    block: int
    margin: int
    split: bool  # format 2.1 layout; walloc writes audio stacked (split: +4.5% at q 10 on music)

    @property
    def blocks(self) -> int:
        """``AUDB`` chunks the file holds: one per ``block`` frames."""
        return -(-self.info.frames // self.block)


def _decoding(header: dict[str, Any], model: str | None, version: tuple[int, int]) -> _Decoding:
    """Validate an audio header (of a file of format ``version``) and load the model it names."""
    validate_header(header, "audio")
    codec, _ = load_by_identity(header["model"]["name"], header["model"]["sha256"], model)
    check_codec_matches(header, dataclasses.asdict(codec.cfg))
    if codec.cfg.dims != 1:
        raise FormatError("invalid header: the model is not an audio model")
    audio, latent = header["audio"], header["latent"]
    check_latent_bits(header, version, codec.index_bits(latent["step"]))
    info = AudioInfo(audio["samplerate"], audio["channels"], audio["frames"], audio["format"], audio["subtype"])
    layout = latent["streams"]
    return _Decoding(
        codec, info, layout, stream_count(layout, info.channels), float(header["normalisation"]["gain"]),
        float(latent["step"]), latent["bits"], latent["payload"], latent["block"], latent["margin"], declares_split(header),
    )


def frame_range(info: AudioInfo, start: int = 0, frames: int | None = None) -> tuple[int, int]:
    """``(start, stop)`` frames of a range request on a file of ``info.frames`` frames: ``frames``
    ``None`` means to the end, and a range running past the end is clipped to it.

    Raises:
        InputError: negative start or length, empty range, or a start at or past the end.
    """
    if start < 0:
        raise InputError(f"start frame {start} is negative")
    if frames is not None and frames <= 0:
        raise InputError(f"a range of {frames} frames is empty")
    if start >= info.frames:
        raise InputError(f"start {start / info.samplerate:.3f} s (frame {start}) is past the end ({info.seconds:.3f} s, {info.frames} frames)")
    return start, info.frames if frames is None else min(info.frames, start + frames)


def seconds_to_frames(samplerate: int, start: float = 0.0, duration: float | None = None) -> tuple[int, int | None]:
    """``--start``/``--duration`` in seconds to ``(start frame, frames or None)``, each rounded
    to the nearest frame (a non-zero duration is at least one frame)."""
    if not (math.isfinite(start) and start >= 0):
        raise InputError(f"start {start} s must be a finite number of seconds >= 0")
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        raise InputError(f"duration {duration} s must be a finite number of seconds > 0")
    first = round(start * samplerate)
    return first, None if duration is None else max(1, round(duration * samplerate))


def _decoded_blocks(reader: WlcReader, decoding: _Decoding, start: int, stop: int, damaged: list[str] | None) -> Iterator[np.ndarray]:
    """Frames ``start .. stop`` of the file as consecutive ``(channels, n)`` float64 blocks.

    A block wholly before ``start`` is passed over unread (its chunk header names its first
    frame and length, so its payload is neither read nor decoded); decoding stops once ``stop``
    is reached, so a range costs the blocks it touches. Every block that is decoded passed its
    CRC and must continue exactly where the previous one ended. With ``damaged`` (a list), a
    block whose chunk is corrupt fails alone: its frames are silence and one line per damaged
    stretch is appended to the list.
    """
    info, codec = decoding.info, decoding.codec
    pos = start  # the next frame to produce
    begun = False
    pending: list[str] = []

    def silence(until: int, problem: str) -> Iterator[np.ndarray]:
        nonlocal pos
        assert damaged is not None
        # Each damaged chunk stood for one block of at most ``decoding.block`` frames: never fill
        # more than that, or a file declaring 2**40 frames with one bad chunk writes terabytes.
        if until - pos > len(pending) * decoding.block:
            raise FormatError(problem)
        damaged.append(f"{'; '.join(pending)}: frames {pos}..{until - 1} replaced by silence")
        pending.clear()
        while pos < until:
            count = min(BLOCK, until - pos)
            yield np.zeros((info.channels, count))
            pos += count

    def before_range(kind: str, head: bytes) -> bool:
        span = audio_block_span(head) if kind == "AUDB" else None
        return span is not None and span[0] + span[1] <= start

    chunks = reader.iter_chunks(pending.append if damaged is not None else None, before_range if start > 0 else None, AUDIO_BLOCK_SPAN_SIZE)
    tally = chunk_tally(reader.header)
    for chunk in chunks:
        if tally.add(chunk.type) > decoding.blocks:
            raise FormatError(f"more AUDB chunks than the {decoding.blocks} the header declares")
        head, images = parse_block(chunk.data, decoding.block, decoding.margin)
        end = head.first + head.frames
        if pending and pos < head.first <= info.frames:
            yield from silence(min(head.first, stop), f"audio block at frame {head.first} is out of place (expected frame {pos})")
            begun = True
            if pos >= stop:
                break
        pending.clear()  # damage that cost no frame of the range (a block before it)
        in_place = head.first == pos or (not begun and head.first < pos < end)
        if not in_place or end > info.frames:
            raise FormatError(f"audio block at frame {head.first} is out of place (expected frame {pos})")
        samples = decode_block(codec, head, images, decoding.streams, decoding.step, decoding.bits, decoding.payload, decoding.gain, decoding.layout, decoding.split)
        last = min(end, stop)
        yield samples[:, pos - head.first : last - head.first]
        pos, begun = last, True
        if pos >= stop and stop < info.frames:
            break  # the rest of the file is not needed (nor read)
    truncated = f"truncated: {pos - start} of {stop - start} frames decoded"
    if pending and pos < stop:
        yield from silence(stop, truncated)
    if pos != stop:
        raise FormatError(truncated)


def decompress_audio(reader: WlcReader, dst: Path | str, *, overwrite: bool = False, model: str | None = None, subtype: str | None = None, damaged: list[str] | None = None, start: int = 0, frames: int | None = None, progress: Progress | None = None) -> AudioInfo:
    """Decode an audio ``.wlc`` (its header already read by ``reader``) into ``dst`` block by
    block; the container of ``dst`` follows its extension (``-``: WAV on standard output).

    ``start``/``frames`` decode only frames ``start .. start + frames`` (clipped to the end;
    ``frames=None``: to the end): blocks before the range are skipped unread, and the file
    written holds exactly that range, sample for sample what a full decode holds there.
    ``progress(frames_done, frames_total)`` is called after each block.

    By default any damage fails the whole decode (no output). With a ``damaged`` list, a block
    whose chunk is corrupt fails alone: its frames are written as silence, and one line per
    damaged stretch is appended to the list (as ``flac -F`` does).

    Returns:
        the :class:`AudioInfo` of what was written (``frames`` = the range's length).
    """
    decoding = _decoding(reader.header, model, reader.version)
    first, stop = frame_range(decoding.info, start, frames)
    info = dataclasses.replace(decoding.info, frames=stop - first)
    with AudioWriter(dst, info, overwrite=overwrite, subtype=subtype) as writer:
        done = 0
        for samples in _decoded_blocks(reader, decoding, first, stop, damaged):
            writer.write(samples.astype(np.float32))
            done += samples.shape[-1]
            if progress is not None:
                progress(done, info.frames)
    return info


def decode_audio_range(source: WlcSource, start: int = 0, frames: int | None = None, *, model: str | None = None) -> tuple[np.ndarray, int]:
    """Decode frames ``start .. start + frames`` of an audio ``.wlc`` (a path, its bytes, or a
    binary stream at its first byte) without decoding, or for a seekable source reading, the
    blocks before them; ``frames=None`` decodes to the end and a range past the end is clipped.

    Returns:
        ``(samples, samplerate)`` as ``soundfile.read`` gives them: ``samples`` is
        ``(frames, channels)`` float64 in PCM full scale (±1), as decoded, before any
        quantisation to the output subtype; equal, sample for sample, to the same frames of a
        full decode.

    Raises:
        InputError: an empty range or one that starts past the end.
        FormatError / ModelError: as for :func:`decompress_audio`.
    """
    with open_wlc(source) as reader:
        return _decode_range(reader, start, frames, model)


def decode_audio_seconds(source: WlcSource, start: float = 0.0, duration: float | None = None, *, model: str | None = None) -> tuple[np.ndarray, int]:
    """:func:`decode_audio_range` with the range in seconds (each rounded to the nearest frame)."""
    with open_wlc(source) as reader:
        rate = header_samplerate(reader.header)
        first, frames = seconds_to_frames(rate, start, duration)
        return _decode_range(reader, first, frames, model)


def header_samplerate(header: dict[str, Any]) -> int:
    """The sample rate of an audio header; an :class:`InputError` for any other modality."""
    if header.get("modality") != "audio":
        raise InputError(f"holds {header.get('modality') or 'unknown'} data, not audio: only audio can be decoded from a given time (--start, --duration)")
    validate_audio_header(header)  # an audio file: what is wrong with it, if anything
    return int(header["audio"]["samplerate"])


def _decode_range(reader: WlcReader, start: int, frames: int | None, model: str | None) -> tuple[np.ndarray, int]:
    header_samplerate(reader.header)
    decoding = _decoding(reader.header, model, reader.version)
    first, stop = frame_range(decoding.info, start, frames)
    blocks = list(_decoded_blocks(reader, decoding, first, stop, None))
    return np.concatenate(blocks, axis=1).T, decoding.info.samplerate


def default_audio_suffix(fmt: str) -> str:
    """Where a decoded file goes by default: the source's container when walloc can write it
    losslessly (FLAC, AIFF), else WAV."""
    return {"FLAC": ".flac", "AIFF": ".aiff"}.get(fmt, ".wav")
