"""Image reading and writing: PNG, JPEG, TIFF, WebP and BMP in, the same formats out.

The codec sees an image as :class:`ImageData`: colour planes as ``(C, H, W)`` integer samples
at the file's bit depth (uint8 or uint16; the codec converts one tile at a time to float, see
:meth:`ImageData.float_pixels`) plus everything it needs to give the user back the *same kind* of file (alpha at its
original bit depth, the mode, the ICC profile). The codec only codes ``pixels``; alpha and ICC
travel beside it, so they come back exactly.

Decoders, and why each:

- Pillow for 1/8-bit images of every format (it handles palettes, transparency keys, CMYK,
  BMP variants, progressive JPEG ...).
- ``imagecodecs.png_decode``/``png_encode`` for 16-bit PNG: Pillow reduces 16-bit RGB/RGBA/LA
  PNGs to 8 bits, which would silently throw away half the data.
- ``tifffile`` for 16-bit and float TIFF (same reason) and, for every TIFF, to count pages
  before decoding (a multi-page TIFF is a volume, not an image).

Mode support (``ImageData.mode``; "restored as" is what :func:`write_image` writes back):

================  ============  ==========================================================
mode              bit depth     notes
================  ============  ==========================================================
``1``             8             1-bit; pixels are 0/255, written back by thresholding at 128
``L``             8             gray
``LA``            8             gray + alpha
``RGB``           8             colour
``RGBA``          8             colour + alpha
``I;16``          16            gray (PNG, TIFF only)
``LA;16``         16            gray + alpha (PNG, TIFF only)
``RGB;16``        16            colour (PNG, TIFF only)
``RGBA;16``       16            colour + alpha (PNG, TIFF only)
================  ============  ==========================================================

Conversions on *read* (documented, deliberate):

- palette images (``P``, ``PA``) are expanded to ``RGB`` (or ``RGBA`` when the palette has
  transparency) and restored as RGB/RGBA, not as a palette;
- a PNG transparency key (``tRNS`` on gray/RGB) becomes a real alpha channel (LA/RGBA, or
  LA;16/RGBA;16 at 16 bits), so transparent pixels stay transparent (on 2/4-bit gray the key
  is compared with the stored samples, before they are scaled to 8 bits);
- CMYK (JPEG/TIFF) is converted to sRGB ``RGB`` (through its ICC profile when it has one, the
  profile is then dropped) and restored as RGB;
- float TIFF (values must be finite and in ``[0, 1]``) is read as a 16-bit image and restored
  as 16-bit integers;
- ``MINISWHITE`` TIFFs are inverted to the usual black-is-0 convention;
- EXIF orientation is applied: pixels are returned upright and the tag in the kept EXIF/XMP
  blocks says 1 (why: :mod:`walloc_cli.files.image_meta`). EXIF and XMP blocks are kept beside the
  pixels as ICC is; gamma/sRGB chunks and other metadata are not kept.

Conversions on *write* (the format cannot hold what the data has):

- JPEG: ``1`` is written as ``L``; alpha or 16 bits -> :class:`InputError`;
- WebP: only RGB/RGBA exist, so ``1``/``L`` are written as RGB and ``LA`` as RGBA (they read
  back as RGB/RGBA); 16 bits -> :class:`InputError`;
- BMP: ``LA`` is written as RGBA (32-bit BMP with an alpha mask); no ICC profile, EXIF or XMP
  (dropped); 16 bits -> :class:`InputError`;
- EXIF/XMP go where each format keeps them (see :mod:`walloc_cli.files.image_meta`); a block larger
  than a JPEG segment (64 KiB) -> :class:`InputError` for JPEG.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import imagecodecs
import numpy as np
import tifffile
from PIL import Image

from walloc_cli.files import image_meta
from walloc_cli.errors import InputError
from walloc_cli.format.header import MODES  # mode -> (colour channels, has alpha, bit depth)
from walloc_cli.format.pixels import pillow_samples
from walloc_cli.files.safe_io import atomic_output, read_prefix
from walloc_cli.format.limits import DEFAULT_MAX_PIXELS

try:  # littleCMS support is optional in Pillow builds; only CMYK conversion uses it
    from PIL import ImageCms
except ImportError:  # pragma: no cover - depends on the Pillow build
    ImageCms = None  # type: ignore[assignment]

__all__ = [
    "FORMATS",
    "DEFAULT_MAX_PIXELS",
    "MAX_PIXELS",
    "check_pixels",
    "MODES",
    "OUTPUT_EXTENSIONS",
    "ImageData",
    "image_from_array",
    "image_to_array",
    "read_image",
    "sniff_image",
    "write_image",
]

#: Largest image the format allows (width * height); no option raises it.
MAX_PIXELS = 2**28

#: Formats we read and write, as Pillow names them.
FORMATS = ("PNG", "JPEG", "TIFF", "WEBP", "BMP")

#: Output extension -> format.
OUTPUT_EXTENSIONS = {
    ".png": "PNG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
}


_MODE_FOR = {  # (colour channels, has alpha, bit depth) -> mode; "1" is never inferred
    (c, a, b): m for m, (c, a, b) in MODES.items() if m != "1"
}

# Errors that third-party decoders raise for damaged files. Programming errors (TypeError,
# AttributeError ...) are deliberately absent so that they are not disguised as "corrupt".
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
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
        mode: one of :data:`MODES` (see the module docstring for palette/CMYK/float inputs).
        icc_profile: the embedded ICC profile, raw bytes, or ``None``.
        source_format: ``"PNG"``, ``"JPEG"``, ``"TIFF"``, ``"WEBP"``, ``"BMP"``, or ``"ARRAY"``
            for images built by :func:`image_from_array`.
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


# --------------------------------------------------------------------------------------------
# Sniffing
# --------------------------------------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# BITMAPCOREHEADER, BITMAPINFOHEADER, V2, V3, OS/2 v2, V4, V5: "BM" alone is too weak a magic
# (two ASCII letters), so the DIB header size must also be one of the known ones.
_BMP_DIB_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})
# Formats users often try; naming them makes the refusal clearer than "unknown".
_OTHER_MAGIC = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"),
    (b"8BPS", "PSD"),
    (b"qoif", "QOI"),
)

#: How many leading bytes :func:`sniff_image` needs to see.
SNIFF_BYTES = 32


def sniff_image(prefix: bytes) -> str | None:
    """Return ``"PNG"``, ``"JPEG"``, ``"TIFF"``, ``"WEBP"`` or ``"BMP"`` from a file's first bytes.

    Detection is by magic bytes only, never by extension; pass at least :data:`SNIFF_BYTES`
    bytes. ``None`` if none of these formats matches.
    """
    if prefix.startswith(_PNG_SIGNATURE):
        return "PNG"
    if prefix.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if prefix[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):  # classic and BigTIFF
        return "TIFF"
    if prefix[:4] == b"RIFF" and prefix[8:12] == b"WEBP":
        return "WEBP"
    if (
        prefix[:2] == b"BM"
        and len(prefix) >= 18
        and int.from_bytes(prefix[14:18], "little") in _BMP_DIB_SIZES
    ):
        return "BMP"
    return None


def _other_format(prefix: bytes) -> str | None:
    """Name a well-known format we do not support, for a clearer error message."""
    for magic, name in _OTHER_MAGIC:
        if prefix.startswith(magic):
            return name
    if prefix[4:8] == b"ftyp" and prefix[8:12] in (b"avif", b"avis", b"heic", b"heix", b"mif1"):
        return "AVIF/HEIF"
    return None


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def read_image(path: Path, also_accepted: str = "", max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageData:
    """Read a PNG, JPEG, TIFF, WebP or BMP file (format from its content, not its extension).

    Returns :class:`ImageData` with ``pixels`` ``(C, H, W)`` uint8/uint16 samples.
    ``also_accepted`` completes the "unsupported input format" message for callers that take
    other kinds of file as well (``compress`` takes audio).

    Raises:
        InputError: missing/unreadable/empty file, not one of the five formats, corrupt or
            truncated data, zero-size or more than ``max_pixels`` pixels (default
            :data:`DEFAULT_MAX_PIXELS`; refused from the header, before decoding), float TIFF with NaN/Inf or values outside ``[0, 1]``,
            multi-page TIFF and animated PNG/WebP (volumes/sequences, not images), sample types
            or colour models we do not handle. Messages never contain the path: the caller
            prefixes it.
    """
    path = Path(path)
    prefix = read_prefix(path, SNIFF_BYTES, "an image file")
    fmt = sniff_image(prefix)
    if fmt is None:
        other = _other_format(prefix)
        detail = f"{other} is not supported; " if other else ""
        raise InputError(
            f"unsupported input format ({detail}not PNG/JPEG/TIFF/WebP/BMP{also_accepted} by its content)"
        )
    token = _MAX_PIXELS.set(max_pixels)
    try:
        if fmt == "TIFF":
            data = _read_tiff(path)
        elif fmt == "PNG":
            data = _read_png(path, prefix)
        else:
            data = _read_pillow(path, fmt)
    except InputError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own guard, in case ours was bypassed
        raise InputError(f"image too large (more than {max_pixels} pixels; raise the limit with --max-pixels)") from exc
    except MemoryError as exc:
        raise InputError("not enough memory to decode the image") from exc
    except _DECODE_ERRORS as exc:
        raise InputError(f"corrupt or truncated {fmt} image ({_reason(exc, path)})") from exc
    finally:
        _MAX_PIXELS.reset(token)
    return image_meta.upright(data)


def _reason(exc: BaseException, path: Path) -> str:
    """A decoder's message, first line only and without the path (the caller prefixes it)."""
    text = str(exc).strip() or type(exc).__name__
    for form in (repr(str(path)), str(path)):
        text = text.replace(form, "the file")
    lines = text.splitlines()
    return lines[0] if lines else type(exc).__name__


def check_pixels(width: int, height: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Refuse an image of more than ``max_pixels`` pixels (the caller's limit) or more than
    :data:`MAX_PIXELS` (the format's), in one line naming the count, the limit and the option."""
    count = width * height
    if count > MAX_PIXELS:
        raise InputError(f"image too large: {width}x{height} = {count} pixels, more than the {MAX_PIXELS} (2**28) the format allows")
    if count > max_pixels:
        raise InputError(f"image too large: {width}x{height} = {count} pixels, more than the limit of {max_pixels} (raise it with --max-pixels)")


# The limit :func:`read_image` was given, seen by the size checks deep in the readers.
_MAX_PIXELS: contextvars.ContextVar[int] = contextvars.ContextVar("walloc_max_pixels", default=DEFAULT_MAX_PIXELS)


def _check_dims(width: int, height: int, limit: int | None = None) -> None:
    """Refuse zero-size and too large images (called with header sizes, before decoding);
    ``limit`` defaults to the one :func:`read_image` was given."""
    if width <= 0 or height <= 0:
        raise InputError(f"image has zero size ({width}x{height} pixels)")
    check_pixels(width, height, _MAX_PIXELS.get() if limit is None else limit)


@contextlib.contextmanager
def _open_pillow(path: Path, fmt: str) -> Iterator[Image.Image]:
    """``Image.open`` restricted to ``fmt``, with the size check applied to the header.

    Pillow refuses images above twice its global ``MAX_IMAGE_PIXELS`` (~179 MP by default) on
    its own; our limit (:func:`check_pixels`) may be higher, so Pillow's is lifted for this one
    call only and put back (changing it at import would change it for the whole host program).
    """
    with warnings.catch_warnings():
        # Pillow warns between MAX_IMAGE_PIXELS and twice that; _check_dims refuses what we do not take
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved = Image.MAX_IMAGE_PIXELS
        if saved is not None and 2 * saved < _MAX_PIXELS.get():
            Image.MAX_IMAGE_PIXELS = _MAX_PIXELS.get()
        try:
            image = Image.open(path, formats=[fmt])
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    with image:
        _check_dims(image.width, image.height)
        yield image


def _read_png(path: Path, prefix: bytes) -> ImageData:
    """PNG: 16-bit through imagecodecs (Pillow would reduce it to 8 bits), the rest via Pillow."""
    # IHDR is always the first chunk: length(4) type(4) width(4) height(4) depth(1) colour(1)
    # compression(1) filter(1) interlace(1)
    if len(prefix) < 29 or prefix[12:16] != b"IHDR":
        raise InputError("corrupt or truncated PNG image (no IHDR header)")
    width, height, depth, colour_type, compression, filtering, interlace = struct.unpack(">IIBBBBB", prefix[16:29])
    _check_png_header(depth, colour_type, compression, filtering, interlace)
    _check_dims(width, height)  # before Pillow: refuse by the header, with the size in the message
    if depth != 16:
        # Pillow compares a gray tRNS key with samples it has already scaled to 8 bits (a 2-bit
        # 1 is 85 by then) but leaves the key unscaled: scale it too, else transparent pixels
        # would come back opaque (PngSuite tbbn0g04).
        key_scale = 255 // ((1 << depth) - 1) if colour_type == 0 and depth in (2, 4) else 1
        return _read_pillow(path, "PNG", key_scale)
    with _open_pillow(path, "PNG") as image:  # header only: ICC profile and frame count
        _refuse_animation(image, "PNG")
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
    image = _from_hwc(array.astype(np.uint16, copy=False), colour, 16, icc, "PNG")
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


def _refuse_animation(image: Image.Image, fmt: str) -> None:
    """Animated PNG/WebP are sequences: coding only the first frame would silently drop data."""
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        raise InputError(
            f"animated {fmt} with {frames} frames is not supported; only still images are "
            "(export a single frame, or code frames as a volume)"
        )


def _read_pillow(path: Path, fmt: str, key_scale: int = 1) -> ImageData:
    """1/8-bit images of any format, decoded by Pillow and normalised to our modes, with their
    EXIF and XMP. ``key_scale`` multiplies an integer transparency key (see :func:`_read_png`)."""
    with _open_pillow(path, fmt) as image:
        if fmt in ("PNG", "WEBP"):
            # JPEG is exempt: MPO files (phone cameras) hold previews/depth as extra "frames";
            # the primary image is the photo. TIFF pages were counted by tifffile already.
            _refuse_animation(image, fmt)
        image.load()  # decode now, inside our error translation (truncation shows up here)
        if key_scale != 1 and isinstance(image.info.get("transparency"), int):
            image.info["transparency"] *= key_scale
        data = _from_pillow(image, fmt)
        data.exif, data.xmp = image_meta.pillow_metadata(image)
        return data


def _from_pillow(image: Image.Image, fmt: str) -> ImageData:
    """Map a loaded Pillow image onto :data:`MODES` (see the module docstring for conversions)."""
    icc: bytes | None = image.info.get("icc_profile") or None
    mode = image.mode
    if mode == "CMYK":
        image, icc = _cmyk_to_rgb(image, icc)
    elif mode in ("1", "L", "La"):
        # has_transparency_data: a tRNS key on gray becomes a real alpha plane
        target = "LA" if image.has_transparency_data else mode
        if target != mode:
            image = image.convert(target)
    elif mode in ("P", "PA") and image.palette is None:  # Pillow would fail an assertion
        raise InputError(f"corrupt {fmt} image (palette image without a palette)")
    elif mode in ("P", "PA", "RGB", "RGBX", "RGBa", "YCbCr"):
        # palettes are expanded (RGBA when the palette or a tRNS key carries transparency)
        target = "RGBA" if image.has_transparency_data else "RGB"
        if target != mode:
            image = image.convert(target)

    mode = image.mode
    if mode == "1":
        array = np.asarray(image, dtype=np.uint8)  # 0/1, not 0/255: exactly the stored bits
        pixels = array[None].astype(np.float32)
        return ImageData(pixels, None, 8, "1", icc, fmt)
    if mode in ("L", "LA", "RGB", "RGBA"):
        array = pillow_samples(image)
        if array.ndim == 2:
            array = array[..., None]
        return _from_hwc(array, 1 if mode[0] == "L" else 3, 8, icc, fmt)
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        array = np.asarray(image).astype(np.uint16)  # native byte order
        return _from_hwc(array[..., None], 1, 16, icc, fmt)
    raise InputError(f"unsupported {fmt} colour mode {mode!r}")


def _cmyk_to_rgb(image: Image.Image, icc: bytes | None) -> tuple[Image.Image, None]:
    """CMYK -> sRGB. Through the embedded profile when possible: naive conversion is far off.

    The CMYK profile cannot describe RGB pixels, so it is dropped (sRGB is the default).
    """
    if icc and ImageCms is not None:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            target = ImageCms.createProfile("sRGB")
            converted = ImageCms.profileToProfile(image, source, target, outputMode="RGB")
            if converted is not None:
                return converted, None
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # unusable profile: fall back to the naive formula
    return image.convert("RGB"), None


def _from_hwc(
    array: np.ndarray, colour: int, depth: int, icc: bytes | None, fmt: str
) -> ImageData:
    """Build ImageData from ``(H, W, colour[+1 alpha])`` integers at ``depth`` bits."""
    height, width = array.shape[:2]
    # A (C, H, W) view of the decoder's own (H, W, S) samples: no copy at all (the float32
    # planes made here before were 4x the file's samples)
    pixels = np.moveaxis(array[..., :colour], -1, 0)
    has_alpha = array.shape[-1] > colour
    alpha = np.ascontiguousarray(array[..., colour]) if has_alpha else None
    mode = _MODE_FOR[(colour, has_alpha, depth)]
    return ImageData(pixels, alpha, depth, mode, icc, fmt)


# Colour models whose samples tifffile returns as they are meant (gray or RGB [+ extra]).
_TIFF_PLAIN = (
    tifffile.PHOTOMETRIC.MINISBLACK,
    tifffile.PHOTOMETRIC.MINISWHITE,
    tifffile.PHOTOMETRIC.RGB,
)


def _read_tiff(path: Path) -> ImageData:
    """TIFF: tifffile counts pages and reads 16-bit/float; 1/8-bit pages go through Pillow."""
    try:
        opened = tifffile.TiffFile(path)
    except TypeError as exc:  # tifffile compares a tag it expects single-valued: a damaged file
        raise InputError(f"corrupt TIFF image (a tag holds an impossible value: {exc})") from exc
    with opened as tif:
        pages = tif.pages
        main_pages = 0
        for page_or_frame in pages:
            # Reduced-resolution copies (pyramids, thumbnails) and masks are not extra images
            if not getattr(page_or_frame, "subfiletype", 0) & 0b101:
                main_pages += 1
                if main_pages > 1:
                    raise InputError(
                        f"multi-page TIFF ({len(pages)} pages) looks like a volume or a stack, "
                        "not a single image; only single-page TIFF images are supported here"
                    )
        page = pages[0]  # the first page is always a full TiffPage (later ones may be frames)
        assert isinstance(page, tifffile.TiffPage)
        if not isinstance(page.imagewidth, int) or not isinstance(page.imagelength, int):
            raise InputError("corrupt TIFF image (the image width or length holds several values)")
        _check_dims(int(page.imagewidth), int(page.imagelength))
        photometric = int(page.photometric)
        samples = int(page.samplesperpixel)
        if not isinstance(page.bitspersample, int):  # tifffile gives a tuple when samples differ
            raise InputError(f"unsupported TIFF: samples of different bit depths {tuple(page.bitspersample)}")
        bits = int(page.bitspersample)
        sample_format = int(page.sampleformat)
        colour = 3 if photometric == tifffile.PHOTOMETRIC.RGB else 1
        if photometric in _TIFF_PLAIN and samples > colour + 1:
            raise InputError(
                f"this TIFF has {samples} samples per pixel: a multi-band (e.g. hyperspectral) "
                "cube is a volume, not an image"
            )
        data = None
        if sample_format == tifffile.SAMPLEFORMAT.UINT and bits <= 8:
            try:
                data = _tiff_via_pillow(path)
            except _DECODE_ERRORS:
                # Pillow lacks some codecs (e.g. zstd, some extra-sample layouts) that tifffile
                # has; plain 8-bit gray/RGB can still be read that way, anything else is corrupt.
                if bits != 8 or photometric not in _TIFF_PLAIN:
                    raise
        if data is None:
            data = _tiff_via_tifffile(page, colour, samples, bits, sample_format)
        data.exif, data.xmp = _tiff_metadata(path, page)
        return data


def _tiff_metadata(path: Path, page: tifffile.TiffPage) -> tuple[bytes | None, bytes | None]:
    """EXIF (camera tags, EXIF and GPS sub-IFDs) and XMP (tag 700) of a TIFF's first page."""
    xmp_tag = page.tags.get(700)
    xmp = bytes(xmp_tag.value) if xmp_tag is not None and isinstance(xmp_tag.value, bytes) and xmp_tag.value else None
    try:
        with _open_pillow(path, "TIFF") as image:  # the tags only: no pixels are decoded
            exif = image_meta.tiff_exif(image)
    except _DECODE_ERRORS:
        exif = None
    if exif is None:
        # Pillow cannot open every TIFF tifffile reads (e.g. float RGB) nor rewrite damaged
        # tags: the orientation, at least, is never lost
        orientation = page.tags.get(image_meta.ORIENTATION_TAG)
        value = orientation.value if orientation is not None else None
        exif = image_meta.orientation_exif(int(value)) if isinstance(value, int) else None
    return exif, xmp


def _tiff_via_pillow(path: Path) -> ImageData:
    """1/8-bit TIFF: Pillow handles palette, CMYK, YCbCr, MINISWHITE, JPEG-in-TIFF ..."""
    with _open_pillow(path, "TIFF") as image:  # pages were counted by tifffile already
        image.load()
        return _from_pillow(image, "TIFF")


def _tiff_via_tifffile(
    page: tifffile.TiffPage, colour: int, samples: int, bits: int, sample_format: int
) -> ImageData:
    """8/16-bit unsigned or float TIFF (gray or RGB, optional alpha); float becomes 16-bit."""
    photometric = int(page.photometric)
    if photometric not in _TIFF_PLAIN:
        name = tifffile.PHOTOMETRIC(photometric).name
        raise InputError(f"unsupported TIFF colour model {name} at {bits} bits per sample")
    is_float = sample_format == tifffile.SAMPLEFORMAT.IEEEFP
    if not is_float and not (sample_format == tifffile.SAMPLEFORMAT.UINT and bits in (8, 16)):
        kind = {1: "unsigned", 2: "signed"}.get(sample_format, "other")
        raise InputError(
            f"unsupported TIFF sample type ({bits}-bit {kind} integer; use 8/16-bit unsigned "
            "or float in [0, 1])"
        )
    icc_tag = page.tags.get(34675)
    icc = bytes(icc_tag.value) if icc_tag is not None else None
    array = page.asarray()
    axes = page.axes
    if axes == "SYX":  # planar configuration "separate"
        array = np.moveaxis(array, 0, -1)
    elif axes == "YX":
        array = array[..., None]
    elif axes != "YXS":
        raise InputError(f"unsupported TIFF layout (axes {axes})")
    has_alpha = samples > colour
    if is_float:
        values = array.astype(np.float32, copy=False)
        if not np.isfinite(values).all():
            raise InputError("float TIFF contains NaN or infinite values")
        low, high = float(values.min()), float(values.max())
        if low < 0.0 or high > 1.0:
            raise InputError(
                f"float TIFF values span [{low:g}, {high:g}]; only images normalised to "
                "[0, 1] are supported (other float data is a volume)"
            )
    else:
        values = array.astype(np.float32) / np.float32(255 if bits == 8 else 65535)
    if photometric == tifffile.PHOTOMETRIC.MINISWHITE:
        values[..., :colour] = 1.0 - values[..., :colour]
    if has_alpha and page.extrasamples and int(page.extrasamples[0]) == 1:
        # associated (premultiplied) alpha: un-premultiply, since we write unassociated alpha
        alpha_f = values[..., colour:colour + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            straight = np.where(alpha_f > 0, values[..., :colour] / alpha_f, 0.0)
        values[..., :colour] = np.clip(straight, 0.0, 1.0)
    pixels = np.ascontiguousarray(np.moveaxis(values[..., :colour], -1, 0), dtype=np.float32)
    depth = 8 if bits == 8 and not is_float else 16
    alpha = None
    if has_alpha:
        if is_float:
            alpha = np.rint(values[..., colour] * 65535).astype(np.uint16)
        else:
            alpha = np.ascontiguousarray(array[..., colour])
    mode = _MODE_FOR[(colour, has_alpha, depth)]
    return ImageData(pixels, alpha, depth, mode, icc, "TIFF")


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _format_for_path(path: Path) -> str:
    suffix = path.suffix.lower()
    fmt = OUTPUT_EXTENSIONS.get(suffix)
    if fmt is None:
        allowed = ", ".join(OUTPUT_EXTENSIONS)
        shown = f"'{suffix}'" if suffix else "(none)"
        raise InputError(f"unsupported output extension {shown} (use one of {allowed})")
    return fmt


def _output_mode(mode: str, fmt: str) -> str:
    """The mode actually written for ``fmt``; InputError when the format cannot hold the data."""
    channels, has_alpha, depth = MODES[mode]
    if depth == 16 and fmt in ("JPEG", "WEBP", "BMP"):
        raise InputError(
            f"the {fmt} format cannot store 16-bit images; write a .png or .tif file to keep all "
            "16 bits"
        )
    if fmt == "JPEG":
        if has_alpha:
            raise InputError(
                "the JPEG format cannot store an alpha channel; write a .png, .webp or .tif file "
                "to keep it"
            )
        return "L" if mode == "1" else mode
    if fmt == "WEBP":  # WebP only knows RGB and RGBA
        return "RGBA" if has_alpha else "RGB"
    if fmt == "BMP" and mode == "LA":  # BMP has no gray+alpha; 32-bit RGBA keeps the alpha
        return "RGBA"
    return mode


def write_image(path: Path, data: ImageData, overwrite: bool = False) -> None:
    """Write ``data`` to ``path`` in the format named by its extension.

    ``.png``, ``.tif``/``.tiff`` (deflate), ``.webp`` (lossless), ``.bmp``, ``.jpg``/``.jpeg``
    (quality 95, no chroma subsampling). ``pixels`` are rounded to ``data.bit_depth``; alpha and
    the ICC profile are written where the format holds them (not BMP's ICC). The file appears
    whole or not at all (see :func:`walloc_cli.files.safe_io.atomic_output`).

    Raises:
        InputError: unknown extension; 16 bits or alpha requested from a format without them.
        FileExistsError: ``path`` exists and ``overwrite`` is false.
    """
    path = Path(path)
    fmt = _format_for_path(path)
    out_mode = _output_mode(data.mode, fmt)
    _check_side(data, fmt)
    if path.exists() and not overwrite:  # fail before spending time encoding
        raise FileExistsError(f"{path}: already exists (use -f to overwrite)")
    payload = _encode(data, fmt, out_mode)  # encode fully first: errors leave no file at all
    with atomic_output(path, overwrite=overwrite) as handle:
        handle.write(payload)


def image_bytes(data: ImageData, fmt: str = "PNG") -> bytes:
    """Encode ``data`` in memory as ``fmt`` (``PNG``, ``TIFF``, ``WEBP``, ``BMP``, ``JPEG``).

    What :func:`write_image` writes, for streams (e.g. standard output).
    """
    if fmt not in set(OUTPUT_EXTENSIONS.values()):
        raise InputError(f"unsupported output format {fmt!r}")
    out_mode = _output_mode(data.mode, fmt)
    _check_side(data, fmt)
    return _encode(data, fmt, out_mode)


# Largest side each format's encoder takes (PNG, TIFF and BMP hold more than MAX_PIXELS allows).
_MAX_OUTPUT_SIDE = {"WEBP": 16383, "JPEG": 65535}


def _check_side(data: ImageData, fmt: str) -> None:
    """InputError, before encoding, for an image too wide or tall for ``fmt`` (libwebp's error
    would otherwise surface as a ValueError after the work)."""
    limit = _MAX_OUTPUT_SIDE.get(fmt)
    if limit is not None and max(data.width, data.height) > limit:
        raise InputError(
            f"the {fmt} format holds at most {limit} pixels per side, this image is "
            f"{data.width}x{data.height}; write a .png or .tif file"
        )


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


def _samples(data: ImageData, out_mode: str) -> np.ndarray:
    """``(H, W, S)`` integer samples for ``out_mode`` (bool ``(H, W)`` for mode "1")."""
    if out_mode == "1":
        return np.ascontiguousarray(data.pixels[0] >= 128)
    if data.mode == "1":  # written as L/RGB: thresholded bits become black/white, like "1"
        array = np.where(data.pixels[0] >= 128, 255, 0).astype(np.uint8)[..., None]
    else:
        array = np.moveaxis(data.pixels, 0, -1)
    if data.alpha is not None:
        array = np.concatenate([array, data.alpha[..., None]], axis=-1)
    colour = MODES[out_mode][0]
    if colour == 3 and data.channels == 1:  # gray -> RGB for formats without gray (WebP, BMP)
        gray = array[..., :1]
        array = np.concatenate([gray, gray, gray, array[..., 1:]], axis=-1)
    return array


def _encode(data: ImageData, fmt: str, out_mode: str) -> bytes:
    array = _samples(data, out_mode)
    icc = data.icc_profile
    if icc and icc[16:20] == b"GRAY" and MODES[out_mode][0] == 3:
        icc = None  # a gray profile cannot describe the RGB we write for WebP/BMP: drop it
    if fmt == "TIFF":
        return _encode_tiff(array, out_mode, icc, data.exif, data.xmp)
    if fmt == "PNG" and (MODES[out_mode][2] == 16 or out_mode != "1"):
        # libpng through imagecodecs straight from the samples: Pillow would first copy them
        # into its own image (4 bytes a pixel for RGB: 1 GB more for a 268 MP decode)
        return image_meta.splice_png(_encode_png16(array, icc), image_meta.png_metadata_chunks(data.exif, data.xmp))
    if fmt == "BMP" and out_mode == "RGBA":
        return _encode_bmp_rgba(array)
    image = Image.fromarray(array if array.ndim == 2 or array.shape[-1] > 1 else array[..., 0])
    assert image.mode == out_mode, (image.mode, out_mode)
    options: dict[str, object] = {}
    if icc and fmt != "BMP":  # Pillow's BMP writer has no ICC support
        options["icc_profile"] = icc
    if fmt == "JPEG":
        options.update(quality=95, subsampling=0)  # 4:4:4: do not blur colour edges further
    elif fmt == "WEBP":
        options.update(lossless=True, exact=True)  # exact: keep RGB under fully transparent px
    options.update(image_meta.pillow_save_options(fmt, data.exif, data.xmp))  # JPEG and WebP
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    if fmt == "PNG":  # Pillow's PNG writer takes EXIF but not XMP: both are spliced in alike
        return image_meta.splice_png(buffer.getvalue(), image_meta.png_metadata_chunks(data.exif, data.xmp))
    return buffer.getvalue()


def _encode_png16(array: np.ndarray, icc: bytes | None) -> bytes:
    """8- and 16-bit PNG via imagecodecs (Pillow cannot write 16-bit colour, and copies 8-bit
    samples into its own image first), ICC spliced in."""
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


def _encode_tiff(array: np.ndarray, out_mode: str, icc: bytes | None, exif: bytes | None = None, xmp: bytes | None = None) -> bytes:
    """Deflate-compressed TIFF via tifffile; alpha as an unassociated extra sample; EXIF's camera
    tags and sub-IFDs and XMP as in :func:`walloc_cli.files.image_meta.tiff_extratags`."""
    colour, has_alpha, _ = MODES[out_mode]
    options: dict[str, object] = {
        "photometric": "rgb" if colour == 3 else "minisblack",
        "compression": "zlib",
    }
    if out_mode == "1":
        options["compression"] = None  # tifffile writes bool as 1-bit; keep it plain, it is small
    else:
        options["predictor"] = True  # horizontal differencing: smaller files, still lossless
        options["planarconfig"] = "contig"
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if has_alpha:
        options["extrasamples"] = ["unassalpha"]
    if icc:
        options["iccprofile"] = icc
    extratags = image_meta.tiff_extratags(exif, xmp)
    if extratags:
        options["extratags"] = extratags
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **options)  # type: ignore[arg-type]  # options are per-call keyword values
    return image_meta.tiff_link_exif(buffer.getvalue(), exif) if exif else buffer.getvalue()


def _encode_bmp_rgba(array: np.ndarray) -> bytes:
    """32-bit BMP with a BITMAPV4HEADER and an alpha mask (Pillow writes RGBA without one).

    Rows are stored bottom-up in BGRA order.
    """
    height, width, _ = array.shape
    pixels = np.ascontiguousarray(array[::-1][..., [2, 1, 0, 3]]).tobytes()
    header = struct.pack("<IiiHHIIiiII", 108, width, height, 1, 32, 3, len(pixels), 2835, 2835, 0, 0)
    header += struct.pack("<IIII", 0x00FF0000, 0x0000FF00, 0x000000FF, 0xFF000000)  # R G B A masks
    header += struct.pack("<I", 0x73524742)  # LCS_sRGB colour space
    header += bytes(36 + 12)  # CIEXYZ endpoints and gamma: unused with LCS_sRGB
    offset = 14 + len(header)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + header + pixels


# --------------------------------------------------------------------------------------------
# Arrays (Python API)
# --------------------------------------------------------------------------------------------


def image_from_array(array: np.ndarray, bit_depth: int | None = None) -> ImageData:
    """Wrap an array as ImageData: ``(H, W)``, ``(H, W, 1|2|3|4)`` (last channel 2/4 = alpha).

    dtypes: bool (mode "1", 2-D only), uint8 (8-bit), uint16 (16-bit), or float in ``[0, 1]``
    (stored as given; rounded to ``bit_depth`` bits, 8 by default, when written or turned back
    into an array). ``source_format`` is ``"ARRAY"``.
    """
    values = np.asarray(array)
    if values.ndim == 2:
        values = values[..., None]
    if values.ndim != 3 or values.shape[-1] not in (1, 2, 3, 4):
        raise InputError(
            f"expected an image array of shape (H, W) or (H, W, 1|2|3|4), got {np.shape(array)}"
        )
    height, width, samples = values.shape
    _check_dims(width, height, MAX_PIXELS)  # already in memory: encode_image applies the caller's limit
    colour = 1 if samples <= 2 else 3
    has_alpha = samples in (2, 4)
    if values.dtype == np.bool_:
        if samples != 1:
            raise InputError("boolean arrays must be 2-D (H, W): they are 1-bit gray images")
        return ImageData(values[None, ..., 0].astype(np.float32), None, 8, "1", None, "ARRAY")
    if values.dtype in (np.uint8, np.uint16):
        depth = 8 if values.dtype == np.uint8 else 16
        if bit_depth is not None and bit_depth != depth:
            raise InputError(f"bit_depth={bit_depth} does not match the {values.dtype} array")
        return _from_hwc(values, colour, depth, None, "ARRAY")
    if np.issubdtype(values.dtype, np.floating):
        depth = 8 if bit_depth is None else bit_depth
        if depth not in (8, 16):
            raise InputError(f"bit_depth must be 8 or 16, not {depth}")
        if not np.isfinite(values).all():
            raise InputError("image array contains NaN or infinite values")
        if values.min() < 0 or values.max() > 1:
            raise InputError("float image arrays must be in [0, 1]")
        pixels = np.ascontiguousarray(np.moveaxis(values[..., :colour], -1, 0), dtype=np.float32)
        alpha = None
        if has_alpha:
            peak = 255 if depth == 8 else 65535
            alpha = np.rint(values[..., colour] * peak).astype(np.uint8 if depth == 8 else np.uint16)
        mode = _MODE_FOR[(colour, has_alpha, depth)]
        return ImageData(pixels, alpha, depth, mode, None, "ARRAY")
    raise InputError(
        f"unsupported image array dtype {values.dtype} (use bool, uint8, uint16 or float in [0, 1])"
    )


def image_to_array(data: ImageData) -> np.ndarray:
    """Inverse of :func:`image_from_array`: integer samples at the image's bit depth.

    Returns ``(H, W)`` for gray without alpha (bool for mode "1"), else ``(H, W, C [+1 alpha])``,
    uint8 or uint16. Pixels are rounded to the nearest level.
    """
    if data.mode == "1":
        return np.ascontiguousarray(data.pixels[0] >= 128)
    array = _samples(data, data.mode)
    return array[..., 0] if array.shape[-1] == 1 else array

