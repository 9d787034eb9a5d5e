"""`walloc train`: a few steps of a tiny model end to end, export, use, and resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors.torch import load_file
from typer.testing import CliRunner

from walloc_cli.cli import app


def _photos(folder: Path, count: int = 2) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:72]
    for index in range(count):
        base = 128 + 60 * np.sin(xx / (5 + index)) * np.cos(yy / 7)
        rgb = np.stack([base, base * 0.8 + 20, 255 - base], axis=-1) + rng.normal(0, 4, (64, 72, 3))
        Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(folder / f"p{index}.png")
    return folder


def _train(tmp_path: Path, steps: int, *extra: str):
    args = [
        "train", str(tmp_path / "train"), "--name", "tiny", "-O", str(tmp_path / "out"), "--val", str(tmp_path / "val"),
        "--decoder-channels", "8", "--decoder-blocks", "1", "--steps", str(steps), "--batch", "2", "--crop", "32",
        "--validate-every", "2", *extra,
    ]
    return CliRunner().invoke(app, args)


@pytest.fixture()
def folders(tmp_path: Path) -> Path:
    _photos(tmp_path / "train")
    _photos(tmp_path / "val", 1)
    return tmp_path


def test_train_exports_a_model_that_compress_and_decompress_use(folders: Path) -> None:
    result = _train(folders, 3)
    assert result.exit_code == 0, result.output
    card = json.loads((folders / "out" / "tiny.json").read_text())
    assert card["config"]["decoder_channels"] == 8 and card["modality"] == "image"
    assert set(card["results"]) == {"bpp", "psnr"}
    weights = load_file(str(folders / "out" / "tiny.safetensors"))
    assert not any(k.startswith("density.") for k in weights)  # training-only parts stay out
    src = folders / "val" / "p0.png"
    runner = CliRunner()
    compressed = runner.invoke(app, ["compress", str(src), "-m", str(folders / "out" / "tiny.json"), "-o", str(folders / "x.wlc")])
    assert compressed.exit_code == 0, compressed.output
    plain = runner.invoke(app, ["decompress", str(folders / "x.wlc"), "-o", str(folders / "y.png")])
    assert plain.exit_code == 1 and "not installed" in plain.stderr  # not a shipped model
    decoded = runner.invoke(app, ["decompress", str(folders / "x.wlc"), "-o", str(folders / "y.png"), "-m", str(folders / "out" / "tiny.json")])
    assert decoded.exit_code == 0, decoded.output
    assert Image.open(folders / "y.png").size == (72, 64)


def test_train_resumes_from_its_checkpoint(folders: Path) -> None:
    assert _train(folders, 2).exit_code == 0
    checkpoint = folders / "out" / "tiny.ckpt.safetensors"
    first = json.loads(checkpoint.with_name(checkpoint.name + ".json").read_text())
    assert first["step"] == 2
    before = load_file(str(checkpoint))
    result = _train(folders, 4, "-f")
    assert result.exit_code == 0, result.output
    second = json.loads(checkpoint.with_name(checkpoint.name + ".json").read_text())
    assert second["step"] == 4  # continued from step 2, not restarted
    assert any("optim." in k for k in before)  # optimiser state is in the checkpoint
    assert len(second["history"]) >= len(first["history"])


def test_train_refuses_to_overwrite_an_exported_model(folders: Path) -> None:
    assert _train(folders, 1).exit_code == 0
    result = _train(folders, 2)
    assert result.exit_code == 1
    assert "already exists" in result.stderr


def test_train_on_an_empty_folder_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    result = CliRunner().invoke(app, ["train", str(tmp_path / "train"), "--name", "x", "-O", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [f"walloc: {tmp_path / 'train'}: no images in {tmp_path / 'train'}"]
