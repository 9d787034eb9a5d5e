"""TIFF and OME-TIFF volumes through ``tifffile``: which TIFF is a volume (:func:`sniff_tiff`),
reading it (memory-mapped when stored uncompressed and contiguous) with its axes from ImageJ,
OME or tifffile's JSON, and writing it back with the layout, compression, resolution and the
tags :data:`_CARRIED_TAGS` lists (:mod:`walloc_cli.files.volumes` says what comes back).
"""

from __future__ import annotations

import contextlib
import json
import logging
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
import tifffile

from walloc_cli.errors import InputError
from walloc_cli.files.safe_io import atomic_output
from walloc_cli.files.volumes.base import (
    VolumeData,
    check_dtype,
    check_size,
    finish_volume,
    reduce_to_3d,
    spacing_by_letter,
    stored_array,
)

__all__ = ["TIFF_MAGIC", "read_tiff", "sniff_tiff", "write_tiff"]

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
_OME_UNITS = {"µm": "um", "um": "um", "mm": "mm", "m": "m", "nm": "nm", "cm": "cm"}
_IMAGEJ_UNITS = {"micron": "um", "\\u00B5m": "um", "µm": "um", **_OME_UNITS}
_TO_MM = {"mm": 1.0, "um": 1e-3, "nm": 1e-6, "cm": 10.0, "m": 1000.0}
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


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


def sniff_tiff(path: Path) -> str | None:
    """``"tiff"`` or ``"ome-tiff"`` when the TIFF at ``path`` is a volume, ``None`` when it is an
    image (the rules: :func:`walloc_cli.files.volumes.sniff_volume`). May raise on damaged files."""
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
        shape, _ = reduce_to_3d(tuple(series.shape), _series_letters(tif, series))
        if int(page.samplesperpixel) == 1 and shape[0] > 1:
            return fmt  # several gray pages
        colour = 3 if photometric == tifffile.PHOTOMETRIC.RGB else 1
        if int(page.samplesperpixel) > colour + 1:
            return fmt  # more bands than colour + alpha: a multi-band cube
        if series.dtype.name in ("uint8", "uint16", "float32", "bool"):
            return None  # what the image path codes
        return fmt if int(page.samplesperpixel) == 1 else None


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


def read_tiff(path: Path, axes: str | None) -> VolumeData:
    """The first series of a TIFF/OME-TIFF in coding order (memory-mapped when stored uncompressed
    and contiguous), its axes from ImageJ/OME/tifffile's JSON or ``axes``, its tags in ``meta``."""
    try:
        with _quiet_tifffile(), tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            page = tif.pages.first
            stored_shape = tuple(int(n) for n in series.shape)
            letters = _series_letters(tif, series)
            dtype = series.dtype
            meta = _tiff_meta(tif, series, page)
            memmappable = series.dataoffset is not None
            reduced, letters = reduce_to_3d(stored_shape, letters)
            check_dtype(dtype)
            check_size(reduced)
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
    spacing = meta.pop("spacing_by_letter")
    unit = meta.pop("_unit")
    volume = finish_volume(np.asarray(data).reshape(reduced), letters, axes, fmt, meta)
    if spacing:
        meta["spacing"] = [None if letter == "C" else spacing.get(letter) for letter in volume.coding_axes]
        meta["unit"] = unit
    return volume


def _tiff_meta(tif: tifffile.TiffFile, series: Any, page: Any) -> dict[str, Any]:
    """What :func:`~walloc_cli.files.volumes.write_volume` needs to write the same TIFF back (JSON-serialisable)."""
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
        meta["tiff_json"] = False  # written back without tifffile's JSON description (see write_tiff)
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
    meta["spacing_by_letter"] = spacing
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


# ---- TIFF ----------------------------------------------------------------------------------


def write_tiff(path: Path, volume: VolumeData, ome: bool, overwrite: bool) -> None:
    """Write ``volume`` as a (OME-)TIFF, atomically, in the source's layout when it was a TIFF
    (pages, planar or contiguous samples) with its carried tags, compression and resolution."""
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
    stored = stored_array(volume, axes)
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
    spacing = spacing_by_letter(volume)
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
