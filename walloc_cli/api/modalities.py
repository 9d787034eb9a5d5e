"""The one modality dispatch: from a modality (a header's ``modality``, or what
:func:`walloc_cli.files.sniff.detect` found: :attr:`Kind.value` is the same word) to what each
part of the API does with it.

:data:`MODALITIES` maps ``"image"``, ``"audio"`` and ``"volume"`` to a :class:`Modality`, the
table of that modality's file glue (file in -> codec -> file out, the report), in-memory
decoding and checks. :mod:`walloc_cli.api.files`, :mod:`walloc_cli.api.arrays` and
:mod:`walloc_cli.api.verify` look modalities up here and never branch on them themselves
(:mod:`walloc_cli.api.latents` reads latents without the model, torch-free, and keeps its own
three readers). Public, so that evaluation can use it too.
"""

from __future__ import annotations

import dataclasses
import io
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from walloc_cli.api.latents import LatentInfo, Latents, codec_config
from walloc_cli.api.paths import check_output, default_output
from walloc_cli.codecs import audio, image, volume
from walloc_cli.codecs.audio_blocks import BlockHeader, synthesize_block
from walloc_cli.codecs.base import Progress, Report
from walloc_cli.errors import FormatError, InputError, WallocError
from walloc_cli.files.audio import AudioInfo
from walloc_cli.files.image_meta import DEFAULT_METADATA
from walloc_cli.files.images import DEFAULT_MAX_PIXELS, image_bytes, image_to_array, read_image, write_image
from walloc_cli.files.safe_io import STDIO, output_stream
from walloc_cli.files.sniff import Kind
from walloc_cli.files.volumes import default_volume_suffix, read_volume, write_volume
from walloc_cli.format.container import WlcReader
from walloc_cli.format.limits import DEFAULT_MAX_VOXELS
from walloc_cli.metrics import bits_per_pixel
from walloc_cli.model.network import CodecConfig, WallocCodec

#: What ``read_image`` adds to "not a supported image" for callers that take every modality.
ALSO_ACCEPTED = " nor audio libsndfile reads nor a multi-page TIFF, .npy or NIfTI volume,"


@dataclasses.dataclass(frozen=True)
class CompressOptions:
    """How to compress, whatever the modality (each uses the fields that apply to it)."""

    model: str | None = None
    payload: str = "webp"
    overwrite: bool = False
    measure: bool = True
    effort: int | None = None
    quality: float | None = None
    target_psnr: float | None = None  # images
    target_size: int | None = None  # images
    axes: str | None = None  # volumes
    progress: Progress | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_voxels: int = DEFAULT_MAX_VOXELS
    metadata: frozenset[str] | str = DEFAULT_METADATA  # images


@dataclasses.dataclass(frozen=True)
class DecompressOptions:
    """How to decompress, whatever the modality."""

    model: str | None = None
    overwrite: bool = False
    keep_going: bool = False  # audio
    start: float | None = None  # audio, seconds
    duration: float | None = None  # audio, seconds
    progress: Progress | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_voxels: int = DEFAULT_MAX_VOXELS


@dataclasses.dataclass(frozen=True)
class Modality:
    """What the API does with one modality.

    * ``compress_file(src, path, dst, options)``: code the file at ``path`` (``src`` as the
      user named it; ``-`` is standard input spooled to ``path``) into ``dst``; the report.
    * ``encode_file(path, options)``: the same into bytes, unmeasured (``walloc.compress``).
    * ``decompress_file(reader, src, dst, options)``: decode a ``.wlc`` whose validated header
      ``reader`` has read into ``dst`` (``None``: the default output); the report.
    * ``decode_array(reader, options)``: ``(array, metadata)`` as ``walloc.decompress`` gives.
    * ``decode_latents(codec, latents, info)``: the decoder on :func:`read_latents`' latents.
    * ``rates(header, size)``: what ``walloc info`` adds for a file of ``size`` bytes.
    * ``check_output(report)``: raise :class:`FormatError` unless a decompressed output holds
      what the report says (``--delete-input``).
    """

    name: str
    compress_file: Callable[[Path, Path, Path, CompressOptions], Report]
    encode_file: Callable[[Path, CompressOptions], bytes]
    decompress_file: Callable[[WlcReader, Path, Path | None, DecompressOptions], Report]
    decode_array: Callable[[WlcReader, DecompressOptions], tuple[np.ndarray, dict[str, Any]]]
    decode_latents: Callable[[WallocCodec, Latents, LatentInfo], np.ndarray]
    rates: Callable[[dict[str, Any], int], dict[str, float]]
    check_output: Callable[[Any], None]


# --- images ------------------------------------------------------------------------------------
def _compress_image_file(src: Path, path: Path, dst: Path, options: CompressOptions) -> image.CompressReport:
    picture = read_image(path, also_accepted=ALSO_ACCEPTED, max_pixels=options.max_pixels)
    started = time.perf_counter()
    encoded = image.compress_image(
        picture, quality=options.quality, model=options.model, target_psnr=options.target_psnr, target_size=options.target_size,
        payload=options.payload, effort=options.effort, max_pixels=options.max_pixels, metadata=options.metadata,
    )
    seconds = time.perf_counter() - started
    with output_stream(dst, overwrite=options.overwrite) as handle:
        handle.write(encoded.data)
    report = image.CompressReport(
        input=str(src),
        output=str(dst),
        n_bytes=len(encoded.data),
        pixels=picture.height * picture.width,
        raw_bytes=image.raw_bytes(picture.height, picture.width, picture.channels, picture.alpha is not None, picture.bit_depth),
        reduction=encoded.reduction,
        model=encoded.model,
        seconds=seconds,
        peak=2**picture.bit_depth - 1,
        step=encoded.setting.step,
        quality=encoded.quality,
        target=encoded.target,
        target_reached=encoded.target_reached,
        psnr=encoded.psnr,
    )
    if options.measure and report.psnr is None:
        report.psnr = image.measured_psnr(encoded, picture, options.model, options.max_pixels)
    return report


def _encode_image_file(path: Path, options: CompressOptions) -> bytes:
    picture = read_image(path, also_accepted=ALSO_ACCEPTED, max_pixels=options.max_pixels)
    return image.compress_image(
        picture, quality=options.quality, model=options.model, target_psnr=options.target_psnr, target_size=options.target_size,
        payload=options.payload, effort=options.effort, max_pixels=options.max_pixels,
    ).data


def _decompress_image_file(reader: WlcReader, src: Path, dst: Path | None, options: DecompressOptions) -> image.DecompressReport:
    started = time.perf_counter()
    dst = Path(dst) if dst is not None else default_output(src, ".png")
    check_output(src, dst, options.overwrite)
    picture = image.decode_image_reader(reader, options.model, options.max_pixels)
    if str(dst) == STDIO:
        with output_stream(dst) as handle:
            handle.write(image_bytes(picture, "PNG"))
    else:
        write_image(dst, picture, overwrite=options.overwrite)
    return image.DecompressReport(str(src), str(dst), picture.width, picture.height, picture.mode, time.perf_counter() - started)


def _decode_image_array(reader: WlcReader, options: DecompressOptions) -> tuple[np.ndarray, dict[str, Any]]:
    picture = image.decode_image_reader(reader, options.model, options.max_pixels)
    meta = {"modality": "image", "mode": picture.mode, "bit_depth": picture.bit_depth, "icc_profile": picture.icc_profile, "exif": picture.exif, "xmp": picture.xmp, "header": reader.header}
    return image_to_array(picture), meta


def _decode_image_latents(codec: WallocCodec, latents: Latents, info: LatentInfo) -> np.ndarray:
    """As :func:`walloc_cli.codecs.image.decode_image_reader` does after the payload (the same
    code: :func:`walloc_cli.codecs.image.synthesize_image`), once the latents are checked."""
    q = np.asarray(latents)
    meta = info.header["image"]
    expected = (codec.cfg.latent_dim, -(-meta["height"] // codec.cfg.block), -(-meta["width"] // codec.cfg.block))
    if q.shape != expected:
        raise InputError(f"latents are {q.shape}, this file's model and size need {expected}")
    if not np.issubdtype(q.dtype, np.integer):
        raise InputError(f"latents must be integer indices, not {q.dtype} (decode before dequantize)")
    return image_to_array(image.synthesize_image(codec, q, info.header, info.extra))


def _image_rates(header: dict[str, Any], size: int) -> dict[str, Any]:
    meta = header["image"]
    raw = image.raw_bytes(meta["height"], meta["width"], meta["channels"], header.get("alpha") is not None, meta["bit_depth"])
    return {"bpp": bits_per_pixel(size, meta["width"] * meta["height"]), "ratio": raw / max(1, size)}


def _check_image_output(report: image.DecompressReport) -> None:
    from PIL import Image

    output = Path(report.output)
    try:
        with Image.open(output) as opened:
            size = opened.size
    except Exception as error:  # Pillow raises many types for unreadable files
        raise FormatError(f"{output}: written image does not open ({error})") from None
    if size != (report.width, report.height):
        raise FormatError(f"{output}: written image is {size[0]}x{size[1]}, expected {report.width}x{report.height}")


# --- audio -------------------------------------------------------------------------------------
def _compress_audio_file(src: Path, path: Path, dst: Path, options: CompressOptions) -> audio.AudioReport:
    with output_stream(dst, overwrite=options.overwrite) as handle:
        report = audio.compress_audio(path, handle, model=options.model, quality=options.quality, payload=options.payload, measure=options.measure, effort=options.effort, progress=options.progress)
    report.input, report.output = str(src), str(dst)
    return report


def _encode_audio_file(path: Path, options: CompressOptions) -> bytes:
    buffer = io.BytesIO()
    audio.compress_audio(path, buffer, model=options.model, quality=options.quality, payload=options.payload, effort=options.effort, measure=False)
    return buffer.getvalue()


def _decompress_audio_file(reader: WlcReader, src: Path, dst: Path | None, options: DecompressOptions) -> audio.AudioDecompressReport:
    started = time.perf_counter()
    table = reader.header.get("audio")
    dst = Path(dst) if dst is not None else default_output(src, audio.default_audio_suffix(table.get("format", "") if isinstance(table, dict) else ""))
    check_output(src, dst, options.overwrite)
    damaged: list[str] | None = [] if options.keep_going else None
    first, frames = audio.seconds_to_frames(audio.header_samplerate(reader.header), options.start or 0.0, options.duration)
    info = audio.decompress_audio(reader, dst, overwrite=options.overwrite, model=options.model, damaged=damaged, start=first, frames=frames, progress=options.progress)
    partial = options.start is not None or options.duration is not None
    return audio.AudioDecompressReport(str(src), str(dst), info.samplerate, info.channels, info.frames, time.perf_counter() - started, damaged or [], partial)


def _decode_audio_array(reader: WlcReader, options: DecompressOptions) -> tuple[np.ndarray, dict[str, Any]]:
    """Decode through :func:`walloc_cli.codecs.audio.decompress_audio` (the CLI's path, with its
    checks) into a float WAV, which holds the decoder's float32 samples exactly."""
    import soundfile as sf

    with tempfile.TemporaryDirectory(prefix="walloc-") as folder:
        wav = Path(folder) / "decoded.wav"
        audio.decompress_audio(reader, wav, model=options.model, subtype="FLOAT")
        samples, _ = sf.read(wav, dtype="float32", always_2d=True)
    table = reader.header["audio"]
    return samples, {"modality": "audio", "header": reader.header, **{k: table[k] for k in ("samplerate", "channels", "frames", "subtype", "format")}}


def _decode_audio_latents(codec: WallocCodec, latents: Latents, info: LatentInfo) -> np.ndarray:
    import torch

    if isinstance(latents, np.ndarray) or len(latents) != len(info.blocks):
        raise InputError("audio latents must be the per-block list read_latents gives (one array per block)")
    gain = float(info.header["normalisation"]["gain"])
    layout = info.header["latent"]["streams"]
    parts = []
    for q, where in zip(latents, info.blocks):
        head = BlockHeader(where.first, where.frames, where.lead, where.extent)
        parts.append(synthesize_block(codec, head, torch.from_numpy(np.asarray(q, dtype=np.int32)), info.step, gain, layout).astype(np.float32))
    return np.ascontiguousarray(np.concatenate(parts, axis=1).T)


def _audio_rates(header: dict[str, Any], size: int) -> dict[str, Any]:
    table = header["audio"]
    source = AudioInfo(table["samplerate"], table["channels"], table["frames"], table["format"], table["subtype"])
    return {"kbps": size * 8 / source.seconds / 1000, "ratio": source.frames * source.channels * audio.sample_bits(source) / 8 / max(1, size)}


def _check_audio_output(report: audio.AudioDecompressReport) -> None:
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


# --- volumes -----------------------------------------------------------------------------------
def _compress_volume_file(src: Path, path: Path, dst: Path, options: CompressOptions) -> volume.VolumeReport:
    data = read_volume(path, axes=options.axes)
    with output_stream(dst, overwrite=options.overwrite) as handle:
        report = volume.compress_volume(
            data, handle, source=str(src), model=options.model, quality=options.quality, payload=options.payload,
            measure=options.measure, effort=options.effort, progress=options.progress, max_voxels=options.max_voxels,
        )
    report.output = str(dst)
    return report


def _encode_volume_file(path: Path, options: CompressOptions) -> bytes:
    return encode_volume(read_volume(path, axes=options.axes), options)


def encode_volume(data: Any, options: CompressOptions) -> bytes:
    """A :class:`walloc_cli.files.volumes.VolumeData` to ``.wlc`` bytes, unmeasured."""
    buffer = io.BytesIO()
    volume.compress_volume(data, buffer, model=options.model, quality=options.quality, payload=options.payload, effort=options.effort, measure=False, max_voxels=options.max_voxels)
    return buffer.getvalue()


def _decompress_volume_file(reader: WlcReader, src: Path, dst: Path | None, options: DecompressOptions) -> volume.VolumeDecompressReport:
    started = time.perf_counter()
    table = reader.header.get("volume")
    fmt = table.get("format", "") if isinstance(table, dict) else ""
    dst = Path(dst) if dst is not None else default_output(src, default_volume_suffix(fmt if isinstance(fmt, str) else ""))
    check_output(src, dst, options.overwrite)
    data = volume.decode_volume(reader, model=options.model, progress=options.progress, max_voxels=options.max_voxels)
    if str(dst) == STDIO:
        with output_stream(dst) as handle:
            # np.save writes the header and then the array's bytes in pieces through .write
            np.save(handle, data.array, allow_pickle=False)
    else:
        try:
            write_volume(dst, data, overwrite=options.overwrite)
        except WallocError:
            raise
        except (TypeError, ValueError, KeyError, AttributeError, IndexError) as error:
            # the metadata a writer restores (spacing, NIfTI header, TIFF tags) comes from the file
            raise FormatError(f"invalid header: the volume metadata cannot be written back ({type(error).__name__}: {error})") from None
    return volume.VolumeDecompressReport(str(src), str(dst), tuple(data.array.shape), data.array.dtype.name, time.perf_counter() - started)


def _decode_volume_array(reader: WlcReader, options: DecompressOptions) -> tuple[np.ndarray, dict[str, Any]]:
    data = volume.decode_volume(reader, model=options.model, max_voxels=options.max_voxels)
    return data.array, {"modality": "volume", "axes": data.coding_axes, "file_axes": data.axes, "kind": data.kind, "meta": data.meta, "header": reader.header}


def _decode_volume_latents(codec: WallocCodec, latents: Latents, info: LatentInfo) -> np.ndarray:
    return volume.synthesize_volume(codec, np.asarray(latents), info.header).array


def _volume_rates(header: dict[str, Any], size: int) -> dict[str, Any]:
    table = header["volume"]
    voxels = math.prod(table["shape"])
    return {"bpv": 8 * size / voxels, "ratio": voxels * np.dtype(table["dtype"]).itemsize / max(1, size)}


def _check_volume_output(report: volume.VolumeDecompressReport) -> None:
    """Nothing beyond the output's presence (checked for every modality) is checked for volumes."""


MODALITIES: dict[str, Modality] = {
    "image": Modality("image", _compress_image_file, _encode_image_file, _decompress_image_file, _decode_image_array, _decode_image_latents, _image_rates, _check_image_output),
    "audio": Modality("audio", _compress_audio_file, _encode_audio_file, _decompress_audio_file, _decode_audio_array, _decode_audio_latents, _audio_rates, _check_audio_output),
    "volume": Modality("volume", _compress_volume_file, _encode_volume_file, _decompress_volume_file, _decode_volume_array, _decode_volume_latents, _volume_rates, _check_volume_output),
}


def for_input(kind: Kind, axes: str | None = None) -> Modality:
    """The modality a compress input of ``kind`` (not a ``.wlc``: callers refuse that in their
    own words) is coded as: a volume whenever ``axes`` are given, else its kind; an unknown
    file goes to the image reader, which names the problem."""
    return MODALITIES["volume" if axes is not None else kind.value if kind.value in MODALITIES else "image"]


def for_header(header: dict[str, Any]) -> Modality:
    """The modality of a ``.wlc`` header; :class:`FormatError` for one this walloc does not read."""
    modality = header.get("modality")
    if not isinstance(modality, str) or modality not in MODALITIES:
        raise FormatError(f"modality {modality!r} is not supported by this walloc (reads image, audio, volume)")
    return MODALITIES[modality]


def describe_rates(header: dict[str, Any], size: int) -> dict[str, Any]:
    """``walloc info``'s rates for a validated header and a file of ``size`` bytes: the
    modality's (bpp, kbit/s or bits/voxel; ratio), then the model's reduction."""
    info = for_header(header).rates(header, size)
    info["reduction"] = CodecConfig(**codec_config(header)).reduction
    return info


__all__ = ["ALSO_ACCEPTED", "MODALITIES", "CompressOptions", "DecompressOptions", "Modality", "describe_rates", "encode_volume", "for_header", "for_input"]
