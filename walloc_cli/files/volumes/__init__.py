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
tags, as ``[code, type, count, value]``, see :mod:`~walloc_cli.files.volumes.tiff`); NIfTI: ``nifti_header`` (the
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

The package: this module is the dispatch (sniffing, :func:`read_volume`, :func:`write_volume`)
and the public names; :mod:`~walloc_cli.files.volumes.base` holds :class:`VolumeData` and the
checks every format shares, and each format has its reader and writer in one module
(:mod:`~walloc_cli.files.volumes.tiff`, :mod:`~walloc_cli.files.volumes.nifti`,
:mod:`~walloc_cli.files.volumes.npy`).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from walloc_cli.errors import InputError
from walloc_cli.files.safe_io import read_prefix
from walloc_cli.files.volumes.base import (
    BAND_AXIS_MAX,
    DTYPES,
    MAX_AXIS,
    MAX_VOXELS,
    VolumeData,
    check_dtype,
    guess_kind,
    reduce_to_3d,
    volume_from_array,
)
from walloc_cli.files.volumes.nifti import GZIP_MAGIC, NIBABEL_MISSING, is_nifti_header, read_nifti, write_nifti
from walloc_cli.files.volumes.npy import NPY_MAGIC, npy_header, read_npy, write_npy
from walloc_cli.files.volumes.tiff import TIFF_MAGIC, read_tiff, sniff_tiff, write_tiff

# VolumeData, volume_from_array, guess_kind and the limits are defined in base (every format
# module needs them) and are part of this package's public interface.
__all__ = [
    "BAND_AXIS_MAX",
    "CONTAINER_BYTES",
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

#: Extensions of the files :func:`write_volume` writes (``.ome.tif`` ends in ``.tif``).
VOLUME_SUFFIXES = (".tif", ".tiff", ".npy", ".nii", ".nii.gz")


# --------------------------------------------------------------------------------------------
# Sniffing
# --------------------------------------------------------------------------------------------


#: Leading bytes the container test looks at (a NIfTI-2 header is 540).
CONTAINER_BYTES = 1024


def _container(path: Path, prefix: bytes | None = None) -> str | None:
    """``"npy"``, ``"nifti"``, ``"tiff"`` or ``None`` from the magic bytes: ``prefix``, the
    file's first :data:`CONTAINER_BYTES` bytes (or all of a shorter file), read here when not
    given. Raises on I/O errors."""
    if prefix is None:
        prefix = read_prefix(path, CONTAINER_BYTES, "a volume file")
    if prefix.startswith(NPY_MAGIC):
        return "npy"
    if prefix[:4] in TIFF_MAGIC:
        return "tiff"
    if is_nifti_header(prefix):
        return "nifti"
    if prefix.startswith(GZIP_MAGIC):
        try:
            with gzip.open(path, "rb") as handle:
                inner = handle.read(544)
        except (OSError, EOFError, ValueError, zlib.error):
            return None
        if is_nifti_header(inner):
            return "nifti"
    return None


def sniff_volume(path: Path, prefix: bytes | None = None) -> str | None:
    """``"tiff"``, ``"ome-tiff"``, ``"npy"`` or ``"nifti"`` when ``path`` holds a volume, else ``None``.

    By content, not extension. A ``.npy`` is a volume when it is 2-D (one slice) or 3-D (or more
    with singleton axes to drop); NIfTI always is. A gray or RGB TIFF is one when its first
    series has several pages (even a 4-D one, which :func:`read_volume` then refuses naming its
    shape), or is 3-D on one page, or has more samples than its colour model plus one alpha
    (e.g. 8 bands), or is a gray page of a sample type the image path cannot code (signed or
    32-bit integers, float64). A 1-page gray/RGB/RGBA TIFF of uint8/uint16/float32 is an image
    (``None``). Never raises: unreadable, empty, truncated or foreign files give ``None``.
    ``prefix``: the file's first bytes when the caller has read them already (see
    :func:`walloc_cli.files.sniff.identify`); a TIFF, ``.npy`` or gzip is still opened.
    """
    try:
        kind = _container(Path(path), prefix)
        if kind == "npy":
            shape, _, _ = npy_header(Path(path))
            if len(shape) < 2:
                return None
            reduce_to_3d(shape, "?" * len(shape))  # raises for 4-D+ data without singleton axes
            return "npy"
        if kind == "nifti":
            return "nifti"
        if kind == "tiff":
            return sniff_tiff(Path(path))
    except Exception:  # noqa: BLE001 - sniffing must never raise, whatever the bytes are
        return None
    return None


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
        return read_npy(path, axes)
    if kind == "nifti":
        return read_nifti(path, axes)
    if kind == "tiff":
        return read_tiff(path, axes)
    raise InputError("not a volume file (TIFF, OME-TIFF, .npy or NIfTI, by its content)")


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
    check_dtype(volume.array.dtype)
    if volume.array.ndim != 3:
        raise InputError(f"a volume array is 3-D, got shape {volume.array.shape}")
    if target == "nifti":
        write_nifti(path, volume, overwrite)
        return
    if target == "npy":
        write_npy(path, volume, overwrite)
        return
    write_tiff(path, volume, target == "ome-tiff", overwrite)
