"""Compress and decompress audio files (``.wav``, ``.flac``, ``.ogg``, ``.aiff`` ...) to ``.wlc``.

The file is streamed: one block of samples is read, coded, written (and, for the report, decoded
and compared) at a time, so memory does not grow with duration. See
:mod:`walloc_cli.audio_codec` for the block format and ``formats/wlc.md`` for the header.

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
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from walloc_cli import __version__
from walloc_cli.audio import PCM_BITS, AudioInfo, AudioReader, AudioWriter, output_subtype, quantise
from walloc_cli.audio_codec import BLOCK, MARGIN, MAX_GAIN, decode_block, encode_block, file_gain, parse_block, stream_count, stream_layout, synthesize_block
from walloc_cli.container import WlcReader, WlcWriter
from walloc_cli.errors import FormatError, InputError, ModelError
from walloc_cli.payload import DEFAULT_EFFORT, PAYLOAD_CODECS
from walloc_cli.quality import DEFAULT_QUALITY, Setting, ladder, setting_for_quality
from walloc_cli.registry import find_card, load_by_identity, load_model

STREAM_LAYOUTS = ("mono", "mid-side", "channels")
MAX_FRAMES = 1 << 40


@dataclasses.dataclass
class AudioReport:
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

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "modality": "audio", "kbps": self.kbps, "ratio": self.ratio}


@dataclasses.dataclass
class AudioDecompressReport:
    input: str
    output: str
    samplerate: int
    channels: int
    frames: int
    seconds: float
    damaged: list[str] = dataclasses.field(default_factory=list)  # with keep_going: what became silence


def sample_bits(info: AudioInfo) -> int:
    """Bits per raw sample a compression ratio divides by (16 for compressed sources, whose
    decoded form is 16-bit PCM, see :mod:`walloc_cli.audio`)."""
    return info.bits or 16


def compress_audio(src: Path | str, dst_stream: BinaryIO, *, model: str | None = None, quality: float | None = None, payload: str = "webp", effort: int | None = None, measure: bool = True) -> AudioReport:
    """Code audio file ``src`` into ``dst_stream`` (written front to back: a pipe works)."""
    if payload not in PAYLOAD_CODECS:
        raise InputError(f"unknown payload codec {payload!r} (choose {', '.join(PAYLOAD_CODECS)})")
    card = find_card(model) if model else None
    started = time.perf_counter()
    with AudioReader(src) as reader:
        info = reader.info
        if card is not None and quality is None:
            setting, quality_used = Setting(card.name, 1.0), None  # a named model alone: its step 1
        else:
            quality_used = DEFAULT_QUALITY if quality is None else float(quality)
            setting = setting_for_quality(quality_used, audio_family(info.samplerate), card)
        codec, card = load_model(model if card is not None else setting.model)  # a path stays a path
        if card.modality != "audio":
            raise InputError(f"model {card.name!r} is a {card.modality} model, not an audio model")
        step = setting.step
        effort = int(card.card.get("payload_effort", DEFAULT_EFFORT)) if effort is None else effort
        gain = file_gain(reader)
        layout = stream_layout(info.channels)
        header = {
            "encoder": f"walloc {__version__}",
            "modality": "audio",
            "audio": {"samplerate": info.samplerate, "channels": info.channels, "frames": info.frames, "subtype": info.subtype, "format": info.format},
            "model": {"name": card.name, "sha256": card.sha256},
            "codec": codec.cfg.to_dict(),
            "latent": {"bits": codec.index_bits(step), "step": float(step), "payload": payload, "block": BLOCK, "margin": MARGIN, "streams": layout},
            "normalisation": {"gain": gain},
        }
        out_bits = PCM_BITS.get(output_subtype(info.subtype, "WAV" if info.format not in ("FLAC", "AIFF") else info.format))
        signal = squared = 0.0
        clipped = 0
        counted = _Counting(dst_stream)
        with WlcWriter(counted, header) as writer:  # type: ignore[arg-type]
            for first in range(0, info.frames, BLOCK):
                block = encode_block(codec, reader, first, gain, layout, step, payload, effort)
                writer.write_chunk(block.chunk)
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


def audio_family(samplerate: int) -> str:
    """``speech`` for narrow-band audio (telephone and wide-band speech rates) when a speech
    ladder is installed, else ``audio`` (the music-trained models)."""
    if samplerate <= NARROWBAND:
        try:
            ladder("speech")
            return "speech"
        except ModelError:
            pass
    return "audio"


class _Counting:
    """A write-only stream wrapper that counts the bytes passing through (pipes cannot tell)."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream, self.count = stream, 0

    def write(self, data: bytes) -> int:
        self.count += len(data)
        return self.stream.write(data)

    def flush(self) -> None:
        self.stream.flush()


def validate_audio_header(header: dict[str, Any]) -> None:
    """Every field the decoder relies on, checked before anything is allocated."""
    from walloc_cli.api import MAX_STEP, MIN_STEP, PAYLOAD_MAX_BITS, _int_field, _require
    from walloc_cli.audio import MAX_CHANNELS, MAX_SAMPLERATE, MIN_SAMPLERATE

    audio, latent, model = header.get("audio"), header.get("latent"), header.get("model")
    _require(isinstance(audio, dict) and isinstance(latent, dict) and isinstance(model, dict), "missing audio/latent/model table")
    assert isinstance(audio, dict) and isinstance(latent, dict) and isinstance(model, dict)
    _int_field(audio, "samplerate", MIN_SAMPLERATE, MAX_SAMPLERATE)
    channels = _int_field(audio, "channels", 1, MAX_CHANNELS)
    _int_field(audio, "frames", 1, MAX_FRAMES)
    _require(isinstance(audio.get("subtype"), str) and isinstance(audio.get("format"), str), "subtype/format")
    _require(latent.get("streams") == stream_layout(channels), f"streams={latent.get('streams')!r} for {channels} channels")
    _int_field(latent, "block", 1, 1 << 20)
    _int_field(latent, "margin", 0, 1 << 16)
    _int_field(latent, "bits", 1, PAYLOAD_MAX_BITS)
    _require(latent.get("payload") in PAYLOAD_CODECS, f"payload={latent.get('payload')!r}")
    step = latent.get("step")
    _require(isinstance(step, (int, float)) and not isinstance(step, bool) and MIN_STEP <= step <= MAX_STEP, f"step={step!r}")
    normalisation = header.get("normalisation")
    gain = normalisation.get("gain") if isinstance(normalisation, dict) else None
    _require(isinstance(gain, (int, float)) and not isinstance(gain, bool) and 0 < gain <= MAX_GAIN, f"gain={gain!r}")
    _require(isinstance(model.get("name"), str) and isinstance(model.get("sha256"), str), "model name/sha256")


def decompress_audio(reader: WlcReader, dst: Path | str, *, overwrite: bool = False, model: str | None = None, subtype: str | None = None, damaged: list[str] | None = None) -> AudioInfo:
    """Decode an audio ``.wlc`` (its header already read by ``reader``) into ``dst`` block by
    block; the container of ``dst`` follows its extension (``-``: WAV on standard output).

    By default any damage fails the whole decode (no output). With a ``damaged`` list, a block
    whose chunk is corrupt fails alone: its frames are written as silence, and one line per
    damaged stretch is appended to the list (as ``flac -F`` does).
    """
    header = reader.header
    validate_audio_header(header)
    codec, _ = load_by_identity(header["model"]["name"], header["model"]["sha256"], model)
    if codec.cfg.dims != 1:
        raise FormatError("invalid header: the model is not an audio model")
    audio, latent = header["audio"], header["latent"]
    if latent["bits"] != codec.index_bits(latent["step"]):
        raise FormatError(f"invalid header: latent bits {latent['bits']} do not match step {latent['step']} for this model")
    info = AudioInfo(audio["samplerate"], audio["channels"], audio["frames"], audio["format"], audio["subtype"])
    layout, gain, step = latent["streams"], float(header["normalisation"]["gain"]), float(latent["step"])
    streams = stream_count(layout, info.channels)
    written = 0
    problems: list[str] = []

    def silence_until(frame: int) -> None:
        nonlocal written
        problems.append(f"{'; '.join(problems_pending)}: frames {written}..{frame - 1} replaced by silence")
        problems_pending.clear()
        while written < frame:
            count = min(BLOCK, frame - written)
            writer.write(np.zeros((info.channels, count), np.float32))
            written += count

    problems_pending: list[str] = []
    on_damage = problems_pending.append if damaged is not None else None
    with AudioWriter(dst, info, overwrite=overwrite, subtype=subtype) as writer:
        for chunk in reader.iter_chunks(on_damage):
            if chunk.type != "AUDB":
                continue
            block_header, images = parse_block(chunk.data, latent["block"], latent["margin"])
            if problems_pending and written < block_header.first <= info.frames:
                silence_until(block_header.first)
            if block_header.first != written or written + block_header.frames > info.frames:
                raise FormatError(f"audio block at frame {block_header.first} is out of place (expected frame {written})")
            writer.write(decode_block(codec, block_header, images, streams, step, latent["bits"], latent["payload"], gain, layout).astype(np.float32))
            written += block_header.frames
        if problems_pending and written < info.frames:
            silence_until(info.frames)
        if written != info.frames:
            raise FormatError(f"truncated: {written} of {info.frames} frames decoded")
    if damaged is not None:
        damaged.extend(problems)
    return info


def default_audio_suffix(fmt: str) -> str:
    """Where a decoded file goes by default: the source's container when walloc can write it
    losslessly (FLAC, AIFF), else WAV."""
    return {"FLAC": ".flac", "AIFF": ".aiff"}.get(fmt, ".wav")
