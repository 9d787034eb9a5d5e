"""The decoded image every image module shares: :class:`ImageData`, and the checks and
conversions the format readers (:mod:`~walloc_cli.files.png`, :mod:`~walloc_cli.files.tiff_image`,
:mod:`~walloc_cli.files.pillow_io`) and :mod:`walloc_cli.files.images` have in common.

Users import these names from :mod:`walloc_cli.files.images` (the image file layer's public face);
they live here so that the per-format readers can use them without importing the dispatcher
that imports them. Modes, bit depths and conversions: :mod:`walloc_cli.files.images`.
"""

from __future__ import annotations

import contextvars
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from walloc_cli.errors import InputError
from walloc_cli.format.header import MODES  # mode -> (colour channels, has alpha, bit depth)
from walloc_cli.format.limits import DEFAULT_MAX_PIXELS

__all__ = [
    "DECODE_ERRORS",
    "MAX_PIXELS",
    "MODE_FOR",
    "ImageData",
    "check_dims",
    "check_pixels",
    "image_from_hwc",
    "pixel_limit",
    "quantise",
]

#: Largest image the format allows (width * height); no option raises it.
MAX_PIXELS = 2**28


#: (colour channels, has alpha, bit depth) -> mode; "1" is never inferred.
MODE_FOR = {
    (c, a, b): m for m, (c, a, b) in MODES.items() if m != "1"
}

# Errors that third-party decoders raise for damaged files. Programming errors (TypeError,
# AttributeError ...) are deliberately absent so that they are not disguised as "corrupt".
DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    struct.error,
    zlib.error,
    RuntimeError,
    IndexError,
    KeyError,
)


@dataclass
class ImageData:
    """A decoded image, ready for the codec, with what is needed to write the same kind back.

    Attributes:
        pixels: ``(C, H, W)`` samples as the user gets them back: uint8 for 8-bit modes (mode
            "1" holds 0 and 255), uint16 for 16-bit ones; ``C`` is 1 (gray) or 3 (colour).
            Colour only: alpha is never in here (the codec does not code it). Floats in
            ``[0, 1]`` are accepted and rounded to the bit depth (:func:`quantise`) when the
            object is made. Integers, not float32: a 150 MP RGB photo is 450 MB as uint8 and
            was 1.8 GB as float32.
        alpha: ``(H, W)`` uint8 (8-bit modes) or uint16 (16-bit modes), or ``None``.
        bit_depth: 8 or 16: the integer depth ``pixels`` are rounded to when written.
        mode: one of :data:`MODES` (see :mod:`walloc_cli.files.images` for palette/CMYK/float inputs).
        icc_profile: the embedded ICC profile, raw bytes, or ``None``.
        source_format: ``"PNG"``, ``"JPEG"``, ``"TIFF"``, ``"WEBP"``, ``"BMP"``, or ``"ARRAY"``
            for images built by :func:`~walloc_cli.files.images.image_from_array`.
        exif: the EXIF block (TIFF-structured, no ``Exif\\0\\0`` prefix), or ``None``.
        xmp: the XMP packet (UTF-8 XML), or ``None``.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int
    mode: str
    icc_profile: bytes | None = None
    source_format: str = "ARRAY"
    exif: bytes | None = None
    xmp: bytes | None = None

    def __post_init__(self) -> None:
        # Validate shapes once here (dataclasses.replace runs it too) so that a mismatch between
        # mode, pixels and alpha fails where it is made, not deep inside an encoder.
        if self.mode not in MODES:
            raise ValueError(f"unknown image mode {self.mode!r} (expected one of {sorted(MODES)})")
        channels, has_alpha, depth = MODES[self.mode]
        if self.bit_depth != depth:
            raise ValueError(f"mode {self.mode} has bit depth {depth}, not {self.bit_depth}")
        pixels = np.asarray(self.pixels)
        dtype = np.dtype(np.uint8 if depth == 8 else np.uint16)
        if pixels.ndim == 3 and np.issubdtype(pixels.dtype, np.floating):
            pixels = np.moveaxis(quantise(pixels, depth), -1, 0)
        elif pixels.ndim == 3 and pixels.dtype != dtype:
            raise ValueError(f"pixels must be {dtype} for mode {self.mode} (or float in [0, 1]), not {pixels.dtype}")
        self.pixels = pixels
        if self.pixels.ndim != 3 or self.pixels.shape[0] != channels:
            raise ValueError(
                f"mode {self.mode} needs pixels of shape ({channels}, H, W), got {self.pixels.shape}"
            )
        if has_alpha:
            want = np.uint8 if depth == 8 else np.uint16
            if self.alpha is None or self.alpha.shape != self.pixels.shape[1:]:
                raise ValueError(f"mode {self.mode} needs an alpha plane of shape (H, W)")
            if self.alpha.dtype != want:
                raise ValueError(f"alpha must be {np.dtype(want)} for mode {self.mode}")
        elif self.alpha is not None:
            raise ValueError(f"mode {self.mode} has no alpha channel, but alpha was given")

    @property
    def height(self) -> int:
        """Rows (``H``)."""
        return int(self.pixels.shape[1])

    @property
    def width(self) -> int:
        """Columns (``W``)."""
        return int(self.pixels.shape[2])

    @property
    def channels(self) -> int:
        """Colour channels ``C`` in ``pixels`` (1 or 3); alpha is not counted."""
        return int(self.pixels.shape[0])

    @property
    def has_alpha(self) -> bool:
        """Whether an alpha plane travels beside the pixels."""
        return self.alpha is not None

    @property
    def peak(self) -> int:
        """The largest sample value: ``2**bit_depth - 1``."""
        return (1 << self.bit_depth) - 1

    def float_pixels(self, where: tuple[slice, slice] = (slice(None), slice(None))) -> np.ndarray:
        """The samples of the rows and columns ``where`` as float32 ``(C, h, w)`` in ``[0, 1]``:
        what the codec sees, made one tile at a time."""
        return self.pixels[(slice(None), *where)].astype(np.float32) / np.float32(self.peak)


def check_pixels(width: int, height: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Refuse an image of more than ``max_pixels`` pixels (the caller's limit) or more than
    :data:`MAX_PIXELS` (the format's), in one line naming the count, the limit and the option."""
    count = width * height
    if count > MAX_PIXELS:
        raise InputError(f"image too large: {width}x{height} = {count} pixels, more than the {MAX_PIXELS} (2**28) the format allows")
    if count > max_pixels:
        raise InputError(f"image too large: {width}x{height} = {count} pixels, more than the limit of {max_pixels} (raise it with --max-pixels)")


#: The pixel limit :func:`~walloc_cli.files.images.read_image` was given, seen by the size checks
#: deep in the format readers (:func:`check_dims`, :func:`~walloc_cli.files.pillow_io.open_pillow`).
pixel_limit: contextvars.ContextVar[int] = contextvars.ContextVar("walloc_max_pixels", default=DEFAULT_MAX_PIXELS)


def check_dims(width: int, height: int, limit: int | None = None) -> None:
    """Refuse zero-size and too large images (called with header sizes, before decoding);
    ``limit`` defaults to the one :func:`~walloc_cli.files.images.read_image` was given."""
    if width <= 0 or height <= 0:
        raise InputError(f"image has zero size ({width}x{height} pixels)")
    check_pixels(width, height, pixel_limit.get() if limit is None else limit)


def image_from_hwc(
    array: np.ndarray, colour: int, depth: int, icc: bytes | None, fmt: str
) -> ImageData:
    """Build ImageData from ``(H, W, colour[+1 alpha])`` integers at ``depth`` bits."""
    height, width = array.shape[:2]
    # A (C, H, W) view of the decoder's own (H, W, S) samples: no copy at all (the float32
    # planes made here before were 4x the file's samples)
    pixels = np.moveaxis(array[..., :colour], -1, 0)
    has_alpha = array.shape[-1] > colour
    alpha = np.ascontiguousarray(array[..., colour]) if has_alpha else None
    mode = MODE_FOR[(colour, has_alpha, depth)]
    return ImageData(pixels, alpha, depth, mode, icc, fmt)


def quantise(pixels: np.ndarray, depth: int) -> np.ndarray:
    """``(C, H, W)`` floats in [0, 1] -> ``(H, W, C)`` uint8/uint16, rounded to nearest.

    The one rule that turns decoded pixels into the samples a user gets back (files and PSNR).
    """
    if not np.isfinite(pixels).all():
        raise ValueError("pixels contain NaN or infinite values")
    peak = 255 if depth == 8 else 65535
    channels, height, width = pixels.shape
    out = np.empty((height, width, channels), dtype=np.uint8 if depth == 8 else np.uint16)
    for c in range(channels):  # plane by plane: one float plane of scratch memory, not C
        plane = pixels[c] * np.float32(peak)
        np.clip(plane, 0, peak, out=plane)
        out[..., c] = np.rint(plane, out=plane)
    return out
