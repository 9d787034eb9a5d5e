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

This module is the image file layer's public face: sniffing, :func:`read_image` /
:func:`write_image` (one per format: :mod:`~walloc_cli.files.png`,
:mod:`~walloc_cli.files.tiff_image`, :mod:`~walloc_cli.files.pillow_io`) and arrays; the decoded
image (:class:`ImageData`) and its shared checks live in :mod:`~walloc_cli.files.image_data`.

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

import importlib
import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from walloc_cli.errors import InputError
from walloc_cli.files import image_meta
from walloc_cli.files.image_data import (
    DECODE_ERRORS,
    MAX_PIXELS,
    MODE_FOR,
    ImageData,
    check_dims,
    check_pixels,
    image_from_hwc,
    pixel_limit,
    quantise,
)
from walloc_cli.files.pillow_io import read_pillow
from walloc_cli.files.png import encode_png, read_png
from walloc_cli.files.safe_io import atomic_output, read_prefix
from walloc_cli.format.header import MODES  # mode -> (colour channels, has alpha, bit depth)
from walloc_cli.format.limits import DEFAULT_MAX_PIXELS

# ImageData, MAX_PIXELS, check_pixels and quantise are defined in image_data (the format readers
# need them too) and are part of this layer's public interface.
__all__ = [
    "FORMATS",
    "DEFAULT_MAX_PIXELS",
    "MAX_PIXELS",
    "check_pixels",
    "MODES",
    "OUTPUT_EXTENSIONS",
    "ImageData",
    "image_bytes",
    "image_from_array",
    "image_to_array",
    "quantise",
    "read_image",
    "sniff_image",
    "write_image",
]


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


# Pillow's plugin for each format read or written here. Pillow knows a format once its plugin is
# imported; opening or saving one it does not know yet runs ``Image.init()``, which imports all
# of its ~45 plugins (PDF, AVIF, FITS ...: 0.07 s of a photo's compress, measured).
_PILLOW_PLUGINS = {"PNG": "PngImagePlugin", "JPEG": "JpegImagePlugin", "TIFF": "TiffImagePlugin", "WEBP": "WebPImagePlugin", "BMP": "BmpImagePlugin"}


def pillow_plugin(fmt: str) -> None:
    """Register Pillow's plugin for ``fmt`` (``PNG``, ``JPEG``, ``TIFF``, ``WEBP``, ``BMP``)
    alone, so that ``Image.open(..., formats=[fmt])`` and ``Image.save(..., format=fmt)`` do
    not load every other plugin Pillow has."""
    importlib.import_module(f"PIL.{_PILLOW_PLUGINS[fmt]}")


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


def read_image(path: Path, also_accepted: str = "", max_pixels: int = DEFAULT_MAX_PIXELS, prefix: bytes = b"") -> ImageData:
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

    ``prefix``: the file's first bytes (at least :data:`SNIFF_BYTES`) when the caller has read
    them to sniff it (:func:`walloc_cli.files.sniff.identify`); else they are read here.
    """
    path = Path(path)
    if len(prefix) < SNIFF_BYTES:  # also b"": not read yet, or unreadable (read_prefix names why)
        prefix = read_prefix(path, SNIFF_BYTES, "an image file")
    fmt = sniff_image(prefix)
    if fmt is None:
        other = _other_format(prefix)
        detail = f"{other} is not supported; " if other else ""
        raise InputError(
            f"unsupported input format ({detail}not PNG/JPEG/TIFF/WebP/BMP{also_accepted} by its content)"
        )
    token = pixel_limit.set(max_pixels)
    try:
        pillow_plugin(fmt)
        if fmt == "TIFF":
            from walloc_cli.files.tiff_image import read_tiff  # tifffile: for TIFF inputs only

            data = read_tiff(path)
        elif fmt == "PNG":
            data = read_png(path, prefix)
        else:
            data = read_pillow(path, fmt)
    except InputError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own guard, in case ours was bypassed
        raise InputError(f"image too large (more than {max_pixels} pixels; raise the limit with --max-pixels)") from exc
    except MemoryError as exc:
        raise InputError("not enough memory to decode the image") from exc
    except DECODE_ERRORS as exc:
        raise InputError(f"corrupt or truncated {fmt} image ({_reason(exc, path)})") from exc
    finally:
        pixel_limit.reset(token)
    return image_meta.upright(data)


def _reason(exc: BaseException, path: Path) -> str:
    """A decoder's message, first line only and without the path (the caller prefixes it)."""
    text = str(exc).strip() or type(exc).__name__
    for form in (repr(str(path)), str(path)):
        text = text.replace(form, "the file")
    lines = text.splitlines()
    return lines[0] if lines else type(exc).__name__


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
        from walloc_cli.files.tiff_image import encode_tiff  # tifffile: for TIFF outputs only

        return encode_tiff(array, out_mode, icc, data.exif, data.xmp)
    if fmt == "PNG" and (MODES[out_mode][2] == 16 or out_mode != "1"):
        # libpng through imagecodecs straight from the samples: Pillow would first copy them
        # into its own image (4 bytes a pixel for RGB: 1 GB more for a 268 MP decode)
        return image_meta.splice_png(encode_png(array, icc), image_meta.png_metadata_chunks(data.exif, data.xmp))
    if fmt == "BMP" and out_mode == "RGBA":
        return _encode_bmp_rgba(array)
    pillow_plugin(fmt)
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
    check_dims(width, height, MAX_PIXELS)  # already in memory: encode_image applies the caller's limit
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
        return image_from_hwc(values, colour, depth, None, "ARRAY")
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
        mode = MODE_FOR[(colour, has_alpha, depth)]
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
