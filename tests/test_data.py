"""`walloc data photos`: the photo set is built from package files, split by name, reproducibly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from walloc_cli.data import photos as datasets
from walloc_cli.cli.app import app


def _fake_sources(folder: Path) -> list[tuple[str, Path]]:
    """Every held-out and validation key, plus two training photos, as small JPEG files."""
    folder.mkdir()
    rng = np.random.default_rng(1)
    keys = sorted(datasets.TEST_PHOTOS | datasets.VALIDATION_PHOTOS) + ["backgrounds:extra_a.jpg", "opencv:extra_b.jpg"]
    sources = []
    for index, key in enumerate(keys):
        path = folder / f"{index}.jpg"
        Image.fromarray(rng.integers(0, 255, (600, 1200, 3), dtype=np.uint8)).save(path)
        sources.append((key, path))
    return sources


def test_the_set_is_split_by_name_and_rebuilds_byte_for_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sources = _fake_sources(tmp_path / "src")
    monkeypatch.setattr(datasets, "_sources", lambda: sources)
    runner = CliRunner()
    result = runner.invoke(app, ["data", "photos", str(tmp_path / "set")])
    assert result.exit_code == 0, result.output
    assert "test 8, train 2, val 2" in result.stdout
    manifest = json.loads((tmp_path / "set" / "manifest.json").read_text())
    splits = {r["key"]: r["split"] for r in manifest["photos"]}
    assert all(splits[k] == "test" for k in datasets.TEST_PHOTOS)
    assert splits["backgrounds:extra_a.jpg"] == "train"
    # wallpapers are downscaled (1200 px wide -> 600), scikit-image photos are kept as they are
    sizes = {r["key"]: r["size"] for r in manifest["photos"]}
    assert sizes["backgrounds:mate/nature/Storm.jpg"] == [600, 300] and sizes["skimage:chelsea.png"] == [1200, 600]
    again = runner.invoke(app, ["data", "photos", str(tmp_path / "set")])
    assert again.exit_code == 1 and "already exists (use -f to rebuild)" in again.stderr
    rebuilt = runner.invoke(app, ["data", "photos", str(tmp_path / "set"), "-f"])
    assert rebuilt.exit_code == 0
    assert json.loads((tmp_path / "set" / "manifest.json").read_text()) == manifest  # same files, same SHA-256


def test_a_missing_package_is_named_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets, "_sources", lambda: [])
    result = CliRunner().invoke(app, ["data", "photos", str(tmp_path / "set")])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "source photos missing: backgrounds:Bridge_by_Sander_Klootwijk.jpg" in lines[0]
    assert "apt-get install lomiri-wallpapers-16.04 mate-backgrounds opencv-doc" in lines[0]
    assert not (tmp_path / "set").exists()


@pytest.mark.parametrize("kind", ["music", "speech"])
def test_audio_sets_are_not_rebuilt_over_an_existing_one(tmp_path: Path, kind: str) -> None:
    (tmp_path / "manifest.json").write_text("{}")
    result = CliRunner().invoke(app, ["data", kind, str(tmp_path)])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("walloc: ") and "manifest.json: already exists (use -f to rebuild)" in lines[0]
