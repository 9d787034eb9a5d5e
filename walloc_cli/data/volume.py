"""Reproducible volume sets (CT, MRI, multispectral, hyperspectral-like) from packaged real data.

Nothing is downloaded. :func:`build_volume_set` writes ``.npy`` volumes in coding order
(``(Z, Y, X)`` or ``(C, Y, X)``, the dtype of the source) under ``ct/``, ``mri/``, ``ms/`` and
``hyper/``, each split into ``train/``, ``val/`` and ``test/`` folders, plus ``manifest.json``
(source package and file, SHA-256 of what was written, shape, dtype, axes, kind, split, voxel
spacing, package versions). Splits are fixed by name, so every model and benchmark agrees on
what was never trained on; a rebuild from the same package versions gives the same bytes.

=========  =========================================  ==========  ==============================
group      source                                     dtype       split
=========  =========================================  ==========  ==============================
``ct``     Debian ``invesalius-examples``:            int16 (HU)  slices 0-65 train, 66-75 val
           ``Cranium.inv3``, a real head CT,                      (the first 70%), 76-107 test
           108 x 256 x 256, 0.957 x 0.957 x 1.5 mm                (30%): the only CT there is
``mri``    Colin27 T1 (Debian ``mricron-data``:       uint8       train
           ``ch2``, its brain-extracted ``ch2bet``,
           the 0.5 mm ``ch2better``: one subject)
           INIA19 macaque T1 (``mricron-data``)       float32     val
           MNI ICBM152 2009a T1 (``nilearn`` wheel)   uint8       test
``ms``     WorldView-3 Longmont 8-band VNIR           uint16      rows 0-667 train, 668-834 val
           (``dgsamples``; 835 x 835, 1.2 m)
           WorldView-3 Longmont 8-band SWIR           uint16      train
           (134 x 134, 7.5 m, 14-bit)
           WorldView-2 Louisiana chip (bands last     uint16      train
           in the file, 174 x 246, 2 m)
           WorldView-2 Longmont 8-band VNIR           uint16      test (see the caveat below)
           (501 x 500, 2 m)
``hyper``  assembled, test only (below)               uint16      test
=========  =========================================  ==========  ==============================

Left out on purpose: the ``mricron-data`` label atlases (AAL, Brodmann, HarvardOxford, JHU,
AICHA, NeuroMaps, natbrainlab, jhu189: integer region labels, not images), nilearn's tissue
probability maps and statistical map (not MRI intensities), and the panchromatic bands (2-D).

Caveat on the multispectral test: DESIGN.md holds the WorldView-2 Longmont scene out of every
training set, but it images the same ground as the WorldView-3 Longmont training scenes (on
another date, by another satellite, at 2 m instead of 1.2 m): it is a held-out *acquisition*,
not a held-out *place*.

Hyperspectral-like test cubes (no true hyperspectral cube ships in any package found): each
band's digital numbers are converted to top-of-atmosphere spectral radiance with the scene's own
calibration (``L = DN * absCalFactor / effectiveBandwidth`` from the ``.IMD`` file, in
W m^-2 sr^-1 um^-1), then resampled in wavelength by *linear interpolation* between the band
centre wavelengths (:data:`WV2_CENTRES_NM`, :data:`WV3_CENTRES_NM`, from DigitalGlobe's
radiometric-use technical notes) onto 128 equally spaced wavelengths spanning the first to the
last band centre, and stored as uint16 in units of 0.01 W m^-2 sr^-1 um^-1
(:data:`HYPER_SCALE`). Every band is a linear mix of at most two measured bands, so these cubes
have spectral rank 8 or 16: they test a codec's handling of 128 bands and of strong inter-band
correlation, not real fine spectral structure (absorption lines are absent).

- ``wv2_vnir_128``: from the held-out WorldView-2 Longmont scene, 427-908 nm, 128 x 501 x 500.
- ``wv3_vnir_swir_128``: the WorldView-3 Longmont VNIR bands area-averaged onto the SWIR 7.5 m
  grid (exact pixel-overlap weights from the GeoTIFF tie points and pixel sizes), stacked with
  the 8 SWIR bands: 427-2329 nm, 128 x 132 x 132. Its scene is in the training set (as 8-band
  cubes), so it shows the 128-band behaviour, not generalisation to a new place.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import plistlib
import re
import tarfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from walloc_cli.errors import InputError
from walloc_cli.files.safe_io import atomic_write_bytes, package_versions, refuse_existing_set, remove_previous_set
from walloc_cli.files.volumes import read_volume, volume_from_array, write_volume

__all__ = [
    "CT_TRAIN_FRACTION",
    "CT_VAL_SLICES",
    "HYPER_BANDS",
    "HYPER_SCALE",
    "MRI_SOURCES",
    "VOLUME_PACKAGES",
    "WV2_CENTRES_NM",
    "WV3_CENTRES_NM",
    "VolumeRecord",
    "build_volume_set",
    "volume_summary",
]

CRANIUM = Path("/usr/share/doc/invesalius-examples/examples/Cranium.inv3")
MRICRON_TEMPLATES = Path("/usr/share/mricron/templates")
VOLUME_PACKAGES = "apt-get install -y invesalius-examples mricron-data; pip install nibabel nilearn dgsamples"

#: First fraction of the CT's slices that is training (and validation) data; the rest is the test part.
CT_TRAIN_FRACTION = 0.7
#: Slices at the end of the CT's training part kept for validation.
CT_VAL_SLICES = 10
#: Fraction of the WorldView-3 VNIR scene's rows (from the top) used for training; the rest is val.
MS_TRAIN_FRACTION = 0.8
HYPER_BANDS = 128
#: Radiance units per stored count in the hyperspectral-like cubes (0.01 W m^-2 sr^-1 um^-1).
HYPER_SCALE = 100.0

#: (key, package, where, split): ``where`` is a path under the mricron templates or ``nilearn:NAME``.
MRI_SOURCES = (
    ("mricron:ch2", "mricron-data", "ch2.nii.gz", "train"),
    ("mricron:ch2bet", "mricron-data", "ch2bet.nii.gz", "train"),
    ("mricron:ch2better", "mricron-data", "ch2better.nii.gz", "train"),
    ("mricron:inia19-t1-brain", "mricron-data", "inia19-t1-brain.nii.gz", "val"),
    ("nilearn:mni_icbm152_t1_2009a", "nilearn", "nilearn:mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz", "test"),
)
_MRI_DETAIL = {
    "mricron:ch2": "Colin27 T1 template, 1 mm",
    "mricron:ch2bet": "Colin27 T1, brain extracted (same subject as ch2)",
    "mricron:ch2better": "Colin27 T1 at 0.5 mm (same subject as ch2)",
    "mricron:inia19-t1-brain": "INIA19 rhesus macaque T1 template, brain, 0.5 mm",
    "nilearn:mni_icbm152_t1_2009a": "MNI ICBM152 2009a symmetric T1 template, 1 mm",
}

# dgsamples scenes, relative to the package folder.
_WV3_VNIR = "wv3_longmont_1k/055516443010_01_P001_MUL/14OCT06175136-M2AS-055516443010_01_P001"
_WV3_SWIR = "wv3_longmont_1k/055516443020_01_P001_SWR/14OCT06175135-A2AS-055516443020_01_P001"
_WV2_VNIR = "wv2_longmont_1k/053792616010_01_P001_MUL/14JUN20181517-M2AS-053792616010_01_P001"
_WV2_CHIP = "bayou_chip/extract_test.tif"

#: Band centre wavelengths (nm), file band order (C, B, G, Y, R, RE, N, N2), DigitalGlobe notes.
WV2_CENTRES_NM = (427.3, 477.9, 546.2, 607.8, 658.8, 723.7, 832.5, 908.0)
WV3_CENTRES_NM = (427.4, 482.4, 547.1, 604.1, 660.1, 722.7, 824.0, 913.6)
WV3_SWIR_CENTRES_NM = (1209.1, 1571.6, 1661.1, 1729.5, 2163.7, 2202.2, 2259.3, 2329.2)


@dataclasses.dataclass
class VolumeRecord:
    """One volume of the set: where it came from, how it was made, what was written."""

    key: str
    group: str
    package: str
    source: str
    split: str
    file: str
    shape: list[int]
    dtype: str
    axes: str
    kind: str
    spacing: list[float | None] | None
    unit: str
    sha256: str
    detail: str = ""


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------


def _dgsamples_dir() -> Path | None:
    spec = importlib.util.find_spec("dgsamples")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _nilearn_data_dir() -> Path | None:
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


def _missing_packages() -> list[str]:
    """What the set needs and is not installed (everything is needed: the splits are fixed)."""
    dg = _dgsamples_dir()
    nilearn = _nilearn_data_dir()
    present = {
        "invesalius-examples": CRANIUM.is_file(),
        "mricron-data": MRICRON_TEMPLATES.is_dir(),
        "nibabel": importlib.util.find_spec("nibabel") is not None,
        "nilearn": nilearn is not None and nilearn.is_dir(),
        "dgsamples": dg is not None and (dg / (_WV2_VNIR + ".TIF")).is_file(),
    }
    return [package for package, ok in present.items() if not ok]


def _mri_path(where: str) -> Path:
    if where.startswith("nilearn:"):
        folder = _nilearn_data_dir()
        assert folder is not None  # checked by _missing_packages
        return folder / where.split(":", 1)[1]
    return MRICRON_TEMPLATES / where


def _check_sources() -> None:
    """Every named source must exist: a missing one would silently change the splits."""
    missing = [key for key, _, where, _ in MRI_SOURCES if not _mri_path(where).is_file()]
    dg = _dgsamples_dir()
    assert dg is not None
    for name in (_WV3_VNIR + ".TIF", _WV3_SWIR + ".TIF", _WV2_VNIR + ".TIF", _WV2_CHIP):
        if not (dg / name).is_file():
            missing.append(f"dgsamples:{name}")
    if missing:
        raise InputError(f"volume sources missing: {', '.join(missing)} (install them: {VOLUME_PACKAGES})")


def _read_cranium(path: Path) -> tuple[np.ndarray, list[float], str]:
    """The InVesalius project's CT: ``(Z, Y, X)`` int16 HU, spacing in coding order, description.

    An ``.inv3`` is a gzip tar: ``main.plist`` names the raw matrix file, its dtype and shape
    (slices first) and the spacing (x, y, z in mm).
    """
    try:
        with tarfile.open(path, "r:gz") as tar:
            main = next(m for m in tar.getmembers() if m.name.endswith("main.plist"))
            plist = plistlib.loads(_member(tar, main.name))
            folder = main.name.rsplit("/", 1)[0]
            matrix = plist["matrix"]
            raw = _member(tar, f"{folder}/{matrix['filename']}")
    except (OSError, tarfile.TarError, StopIteration, KeyError, plistlib.InvalidFileException) as exc:
        raise InputError(f"{path}: not a readable InVesalius project ({exc})") from exc
    shape = tuple(int(n) for n in matrix["shape"])
    dtype = np.dtype(matrix["dtype"]).newbyteorder("<")  # InVesalius writes numpy memmaps, x86
    array = np.frombuffer(raw, dtype=dtype, count=int(np.prod(shape))).reshape(shape)
    sx, sy, sz = (float(s) for s in plist["spacing"])
    detail = f"{plist.get('modality', 'CT')} '{plist.get('name', '')}', Hounsfield units"
    return array.astype(np.int16), [sz, sy, sx], detail


def _member(tar: tarfile.TarFile, name: str) -> bytes:
    handle = tar.extractfile(name)
    if handle is None:
        raise KeyError(name)
    return handle.read()


def _imd_radiance_factors(imd: Path) -> np.ndarray:
    """``absCalFactor / effectiveBandwidth`` per band, in the ``.IMD`` file's band order."""
    text = imd.read_text(errors="replace")
    groups = re.findall(
        r"BEGIN_GROUP = BAND_\w+.*?absCalFactor = ([0-9.eE+-]+);.*?effectiveBandwidth = ([0-9.eE+-]+);",
        text,
        flags=re.DOTALL,
    )
    if len(groups) != 8:
        raise InputError(f"{imd}: expected 8 band calibrations, found {len(groups)}")
    return np.array([float(cal) / float(width) for cal, width in groups])


def _geo_grid(meta: dict[str, Any]) -> tuple[float, float, float, float]:
    """(x0, y0, dx, dy): upper-left corner and pixel size of a north-up GeoTIFF (pixel-is-area),
    from the ModelPixelScale and ModelTiepoint tags that :func:`read_volume` carries."""
    tags = {code: value for code, _, _, value in meta.get("extratags", [])}
    if 33550 not in tags or 33922 not in tags:
        raise InputError("GeoTIFF without pixel scale and tie point: cannot co-register")
    dx, dy = (float(v) for v in tags[33550][:2])
    tie = [float(v) for v in tags[33922]]
    # tie point (i, j, k, X, Y, Z): raster position (i, j) -> map (X, Y)
    return tie[3] - tie[0] * dx, tie[4] + tie[1] * dy, dx, dy


def _overlap_weights(start: float, step: float, count: int, out_start: float, out_step: float, out_count: int) -> np.ndarray:
    """``(out_count, count)`` area weights of fine cells [start + i*step, +step) in coarse cells
    [out_start + o*out_step, +out_step); rows sum to 1 for coarse cells inside the fine extent."""
    fine = start + step * np.arange(count + 1)
    coarse = out_start + out_step * np.arange(out_count + 1)
    low = np.maximum(coarse[:-1, None], fine[None, :-1])
    high = np.minimum(coarse[1:, None], fine[None, 1:])
    weights = np.clip(high - low, 0.0, None) / out_step
    return weights


def _spectral_weights(centres: Iterable[float], bands: int) -> tuple[np.ndarray, np.ndarray]:
    """``(bands, n)`` linear-interpolation matrix from ``n`` band centres to ``bands`` wavelengths
    equally spaced from the first to the last centre; and those wavelengths."""
    centres = np.asarray(list(centres), dtype=np.float64)
    wavelengths = np.linspace(centres[0], centres[-1], bands)
    weights = np.zeros((bands, centres.size))
    for row, wavelength in enumerate(wavelengths):
        upper = int(np.clip(np.searchsorted(centres, wavelength, side="right"), 1, centres.size - 1))
        t = (wavelength - centres[upper - 1]) / (centres[upper] - centres[upper - 1])
        weights[row, upper - 1] = 1.0 - t
        weights[row, upper] = t
    return weights, wavelengths


def _to_hyper(radiance: np.ndarray, centres: Iterable[float]) -> tuple[np.ndarray, np.ndarray]:
    """``(n, H, W)`` radiance -> ``(HYPER_BANDS, H, W)`` uint16 counts of 1/HYPER_SCALE, wavelengths."""
    weights, wavelengths = _spectral_weights(centres, HYPER_BANDS)
    cube = np.tensordot(weights, radiance, axes=(1, 0)) * HYPER_SCALE
    if cube.max() > np.iinfo(np.uint16).max:
        raise InputError(f"hyperspectral cube exceeds uint16 at scale {HYPER_SCALE}")
    return np.rint(np.clip(cube, 0, None)).astype(np.uint16), wavelengths


# --------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------


class _Writer:
    """Writes volumes as ``GROUP/SPLIT/NAME.npy`` (coding order) and collects their records."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.records: list[VolumeRecord] = []

    def add(
        self,
        key: str,
        group: str,
        package: str,
        source: Path,
        split: str,
        name: str,
        array: np.ndarray,
        axes: str,
        kind: str,
        spacing: Sequence[float | None] | None,
        unit: str,
        detail: str,
    ) -> None:
        target = self.out_dir / group / split / f"{name}.npy"
        target.parent.mkdir(parents=True, exist_ok=True)
        volume = volume_from_array(np.ascontiguousarray(array), axes)
        write_volume(target, volume, overwrite=True)
        digest = hashlib.sha256(target.read_bytes()).hexdigest()
        self.records.append(VolumeRecord(
            key, group, package, str(source), split, target.relative_to(self.out_dir).as_posix(),
            [int(n) for n in array.shape], array.dtype.name, axes, kind,
            None if spacing is None else [None if s is None else round(float(s), 6) for s in spacing],
            unit, digest, detail,
        ))


def _add_ct(writer: _Writer) -> None:
    array, spacing, detail = _read_cranium(CRANIUM)
    cut = round(CT_TRAIN_FRACTION * array.shape[0])
    bounds = (("train", 0, cut - CT_VAL_SLICES), ("val", cut - CT_VAL_SLICES, cut), ("test", cut, array.shape[0]))
    for split, first, end in bounds:
        part, last = array[first:end], end - 1
        writer.add(
            f"invesalius:Cranium.inv3:z{first}-{last}", "ct", "invesalius-examples", CRANIUM, split,
            f"cranium_z{first:03d}-{last:03d}", part, "ZYX", "ct", spacing, "mm",
            f"{detail}; slices {first}-{last} of {array.shape[0]}",
        )


def _add_mri(writer: _Writer) -> None:
    for key, package, where, split in MRI_SOURCES:
        path = _mri_path(where)
        volume = read_volume(path)
        writer.add(
            key, "mri", package, path, split, key.split(":", 1)[1], np.asarray(volume.array),
            volume.coding_axes, "mri", volume.meta.get("spacing"), volume.meta.get("unit", "") or "mm",
            _MRI_DETAIL[key] + f"; NIfTI {volume.axes} stored as {volume.coding_axes}",
        )


def _add_ms(writer: _Writer, dg: Path) -> None:
    vnir = read_volume(dg / (_WV3_VNIR + ".TIF"))
    cut = round(MS_TRAIN_FRACTION * vnir.shape[1])
    wv3 = "WorldView-3 Longmont 8-band VNIR, DN (11-bit)"
    writer.add(f"dgsamples:wv3_vnir:rows0-{cut - 1}", "ms", "dgsamples", dg / (_WV3_VNIR + ".TIF"), "train",
               "wv3_vnir_top", np.asarray(vnir.array[:, :cut]), "CYX", "multispectral", [None, 1.2, 1.2], "m",
               f"{wv3}; rows 0-{cut - 1}")
    writer.add(f"dgsamples:wv3_vnir:rows{cut}-{vnir.shape[1] - 1}", "ms", "dgsamples", dg / (_WV3_VNIR + ".TIF"),
               "val", "wv3_vnir_bottom", np.asarray(vnir.array[:, cut:]), "CYX", "multispectral", [None, 1.2, 1.2],
               "m", f"{wv3}; rows {cut}-{vnir.shape[1] - 1}")
    swir = read_volume(dg / (_WV3_SWIR + ".TIF"))
    writer.add("dgsamples:wv3_swir", "ms", "dgsamples", dg / (_WV3_SWIR + ".TIF"), "train", "wv3_swir",
               np.asarray(swir.array), "CYX", "multispectral", [None, 7.5, 7.5], "m",
               "WorldView-3 Longmont 8-band SWIR, DN (14-bit)")
    chip = read_volume(dg / _WV2_CHIP)
    writer.add("dgsamples:bayou_chip", "ms", "dgsamples", dg / _WV2_CHIP, "train", "wv2_bayou_chip",
               np.asarray(chip.array), "CYX", "multispectral", [None, 2.0, 2.0], "m",
               f"WorldView-2 Southern Louisiana 8-band chip, DN; stored {chip.axes} in the file")
    wv2 = read_volume(dg / (_WV2_VNIR + ".TIF"))
    writer.add("dgsamples:wv2_vnir", "ms", "dgsamples", dg / (_WV2_VNIR + ".TIF"), "test", "wv2_vnir",
               np.asarray(wv2.array), "CYX", "multispectral", [None, 2.0, 2.0], "m",
               "WorldView-2 Longmont 8-band VNIR, DN (11-bit); held out (same ground as the WV3 scenes)")


def _add_hyper(writer: _Writer, dg: Path) -> None:
    # (a) held-out WorldView-2 scene, VNIR only
    wv2 = read_volume(dg / (_WV2_VNIR + ".TIF"))
    radiance = wv2.array.astype(np.float64) * _imd_radiance_factors(dg / (_WV2_VNIR + ".IMD"))[:, None, None]
    cube, wavelengths = _to_hyper(radiance, WV2_CENTRES_NM)
    writer.add("assembled:wv2_vnir_128", "hyper", "dgsamples", dg / (_WV2_VNIR + ".TIF"), "test", "wv2_vnir_128",
               cube, "CYX", "multispectral", [None, 2.0, 2.0], "m",
               f"test only, assembled: WV2 radiance linearly interpolated to {HYPER_BANDS} bands "
               f"{wavelengths[0]:.1f}-{wavelengths[-1]:.1f} nm; counts of 1/{HYPER_SCALE:g} W m^-2 sr^-1 um^-1")
    # (b) WorldView-3 VNIR area-averaged onto the SWIR grid, stacked with SWIR
    vnir_path, swir_path = dg / (_WV3_VNIR + ".TIF"), dg / (_WV3_SWIR + ".TIF")
    vnir_volume, swir_volume = read_volume(vnir_path), read_volume(swir_path)
    vnir = vnir_volume.array.astype(np.float64) * _imd_radiance_factors(dg / (_WV3_VNIR + ".IMD"))[:, None, None]
    swir = swir_volume.array.astype(np.float64) * _imd_radiance_factors(dg / (_WV3_SWIR + ".IMD"))[:, None, None]
    vx0, vy0, vdx, vdy = _geo_grid(vnir_volume.meta)
    sx0, sy0, sdx, sdy = _geo_grid(swir_volume.meta)
    wx = _overlap_weights(vx0, vdx, vnir.shape[2], sx0, sdx, swir.shape[2])
    # rows run south: measure them as distance below each grid's top edge
    wy = _overlap_weights(0.0, vdy, vnir.shape[1], vy0 - sy0, sdy, swir.shape[1])
    rows = np.flatnonzero(np.isclose(wy.sum(axis=1), 1.0))
    cols = np.flatnonzero(np.isclose(wx.sum(axis=1), 1.0))
    wy, wx = wy[rows], wx[cols]
    vnir_on_swir = (wy @ vnir) @ wx.T  # (r, y) @ (b, y, x) -> (b, r, x); then columns
    stacked = np.concatenate([vnir_on_swir, swir[:, rows][:, :, cols]], axis=0)
    cube, wavelengths = _to_hyper(stacked, WV3_CENTRES_NM + WV3_SWIR_CENTRES_NM)
    writer.add("assembled:wv3_vnir_swir_128", "hyper", "dgsamples", swir_path, "test", "wv3_vnir_swir_128",
               cube, "CYX", "multispectral", [None, sdy, sdx], "m",
               f"test only, assembled: WV3 VNIR area-averaged to the 7.5 m SWIR grid + SWIR, radiance linearly "
               f"interpolated to {HYPER_BANDS} bands {wavelengths[0]:.1f}-{wavelengths[-1]:.1f} nm; counts of "
               f"1/{HYPER_SCALE:g} W m^-2 sr^-1 um^-1; scene seen in training as 8-band cubes")


def volume_summary(records: Iterable[VolumeRecord]) -> dict[str, dict[str, dict[str, int]]]:
    """``{group: {split: {"files": n, "voxels": v, "bytes": b}}}`` (bytes of raw samples)."""
    summary: dict[str, dict[str, dict[str, int]]] = {}
    for record in records:
        entry = summary.setdefault(record.group, {}).setdefault(record.split, {"files": 0, "voxels": 0, "bytes": 0})
        voxels = int(np.prod(record.shape))
        entry["files"] += 1
        entry["voxels"] += voxels
        entry["bytes"] += voxels * np.dtype(record.dtype).itemsize
    return {group: dict(sorted(splits.items())) for group, splits in sorted(summary.items())}


def build_volume_set(out_dir: Path, overwrite: bool = False) -> list[VolumeRecord]:
    """Write ``out_dir/{ct,mri,ms,hyper}/{train,val,test}/*.npy`` and ``out_dir/manifest.json``.

    Raises :class:`FileExistsError` when ``out_dir`` holds a set and ``overwrite`` is false, and
    :class:`InputError` naming missing packages or sources (with the install command).
    """
    out_dir = Path(out_dir)
    refuse_existing_set(out_dir, overwrite)
    missing = _missing_packages()
    if missing:
        raise InputError(f"missing packages: {', '.join(missing)} (install them: {VOLUME_PACKAGES})")
    _check_sources()
    dg = _dgsamples_dir()
    assert dg is not None
    remove_previous_set(out_dir, ".npy")
    writer = _Writer(out_dir)
    _add_ct(writer)
    _add_mri(writer)
    _add_ms(writer, dg)
    _add_hyper(writer, dg)
    records = sorted(writer.records, key=lambda r: r.file)
    manifest: dict[str, Any] = {
        "description": __doc__.strip().splitlines()[0] if __doc__ else "",
        "set": "volumes",
        "packages": package_versions(sorted({r.package for r in records} | {"nibabel"})),
        "summary": volume_summary(records),
        "records": [dataclasses.asdict(r) for r in records],
    }
    buffer = io.StringIO()
    json.dump(manifest, buffer, indent=2)
    atomic_write_bytes(out_dir / "manifest.json", (buffer.getvalue() + "\n").encode())
    return records
