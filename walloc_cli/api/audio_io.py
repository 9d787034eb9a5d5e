"""Audio through the API: the file glue (stream the file through the codec, the report), its
in-memory decoding and its checks, as the :class:`~walloc_cli.api.options.Modality`
:data:`MODALITY` that :mod:`walloc_cli.api.modalities` hands out for ``"audio"``.
"""

from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from walloc_cli.api.latents import LatentInfo, Latents
from walloc_cli.api.options import CompressOptions, DecompressOptions, Modality
from walloc_cli.api.paths import check_output, default_output
from walloc_cli.codecs import audio
from walloc_cli.codecs.audio_blocks import synthesize_block
from walloc_cli.errors import FormatError, InputError
from walloc_cli.files.sniff import Sniffed
from walloc_cli.files.audio import AudioInfo
from walloc_cli.files.safe_io import output_stream
from walloc_cli.format.container import WlcReader
from walloc_cli.model.runtime import Runtime


def compress_file(src: Path, found: Sniffed, dst: Path, options: CompressOptions) -> audio.AudioReport:
    with output_stream(dst, overwrite=options.overwrite) as handle:
        report = audio.compress_audio(found.path, handle, model=options.model, quality=options.quality, payload=options.payload, measure=options.measure, effort=options.effort, progress=options.progress)
    report.input, report.output = str(src), str(dst)
    return report


def encode_file(path: Path, options: CompressOptions) -> bytes:
    buffer = io.BytesIO()
    audio.compress_audio(path, buffer, model=options.model, quality=options.quality, payload=options.payload, effort=options.effort, measure=False)
    return buffer.getvalue()


def decompress_file(reader: WlcReader, src: Path, dst: Path | None, options: DecompressOptions) -> audio.AudioDecompressReport:
    started = time.perf_counter()
    table = reader.header.get("audio")
    dst = Path(dst) if dst is not None else default_output(src, audio.default_audio_suffix(table.get("format", "") if isinstance(table, dict) else ""))
    check_output(src, dst, options.overwrite)
    damaged: list[str] | None = [] if options.keep_going else None
    first, frames = audio.seconds_to_frames(audio.header_samplerate(reader.header), options.start or 0.0, options.duration)
    info = audio.decompress_audio(reader, dst, overwrite=options.overwrite, model=options.model, damaged=damaged, start=first, frames=frames, progress=options.progress)
    partial = options.start is not None or options.duration is not None
    return audio.AudioDecompressReport(str(src), str(dst), info.samplerate, info.channels, info.frames, time.perf_counter() - started, damaged or [], partial)


def decode_array(reader: WlcReader, options: DecompressOptions) -> tuple[np.ndarray, dict[str, Any]]:
    """Decode through :func:`walloc_cli.codecs.audio.decompress_audio` (the CLI's path, with its
    checks) into a float WAV, which holds the decoder's float32 samples exactly."""
    import soundfile as sf

    with tempfile.TemporaryDirectory(prefix="walloc-") as folder:
        wav = Path(folder) / "decoded.wav"
        audio.decompress_audio(reader, wav, model=options.model, subtype="FLOAT")
        samples, _ = sf.read(wav, dtype="float32", always_2d=True)
    table = reader.header["audio"]
    return samples, {"modality": "audio", "header": reader.header, **{k: table[k] for k in ("samplerate", "channels", "frames", "subtype", "format")}}


def decode_latents(codec: Runtime, latents: Latents, info: LatentInfo) -> np.ndarray:
    if isinstance(latents, np.ndarray) or len(latents) != len(info.blocks):
        raise InputError("audio latents must be the per-block list read_latents gives (one array per block)")
    gain = float(info.header["normalisation"]["gain"])
    layout = info.header["latent"]["streams"]
    parts = []
    for q, where in zip(latents, info.blocks):
        parts.append(synthesize_block(codec, where, np.asarray(q, dtype=np.int32), info.step, gain, layout).astype(np.float32))
    return np.ascontiguousarray(np.concatenate(parts, axis=1).T)


def rates(header: dict[str, Any], size: int) -> dict[str, Any]:
    table = header["audio"]
    source = AudioInfo(table["samplerate"], table["channels"], table["frames"], table["format"], table["subtype"])
    return {"kbps": size * 8 / source.seconds / 1000, "ratio": source.frames * source.channels * audio.sample_bits(source) / 8 / max(1, size)}


def check_output_holds(report: audio.AudioDecompressReport) -> None:
    import soundfile

    output = Path(report.output)
    try:
        found = soundfile.info(str(output))
    except Exception as error:  # libsndfile errors come in several types
        raise FormatError(f"{output}: written audio does not open ({error})") from None
    got = (found.samplerate, found.channels, found.frames)
    want = (report.samplerate, report.channels, report.frames)
    if got != want:
        raise FormatError(f"{output}: written audio is {got[0]} Hz, {got[1]} ch, {got[2]} frames; expected {want[0]} Hz, {want[1]} ch, {want[2]} frames")


MODALITY = Modality("audio", compress_file, encode_file, decompress_file, decode_array, decode_latents, rates, check_output_holds)

__all__ = ["MODALITY"]
