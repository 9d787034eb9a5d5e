"""The volume every volume module shares: :class:`VolumeData` (a 3-D array in coding order and
the metadata to write it back) and the axis and size checks every format applies.

Users import these names from :mod:`walloc_cli.files.volumes` (the package's public face); the
axes rules and ``meta`` keys are documented there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from walloc_cli.errors import InputError
from walloc_cli.format.header import DTYPES, MAX_AXIS, MAX_VOXELS

__all__ = [
    "BAND_AXIS_MAX",
    "DTYPES",
    "MAX_AXIS",
    "MAX_VOXELS",
    "VolumeData",
    "arrange",
    "check_dtype",
    "check_finite",
    "check_size",
    "finish_volume",
    "guess_axes",
    "guess_kind",
    "parse_axes",
    "reduce_to_3d",
    "spacing_by_letter",
    "stored_array",
    "stored_shape",
    "volume_from_array",
]

#: An axis the file does not name is a band axis only when it is this short (see :mod:`walloc_cli.files.volumes`).
BAND_AXIS_MAX = 64


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
        meta: JSON-serialisable metadata (its keys: :mod:`walloc_cli.files.volumes`).
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
        """The samples' dtype, as stored in the file."""
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
    check_dtype(array.dtype)
    shape = [int(n) for n in array.shape]
    if array.ndim == 2:
        array = array[None]
    elif array.ndim != 3:
        raise InputError(f"a volume is a 2-D or 3-D array, got shape {tuple(shape)}")
    check_size(tuple(shape))
    volume = arrange(array, parse_axes(axes), "npy", {"shape": shape})
    check_finite(volume.array)
    return volume


def arrange(stored3d: np.ndarray, axes: str, fmt: str, meta: dict[str, Any]) -> VolumeData:
    """Transpose a stored 3-D array (``axes`` order) into coding order (a view, no copy)."""
    coding_axes = ("C" if "C" in axes else "Z") + "YX"
    order = [axes.index(letter) for letter in coding_axes]
    return VolumeData(np.transpose(stored3d, order), axes, coding_axes, fmt, meta)


def stored_array(volume: VolumeData, axes: str | None = None) -> np.ndarray:
    """The coding array back in the stored axis order (``axes``, default ``volume.axes``)."""
    axes = axes or volume.axes
    order = [volume.coding_axes.index(letter) for letter in axes]
    return np.transpose(volume.array, order)


# --------------------------------------------------------------------------------------------
# Checks shared by every format
# --------------------------------------------------------------------------------------------


def parse_axes(axes: str) -> str:
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


def check_dtype(dtype: np.dtype[Any]) -> None:
    """Refuse a dtype outside :data:`DTYPES` (structured ones too), naming it."""
    if dtype.fields is not None or dtype.name not in DTYPES:
        raise InputError(
            f"unsupported sample type {dtype.name if dtype.fields is None else 'structured'} "
            f"(volumes may be {', '.join(DTYPES)})"
        )


def check_size(shape: tuple[int, ...]) -> None:
    """Refuse empty and absurd sizes from the header, before any data is read."""
    if any(n <= 0 for n in shape):
        raise InputError(f"empty volume (shape {shape})")
    if any(n > MAX_AXIS for n in shape):
        raise InputError(f"volume axis too long (shape {shape}; at most {MAX_AXIS} per axis)")
    if math.prod(shape) > MAX_VOXELS:
        raise InputError(f"volume too large (shape {shape}, {math.prod(shape)} voxels; at most 2**31)")


def check_finite(array: np.ndarray) -> None:
    """Float data must be finite; checked a slab at a time so a memory map is not copied whole."""
    if array.dtype.kind != "f":
        return
    for start in range(0, array.shape[0], 16):
        if not np.isfinite(array[start : start + 16]).all():
            raise InputError("float volume contains NaN or infinite values")


def reduce_to_3d(shape: tuple[int, ...], letters: str) -> tuple[tuple[int, ...], str]:
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


def guess_axes(shape: tuple[int, ...], letters: str) -> str:
    """Fill the ``?`` of a 3-letter axes string by the package's rule (band axis or slices;
    :mod:`walloc_cli.files.volumes`).

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


def finish_volume(stored: np.ndarray, letters: str, axes: str | None, fmt: str, meta: dict[str, Any]) -> VolumeData:
    """Apply an ``axes`` override, check floats, and arrange in coding order."""
    if axes is not None:
        letters = parse_axes(axes)
    else:
        letters = guess_axes(stored.shape, letters)
    volume = arrange(stored, letters, fmt, meta)
    check_finite(volume.array)
    return volume


def stored_shape(volume: VolumeData, axes: str) -> tuple[int, ...]:
    """``meta["shape"]`` when it still describes the data in ``axes`` order, else the 3-D shape."""
    stored3d = tuple(volume.array.shape[volume.coding_axes.index(a)] for a in axes)
    shape = volume.meta.get("shape")
    if shape and axes == volume.axes and math.prod(shape) == math.prod(stored3d):
        reduced, _ = reduce_to_3d(tuple(shape), "?" * len(shape))
        if reduced == stored3d:
            return tuple(int(n) for n in shape)
    return stored3d


def spacing_by_letter(volume: VolumeData) -> dict[str, float]:
    """Known voxel sizes keyed by axis letter (``Z``, ``Y``, ``X``), in ``meta["unit"]``."""
    spacing = volume.meta.get("spacing") or []
    return {
        letter: float(s)
        for letter, s in zip(volume.coding_axes, spacing)
        if s is not None and letter != "C" and float(s) > 0
    }
