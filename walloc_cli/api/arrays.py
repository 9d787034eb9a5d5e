"""The one-shot Python API, soundfile/encodec style: ``compress``, ``decompress``, ``read_latents``,
``decode_latents``. Every function takes bytes, a path or a binary file object where it reads a
``.wlc``; the CLI and :mod:`walloc_cli.codecs.image` sit on the same code.

Example::

    import numpy as np, walloc_cli as walloc

    data = walloc.compress(rgb_uint8_hw3, quality=30)          # bytes of a .wlc file
    walloc.compress("photo.png", path="photo.wlc", quality=75) # to a file (refuses to overwrite)
    pixels, meta = walloc.decompress(data)                     # (H, W, 3) uint8, dict
    q, info = walloc.read_latents(data)                        # (12, H/8, W/8) int32, no decoder run
    z = walloc.dequantize(q, info)                             # float32, the encoder's output
    assert np.array_equal(walloc.decode_latents(q, info), pixels)
    q, info = walloc.read_latents("photo.wlc")                 # paths and file objects work too

Arrays:

* images in: ``(H, W)`` gray, ``(H, W, 2)`` gray + alpha, ``(H, W, 3)`` RGB, ``(H, W, 4)`` RGBA;
  uint8, uint16, or float in ``[0, 1]`` (``bit_depth`` 8 or 16, default 8); bool ``(H, W)`` is 1-bit.
  Images out: the same layouts at the file's bit depth (uint8/uint16; bool for 1-bit).
* audio out: ``(frames, channels)`` float32 in ``[-1, 1]`` full scale, before the PCM
  quantisation a file output applies. Audio in: a path (WAV, FLAC, OGG, AIFF ...); arrays are
  not taken (their sample rate and subtype would be guesses).

* volumes out: the 3-D array in coding order (slices or bands first), original dtype.

Metadata (:func:`decompress`): a dict with ``modality``, the file's ``header``, and for images
``mode``, ``bit_depth``, ``icc_profile``, ``exif``, ``xmp`` (raw bytes or None); for audio ``samplerate``, ``channels``, ``frames``,
``subtype``, ``format``; for volumes ``axes`` (of the array), ``file_axes``, ``kind``, ``meta``.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from walloc_cli.errors import FormatError, InputError
from walloc_cli.format.limits import DEFAULT_MAX_PIXELS, DEFAULT_MAX_VOXELS
from walloc_cli.api.latents import LatentInfo, Latents, Source, dequantize, read_latents

ImageSource = np.ndarray | str | Path | BinaryIO


@contextlib.contextmanager
def _as_path(source: str | Path | BinaryIO | bytes) -> Iterator[Path]:
    """A path to read ``source`` from: itself, or a temporary copy of a stream or of bytes
    (image and audio readers sniff the content and audio containers need to seek)."""
    if isinstance(source, (str, Path)):
        yield Path(source)
        return
    with tempfile.TemporaryDirectory(prefix="walloc-") as folder:
        spooled = Path(folder) / "input"
        with open(spooled, "wb") as handle:
            if isinstance(source, (bytes, bytearray, memoryview)):
                handle.write(source)
            else:
                shutil.copyfileobj(source, handle, 1 << 20)
        yield spooled


def compress(
    data: ImageSource,
    path: str | Path | None = None,
    *,
    quality: float | None = None,
    model: str | None = None,
    target_psnr: float | None = None,
    target_size: int | None = None,
    payload: str = "webp",
    effort: int | None = None,
    bit_depth: int | None = None,
    overwrite: bool = False,
    axes: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_voxels: int = DEFAULT_MAX_VOXELS,
) -> bytes:
    """Compress an image array, or an image/audio file (path or binary file object), to ``.wlc`` bytes.

    ``quality`` 0..100, ``target_psnr`` (dB, images) and ``target_size`` (bytes, images) choose
    the operating point as ``walloc compress`` does (at most one; default quality 75).
    ``bit_depth`` applies to float arrays only. With ``path`` the bytes are also written there,
    atomically; an existing file is refused unless ``overwrite``.

    Volumes: a volume file (multi-page TIFF, 3-D ``.npy``, NIfTI) is recognised by content; a 3-D
    array is taken as a volume when ``axes`` names its axes (``"ZYX"``, ``"CYX"``, ...), else as
    an ``(H, W, C)`` image. Images of more than ``max_pixels`` pixels and volumes of more than
    ``max_voxels`` voxels are refused (:mod:`walloc_cli.format.limits`).
    """
    from walloc_cli.codecs.image import compress_image
    from walloc_cli.files.images import image_from_array, read_image
    from walloc_cli.files.sniff import Kind, detect

    if path is not None and Path(path).exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists (use overwrite=True)")
    if target_psnr is not None or target_size is not None:
        if axes is not None:
            raise InputError("target_psnr and target_size are for images; use quality for volumes")
    if isinstance(data, np.ndarray) and axes is not None:
        from walloc_cli.files.volumes import volume_from_array

        encoded = _compress_volume(volume_from_array(data, axes), quality, model, payload, effort, max_voxels)
    elif isinstance(data, np.ndarray):
        image = image_from_array(data, bit_depth)
        encoded = compress_image(image, quality=quality, model=model, target_psnr=target_psnr, target_size=target_size, payload=payload, effort=effort, max_pixels=max_pixels).data
    else:
        with _as_path(data) as source:
            kind = detect(source)  # the order compress, batch, eval and info use
            if kind is Kind.WLC:
                raise InputError("already a .wlc file (walloc.decompress decodes it)")
            if axes is not None or kind is Kind.VOLUME:
                if target_psnr is not None or target_size is not None:
                    raise InputError("target_psnr and target_size are for images; use quality for volumes")
                from walloc_cli.files.volumes import read_volume

                encoded = _compress_volume(read_volume(source, axes=axes), quality, model, payload, effort, max_voxels)
            elif kind is Kind.AUDIO:
                if target_psnr is not None or target_size is not None:
                    raise InputError("target_psnr and target_size are for images; use quality for audio")
                from walloc_cli.codecs.audio import compress_audio

                buffer = io.BytesIO()
                compress_audio(source, buffer, model=model, quality=quality, payload=payload, effort=effort, measure=False)
                encoded = buffer.getvalue()
            else:
                image = read_image(source, also_accepted=" nor audio libsndfile reads nor a multi-page TIFF, .npy or NIfTI volume,", max_pixels=max_pixels)
                encoded = compress_image(image, quality=quality, model=model, target_psnr=target_psnr, target_size=target_size, payload=payload, effort=effort, max_pixels=max_pixels).data
    if path is not None:
        from walloc_cli.files.safe_io import atomic_output

        with atomic_output(Path(path), overwrite=overwrite) as handle:
            handle.write(encoded)
    return encoded


def _compress_volume(volume: Any, quality: float | None, model: str | None, payload: str, effort: int | None, max_voxels: int) -> bytes:
    from walloc_cli.codecs.volume import compress_volume

    buffer = io.BytesIO()
    compress_volume(volume, buffer, model=model, quality=quality, payload=payload, effort=effort, measure=False, max_voxels=max_voxels)
    return buffer.getvalue()


@contextlib.contextmanager
def _reader(source: Source) -> Iterator[Any]:
    from walloc_cli.format.container import WlcReader

    if isinstance(source, (bytes, bytearray, memoryview)):
        yield WlcReader(io.BytesIO(bytes(source)))
    elif isinstance(source, (str, Path)):
        try:
            handle = open(source, "rb")  # noqa: SIM115 (the with below closes it)
        except FileNotFoundError:
            raise InputError("no such file") from None
        except IsADirectoryError:
            raise InputError("is a directory, not a .wlc file") from None
        with handle:
            yield WlcReader(handle)
    elif hasattr(source, "read"):
        yield WlcReader(source)
    else:
        raise TypeError(f"expected bytes, a path or a binary file object, got {type(source).__name__}")


def decompress(source: Source, *, model: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS, max_voxels: int = DEFAULT_MAX_VOXELS) -> tuple[np.ndarray, dict[str, Any]]:
    """Decode a ``.wlc`` (bytes, path or binary file object) to an array and its metadata.

    Images: ``(H, W[, C])`` uint8/uint16 (bool for 1-bit) as the decoded file would hold them.
    Audio: ``(frames, channels)`` float32. ``model`` names a card to consider besides the
    shipped models (its SHA-256 must match the file's). A file declaring more than
    ``max_pixels`` pixels or ``max_voxels`` voxels is refused from its header.
    """
    from walloc_cli.codecs.image import _decode_image
    from walloc_cli.files.images import image_to_array

    with _reader(source) as reader:
        header = reader.header
        modality = header.get("modality")
        if modality == "image":
            image = _decode_image(reader, model, max_pixels)
            meta = {"modality": "image", "mode": image.mode, "bit_depth": image.bit_depth, "icc_profile": image.icc_profile, "exif": image.exif, "xmp": image.xmp, "header": header}
            return image_to_array(image), meta
        if modality == "audio":
            return _decompress_audio(reader, model)
        if modality == "volume":
            from walloc_cli.codecs.volume import decode_volume

            volume = decode_volume(reader, model=model, max_voxels=max_voxels)
            meta = {"modality": "volume", "axes": volume.coding_axes, "file_axes": volume.axes, "kind": volume.kind, "meta": volume.meta, "header": header}
            return volume.array, meta
        raise FormatError(f"modality {modality!r} is not supported by this walloc (reads image, audio, volume)")


def _decompress_audio(reader: Any, model: str | None) -> tuple[np.ndarray, dict[str, Any]]:
    """Decode through :func:`walloc_cli.codecs.audio.decompress_audio` (the CLI's path, with its
    checks) into a float WAV, which holds the decoder's float32 samples exactly."""
    import soundfile as sf

    from walloc_cli.codecs.audio import decompress_audio

    with tempfile.TemporaryDirectory(prefix="walloc-") as folder:
        wav = Path(folder) / "decoded.wav"
        decompress_audio(reader, wav, model=model, subtype="FLOAT")
        samples, _ = sf.read(wav, dtype="float32", always_2d=True)
    return samples, _audio_meta(reader.header)


def _audio_meta(header: dict[str, Any]) -> dict[str, Any]:
    audio = header["audio"]
    return {"modality": "audio", "header": header, **{k: audio[k] for k in ("samplerate", "channels", "frames", "subtype", "format")}}


def decode_latents(latents: Latents, info: LatentInfo, *, model: str | None = None) -> np.ndarray:
    """Run the decoder on integer latents from :func:`read_latents` (possibly edited).

    Gives what :func:`decompress` gives for the file they came from, bit for bit when they are
    unchanged: images ``(H, W[, C])`` integers (alpha and ICC profile come from ``info``), audio
    ``(frames, channels)`` float32 from the per-block list (the decoder needs each block's context).
    """
    from walloc_cli.model.zoo import load_by_identity

    codec, _ = load_by_identity(info.model, info.sha256, model)
    if info.modality == "image":
        return _decode_image_latents(codec, np.asarray(latents), info)
    if info.modality == "audio":
        return _decode_audio_latents(codec, latents, info)
    if info.modality == "volume":
        from walloc_cli.codecs.volume import synthesize_volume

        return synthesize_volume(codec, np.asarray(latents), info.header).array
    raise FormatError(f"modality {info.modality!r} is not supported by this walloc (reads image, audio, volume)")


def _decode_image_latents(codec: Any, q: np.ndarray, info: LatentInfo) -> np.ndarray:
    """As :func:`walloc_cli.codecs.image._decode_image` does after the payload (it is the same code:
    :func:`walloc_cli.codecs.image.synthesize_image`), once the latents are checked."""
    from walloc_cli.codecs.image import synthesize_image
    from walloc_cli.files.images import image_to_array

    meta = info.header["image"]
    expected = (codec.cfg.latent_dim, -(-meta["height"] // codec.cfg.block), -(-meta["width"] // codec.cfg.block))
    if q.shape != expected:
        raise InputError(f"latents are {q.shape}, this file's model and size need {expected}")
    if not np.issubdtype(q.dtype, np.integer):
        raise InputError(f"latents must be integer indices, not {q.dtype} (decode before dequantize)")
    return image_to_array(synthesize_image(codec, q, info.header, info.extra))


def _decode_audio_latents(codec: Any, latents: Latents, info: LatentInfo) -> np.ndarray:
    import torch

    from walloc_cli.codecs.audio_blocks import BlockHeader, synthesize_block

    if isinstance(latents, np.ndarray) or len(latents) != len(info.blocks):
        raise InputError("audio latents must be the per-block list read_latents gives (one array per block)")
    gain = float(info.header["normalisation"]["gain"])
    layout = info.header["latent"]["streams"]
    parts = []
    for q, where in zip(latents, info.blocks):
        head = BlockHeader(where.first, where.frames, where.lead, where.extent)
        parts.append(synthesize_block(codec, head, torch.from_numpy(np.asarray(q, dtype=np.int32)), info.step, gain, layout).astype(np.float32))
    return np.ascontiguousarray(np.concatenate(parts, axis=1).T)


__all__ = ["LatentInfo", "compress", "decode_latents", "decompress", "dequantize", "read_latents"]
