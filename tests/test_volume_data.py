"""Volume set: built from the real packaged data, split by name, byte-identical rebuilds; the
spectral and spatial resampling that assembles the hyperspectral-like cubes; one-line refusals.

The build reads the installed Debian/PyPI data (about 10 s, 170 MB in a temporary folder); it
is skipped, saying which package is missing, where they are not installed.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from walloc_cli.data import volume as volume_data
from walloc_cli.errors import InputError
from walloc_cli.files.volumes import read_volume

_MISSING = volume_data._missing_packages()
needs_packages = pytest.mark.skipif(
    bool(_MISSING), reason=f"volume sources not installed: {', '.join(_MISSING)} ({volume_data.VOLUME_PACKAGES})"
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[volume_data.VolumeRecord]]:
    out = tmp_path_factory.mktemp("volumes")
    return out, volume_data.build_volume_set(out)


@needs_packages
def test_set_is_split_by_name_and_manifest_matches_the_files(built: tuple[Path, list[volume_data.VolumeRecord]]) -> None:
    out, records = built
    by_key = {r.key: r for r in records}
    assert {r.split for r in records if r.group == "hyper"} == {"test"}
    assert by_key["dgsamples:wv2_vnir"].split == "test"  # DESIGN.md: WorldView-2 never trained on
    assert by_key["nilearn:mni_icbm152_t1_2009a"].split == "test"
    assert by_key["mricron:inia19-t1-brain"].split == "val"
    assert {r.key for r in records if r.split == "train" and r.group == "mri"} == {
        "mricron:ch2", "mricron:ch2bet", "mricron:ch2better"
    }
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["set"] == "volumes" and len(manifest["records"]) == len(records) == 15
    assert manifest["packages"]["dgsamples"] and manifest["packages"]["mricron-data"]
    assert manifest["summary"]["mri"]["train"]["files"] == 3
    total = 0
    for record in records:
        path = out / record.file
        assert path.parent.name == record.split and path.parent.parent.name == record.group
        assert hashlib.sha256(path.read_bytes()).hexdigest() == record.sha256
        array = np.load(path, mmap_mode="r")
        assert list(array.shape) == record.shape and array.dtype.name == record.dtype
        assert record.axes in ("ZYX", "CYX")
        total += path.stat().st_size
    assert total < 300 * 2**20


@needs_packages
def test_ct_halves_are_the_whole_cranium_in_hounsfield_units(built: tuple[Path, list[volume_data.VolumeRecord]]) -> None:
    out, records = built
    ct = {r.split: r for r in records if r.group == "ct"}
    train, val, test = (np.load(out / ct[split].file) for split in ("train", "val", "test"))
    assert train.shape == (66, 256, 256) and val.shape == (10, 256, 256) and test.shape == (32, 256, 256)
    assert train.dtype == np.int16
    with tarfile.open(volume_data.CRANIUM, "r:gz") as tar:
        raw = next(tar.extractfile(m) for m in tar.getmembers() if m.name.endswith("matrix.dat")).read()
    whole = np.frombuffer(raw, "<i2").reshape(108, 256, 256)
    np.testing.assert_array_equal(np.concatenate([train, val, test]), whole)
    assert whole.min() == -1024 and ct["train"].spacing == pytest.approx([1.5, 0.957031, 0.957031])
    assert read_volume(out / ct["train"].file, axes="ZYX").kind == "ct"


@needs_packages
def test_hyper_cubes_interpolate_measured_radiance(built: tuple[Path, list[volume_data.VolumeRecord]]) -> None:
    out, records = built
    hyper = {r.key: r for r in records if r.group == "hyper"}
    cube = np.load(out / hyper["assembled:wv2_vnir_128"].file, mmap_mode="r")
    assert cube.shape == (128, 501, 500) and cube.dtype == np.uint16
    source = np.load(out / next(r.file for r in records if r.key == "dgsamples:wv2_vnir"))
    imd = next(Path(hyper["assembled:wv2_vnir_128"].source).parent.glob("*.IMD"))
    factors = volume_data._imd_radiance_factors(imd)
    # the first and last bands sit exactly on the first and last band centres
    for band, source_band in ((0, 0), (127, 7)):
        expected = np.rint(source[source_band] * factors[source_band] * volume_data.HYPER_SCALE)
        np.testing.assert_array_equal(cube[band], expected.astype(np.uint16))
    assert read_volume(out / hyper["assembled:wv2_vnir_128"].file).axes == "ZYX"  # 128 > 64: by the rule
    swir = np.load(out / hyper["assembled:wv3_vnir_swir_128"].file, mmap_mode="r")
    assert swir.shape == (128, 132, 132) and int(swir.min()) > 0


@needs_packages
def test_rebuild_is_byte_identical_and_needs_overwrite(built: tuple[Path, list[volume_data.VolumeRecord]]) -> None:
    out, records = built
    with pytest.raises(FileExistsError, match="use -f to rebuild"):
        volume_data.build_volume_set(out)
    (out / "ct" / "train" / "stale.npy").write_bytes(b"not from the set")  # not in the manifest: kept
    again = volume_data.build_volume_set(out, overwrite=True)
    assert [(r.file, r.sha256) for r in again] == [(r.file, r.sha256) for r in records]
    assert (out / "ct" / "train" / "stale.npy").exists()


def test_spectral_weights_are_linear_interpolation() -> None:
    weights, wavelengths = volume_data._spectral_weights([400.0, 500.0, 700.0], 5)
    np.testing.assert_allclose(wavelengths, [400, 475, 550, 625, 700])
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    np.testing.assert_allclose(weights[1], [0.25, 0.75, 0.0])
    np.testing.assert_allclose(weights[2], [0.0, 0.75, 0.25])
    np.testing.assert_allclose(weights[[0, 4]], [[1, 0, 0], [0, 0, 1]])


def test_overlap_weights_average_fine_pixels_into_coarse_ones() -> None:
    # fine cells of 1.2 from 0; coarse cells of 3.0 from -1.0: the first is only partly covered
    weights = volume_data._overlap_weights(0.0, 1.2, 10, -1.0, 3.0, 5)
    assert weights.shape == (5, 10)
    np.testing.assert_allclose(weights.sum(axis=1), [2.0 / 3.0, 1.0, 1.0, 1.0, 1.0 / 3.0])
    # coarse cell [2, 5) holds 0.4 of fine cell [1.2, 2.4), two whole cells and 0.2 of [4.8, 6)
    np.testing.assert_allclose(weights[1, :5], [0.0, 0.4 / 3, 0.4, 0.4, 0.2 / 3])
    constant = weights[1:4] @ np.full(10, 7.0)
    np.testing.assert_allclose(constant, 7.0)


def test_refusals_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "manifest.json").write_text("{}")
    monkeypatch.setattr(volume_data, "_missing_packages", lambda: ["mricron-data"])
    with pytest.raises(FileExistsError):  # an existing set is refused before packages are looked for
        volume_data.build_volume_set(tmp_path)
    with pytest.raises(InputError, match=r"missing packages: mricron-data \(install them: apt-get"):
        volume_data.build_volume_set(tmp_path / "new")
    assert not (tmp_path / "new").exists()
    with pytest.raises(InputError, match="expected 8 band calibrations"):
        (tmp_path / "x.IMD").write_text("BEGIN_GROUP = BAND_C\n absCalFactor = 1;\n effectiveBandwidth = 2;\n")
        volume_data._imd_radiance_factors(tmp_path / "x.IMD")
