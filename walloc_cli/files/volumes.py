"""Volume reading and writing: multi-page / OME-TIFF, ``.npy`` and NIfTI in, the same formats out.

The codec sees a volume as :class:`VolumeData`: one 3-D array in *coding order* ``(A0, A1, A2)``
= slices or bands first, then rows, then columns (``coding_axes`` ``"ZYX"`` or ``"CYX"``), with
the dtype exactly as stored in the file, plus ``meta``: a small JSON-serialisable dict holding
what is needed to write the same kind of file back (it travels in the ``.wlc`` header).

=============  =========================  ==========================  ==========================
format         recognised by (content)    axes of the stored array    memory
=============  =========================  ==========================  ==========================
``tiff``       TIFF magic, and a volume:  from the file (OME, ImageJ, memory-mapped when the data
               >1 page (3-D series), or   tifffile's JSON ``axes``,   are stored uncompressed
               1 page of >colour+1        samples ``S`` = bands);     and contiguous
               samples, or 1 gray page    pages it does not name
               of a type images can't     are slices
               code (signed, 32-bit int,
               float64)
``ome-tiff``   as ``tiff``, OME-XML       OME ``DimensionOrder``      as ``tiff``
``npy``        ``\\x93NUMPY`` magic,      the rule below              memory-mapped
               2-D or 3-D array
``nifti``      ``n+1`` at byte 344 /      ``XYZ`` (NIfTI's i, j, k)   ``.nii`` memory-mapped;
               ``n+2`` at byte 4, also                                ``.nii.gz`` decompressed
               inside gzip                                            once
=============  =========================  ==========================  ==========================

Axes letters: ``Z`` slices (also TIFF ``T``), ``C`` bands (TIFF ``S``/``C``/``E``), ``Y`` rows,
``X`` columns. :attr:`VolumeData.axes` is always 3 letters, a permutation of
:attr:`VolumeData.coding_axes`, describing the stored array once extra singleton axes are
dropped (a 2-D array is one slice; a 4-D array with a singleton axis, e.g. NIfTI ``(x, y, z, 1)``
or an ``(1, Z, Y, X)`` ``.npy``, is 3-D); ``meta["shape"]`` keeps the stored shape for writing.

Bands or slices come from what the file says: ImageJ ``channels``, OME ``SizeC`` and tifffile's
JSON ``axes`` name them, and the samples of one page (planar or interleaved, photometric
MINISBLACK or RGB with extra samples, as GDAL and WorldView-2 files store bands) are bands.
TIFF pages the file does not name (a plain multi-page TIFF) are slices, however few: a gray
page stack is a scan far more often than a cube. A ``.npy`` says nothing, so there: the SMALLEST
axis whose size is at most 64 (:data:`BAND_AXIS_MAX`) and that is the first or the last axis is
the band axis, giving ``CYX`` (bands first) or ``YXC`` (bands last, transposed to ``CYX`` for
coding and back on writing); otherwise ``ZYX``. ``axes="..."`` (the CLI's ``--axes``) overrides
both the file and the rule. Which files are volumes at all is decided for every command by
:func:`walloc_cli.files.sniff.detect` (through :func:`sniff_volume`).

dtypes: uint8, int8, uint16, int16 (CT Hounsfield units), uint32, int32, float32, float64
(:data:`DTYPES`); anything else (bool, complex, 64-bit integers, float16, structured) is refused,
naming the dtype. Float data with NaN or Inf, more than 2**31 voxels (:data:`MAX_VOXELS`) or an
axis longer than 65535 (:data:`MAX_AXIS`) are refused before decoding. Every problem is one
:class:`~walloc_cli.errors.InputError` line; :func:`sniff_volume` never raises.

``meta`` keys (all optional except ``shape``): ``shape`` (stored shape), ``spacing`` (voxel size
in coding order, ``None`` for a band axis or an unknown one) and ``unit`` (``"mm"``, ``"um"``,
``"m"`` or ``""``); TIFF: ``tiff_layout`` (``pages``: one page per slice/band, ``planar``: one
page of band-separate samples, ``contig``: one page of interleaved samples), ``photometric``,
``compression``, ``predictor``, ``resolution`` + ``resolution_unit``, ``description`` (an
ImageDescription not written by tifffile/ImageJ/OME), ``tiff_json`` (``False`` when the source
had no tifffile JSON description), ``extrasamples``, ``imagej``, ``ome_xml`` (< 64 KB, kept for
reference), ``extratags`` (the first page's descriptive tags, GeoTIFF georeferencing and GDAL
tags, as ``[code, type, count, value]``, see ``_CARRIED_TAGS``); NIfTI: ``nifti_header`` (the
whole header, base64), ``nifti_version``, ``affine``, ``zooms``, ``descrip``, ``qform_code``,
``sform_code``, ``scl_slope``, ``scl_inter``.

Writing (:func:`write_volume`): the format follows the output extension (``.tif``/``.tiff``,
``.ome.tif``/``.ome.tiff``, ``.npy``, ``.nii``, ``.nii.gz``); the stored axis order, shape and
dtype come back, and so does the metadata the target format holds:

- same format: TIFF layout, photometric and extra samples, compression, resolution, Z spacing,
  the first page's ImageDescription (one, as in the source: tifffile's JSON is added only when
  the source had it, or when without it the axes would read back otherwise), Software,
  DateTime, Copyright, Artist, HostComputer, DocumentName, PageName, Make, Model, Orientation,
  (S)Min/MaxSampleValue, GeoTIFF and GDAL tags; X/YResolution (1, 1) are written when the
  source had none (tifffile always writes them) and SampleFormat only when not unsigned (the
  TIFF default). NIfTI's whole header (affine, qform/sform and codes, units, scaling, intent,
  description, the unused ``dim``/``pixdim`` entries), bit for bit except ``vox_offset`` (352:
  no extensions). Not kept: NIfTI header extensions, TIFF tags other than those listed and tags
  of pages after the first, OME-XML beyond axes and physical sizes (it is regenerated), ``.npy``
  Fortran order (written in C order: same array).
- across formats only the voxel spacing maps: NIfTI gets a diagonal affine (sform code 2, no
  rotation, no origin) and its unit; TIFF gets spacing in tifffile's JSON metadata (OME: physical
  sizes) and X/Y resolution in pixels per cm; ``.npy`` keeps none (it is in the ``.wlc`` header
  only). A band (``C``) axis written to NIfTI becomes its third axis.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import io
import json
import logging
import math
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import IO, Any
from xml.etree import ElementTree

import numpy as np
import tifffile

from walloc_cli.errors import InputError
from walloc_cli.format.header import DTYPES, MAX_AXIS, MAX_VOXELS
from walloc_cli.files.safe_io import atomic_output, read_prefix

__all__ = [
    "BAND_AXIS_MAX",
    "DTYPES",
    "MAX_AXIS",
    "MAX_VOXELS",
    "NIBABEL_MISSING",
    "VOLUME_SUFFIXES",
    "VolumeData",
    "default_volume_suffix",
    "guess_kind",
    "read_volume",
    "sniff_volume",
    "volume_format_for",
    "volume_from_array",
    "write_volume",
]

#: dtypes read and written (by name); others are refused with an InputError naming them.
#: An axis the file does not name is a band axis only when it is this short (see module doc).
BAND_AXIS_MAX = 64
#: Extensions of the files :func:`write_volume` writes (``.ome.tif`` ends in ``.tif``).
VOLUME_SUFFIXES = (".tif", ".tiff", ".npy", ".nii", ".nii.gz")
NIBABEL_MISSING = "reading NIfTI needs nibabel: pip install 'walloc[volume]'"
_NIBABEL_MISSING_WRITE = "writing NIfTI needs nibabel: pip install 'walloc[volume]'"
#: Metadata text larger than this is not carried (the .wlc header should stay small).
_MAX_TEXT = 64 * 1024
# TIFF tags of the first page carried through as they are: descriptive ones (DocumentName,
# Make, Model, Orientation, Min/MaxSampleValue, PageName, Artist, HostComputer, SMin/SMaxSampleValue,
# Software, DateTime, Copyright), GeoTIFF georeferencing and GDAL's band metadata/nodata.
# ImageDescription (270), PhotometricInterpretation (262) and ExtraSamples (338) are kept too,
# through tifffile's own arguments (``meta`` keys ``description``, ``photometric``,
# ``extrasamples``); the tags that describe the data layout are tifffile's.
_CARRIED_TAGS = (
    269, 271, 272, 274, 280, 281, 285, 305, 306, 315, 316, 340, 341, 33432,
    33550, 33922, 34264, 34735, 34736, 34737, 42112, 42113,
)
# Of those, the tags with one value per sample: dropped when the samples per pixel change.
_PER_SAMPLE_TAGS = (280, 281, 340, 341)
# TIFF compressions tifffile writes losslessly; a source in any other (JPEG, WebP ...) is
# written with deflate.
_WRITABLE_COMPRESSIONS = ("NONE", "LZW", "ADOBE_DEFLATE", "DEFLATE", "ZSTD", "LZMA", "PACKBITS")
_NIFTI_UNITS = {"mm": "mm", "micron": "um", "meter": "m", "unknown": ""}
_OME_UNITS = {"µm": "um", "um": "um", "mm": "mm", "m": "m", "nm": "nm", "cm": "cm"}
_IMAGEJ_UNITS = {"micron": "um", "\\u00B5m": "um", "µm": "um", **_OME_UNITS}
_TO_MM = {"mm": 1.0, "um": 1e-3, "nm": 1e-6, "cm": 10.0, "m": 1000.0}
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_NPY_MAGIC = b"\x93NUMPY"
_GZIP_MAGIC = b"\x1f\x8b"


# --------------------------------------------------------------------------------------------
# The volume
# --------------------------------------------------------------------------------------------


@dataclass
class VolumeData:
    """A volume in coding order and what is needed to write it back.

    Attributes:
        array: 3-D ``(A0, A1, A2)`` = (slices or bands, rows, columns), dtype as in the file
            (possibly a read-only memory map).
        axes: the stored array's axes (3 letters, e.g. ``"ZYX"``, ``"CYX"``, ``"YXC"``,
            ``"XYZ"``), a permutation of ``coding_axes``.
        coding_axes: ``"ZYX"`` or ``"CYX"``: the axes of ``array``.
        format: ``"tiff"``, ``"ome-tiff"``, ``"npy"`` or ``"nifti"``.
        meta: JSON-serialisable metadata (see the module docstring for its keys).
        kind: ``"ct"``, ``"mri"``, ``"multispectral"`` or ``"volume"``; when not given, set by
            :func:`guess_kind` (a decoder passes the kind its header recorded instead).
    """

    array: np.ndarray
    axes: str
    coding_axes: str
    format: str
    meta: dict[str, Any] = field(default_factory=dict)
    kind: str = ""

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(A0, A1, A2)`` of :attr:`array`."""
        a0, a1, a2 = self.array.shape
        return int(a0), int(a1), int(a2)

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.array.dtype

    @property
    def spacing(self) -> tuple[float | None, float | None, float | None] | None:
        """Voxel size in coding order (``None`` for an axis without one), or ``None``."""
        spacing = self.meta.get("spacing")
        if not spacing:
            return None
        s0, s1, s2 = (None if s is None else float(s) for s in spacing)
        return s0, s1, s2

    def __post_init__(self) -> None:
        if not self.kind:
            self.kind = guess_kind(self.array, self.coding_axes, self.format, self.meta)


def guess_kind(array: np.ndarray, coding_axes: str, fmt: str, meta: dict[str, Any]) -> str:
    """Best guess of what a volume is, to pick a default model; the first rule that matches:

    1. ``"ct"``: signed integers with negative values (Hounsfield units: air is -1000), or
       NIfTI whose scaling has a negative intercept (CT stored unsigned with an offset);
    2. ``"mri"``: any other NIfTI;
    3. ``"multispectral"``: a band axis (``coding_axes == "CYX"``);
    4. ``"volume"``: anything else.
    """
    if array.dtype.kind == "i" and array.size and _minimum(array) < 0:
        return "ct"
    if fmt == "nifti":
        inter = meta.get("scl_inter")
        slope = meta.get("scl_slope")
        if inter is not None and slope not in (None, 0.0) and inter < 0:
            return "ct"
        return "mri"
    if coding_axes == "CYX":
        return "multispectral"
    return "volume"


def _minimum(array: np.ndarray) -> float:
    """Minimum of a possibly memory-mapped array, a slab at a time (no full-size temporary)."""
    return float(min(np.min(array[i : i + 16]) for i in range(0, array.shape[0], 16)))


def volume_from_array(array: np.ndarray, axes: str = "ZYX") -> VolumeData:
    """Wrap an array (2-D: one slice; 3-D with ``axes`` naming its axes) as a ``.npy`` volume.

    ``array`` is ``(Y, X)`` or 3-D in ``axes`` order (e.g. ``"ZYX"``, ``"CYX"``, ``"YXC"``); the
    result is in coding order. Raises :class:`InputError` for bad axes, dtypes, sizes or NaN.
    """
    array = np.asarray(array)
    _check_dtype(array.dtype)
    shape = [int(n) for n in array.shape]
    if array.ndim == 2:
        array = array[None]
    elif array.ndim != 3:
        raise InputError(f"a volume is a 2-D or 3-D array, got shape {tuple(shape)}")
    _check_size(tuple(shape))
    volume = _arrange(array, _parse_axes(axes), "npy", {"shape": shape})
    _check_finite(volume.array)
    return volume


def _arrange(stored3d: np.ndarray, axes: str, fmt: str, meta: dict[str, Any]) -> VolumeData:
    """Transpose a stored 3-D array (``axes`` order) into coding order (a view, no copy)."""
    coding_axes = ("C" if "C" in axes else "Z") + "YX"
    order = [axes.index(letter) for letter in coding_axes]
    return VolumeData(np.transpose(stored3d, order), axes, coding_axes, fmt, meta)


def _stored(volume: VolumeData, axes: str | None = None) -> np.ndarray:
    """The coding array back in the stored axis order (``axes``, default ``volume.axes``)."""
    axes = axes or volume.axes
    order = [volume.coding_axes.index(letter) for letter in axes]
    return np.transpose(volume.array, order)


# --------------------------------------------------------------------------------------------
# Checks shared by every format
# --------------------------------------------------------------------------------------------


def _parse_axes(axes: str) -> str:
    """Validate an axes string: 3 distinct letters, ``Y``, ``X`` and one of ``Z``/``C``."""
    letters = axes.strip().upper()
    if (
        len(letters) != 3
        or len(set(letters)) != 3
        or not set(letters) <= set("ZCYX")
        or not {"Y", "X"} <= set(letters)
    ):
        raise InputError(
            f"bad axes {axes!r}: give 3 letters, Y, X and Z (slices) or C (bands), e.g. ZYX, CYX, YXC"
        )
    return letters


def _check_dtype(dtype: np.dtype[Any]) -> None:
    if dtype.fields is not None or dtype.name not in DTYPES:
        raise InputError(
            f"unsupported sample type {dtype.name if dtype.fields is None else 'structured'} "
            f"(volumes may be {', '.join(DTYPES)})"
        )


def _check_size(shape: tuple[int, ...]) -> None:
    """Refuse empty and absurd sizes from the header, before any data is read."""
    if any(n <= 0 for n in shape):
        raise InputError(f"empty volume (shape {shape})")
    if any(n > MAX_AXIS for n in shape):
        raise InputError(f"volume axis too long (shape {shape}; at most {MAX_AXIS} per axis)")
    if math.prod(shape) > MAX_VOXELS:
        raise InputError(f"volume too large (shape {shape}, {math.prod(shape)} voxels; at most 2**31)")


def _check_finite(array: np.ndarray) -> None:
    """Float data must be finite; checked a slab at a time so a memory map is not copied whole."""
    if array.dtype.kind != "f":
        return
    for start in range(0, array.shape[0], 16):
        if not np.isfinite(array[start : start + 16]).all():
            raise InputError("float volume contains NaN or infinite values")


def _reduce_to_3d(shape: tuple[int, ...], letters: str) -> tuple[tuple[int, ...], str]:
    """Drop singleton axes beyond 3 (never ``Y``/``X``); pad a 2-D shape with one slice.

    ``letters`` names the axes (``?`` where unknown). Raises :class:`InputError` when more than
    3 axes of length > 1 remain.
    """
    dims = list(zip(shape, letters))
    while len(dims) > 3:
        drop = next((i for i, (n, a) in enumerate(dims) if n == 1 and a not in "YX"), None)
        if drop is None:
            raise InputError(
                f"{len(shape)}-D data (shape {tuple(shape)}, axes {letters}) is not a volume: "
                "walloc codes 3-D volumes (slices or bands, rows, columns)"
            )
        del dims[drop]
    if len(dims) == 2:
        dims.insert(0, (1, "Z"))
    if len(dims) != 3:
        raise InputError(f"{len(shape)}-D data (shape {tuple(shape)}) is not a volume")
    return tuple(n for n, _ in dims), "".join(a for _, a in dims)


def _guess_axes(shape: tuple[int, ...], letters: str) -> str:
    """Fill the ``?`` of a 3-letter axes string by the module's rule (band axis or slices).

    All unknown (``.npy``): the smallest of the first/last axes that is at most
    :data:`BAND_AXIS_MAX` long is the band axis, else ``ZYX``. One unknown beside known ``Y`` and
    ``X`` (TIFF pages the file does not name): slices. A stack of gray pages is a scan far more
    often than a cube (a cube's bands are samples of one page, or named by ImageJ/OME); the old
    rule "at most 64 pages are bands" coded a 62-slice MRI with the multispectral model at
    27.8 dB / 0.60 bits per voxel, where the CT/MRI model gives 32.9 dB at 0.65, and 62 axial
    slices of the held-out MNI152 T1 at q 75 at 23.8 dB / 0.336, where it gives 37.6 dB / 0.308
    (``bench/slices_tiff.py``).
    """
    if "?" not in letters:
        return letters
    if letters == "???":
        candidates = [i for i in (0, 2) if shape[i] <= BAND_AXIS_MAX]
        if not candidates:
            return "ZYX"
        band = min(candidates, key=lambda i: (shape[i], i))
        return "CYX" if band == 0 else "YXC"
    unknown = [i for i, letter in enumerate(letters) if letter == "?"]
    fill = [a for a in "YX" if a not in letters]
    if "Z" not in letters and "C" not in letters:
        fill.insert(0, "Z")
    filled = list(letters)
    for position, letter in zip(unknown, fill):
        filled[position] = letter
    return "".join(filled)


def _finish(stored: np.ndarray, letters: str, axes: str | None, fmt: str, meta: dict[str, Any]) -> VolumeData:
    """Apply an ``axes`` override, check floats, and arrange in coding order."""
    if axes is not None:
        letters = _parse_axes(axes)
    else:
        letters = _guess_axes(stored.shape, letters)
    volume = _arrange(stored, letters, fmt, meta)
    _check_finite(volume.array)
    return volume


# --------------------------------------------------------------------------------------------
# Sniffing
# --------------------------------------------------------------------------------------------


def _container(path: Path) -> str | None:
    """``"npy"``, ``"nifti"``, ``"tiff"`` or ``None`` from the magic bytes (raises on I/O errors)."""
    prefix = read_prefix(path, 1024, "a volume file")
    if prefix.startswith(_NPY_MAGIC):
        return "npy"
    if prefix[:4] in _TIFF_MAGIC:
        return "tiff"
    if _is_nifti_header(prefix):
        return "nifti"
    if prefix.startswith(_GZIP_MAGIC):
        try:
            with gzip.open(path, "rb") as handle:
                inner = handle.read(544)
        except (OSError, EOFError, ValueError, zlib.error):
            return None
        if _is_nifti_header(inner):
            return "nifti"
    return None


def _is_nifti_header(head: bytes) -> bool:
    """NIfTI-1 single file (``n+1\\0`` at 344, header size 348) or NIfTI-2 (``n+2\\0`` at 4)."""
    if len(head) >= 348 and head[344:348] == b"n+1\x00":
        return struct.unpack("<i", head[:4])[0] == 348 or struct.unpack(">i", head[:4])[0] == 348
    if len(head) >= 540 and head[4:8] == b"n+2\x00":
        return struct.unpack("<i", head[:4])[0] == 540 or struct.unpack(">i", head[:4])[0] == 540
    return False


def sniff_volume(path: Path) -> str | None:
    """``"tiff"``, ``"ome-tiff"``, ``"npy"`` or ``"nifti"`` when ``path`` holds a volume, else ``None``.

    By content, not extension. A ``.npy`` is a volume when it is 2-D (one slice) or 3-D (or more
    with singleton axes to drop); NIfTI always is. A gray or RGB TIFF is one when its first
    series has several pages (even a 4-D one, which :func:`read_volume` then refuses naming its
    shape), or is 3-D on one page, or has more samples than its colour model plus one alpha
    (e.g. 8 bands), or is a gray page of a sample type the image path cannot code (signed or
    32-bit integers, float64). A 1-page gray/RGB/RGBA TIFF of uint8/uint16/float32 is an image
    (``None``). Never raises: unreadable, empty, truncated or foreign files give ``None``.
    """
    try:
        kind = _container(Path(path))
        if kind == "npy":
            shape, _, _ = _npy_header(Path(path))
            if len(shape) < 2:
                return None
            _reduce_to_3d(shape, "?" * len(shape))  # raises for 4-D+ data without singleton axes
            return "npy"
        if kind == "nifti":
            return "nifti"
        if kind == "tiff":
            return _sniff_tiff(Path(path))
    except Exception:  # noqa: BLE001 - sniffing must never raise, whatever the bytes are
        return None
    return None


@contextlib.contextmanager
def _quiet_tifffile() -> Iterator[None]:
    """Silence tifffile's log warnings (e.g. GDAL's ``nan`` nodata tag in the dgsamples scenes):
    they are not the user's problem, and real problems raise."""
    logger = logging.getLogger("tifffile")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _sniff_tiff(path: Path) -> str | None:
    with _quiet_tifffile(), tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        page = tif.pages.first
        fmt = "ome-tiff" if tif.is_ome else "tiff"
        photometric = int(page.photometric)
        plain = photometric in (
            tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.MINISWHITE, tifffile.PHOTOMETRIC.RGB
        )
        if not plain:
            return None  # palette, CMYK, YCbCr, 1-bit ...: images
        if len(series.pages) > 1:
            return fmt  # a page series: a volume (read_volume refuses a 4-D one, naming its shape)
        shape, _ = _reduce_to_3d(tuple(series.shape), _series_letters(tif, series))
        if int(page.samplesperpixel) == 1 and shape[0] > 1:
            return fmt  # several gray pages
        colour = 3 if photometric == tifffile.PHOTOMETRIC.RGB else 1
        if int(page.samplesperpixel) > colour + 1:
            return fmt  # more bands than colour + alpha: a multi-band cube
        if series.dtype.name in ("uint8", "uint16", "float32", "bool"):
            return None  # what the image path codes
        return fmt if int(page.samplesperpixel) == 1 else None


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def read_volume(path: Path, axes: str | None = None) -> VolumeData:
    """Read a TIFF/OME-TIFF, ``.npy`` or NIfTI volume (format by content) in coding order.

    ``axes`` (e.g. ``"ZYX"``, ``"CYX"``, ``"YXC"``) names the stored axes, overriding the file's
    metadata and the module's rule. Raises :class:`InputError` (one line) for anything that is
    not a readable volume of a supported dtype and size, or float data with NaN/Inf.
    """
    path = Path(path)
    kind = _container(path)
    if kind == "npy":
        return _read_npy(path, axes)
    if kind == "nifti":
        return _read_nifti(path, axes)
    if kind == "tiff":
        return _read_tiff(path, axes)
    raise InputError("not a volume file (TIFF, OME-TIFF, .npy or NIfTI, by its content)")


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype[Any], int]:
    """Shape, dtype and the bytes of data present in a ``.npy`` (header checked, not data)."""
    import numpy.lib.format as npy_format

    with open(path, "rb") as handle:
        try:
            version = npy_format.read_magic(handle)
            if version == (1, 0):
                shape, fortran, dtype = npy_format.read_array_header_1_0(handle)
            else:
                shape, fortran, dtype = npy_format.read_array_header_2_0(handle)
        except (ValueError, EOFError, SyntaxError, TypeError) as exc:
            raise InputError(f"corrupt .npy header ({exc})") from exc
        offset = handle.tell()
        size = handle.seek(0, 2)
    del fortran  # np.load maps either order; the array's values are what count
    return tuple(int(n) for n in shape), dtype, size - offset


def _read_npy(path: Path, axes: str | None) -> VolumeData:
    shape, dtype, present = _npy_header(path)
    _check_dtype(dtype)
    if len(shape) < 2:
        raise InputError(f"a {len(shape)}-D array is not a volume (shape {shape})")
    reduced, letters = _reduce_to_3d(shape, "?" * len(shape))
    _check_size(reduced)
    needed = math.prod(shape) * dtype.itemsize
    if present < needed:
        raise InputError(f"truncated .npy: its header promises {needed} bytes of data, the file holds {present}")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"cannot read .npy ({exc})") from exc
    return _finish(array.reshape(reduced), letters, axes, "npy", {"shape": list(shape)})


# ---- TIFF ----------------------------------------------------------------------------------


def _tiff_letters(tifffile_axes: str) -> str:
    """tifffile's axes letters to ours: ``S``/``C``/``E`` bands, ``Z``/``T`` slices, else ``?``."""
    table = {"S": "C", "C": "C", "E": "C", "Z": "Z", "T": "Z", "Y": "Y", "X": "X"}
    return "".join(table.get(letter, "?") for letter in tifffile_axes)


def _series_letters(tif: tifffile.TiffFile, series: Any) -> str:
    """Our letters for the axes of ``series`` (the first of ``tif``), from what the file says.

    ImageJ, OME and tifffile's JSON with an ``axes`` key name them; samples per pixel are bands
    (``S``). A tifffile JSON description that gives a ``shape`` but no ``axes`` leaves tifffile
    to guess, by matching sizes, which of the shape's axes are the page's rows and columns, and
    a singleton axis fools it: ``(2, 1, 1)`` written by ``tifffile.imwrite`` (one 2 x 1 page) reads
    as ``YQX``, which coded it as 1 x 2 x 1. There the page's own axes are the trailing ones when
    the shape ends with the page's shape, and otherwise the shape is ``(..., Y, X)``, as
    ``imwrite`` takes an array; the leading axes are unknown (``?``: pages, hence slices).
    """
    page = series.keyframe
    shaped = tif.shaped_metadata if series.kind == "shaped" else None
    if not shaped or "axes" in shaped[0]:
        return _tiff_letters(series.axes)
    shape = tuple(int(n) for n in series.shape)
    page_shape = tuple(int(n) for n in page.shape)
    if len(shape) >= len(page_shape) and shape[len(shape) - len(page_shape) :] == page_shape:
        return "?" * (len(shape) - len(page_shape)) + _tiff_letters(page.axes)
    return "?" * (len(shape) - 2) + "YX" if len(shape) >= 2 else _tiff_letters(series.axes)


def _read_tiff(path: Path, axes: str | None) -> VolumeData:
    try:
        with _quiet_tifffile(), tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            page = tif.pages.first
            stored_shape = tuple(int(n) for n in series.shape)
            letters = _series_letters(tif, series)
            dtype = series.dtype
            meta = _tiff_meta(tif, series, page)
            memmappable = series.dataoffset is not None
            reduced, letters = _reduce_to_3d(stored_shape, letters)
            _check_dtype(dtype)
            _check_size(reduced)
            if int(page.photometric) == tifffile.PHOTOMETRIC.PALETTE:
                raise InputError("palette TIFF is an image, not a volume")
            data = None if memmappable else series.asarray()
    except InputError:
        raise
    except Exception as exc:  # tifffile raises many types for corrupt files
        raise InputError(f"corrupt or unsupported TIFF ({exc})") from exc
    if data is None:
        try:
            with _quiet_tifffile():
                data = tifffile.memmap(path, series=0, mode="r")
        except Exception as exc:
            raise InputError(f"corrupt or truncated TIFF ({exc})") from exc
    fmt = "ome-tiff" if meta.pop("_ome") else "tiff"
    spacing = meta.pop("_spacing_by_letter")
    unit = meta.pop("_unit")
    volume = _finish(np.asarray(data).reshape(reduced), letters, axes, fmt, meta)
    if spacing:
        meta["spacing"] = [None if letter == "C" else spacing.get(letter) for letter in volume.coding_axes]
        meta["unit"] = unit
    return volume


def _tiff_meta(tif: tifffile.TiffFile, series: Any, page: Any) -> dict[str, Any]:
    """What :func:`write_volume` needs to write the same TIFF back (JSON-serialisable)."""
    meta: dict[str, Any] = {"shape": [int(n) for n in series.shape], "_ome": bool(tif.is_ome)}
    samples = int(page.samplesperpixel)
    if samples > 1 and len(series.pages) == 1:
        meta["tiff_layout"] = "planar" if int(page.planarconfig) == 2 else "contig"
    else:
        meta["tiff_layout"] = "pages"
    meta["photometric"] = tifffile.PHOTOMETRIC(int(page.photometric)).name.lower()
    compression = tifffile.COMPRESSION(int(page.compression)).name
    if compression in _WRITABLE_COMPRESSIONS:
        meta["compression"] = compression
        if int(page.predictor) in (2, 3):
            meta["predictor"] = int(page.predictor)
    spacing: dict[str, float] = {}
    unit = ""
    res_unit = int(page.resolutionunit)
    xres, yres = page.get_resolution()
    tags = page.tags
    if 282 in tags and 283 in tags:
        meta["resolution"] = [float(xres), float(yres)]
        meta["resolution_unit"] = res_unit
        if res_unit in (2, 3) and xres > 0 and yres > 0:  # inch, cm -> mm
            per_mm = 25.4 if res_unit == 2 else 10.0
            spacing = {"X": per_mm / float(xres), "Y": per_mm / float(yres)}
            unit = "mm"
    if tif.is_ome and tif.ome_metadata:
        ome_spacing, ome_unit = _ome_spacing(tif.ome_metadata)
        if ome_spacing:
            spacing, unit = ome_spacing, ome_unit
        if len(tif.ome_metadata) < _MAX_TEXT:
            meta["ome_xml"] = tif.ome_metadata
    elif tif.is_imagej and tif.imagej_metadata:
        meta["imagej"] = True
        ij = tif.imagej_metadata
        ij_unit = _IMAGEJ_UNITS.get(str(ij.get("unit", "")), "")
        if xres > 0 and yres > 0 and 282 in tags:
            spacing = {"X": 1.0 / float(xres), "Y": 1.0 / float(yres)}
        if "spacing" in ij:
            spacing["Z"] = float(ij["spacing"])
        unit = ij_unit
    elif tif.is_shaped and tif.shaped_metadata:
        shaped = tif.shaped_metadata[0]
        if isinstance(shaped.get("spacing"), list) and "axes" in shaped:
            spacing = {
                _tiff_letters(a): float(s) for a, s in zip(shaped["axes"], shaped["spacing"]) if s is not None
            }
            unit = str(shaped.get("unit", ""))
    description = page.description
    if description and not (tif.is_ome or tif.is_imagej or _is_shaped_json(description)) and len(description) < _MAX_TEXT:
        meta["description"] = description
    if not (tif.is_shaped or tif.is_ome or tif.is_imagej):
        meta["tiff_json"] = False  # written back without tifffile's JSON description (see _write_tiff)
    if 338 in tags and samples > 1:
        meta["extrasamples"] = [int(v) for v in np.atleast_1d(tags[338].value).tolist()]
    extratags = []
    for code in _CARRIED_TAGS:
        tag = tags.get(code)
        if tag is None:
            continue
        value = tag.value
        if isinstance(value, bytes):
            continue
        if isinstance(value, (tuple, list, np.ndarray)):
            value = [v.item() if isinstance(v, np.generic) else v for v in np.asarray(value).ravel().tolist()]
        elif isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, str) and (len(value) > _MAX_TEXT or not value.isascii()):
            continue  # TIFF ASCII is 7-bit; tifffile refuses to write anything else
        extratags.append([int(code), int(tag.dtype), int(tag.count), value])
    if extratags:
        meta["extratags"] = extratags
    meta["_spacing_by_letter"] = spacing
    meta["_unit"] = unit
    return meta


def _is_shaped_json(text: str) -> bool:
    """Whether an ImageDescription is tifffile's own JSON (``{"shape": ...}``), rewritten on output."""
    try:
        return isinstance(parsed := json.loads(text), dict) and "shape" in parsed
    except ValueError:
        return False


def _ome_spacing(xml: str) -> tuple[dict[str, float], str]:
    """``({"X": dx, "Y": dy, "Z": dz}, unit)`` from OME-XML ``Pixels`` physical sizes (in mm
    when the units differ), or ``({}, "")``."""
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return {}, ""
    pixels = next((e for e in root.iter() if e.tag.endswith("}Pixels") or e.tag == "Pixels"), None)
    if pixels is None:
        return {}, ""
    found: dict[str, tuple[float, str]] = {}
    for letter in "XYZ":
        size = pixels.get(f"PhysicalSize{letter}")
        if size is not None:
            found[letter] = (float(size), _OME_UNITS.get(pixels.get(f"PhysicalSize{letter}Unit", "µm"), ""))
    units = {u for _, u in found.values()}
    if len(units) == 1:
        return {k: v for k, (v, _) in found.items()}, units.pop()
    return {k: v * _TO_MM.get(u, 1.0) for k, (v, u) in found.items()}, "mm"


# ---- NIfTI ---------------------------------------------------------------------------------


def _nibabel(message: str = NIBABEL_MISSING) -> ModuleType:
    try:
        import nibabel
    except ImportError as exc:
        raise InputError(message) from exc
    return nibabel


def _read_nifti(path: Path, axes: str | None) -> VolumeData:
    nib = _nibabel()
    gz = read_prefix(path, 2, "a volume file") == _GZIP_MAGIC
    try:
        with contextlib.ExitStack() as stack:
            if gz:
                handle = stack.enter_context(gzip.GzipFile(path, "rb"))
                head = handle.read(544)
                handle.seek(0)
                holder = nib.FileHolder(fileobj=handle)
            else:
                with open(path, "rb") as plain:
                    head = plain.read(544)
                holder = nib.FileHolder(filename=str(path))
            klass = nib.Nifti2Image if head[4:8] == b"n+2\x00" else nib.Nifti1Image
            image = klass.from_file_map({"header": holder, "image": holder}, mmap="r" if not gz else False)
            header = image.header
            stored_shape = tuple(int(n) for n in image.shape)
            dtype = header.get_data_dtype()
            _check_dtype(dtype)
            padded = stored_shape + (1,) * (3 - len(stored_shape))  # 2-D NIfTI: one slice
            reduced, letters = _reduce_to_3d(padded, "XYZ" + "?" * (len(padded) - 3))
            _check_size(reduced)
            data = np.asanyarray(image.dataobj.get_unscaled())
            if data.dtype != dtype:  # nibabel returns the stored dtype unscaled; be sure
                data = data.astype(dtype)
            # nibabel moves the scaling out of ``image.header`` into the data proxy on load: keep
            # the header as stored in the file (scl_slope/scl_inter included)
            raw_header = klass.header_class.from_fileobj(io.BytesIO(head))
            meta = _nifti_meta(image, raw_header, stored_shape, 2 if klass is nib.Nifti2Image else 1)
    except InputError:
        raise
    except Exception as exc:  # nibabel raises many types for corrupt or truncated files
        raise InputError(f"corrupt or truncated NIfTI ({exc})") from exc
    if data.ndim != 3:
        data = data.reshape(reduced, order="F")  # drop/add singleton axes (a view)
    unit = meta.pop("_unit")
    volume = _finish(data, letters, axes, "nifti", meta)
    # zooms belong to stored positions i, j, k: follow them through any ``axes`` override
    zooms = meta["zooms"]
    meta["spacing"] = [None if c == "C" else zooms[volume.axes.index(c)] for c in volume.coding_axes]
    meta["unit"] = unit
    return volume


def _nifti_meta(image: Any, header: Any, stored_shape: tuple[int, ...], version: int) -> dict[str, Any]:
    """JSON metadata of a NIfTI image; ``header`` is the header exactly as the file stores it."""
    zooms = [float(z) for z in header.get_zooms()[:3]] + [1.0] * max(0, 3 - len(header.get_zooms()))
    space_unit, _ = header.get_xyzt_units()
    slope, inter = header.get_slope_inter()
    qform_code = int(header["qform_code"])
    sform_code = int(header["sform_code"])
    return {
        "shape": list(stored_shape),
        "nifti_version": version,
        "nifti_header": base64.b64encode(header.binaryblock).decode("ascii"),
        "affine": [[float(v) for v in row] for row in image.affine],
        "zooms": zooms,
        "descrip": header["descrip"].item().decode("latin-1").rstrip("\x00"),
        "qform_code": qform_code,
        "sform_code": sform_code,
        "scl_slope": None if slope is None else float(slope),
        "scl_inter": None if inter is None else float(inter),
        "_unit": _NIFTI_UNITS.get(str(space_unit), ""),
    }


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def volume_format_for(path: Path) -> str:
    """The format :func:`write_volume` writes to ``path``, from its extension."""
    name = Path(path).name.lower()
    if name.endswith((".ome.tif", ".ome.tiff")):
        return "ome-tiff"
    if name.endswith((".tif", ".tiff")):
        return "tiff"
    if name.endswith(".npy"):
        return "npy"
    if name.endswith((".nii", ".nii.gz")):
        return "nifti"
    raise InputError(
        f"unknown volume output extension in {Path(path).name!r} (use .tif, .tiff, .ome.tif, .npy, .nii, .nii.gz)"
    )


def default_volume_suffix(fmt: str) -> str:
    """Output extension for a source format: ``.tif``, ``.ome.tif``, ``.npy``, ``.nii.gz``; ``.npy``
    for an unknown one."""
    suffixes = {"tiff": ".tif", "ome-tiff": ".ome.tif", "npy": ".npy", "nifti": ".nii.gz"}
    return suffixes.get(fmt, ".npy")  # unknown (e.g. a damaged header): the bare array


def write_volume(path: Path, volume: VolumeData, overwrite: bool = False) -> None:
    """Write ``volume`` to ``path`` (format from the extension), atomically.

    The stored axis order, shape and dtype come back; metadata as far as the target format
    holds it (module docstring). Raises ``FileExistsError`` when ``path`` exists and not
    ``overwrite``, :class:`InputError` for an unknown extension or an unsupported dtype.
    """
    path = Path(path)
    target = volume_format_for(path)
    _check_dtype(volume.array.dtype)
    if volume.array.ndim != 3:
        raise InputError(f"a volume array is 3-D, got shape {volume.array.shape}")
    if target == "nifti":
        _write_nifti(path, volume, overwrite)
        return
    if target == "npy":
        # a .npy source comes back in its own axis order; other sources in coding order, which
        # reads back the same way (ZYX, or CYX for a band axis of at most 64)
        axes = volume.axes if volume.format == "npy" else volume.coding_axes
        stored = _stored(volume, axes).reshape(_stored_shape(volume, axes))
        with atomic_output(path, overwrite=overwrite) as handle:
            np.save(handle, stored, allow_pickle=False)
        return
    _write_tiff(path, volume, target == "ome-tiff", overwrite)


def _stored_shape(volume: VolumeData, axes: str) -> tuple[int, ...]:
    """``meta["shape"]`` when it still describes the data in ``axes`` order, else the 3-D shape."""
    stored3d = tuple(volume.array.shape[volume.coding_axes.index(a)] for a in axes)
    shape = volume.meta.get("shape")
    if shape and axes == volume.axes and math.prod(shape) == math.prod(stored3d):
        reduced, _ = _reduce_to_3d(tuple(shape), "?" * len(shape))
        if reduced == stored3d:
            return tuple(int(n) for n in shape)
    return stored3d


def _spacing_by_letter(volume: VolumeData) -> dict[str, float]:
    """Known voxel sizes keyed by axis letter (``Z``, ``Y``, ``X``), in ``meta["unit"]``."""
    spacing = volume.meta.get("spacing") or []
    return {
        letter: float(s)
        for letter, s in zip(volume.coding_axes, spacing)
        if s is not None and letter != "C" and float(s) > 0
    }


# ---- TIFF ----------------------------------------------------------------------------------


def _write_tiff(path: Path, volume: VolumeData, ome: bool, overwrite: bool) -> None:
    same = volume.format in ("tiff", "ome-tiff")
    meta = volume.meta if same else {}
    first = volume.coding_axes[0]
    if "tiff_layout" in meta:
        layout = meta["tiff_layout"]
    elif first == "C":  # bands as samples of one page, like GDAL's band-interleaved GeoTIFFs
        layout = "contig" if volume.axes == "YXC" else "planar"
    else:
        layout = "pages"
    if layout != "pages" and (volume.shape[0] <= 2 or ome):
        layout = "pages"  # 1-2 samples per pixel would read back as a gray(+alpha) image
    axes = "YX" + first if layout == "contig" else first + "YX"
    stored = _stored(volume, axes)
    samples = 1 if layout == "pages" else volume.shape[0]
    photometric = meta.get("photometric", "minisblack")
    if photometric == "rgb" and samples < 3:
        photometric = "minisblack"
    options: dict[str, Any] = {"photometric": photometric}
    if layout == "planar":
        options["planarconfig"] = "separate"
    elif layout == "contig":
        options["planarconfig"] = "contig"
    extrasamples = meta.get("extrasamples")
    if extrasamples and len(extrasamples) == samples - (3 if photometric == "rgb" else 1):
        options["extrasamples"] = tuple(extrasamples)  # e.g. WorldView-2: RGB + 5 unspecified
    if same:  # the source's Software tag (an extratag) or none, not tifffile's own
        options["software"] = False
    compression = meta.get("compression", "ADOBE_DEFLATE")
    if compression != "NONE":
        options["compression"] = compression
        predictor = meta.get("predictor")
        if (predictor == 2 and stored.dtype.kind in "iu") or (predictor == 3 and stored.dtype.kind == "f"):
            options["predictor"] = predictor
    unit = volume.meta.get("unit", "")
    spacing = _spacing_by_letter(volume)
    if "resolution" in meta:
        xres, yres = meta["resolution"]
        options["resolution"] = (xres, yres)
        options["resolutionunit"] = meta.get("resolution_unit", 1)
    elif "X" in spacing and "Y" in spacing and unit in _TO_MM:
        per_cm = 10.0 / _TO_MM[unit]
        options["resolution"] = (per_cm / spacing["X"], per_cm / spacing["Y"])
        options["resolutionunit"] = 3  # centimetre
    if meta.get("extratags"):
        options["extratags"] = [
            (code, dtype, count, value, True)
            for code, dtype, count, value in meta["extratags"]
            if code not in _PER_SAMPLE_TAGS or count in (1, samples)
        ]
    tiff_axes = axes.replace("C", "S") if layout != "pages" else axes
    if ome:
        ome_meta: dict[str, Any] = {"axes": axes}
        for letter in "XYZ":
            if letter in spacing and letter in axes:
                ome_meta[f"PhysicalSize{letter}"] = spacing[letter]
                ome_meta[f"PhysicalSize{letter}Unit"] = {"um": "µm"}.get(unit, unit) or "µm"
        options.update(ome=True, metadata=ome_meta)
    elif meta.get("imagej") and stored.dtype.name in ("uint8", "uint16", "float32") and layout == "pages":
        ij: dict[str, Any] = {"axes": axes}
        if "Z" in spacing:
            ij["spacing"] = spacing["Z"]
        if unit:
            ij["unit"] = {"um": "micron"}.get(unit, unit)
        options.update(imagej=True, metadata=ij)
        options.pop("photometric")
    else:
        shaped: dict[str, Any] = {"axes": tiff_axes}
        if spacing:
            shaped["spacing"] = [spacing.get(letter) for letter in axes]
            shaped["unit"] = unit
        # Without tifffile's JSON a reader sees pages as slices and samples as bands (module
        # doc): a source that had no JSON gets none back, so its tags come back as they were
        # (no second ImageDescription), unless the axes would then read back otherwise.
        misread = (layout == "pages") != (first == "Z")
        options["metadata"] = shaped if meta.get("tiff_json", True) or misread else None
        if meta.get("description"):
            options["description"] = meta["description"]
    with atomic_output(path, overwrite=overwrite) as handle:
        # a FileHandle with a name: tifffile takes the name of a plain stream from ``.name``,
        # which is an int for the temporary file's descriptor
        try:
            tifffile.imwrite(tifffile.FileHandle(handle, name=path.name), stored, **options)
        except struct.error as error:  # a carried tag whose value does not fit its type (a damaged header)
            raise ValueError(f"a TIFF tag value does not fit its type ({error})") from None


# ---- NIfTI ---------------------------------------------------------------------------------


def _write_nifti(path: Path, volume: VolumeData, overwrite: bool) -> None:
    """Header by nibabel, data written here (Fortran order = the coding array in C order when the
    stored axes are ``XYZ``), so the source's scaling and header fields come back unchanged."""
    nib = _nibabel(_NIBABEL_MISSING_WRITE)
    meta = volume.meta
    same = volume.format == "nifti" and "nifti_header" in meta
    axes = volume.axes if same else "XY" + volume.coding_axes[0]
    stored = _stored(volume, axes)  # (i, j, k)
    shape = _stored_shape(volume, axes) if same else stored.shape
    if same:
        klass = nib.Nifti2Header if meta.get("nifti_version") == 2 else nib.Nifti1Header
        header = klass(binaryblock=base64.b64decode(meta["nifti_header"]))
    else:
        header = nib.Nifti1Header()
    source_dim, source_pixdim = header["dim"].copy(), header["pixdim"].copy()
    header.set_data_shape(shape)
    header.set_data_dtype(stored.dtype)
    if same and np.array_equal(header["dim"][: len(shape) + 1], source_dim[: len(shape) + 1]):
        # nibabel writes 1 into the unused dim[n+1:] and pixdim[n+1:]; the source's values
        # (often 0) come back as they were
        header["dim"], header["pixdim"] = source_dim, source_pixdim
    if not same:
        spacing = _spacing_by_letter(volume)
        zooms = [spacing.get("X", 1.0), spacing.get("Y", 1.0), spacing.get(volume.coding_axes[0], 1.0)]
        affine = np.diag(zooms + [1.0])
        header.set_sform(affine, code=2)
        header.set_qform(affine, code=0)
        header.set_zooms(zooms)
        unit = {"mm": "mm", "um": "micron", "m": "meter"}.get(volume.meta.get("unit", ""), "unknown")
        header.set_xyzt_units(xyz=unit)
    offset = 352 if isinstance(header, nib.Nifti1Header) and not isinstance(header, nib.Nifti2Header) else 544
    header["vox_offset"] = offset
    block = header.binaryblock
    out_dtype = header.get_data_dtype()
    with atomic_output(path, overwrite=overwrite) as handle:
        sink: IO[bytes] | gzip.GzipFile = handle
        with contextlib.ExitStack() as stack:
            if path.name.lower().endswith(".gz"):
                sink = stack.enter_context(gzip.GzipFile(fileobj=handle, mode="wb", mtime=0, compresslevel=6))
            sink.write(block)
            sink.write(b"\x00" * (offset - len(block)))  # no extensions (4-byte flag is 0)
            # Fortran order of (i, j, k) is C order of (k, j, i): stream k-slabs of 16.
            flipped = np.transpose(stored)  # (k, j, i)
            for start in range(0, flipped.shape[0], 16):
                sink.write(np.ascontiguousarray(flipped[start : start + 16], dtype=out_dtype).tobytes())
