"""PNG through libpng (``imagecodecs``): 16-bit reading, 8/16-bit writing, the IHDR checks.

Pillow reduces 16-bit RGB/RGBA/LA PNGs to 8 bits, which would silently throw away half the data,
and copies 8-bit samples into its own image before writing; so 16-bit PNGs are decoded and every
PNG is encoded by libpng here. 1/2/4/8-bit PNGs are decoded by Pillow
(:func:`walloc_cli.files.pillow_io.read_pillow`), with the ``tRNS`` key on 2/4-bit gray scaled
as Pillow scales the samples.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import imagecodecs
import numpy as np

from walloc_cli.errors import InputError
from walloc_cli.files import image_meta
from walloc_cli.files.image_data import ImageData, check_dims, image_from_hwc
from walloc_cli.files.pillow_io import open_pillow, read_pillow, refuse_animation

__all__ = ["encode_png", "read_png"]


def read_png(path: Path, prefix: bytes) -> ImageData:
    """PNG: 16-bit through imagecodecs (Pillow would reduce it to 8 bits), the rest via Pillow.

    ``prefix`` holds the file's first bytes (signature and IHDR, at least 29). Returns
    :class:`ImageData` (``pixels`` ``(C, H, W)``, uint16 for 16-bit files) with EXIF/XMP.
    """
    # IHDR is always the first chunk: length(4) type(4) width(4) height(4) depth(1) colour(1)
    # compression(1) filter(1) interlace(1)
    if len(prefix) < 29 or prefix[12:16] != b"IHDR":
        raise InputError("corrupt or truncated PNG image (no IHDR header)")
    width, height, depth, colour_type, compression, filtering, interlace = struct.unpack(">IIBBBBB", prefix[16:29])
    _check_png_header(depth, colour_type, compression, filtering, interlace)
    check_dims(width, height)  # before Pillow: refuse by the header, with the size in the message
    if depth != 16:
        # Pillow compares a gray tRNS key with samples it has already scaled to 8 bits (a 2-bit
        # 1 is 85 by then) but leaves the key unscaled: scale it too, else transparent pixels
        # would come back opaque (PngSuite tbbn0g04).
        key_scale = 255 // ((1 << depth) - 1) if colour_type == 0 and depth in (2, 4) else 1
        return read_pillow(path, "PNG", key_scale)
    with open_pillow(path, "PNG") as image:  # header only: ICC profile and frame count
        refuse_animation(image, "PNG")
        icc = image.info.get("icc_profile") or None
    data = path.read_bytes()
    exif, xmp = image_meta.png_metadata(data)
    try:
        array = imagecodecs.png_decode(data)
    except UnicodeDecodeError as exc:  # imagecodecs could not even decode libpng's error text
        raise InputError("corrupt or truncated PNG image (libpng cannot decode the pixel data)") from exc
    del data  # the compressed file: not kept beside the decoded samples
    colour = {0: 1, 4: 1, 2: 3, 6: 3}[colour_type]  # 16 bits: _check_png_header excluded palettes
    samples = colour + (colour_type in (4, 6))
    if array.ndim == 2:
        array = array[..., None]
    # libpng turns a tRNS key on 16-bit gray/RGB into an alpha channel (0 where a pixel equals
    # the key, 65535 elsewhere): one sample more than the colour type has (PngSuite tbbn2c16).
    keyed = samples + 1 if colour_type in (0, 2) else samples
    if array.shape[:2] != (height, width) or array.shape[2] not in (samples, keyed):
        raise InputError(
            f"corrupt or truncated PNG image (decoded {'x'.join(map(str, array.shape))} samples, "
            f"the header says {height}x{width}x{samples})"
        )
    image = image_from_hwc(array.astype(np.uint16, copy=False), colour, 16, icc, "PNG")
    image.exif, image.xmp = exif, xmp
    return image


# PNG colour type -> (name, allowed bit depths), from the PNG specification's IHDR table.
_PNG_COLOUR_TYPES = {
    0: ("gray", (1, 2, 4, 8, 16)),
    2: ("RGB", (8, 16)),
    3: ("palette", (1, 2, 4, 8)),
    4: ("gray + alpha", (8, 16)),
    6: ("RGBA", (8, 16)),
}


def _check_png_header(depth: int, colour_type: int, compression: int, filtering: int, interlace: int) -> None:
    """Refuse an IHDR the PNG specification does not allow, naming the field (Pillow would only
    say it "cannot identify" the file)."""
    if colour_type not in _PNG_COLOUR_TYPES:
        raise InputError(f"corrupt PNG image (colour type {colour_type} does not exist; PNG has 0, 2, 3, 4 and 6)")
    name, depths = _PNG_COLOUR_TYPES[colour_type]
    if depth not in depths:
        raise InputError(
            f"corrupt PNG image (bit depth {depth} is not allowed for colour type {colour_type}, "
            f"{name}: only {', '.join(map(str, depths))})"
        )
    if compression != 0 or filtering != 0 or interlace > 1:
        raise InputError(
            f"corrupt PNG image (compression method {compression}, filter method {filtering}, "
            f"interlace method {interlace}: PNG defines 0, 0 and 0 or 1)"
        )


def encode_png(array: np.ndarray, icc: bytes | None) -> bytes:
    """8- and 16-bit PNG via imagecodecs (Pillow cannot write 16-bit colour, and copies 8-bit
    samples into its own image first), ICC spliced in.

    ``array`` is ``(H, W, S)`` uint8 or uint16 samples, ``S`` = 1 (gray), 2 (gray + alpha), 3
    (RGB) or 4 (RGBA).
    """
    samples = array if array.shape[-1] > 1 else array[..., 0]
    # imagecodecs checks strides literally; numpy may leave odd strides on length-1 axes of a
    # "contiguous" array (1-pixel rows/columns), so give it a freshly laid-out copy then.
    canonical = np.empty(samples.shape, samples.dtype).strides
    if samples.strides != canonical:
        samples = samples.copy(order="C")
    encoded = bytes(imagecodecs.png_encode(samples))
    if not icc:
        return encoded
    if encoded[12:16] != b"IHDR":  # pragma: no cover - libpng always writes IHDR first
        raise RuntimeError("unexpected PNG layout from imagecodecs")
    # iCCP: profile name, NUL, compression method 0 (zlib), compressed profile. It must come
    # before IDAT; right after IHDR (8 signature + 25 IHDR bytes) is always valid.
    body = b"ICC profile\x00\x00" + zlib.compress(icc)
    chunk = struct.pack(">I", len(body)) + b"iCCP" + body
    chunk += struct.pack(">I", zlib.crc32(b"iCCP" + body) & 0xFFFFFFFF)
    return encoded[:33] + chunk + encoded[33:]
