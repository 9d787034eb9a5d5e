"""Image metadata: EXIF orientation, EXIF and XMP blocks, and which of them (with ICC) to keep.

What walloc does with each (see the README, "Metadata"):

- **Orientation is applied to the pixels when the image is read**, always, whatever
  ``--metadata`` says; a kept EXIF/XMP block then says orientation 1 ("upright"), as
  ``jpegtran -autorotate``, ``exiftran -a`` and Pillow's ``ImageOps.exif_transpose`` leave it.
  Why not keep the stored pixels and the tag, as ``cwebp -metadata exif`` does? Orientation is
  needed for a right picture, and in a ``.wlc`` file the EXIF block is an *ancillary* chunk that
  a reader may skip (``formats/wlc.md``): a reader that skips it, a user who keeps no EXIF, or an
  output format or viewer that ignores EXIF (BMP, many PNG viewers) would then show the photo
  sideways. Upright pixels are right in every reader, so no critical chunk (and no new major
  format version) is needed; the cost is one transposed copy of the pixels at read time
  (a 12 MP phone JPEG with orientation 6: ``read_image`` 0.50 -> 0.61 s, peak RSS 260 -> 318 MiB).
- EXIF and XMP blocks are kept as bytes (EXIF as the TIFF-structured block of PNG's ``eXIf`` and
  WebP's ``EXIF`` chunk, without JPEG's ``Exif\\0\\0`` prefix), stored in the ``exif`` and
  ``xmp `` chunks, and written back into PNG (``eXIf``, ``iTXt XML:com.adobe.xmp``), JPEG (APP1),
  WebP (``EXIF``, ``XMP ``) and TIFF (camera tags in IFD0, the EXIF and GPS sub-IFDs, tag 700
  XMLPacket) outputs. BMP holds neither.
- :data:`DEFAULT_METADATA` keeps the ICC profile only: colours change without it, while EXIF
  and XMP may carry where a photo was taken (GPS) and cwebp keeps none of them by default.
- An ICC profile that *is* sRGB (:func:`walloc_cli.files.icc.is_srgb`) is kept as a one-word
  header flag instead of its bytes (format 1.3) and written back as the standard
  :data:`walloc_cli.files.icc.SRGB_PROFILE`.
"""

from __future__ import annotations

import dataclasses
import io
import re
import struct
import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from walloc_cli.errors import InputError

if TYPE_CHECKING:
    from PIL import Image

    from walloc_cli.files.image_data import ImageData

__all__ = [
    "DEFAULT_METADATA",
    "MAX_METADATA",
    "METADATA_CHUNKS",
    "METADATA_KINDS",
    "ORIENTATION_TAG",
    "exif_orientation",
    "keep_metadata",
    "metadata_orientation",
    "orient",
    "orientation_exif",
    "parse_metadata",
    "pillow_metadata",
    "pillow_save_options",
    "png_metadata",
    "png_metadata_chunks",
    "splice_png",
    "tiff_exif",
    "tiff_extratags",
    "tiff_link_exif",
    "upright",
    "upright_blocks",
]

#: What ``--metadata`` can name, in the order ``walloc info`` lists them.
METADATA_KINDS = ("icc", "exif", "xmp")
#: Kept when the user says nothing: the ICC profile (colours change without it).
DEFAULT_METADATA: frozenset[str] = frozenset({"icc"})
#: ``.wlc`` chunk type -> metadata kind (``formats/wlc.md``).
METADATA_CHUNKS = {"ICCP": "icc", "exif": "exif", "xmp ": "xmp"}
#: Largest EXIF or XMP block (and ICC profile) kept, inflated: real ones are a few KiB to a few
#: hundred KiB (JPEG caps EXIF at 64 KiB); decoders refuse more, so encoders refuse it too.
MAX_METADATA = 16 << 20

ORIENTATION_TAG = 0x0112
_EXIF_PREFIX = b"Exif\x00\x00"
_XMP_KEYWORD = b"XML:com.adobe.xmp"
# XMP mirrors of the EXIF tag, as attribute and as element; Pillow reads the same two forms.
_XMP_ORIENTATION = re.compile(rb'(tiff:Orientation(?:="|>)\s*)([0-9])')
# What Pillow raises on a damaged EXIF block (its own JPEG reader catches the same, plus OSError
# and IndexError for offsets past the end): metadata damage must never fail a picture.
_EXIF_ERRORS: tuple[type[BaseException], ...] = (
    SyntaxError, ValueError, TypeError, KeyError, IndexError, OSError, struct.error, ZeroDivisionError, OverflowError,
)
ExtraTag = tuple[int, int, int, Any, bool]  # tifffile's (code, dtype, count, value, writeonce)


def parse_metadata(value: str | Iterable[str], name: str = "metadata ") -> frozenset[str]:
    """``"all"``, ``"none"`` or a comma-separated list of ``icc``, ``exif``, ``xmp`` (as
    ``cwebp -metadata``) -> the set of kinds to keep. Case and spaces around names are ignored.
    ``name`` starts the error message (the CLI's usage error names the option itself).

    Raises:
        InputError: a name outside that list (the message names it and the allowed ones), or
            ``all``/``none`` mixed with other names.
    """
    tokens = [token.strip().lower() for token in (value.split(",") if isinstance(value, str) else value)]
    allowed = ("all", "none", *METADATA_KINDS)
    for token in tokens:
        if token not in allowed:
            raise InputError(f"{name}{token!r} is not one of {', '.join(allowed)}")
    if len(tokens) > 1 and {"all", "none"} & set(tokens):
        raise InputError(f"{name}{','.join(tokens)!r}: 'all' and 'none' stand alone")
    if tokens == ["all"]:
        return frozenset(METADATA_KINDS)
    if tokens == ["none"]:
        return frozenset()
    return frozenset(tokens)


def keep_metadata(image: ImageData, kinds: Iterable[str]) -> ImageData:
    """``image`` without the metadata kinds not in ``kinds`` (its pixels are shared, not copied)."""
    keep = frozenset(kinds)
    fields = {"icc": "icc_profile", "exif": "exif", "xmp": "xmp"}
    dropped = {field: None for kind, field in fields.items() if kind not in keep and getattr(image, field, None) is not None}
    return dataclasses.replace(image, **dropped) if dropped else image  # type: ignore[arg-type]  # field names of ImageData


# --------------------------------------------------------------------------------------------
# Orientation
# --------------------------------------------------------------------------------------------


def _orientation_entry(exif: bytes) -> tuple[int, str] | None:
    """Where IFD0's Orientation value sits in a TIFF-structured EXIF block, and its struct code."""
    if len(exif) < 8 or exif[:2] not in (b"II", b"MM"):
        return None
    endian = "<" if exif[:2] == b"II" else ">"
    (ifd,) = struct.unpack_from(endian + "I", exif, 4)
    if ifd + 2 > len(exif):
        return None
    (count,) = struct.unpack_from(endian + "H", exif, ifd)
    for index in range(count):
        entry = ifd + 2 + 12 * index
        if entry + 12 > len(exif):
            return None
        tag, kind, number = struct.unpack_from(endian + "HHI", exif, entry)
        if tag == ORIENTATION_TAG and number >= 1 and kind in (3, 4):  # SHORT (the standard) or LONG
            return entry + 8, endian + ("H" if kind == 3 else "I")
    return None


def exif_orientation(exif: bytes | None) -> int | None:
    """The Orientation tag (1..8; another value reads as 1) of an EXIF block, ``None`` if absent."""
    entry = _orientation_entry(exif) if exif else None
    if entry is None:
        return None
    (value,) = struct.unpack_from(entry[1], exif, entry[0])  # type: ignore[arg-type]  # exif is bytes here
    return value if 1 <= value <= 8 else 1


def metadata_orientation(exif: bytes | None, xmp: bytes | None) -> int:
    """The orientation a viewer applies: EXIF's tag, else XMP's ``tiff:Orientation``, else 1
    (the rule of Pillow's ``Image.getexif``)."""
    value = exif_orientation(exif)
    if value is not None:
        return value
    match = _XMP_ORIENTATION.search(xmp) if xmp else None
    return int(match[2]) if match and 1 <= int(match[2]) <= 8 else 1


def orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF ``orientation`` (1..8) to ``array`` of shape ``(..., H, W)``: the stored
    picture -> the picture to display (the transforms of Pillow's ``ImageOps.exif_transpose``).
    Returns a C-contiguous array, ``(..., W, H)`` for orientations 5..8."""
    last = (-2, -1)
    transforms = {
        1: lambda a: a,
        2: lambda a: a[..., :, ::-1],  # mirror left-right
        3: lambda a: a[..., ::-1, ::-1],  # rotate 180
        4: lambda a: a[..., ::-1, :],  # mirror top-bottom
        5: lambda a: np.swapaxes(a, -2, -1),  # transpose (main diagonal)
        6: lambda a: np.rot90(a, -1, axes=last),  # rotate 90 clockwise
        7: lambda a: np.swapaxes(a[..., ::-1, ::-1], -2, -1),  # transverse (anti-diagonal)
        8: lambda a: np.rot90(a, 1, axes=last),  # rotate 90 counter-clockwise
    }
    return np.ascontiguousarray(transforms[orientation](array))


def _upright_exif(exif: bytes) -> bytes:
    """``exif`` with its Orientation value set to 1, every other byte unchanged (offsets inside
    the block, maker notes included, stay valid: nothing moves)."""
    entry = _orientation_entry(exif)
    if entry is None:
        return exif
    patched = bytearray(exif)
    struct.pack_into(entry[1], patched, entry[0], 1)
    return bytes(patched)


def upright_blocks(exif: bytes | None, xmp: bytes | None) -> tuple[bytes | None, bytes | None]:
    """``exif`` and ``xmp`` saying orientation 1 (in place: every other byte is kept). For blocks
    that travel with pixels already upright: a reader of the output must not turn them again."""
    return (
        _upright_exif(exif) if exif else exif,
        _XMP_ORIENTATION.sub(rb"\g<1>1", xmp) if xmp else xmp,
    )


def upright(image: ImageData) -> ImageData:
    """Apply the orientation its EXIF/XMP say to ``image``'s pixels and alpha, and set the tag in
    the kept blocks to 1 (see the module docstring for why orientation is never left in a tag)."""
    orientation = metadata_orientation(image.exif, image.xmp)
    # XMP's mirror of the tag is set to 1 even when EXIF (which wins) already said 1: a reader
    # of the output that has no EXIF left, or reads XMP first, must not rotate the picture.
    exif, xmp = upright_blocks(image.exif, image.xmp)
    if orientation == 1:
        return image if (exif, xmp) == (image.exif, image.xmp) else dataclasses.replace(image, exif=exif, xmp=xmp)
    return dataclasses.replace(
        image,
        pixels=orient(image.pixels, orientation),
        alpha=None if image.alpha is None else orient(image.alpha, orientation),
        exif=exif,
        xmp=xmp,
    )


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _exif_block(raw: bytes | None) -> bytes | None:
    """EXIF as the TIFF-structured block (JPEG's ``Exif\\0\\0`` prefix removed); ``None`` if empty."""
    if not raw:
        return None
    raw = bytes(raw)
    return (raw[len(_EXIF_PREFIX):] if raw.startswith(_EXIF_PREFIX) else raw) or None


def pillow_metadata(image: Image.Image) -> tuple[bytes | None, bytes | None]:
    """``(exif, xmp)`` blocks of a JPEG, PNG or WebP opened by Pillow (after ``load()``, which
    reads PNG chunks that follow the pixels)."""
    exif = image.info.get("exif")
    raw_profile = image.info.get("Raw profile type exif")  # ImageMagick's older PNG text form
    if exif is None and isinstance(raw_profile, str):
        try:
            exif = bytes.fromhex("".join(raw_profile.split("\n")[3:]))
        except ValueError:
            exif = None
    xmp = image.info.get("xmp")
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    return _exif_block(exif), (bytes(xmp) or None) if xmp else None


# IFD0 tags of a TIFF that describe the picture rather than its storage: what a TIFF's EXIF is.
# ImageDescription (270) and Software (305) are left out: tifffile writes its own.
_TIFF_EXIF_TAGS = (271, 272, ORIENTATION_TAG, 306, 315, 33432)  # Make Model Orientation DateTime Artist Copyright
_SUB_IFDS = (0x8769, 0x8825)  # the EXIF and GPS sub-IFDs


def tiff_exif(image: Image.Image) -> bytes | None:
    """An EXIF block for a TIFF opened by Pillow: its camera tags and EXIF/GPS sub-IFDs, without
    the storage tags (strip offsets, sizes ...) that describe the source file only. ``None`` when
    there are none, or when Pillow cannot read or rewrite them (damaged tags: the caller then
    takes the orientation from the TIFF tag itself)."""
    from PIL import Image as PILImage

    try:
        source = image.getexif()
        exif = PILImage.Exif()
        for tag in _TIFF_EXIF_TAGS:
            if tag in source:
                exif[tag] = source[tag]
        for tag in _SUB_IFDS:
            values = source.get_ifd(tag)
            if values:
                exif.get_ifd(tag).update(values)
        if not len(exif) and not any(exif.get_ifd(tag) for tag in _SUB_IFDS):
            return None
        return _exif_block(exif.tobytes())
    except _EXIF_ERRORS:
        return None


def orientation_exif(orientation: int) -> bytes:
    """An EXIF block holding only ``orientation`` (for TIFFs whose other tags Pillow cannot read)."""
    from PIL import Image as PILImage

    exif = PILImage.Exif()
    exif[ORIENTATION_TAG] = orientation
    return _exif_block(exif.tobytes()) or b""


def png_metadata(data: bytes) -> tuple[bytes | None, bytes | None]:
    """``(exif, xmp)`` of a PNG file's bytes, from its ``eXIf`` chunk and its ``iTXt`` chunk with
    the keyword ``XML:com.adobe.xmp`` (for 16-bit PNGs, which Pillow does not decode; the chunks
    may follow the pixel data). The first of each counts, as in Pillow."""
    exif = xmp = None
    position = 8
    while position + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        body = data[position + 8:position + 8 + length]
        crc = data[position + 8 + length:position + 12 + length]
        position += 12 + length
        if crc != struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF):
            continue  # a damaged ancillary chunk is skipped, as libpng does
        if kind == b"eXIf" and exif is None:
            exif = _exif_block(body)
        elif kind == b"iTXt" and xmp is None and body.startswith(_XMP_KEYWORD + b"\x00"):
            rest = body[len(_XMP_KEYWORD) + 1:]
            if len(rest) < 2:
                continue
            compressed, rest = rest[0], rest[2:]
            _language, _, rest = rest.partition(b"\x00")
            _translated, _, text = rest.partition(b"\x00")
            if compressed:
                inflater = zlib.decompressobj()
                try:
                    text = inflater.decompress(text, MAX_METADATA)
                except zlib.error as error:
                    raise InputError(f"corrupt PNG image (XMP text: {error})") from None
            xmp = text or None
        elif kind == b"IEND":
            break
    return exif, xmp


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _check_fits(what: str, block: bytes, limit: int, fmt: str) -> None:
    if len(block) > limit:
        raise InputError(
            f"the {what} block ({len(block)} bytes) does not fit a {fmt} file (at most {limit} bytes); "
            "write a .png, .webp or .tif file to keep it"
        )


def pillow_save_options(fmt: str, exif: bytes | None, xmp: bytes | None) -> dict[str, Any]:
    """Pillow ``save()`` options that write ``exif``/``xmp`` into a JPEG or WebP file.

    Raises:
        InputError: a block larger than a JPEG APP1 segment holds (64 KiB).
    """
    options: dict[str, Any] = {}
    if fmt == "JPEG":
        # one APP1 segment each: 65533 data bytes, less the 6-byte Exif / 29-byte XMP namespace
        if exif:
            _check_fits("EXIF", exif, 65533 - len(_EXIF_PREFIX), fmt)
            options["exif"] = _EXIF_PREFIX + exif
        if xmp:
            _check_fits("XMP", xmp, 65533 - 29, fmt)
            options["xmp"] = xmp
    elif fmt == "WEBP":
        if exif:
            options["exif"] = exif  # WebP's EXIF chunk holds the TIFF-structured block, no prefix
        if xmp:
            options["xmp"] = xmp
    return options


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_metadata_chunks(exif: bytes | None, xmp: bytes | None) -> bytes:
    """PNG ``eXIf`` and ``iTXt`` (``XML:com.adobe.xmp``, uncompressed, as Adobe's XMP
    specification asks so that tools can find the packet) chunks for ``exif`` and ``xmp``."""
    chunks = b""
    if exif:
        chunks += _png_chunk(b"eXIf", exif)
    if xmp:
        # keyword NUL, compression flag 0, method 0, empty language tag NUL, empty translation NUL
        chunks += _png_chunk(b"iTXt", _XMP_KEYWORD + b"\x00\x00\x00\x00\x00" + xmp)
    return chunks


def splice_png(png: bytes, chunks: bytes) -> bytes:
    """Insert ready-made ``chunks`` right after a PNG's IHDR (before any PLTE or IDAT, where
    iCCP and eXIf must be)."""
    if not chunks:
        return png
    if png[12:16] != b"IHDR":  # pragma: no cover - PNG writers always write IHDR first
        raise RuntimeError("unexpected PNG layout")
    return png[:33] + chunks + png[33:]  # 8 signature bytes + 25 IHDR bytes


def _tiff_exif_parts(exif: bytes) -> tuple[list[ExtraTag], dict[int, Any]]:
    """``exif``'s IFD0 camera tags as tifffile extratags, and its EXIF/GPS sub-IFDs as Pillow
    ``ImageFileDirectory_v2`` objects, each serialised once here so that damage shows now.

    Raises:
        InputError: a block Pillow cannot parse or rewrite (PNG, JPEG and WebP keep it as bytes).
    """
    from PIL import Image as PILImage
    from PIL import TiffImagePlugin

    tags: list[ExtraTag] = []
    ifds: dict[int, Any] = {}
    try:
        parsed = PILImage.Exif()
        parsed.load(exif)
        for tag in (271, 272, 306, 315, 33432):  # ASCII tags of _TIFF_EXIF_TAGS
            value = parsed.get(tag)
            if isinstance(value, str) and value:
                # EXIF strings are 7-bit ASCII by the standard; cameras write UTF-8 too: keep it
                tags.append((tag, 2, 0, value.encode("utf-8", "surrogateescape"), True))
        orientation = exif_orientation(exif)
        if orientation is not None:  # 1 after upright(); written so that an XMP mirror cannot win
            tags.append((ORIENTATION_TAG, 3, 1, orientation, True))
        for tag in _SUB_IFDS:
            values = parsed.get_ifd(tag)
            if values:
                ifd = TiffImagePlugin.ImageFileDirectory_v2(group=tag)
                for key, value in values.items():
                    ifd[key] = value
                ifd.tobytes(8)
                ifds[tag] = ifd
    except _EXIF_ERRORS as error:
        raise InputError(
            f"the EXIF block is damaged ({str(error).splitlines()[0] if str(error) else type(error).__name__}) "
            "and cannot be written into a TIFF file; write a .png, .jpg or .webp file, which keep it byte for byte"
        ) from None
    return tags, ifds


def tiff_extratags(exif: bytes | None, xmp: bytes | None) -> list[ExtraTag]:
    """``tifffile.imwrite(extratags=...)`` for ``exif``'s camera tags and ``xmp`` (tag 700), plus
    placeholders for the EXIF/GPS sub-IFD pointers that :func:`tiff_link_exif` fills in.

    tifffile refuses to write IFD-pointer tags, so each placeholder is a LONG 0 under the code
    just below the pointer's (34664, 34852): no tag tifffile writes lies between the two, so the
    entries stay sorted, as TIFF requires, when the code is raised to 34665/34853 afterwards."""
    tags: list[ExtraTag] = []
    if exif:
        tags, ifds = _tiff_exif_parts(exif)
        tags += [(tag - 1, 4, 1, 0, True) for tag in ifds]
    if xmp:
        tags.append((700, 1, len(xmp), xmp, True))
    return tags


def tiff_link_exif(tiff: bytes, exif: bytes) -> bytes:
    """Append ``exif``'s EXIF and GPS sub-IFDs to a little-endian classic TIFF written with
    :func:`tiff_extratags`, and point its placeholder tags at them."""
    import tifffile

    _, ifds = _tiff_exif_parts(exif)
    out = bytearray(tiff)
    with tifffile.TiffFile(io.BytesIO(tiff)) as handle:
        page = handle.pages.first
        if handle.byteorder != "<" or handle.is_bigtiff:  # pragma: no cover - tifffile's default for < 4 GiB
            raise RuntimeError("unexpected TIFF layout")
        for tag, ifd in ifds.items():
            placeholder = page.tags.get(tag - 1)
            if placeholder is None:  # pragma: no cover - tiff_extratags wrote one per sub-IFD
                continue
            out += bytes(len(out) % 2)  # IFDs start on a word boundary
            struct.pack_into("<H", out, placeholder.offset, tag)  # the entry's code: 3466x -> pointer
            struct.pack_into("<I", out, placeholder.valueoffset, len(out))
            out += ifd.tobytes(len(out))
    return bytes(out)
