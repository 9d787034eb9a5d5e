"""Single-page TIFF images: ``tifffile`` counts the pages (a multi-page TIFF is a volume, see
:mod:`walloc_cli.files.volumes`) and reads 16-bit and float TIFF; 1/8-bit pages go through Pillow
(palette, CMYK, YCbCr, JPEG-in-TIFF ...). Writing: deflate TIFF through ``tifffile``, EXIF and
XMP as :mod:`walloc_cli.files.image_meta` lays them out.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import tifffile

from walloc_cli.errors import InputError
from walloc_cli.files import image_meta
from walloc_cli.files.image_data import DECODE_ERRORS, MODE_FOR, ImageData, check_dims
from walloc_cli.files.pillow_io import image_from_pillow, open_pillow
from walloc_cli.format.header import MODES

__all__ = ["encode_tiff", "read_tiff"]


# Colour models whose samples tifffile returns as they are meant (gray or RGB [+ extra]).
_TIFF_PLAIN = (
    tifffile.PHOTOMETRIC.MINISBLACK,
    tifffile.PHOTOMETRIC.MINISWHITE,
    tifffile.PHOTOMETRIC.RGB,
)


def read_tiff(path: Path) -> ImageData:
    """TIFF: tifffile counts pages and reads 16-bit/float; 1/8-bit pages go through Pillow.

    Returns :class:`ImageData` (``pixels`` ``(C, H, W)``; float TIFF becomes 16-bit) with the
    first page's EXIF/XMP. A file with more than one main page is refused (it is a volume).
    """
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
        check_dims(int(page.imagewidth), int(page.imagelength))
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
            except DECODE_ERRORS:
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
        with open_pillow(path, "TIFF") as image:  # the tags only: no pixels are decoded
            exif = image_meta.tiff_exif(image)
    except DECODE_ERRORS:
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
    with open_pillow(path, "TIFF") as image:  # pages were counted by tifffile already
        image.load()
        return image_from_pillow(image, "TIFF")


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
    mode = MODE_FOR[(colour, has_alpha, depth)]
    return ImageData(pixels, alpha, depth, mode, icc, "TIFF")


def encode_tiff(array: np.ndarray, out_mode: str, icc: bytes | None, exif: bytes | None = None, xmp: bytes | None = None) -> bytes:
    """Deflate-compressed TIFF via tifffile; alpha as an unassociated extra sample; EXIF's camera
    tags and sub-IFDs and XMP as in :func:`walloc_cli.files.image_meta.tiff_extratags`.

    ``array`` is ``(H, W, S)`` uint8/uint16 samples of ``out_mode`` (bool ``(H, W)`` for mode
    ``1``, written as 1-bit).
    """
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
