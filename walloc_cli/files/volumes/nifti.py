"""NIfTI-1/-2 volumes (``.nii``, ``.nii.gz``) through ``nibabel`` (an optional extra): the header
kept bit for bit and written back with the data streamed in Fortran order, so scaling, affine,
codes and units come back unchanged. ``.nii`` is memory-mapped; ``.nii.gz`` decompressed once.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import io
import struct
from pathlib import Path
from types import ModuleType
from typing import IO, Any

import numpy as np

from walloc_cli.errors import InputError
from walloc_cli.files.safe_io import atomic_output, read_prefix
from walloc_cli.files.volumes.base import (
    VolumeData,
    check_dtype,
    check_size,
    finish_volume,
    reduce_to_3d,
    spacing_by_letter,
    stored_array,
    stored_shape,
)

__all__ = ["GZIP_MAGIC", "NIBABEL_MISSING", "is_nifti_header", "read_nifti", "write_nifti"]

NIBABEL_MISSING = "reading NIfTI needs nibabel: pip install 'walloc[volume]'"
_NIBABEL_MISSING_WRITE = "writing NIfTI needs nibabel: pip install 'walloc[volume]'"
_NIFTI_UNITS = {"mm": "mm", "micron": "um", "meter": "m", "unknown": ""}
GZIP_MAGIC = b"\x1f\x8b"


def is_nifti_header(head: bytes) -> bool:
    """NIfTI-1 single file (``n+1\\0`` at 344, header size 348) or NIfTI-2 (``n+2\\0`` at 4)."""
    if len(head) >= 348 and head[344:348] == b"n+1\x00":
        return struct.unpack("<i", head[:4])[0] == 348 or struct.unpack(">i", head[:4])[0] == 348
    if len(head) >= 540 and head[4:8] == b"n+2\x00":
        return struct.unpack("<i", head[:4])[0] == 540 or struct.unpack(">i", head[:4])[0] == 540
    return False


# ---- NIfTI ---------------------------------------------------------------------------------


def _nibabel(message: str = NIBABEL_MISSING) -> ModuleType:
    try:
        import nibabel
    except ImportError as exc:
        raise InputError(message) from exc
    return nibabel


def read_nifti(path: Path, axes: str | None) -> VolumeData:
    """A NIfTI-1/-2 volume (``.nii`` memory-mapped, ``.nii.gz`` decompressed once) in coding order,
    unscaled, with the header kept whole in ``meta``; ``axes`` overrides the stored ``XYZ``."""
    nib = _nibabel()
    gz = read_prefix(path, 2, "a volume file") == GZIP_MAGIC
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
            check_dtype(dtype)
            padded = stored_shape + (1,) * (3 - len(stored_shape))  # 2-D NIfTI: one slice
            reduced, letters = reduce_to_3d(padded, "XYZ" + "?" * (len(padded) - 3))
            check_size(reduced)
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
    volume = finish_volume(data, letters, axes, "nifti", meta)
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


# ---- NIfTI ---------------------------------------------------------------------------------


def write_nifti(path: Path, volume: VolumeData, overwrite: bool) -> None:
    """Header by nibabel, data written here (Fortran order = the coding array in C order when the
    stored axes are ``XYZ``), so the source's scaling and header fields come back unchanged."""
    nib = _nibabel(_NIBABEL_MISSING_WRITE)
    meta = volume.meta
    same = volume.format == "nifti" and "nifti_header" in meta
    axes = volume.axes if same else "XY" + volume.coding_axes[0]
    stored = stored_array(volume, axes)  # (i, j, k)
    shape = stored_shape(volume, axes) if same else stored.shape
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
        spacing = spacing_by_letter(volume)
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
