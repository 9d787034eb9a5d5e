"""``.npy`` volumes: a 2-D or 3-D array (more with singleton axes), memory-mapped on reading,
written in C order. The file names no axes: :func:`walloc_cli.files.volumes.base.guess_axes`
decides slices or bands.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from walloc_cli.errors import InputError
from walloc_cli.files.safe_io import atomic_output
from walloc_cli.files.volumes.base import (
    VolumeData,
    check_dtype,
    check_size,
    finish_volume,
    reduce_to_3d,
    stored_array,
    stored_shape,
)

__all__ = ["NPY_MAGIC", "npy_header", "read_npy", "write_npy"]

NPY_MAGIC = b"\x93NUMPY"


def npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype[Any], int]:
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


def read_npy(path: Path, axes: str | None) -> VolumeData:
    """A 2-D or 3-D ``.npy`` (more with singleton axes), memory-mapped, in coding order; the axes
    from ``axes`` or :func:`~walloc_cli.files.volumes.base.guess_axes`."""
    shape, dtype, present = npy_header(path)
    check_dtype(dtype)
    if len(shape) < 2:
        raise InputError(f"a {len(shape)}-D array is not a volume (shape {shape})")
    reduced, letters = reduce_to_3d(shape, "?" * len(shape))
    check_size(reduced)
    needed = math.prod(shape) * dtype.itemsize
    if present < needed:
        raise InputError(f"truncated .npy: its header promises {needed} bytes of data, the file holds {present}")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"cannot read .npy ({exc})") from exc
    return finish_volume(array.reshape(reduced), letters, axes, "npy", {"shape": list(shape)})


def write_npy(path: Path, volume: VolumeData, overwrite: bool) -> None:
    """Write ``volume`` as a ``.npy`` (C order), atomically."""
    # a .npy source comes back in its own axis order; other sources in coding order, which
    # reads back the same way (ZYX, or CYX for a band axis of at most 64)
    axes = volume.axes if volume.format == "npy" else volume.coding_axes
    stored = stored_array(volume, axes).reshape(stored_shape(volume, axes))
    with atomic_output(path, overwrite=overwrite) as handle:
        np.save(handle, stored, allow_pickle=False)
