"""The one-shot Python API, soundfile/encodec style: ``compress``, ``decompress``, ``read_latents``,
``decode_latents``. Every function takes bytes, a path or a binary file object where it reads a
``.wlc``; the CLI (through :mod:`walloc_cli.api.files`) sits on the same code.

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

from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from walloc_cli.api.latents import LatentInfo, Latents, dequantize, read_latents
from walloc_cli.api.modalities import for_header, for_input
from walloc_cli.api.options import CompressOptions, DecompressOptions
from walloc_cli.api.volume_io import encode_volume
from walloc_cli.api.paths import input_path
from walloc_cli.codecs.base import WlcSource, open_wlc
from walloc_cli.codecs.image import compress_image
from walloc_cli.errors import InputError
from walloc_cli.files.images import image_from_array
from walloc_cli.files.safe_io import atomic_output
from walloc_cli.files.sniff import Kind, detect
from walloc_cli.files.volumes import volume_from_array
from walloc_cli.format.limits import DEFAULT_MAX_PIXELS, DEFAULT_MAX_VOXELS
from walloc_cli.model.zoo import load_by_identity

ImageSource = np.ndarray | str | Path | BinaryIO


def compress(
    data: ImageSource,
    path: str | Path | None = None,
    *,
    quality: float | None = None,
    model: str | None = None,
    target_psnr: float | None = None,
    target_size: int | None = None,
    payload: str | None = None,
    effort: int | None = None,
    bit_depth: int | None = None,
    overwrite: bool = False,
    axes: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_voxels: int = DEFAULT_MAX_VOXELS,
    refine: int = 0,
) -> bytes:
    """Compress an image array, or an image/audio file (path or binary file object), to ``.wlc`` bytes.

    ``quality`` 0..100, ``target_psnr`` (dB, images) and ``target_size`` (bytes, images) choose
    the operating point as ``walloc compress`` does (at most one; default quality 75).
    ``payload``: the latents' lossless coder (``"ctx"``, ``"webp"``, ``"png"``, ``"jxl"``;
    ``None``: ``webp``, or ``ctx`` at effort 5-6). ``bit_depth`` applies to float arrays only. With ``path`` the bytes are also written there,
    atomically; an existing file is refused unless ``overwrite``.

    Volumes: a volume file (multi-page TIFF, 3-D ``.npy``, NIfTI) is recognised by content; a 3-D
    array is taken as a volume when ``axes`` names its axes (``"ZYX"``, ``"CYX"``, ...), else as
    an ``(H, W, C)`` image. Images of more than ``max_pixels`` pixels and volumes of more than
    ``max_voxels`` voxels are refused (:mod:`walloc_cli.format.limits`).
    ``refine`` (images): steps of encoder-side search through the decoder (needs torch; the
    file decodes with any walloc), as ``walloc compress --refine``.
    """
    if path is not None and Path(path).exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists (use overwrite=True)")
    options = CompressOptions(model, payload, False, False, effort, quality, target_psnr, target_size, axes, None, max_pixels, max_voxels, refine=refine)
    if axes is not None:
        options.check_modality("volume")
    if isinstance(data, np.ndarray) and axes is not None:
        encoded = encode_volume(volume_from_array(data, axes), options)
    elif isinstance(data, np.ndarray):
        image = image_from_array(data, bit_depth)
        encoded = compress_image(image, quality=quality, model=model, target_psnr=target_psnr, target_size=target_size, payload=payload, effort=effort, max_pixels=max_pixels, refine=refine).data
    else:
        with input_path(data, stdin=False) as source:
            kind = detect(source)  # the order compress, batch, eval and info use
            if kind is Kind.WLC:
                raise InputError("already a .wlc file (walloc.decompress decodes it)")
            modality = for_input(kind, axes)
            options.check_modality(modality.name)
            encoded = modality.encode_file(source, options)
    if path is not None:
        with atomic_output(Path(path), overwrite=overwrite) as handle:
            handle.write(encoded)
    return encoded


def decompress(source: WlcSource, *, model: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS, max_voxels: int = DEFAULT_MAX_VOXELS) -> tuple[np.ndarray, dict[str, Any]]:
    """Decode a ``.wlc`` (bytes, path or binary file object) to an array and its metadata.

    Images: ``(H, W[, C])`` uint8/uint16 (bool for 1-bit) as the decoded file would hold them.
    Audio: ``(frames, channels)`` float32. ``model`` names a card to consider besides the
    shipped models (its SHA-256 must match the file's). A file declaring more than
    ``max_pixels`` pixels or ``max_voxels`` voxels is refused from its header.
    """
    with open_wlc(source) as reader:
        options = DecompressOptions(model=model, max_pixels=max_pixels, max_voxels=max_voxels)
        return for_header(reader.header).decode_array(reader, options)


def decode_latents(latents: Latents, info: LatentInfo, *, model: str | None = None) -> np.ndarray:
    """Run the decoder on integer latents from :func:`read_latents` (possibly edited).

    Gives what :func:`decompress` gives for the file they came from, bit for bit when they are
    unchanged: images ``(H, W[, C])`` integers (alpha and ICC profile come from ``info``), audio
    ``(frames, channels)`` float32 from the per-block list (the decoder needs each block's context).
    """
    modality = for_header({"modality": info.modality})
    codec, _ = load_by_identity(info.model, info.sha256, model)
    return modality.decode_latents(codec, latents, info)


__all__ = ["LatentInfo", "compress", "decode_latents", "decompress", "dequantize", "read_latents"]
