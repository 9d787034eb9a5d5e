"""`walloc train`: a few steps of a tiny model end to end, export, use, and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from typer.testing import CliRunner

from walloc_cli.cli.app import app


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
    points = card["results"]["points"]
    assert [p["step"] for p in points] == [1.0] and {"bpp", "psnr"} <= set(points[0])
    assert card["training"]["steps"] == 3 and card["training"]["run_config"]["codec"]["decoder_channels"] == 8
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


TINY = ["--decoder-channels", "8", "--decoder-blocks", "1", "--batch", "2", "--crop", "32", "--threads", "1"]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "walloc_cli", *args]


def test_a_config_file_trains_and_options_override_it(folders: Path) -> None:
    config = folders / "run.toml"
    config.write_text(
        'name = "from-config"\ntrain_data = "train"\nval_data = "val"\n'
        "[codec]\nlatent_dim = 6\ndecoder_channels = 8\ndecoder_blocks = 1\n"
        "[train]\nsteps = 2\nbatch = 2\ncrop = 32\nlam = 0.05\nstep_min = 1.0\nstep_max = 4.0\nvalidate_every = 2\n"
    )
    result = CliRunner().invoke(app, ["train", "-c", str(config), "-O", str(folders / "out"), "--steps", "3"])
    assert result.exit_code == 0, result.output
    card = json.loads((folders / "out" / "from-config.json").read_text())
    run = card["training"]["run_config"]
    assert run["codec"]["latent_dim"] == 6 and run["train"]["lam"] == 0.05  # from the file
    assert run["train"]["steps"] == 3 and card["training"]["steps"] == 3  # the option won
    assert card["steps"] == {"min": 1.0, "max": 4.0}
    sidecar = json.loads((folders / "out" / "from-config.ckpt.safetensors.json").read_text())
    assert sidecar["run"] == run  # the checkpoint carries the whole config too
    # a variable-rate model is validated at both ends of its step range and in the middle
    points = card["results"]["points"]
    assert [p["step"] for p in points] == [1.0, 2.0, 4.0]
    assert points[0]["bpp"] > points[2]["bpp"]


def test_a_config_with_an_unknown_key_is_refused_in_one_line(folders: Path) -> None:
    config = folders / "bad.json"
    config.write_text(json.dumps({"name": "x", "train": {"stpes": 3}}))
    result = CliRunner().invoke(app, ["train", "-c", str(config), "-O", str(folders / "out")])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [f"walloc: {config}: unknown config keys: train.stpes"]


def test_killed_training_resumes_to_the_same_weights_as_an_uninterrupted_run(folders: Path) -> None:
    """SIGKILL mid-run (no chance to save), resume: the result is bit-identical to a run never
    interrupted, so nothing beyond the last checkpoint is lost and nothing is repeated wrongly."""
    common = ["train", str(folders / "train"), "--name", "k", "--steps", "300", "--checkpoint-every", "10", *TINY]
    clean = subprocess.run(_cli(*common, "-O", str(folders / "clean")), capture_output=True, text=True, timeout=300)
    assert clean.returncode == 0, clean.stderr
    ckpt = folders / "killed" / "k.ckpt.safetensors"
    sidecar = ckpt.with_name(ckpt.name + ".json")
    process = subprocess.Popen(_cli(*common, "-O", str(folders / "killed")), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline:
        try:
            if json.loads(sidecar.read_text())["step"] >= 50:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL  # it really died mid-run
    killed_at = json.loads(sidecar.read_text())["step"]
    assert 50 <= killed_at < 300
    resumed = subprocess.run(_cli(*common, "-O", str(folders / "killed")), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from {ckpt} at step {killed_at}" in resumed.stdout
    a = load_file(str(folders / "clean" / "k.safetensors"))
    b = load_file(str(folders / "killed" / "k.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_torchrun_with_two_cpu_processes_ends_with_identical_weights(folders: Path) -> None:
    args = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "walloc_cli",
        "train", str(folders / "train"), "--name", "ddp", "-O", str(folders / "out"), "--steps", "4", *TINY,
    ]
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    meta = json.loads((folders / "out" / "ddp.ckpt.safetensors.json").read_text())
    assert meta["world_size"] == 2 and meta["step"] == 4
    digests = meta["rank_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    card = json.loads((folders / "out" / "ddp.json").read_text())
    assert "x 2 processes (DDP)" in card["training"]["hardware"]
    assert result.stdout.count("wrote ") == 1  # rank 0 alone exports


def test_a_gray_model_trains_from_the_cli_and_codes_gray_images(folders: Path) -> None:
    result = _train(folders, 2, "--channels", "1", "--latent-dim", "4")
    assert result.exit_code == 0, result.output
    card = json.loads((folders / "out" / "tiny.json").read_text())
    assert card["config"]["channels"] == 1 and card["reduction"] == 16
    gray = folders / "g.png"
    Image.open(folders / "val" / "p0.png").convert("L").save(gray)
    runner = CliRunner()
    coded = runner.invoke(app, ["compress", str(gray), "-m", str(folders / "out" / "tiny.json"), "--json"])
    assert coded.exit_code == 0, coded.output
    assert json.loads(coded.stdout)["model"] == "tiny"
    colour = runner.invoke(app, ["compress", str(folders / "val" / "p0.png"), "-m", str(folders / "out" / "tiny.json"), "-o", str(folders / "c.wlc")])
    assert colour.exit_code == 1 and "codes gray images; this image has colour" in colour.stderr


def test_fine_tuning_with_a_frozen_encoder_keeps_the_encoder(folders: Path, tmp_path: Path) -> None:
    assert _train(folders, 2).exit_code == 0
    base = folders / "out" / "tiny.json"
    result = _train(folders, 2, "--name", "tuned", "--init", str(base), "--step-max", "3")
    assert result.exit_code == 0, result.output
    config = tmp_path / "frozen.json"
    config.write_text(json.dumps({"name": "frozen", "codec": {"decoder_channels": 8, "decoder_blocks": 1, "step_input": True}, "train": {"init": str(base), "train_encoder": False, "steps": 3, "batch": 2, "crop": 32, "step_max": 3.0}}))
    result = CliRunner().invoke(app, ["train", str(folders / "train"), "-c", str(config), "-O", str(folders / "out")])
    assert result.exit_code == 0, result.output
    before, after = load_file(str(base.with_suffix(".safetensors"))), load_file(str(folders / "out" / "frozen.safetensors"))
    assert torch.equal(before["encoder.weight"], after["encoder.weight"]) and torch.equal(before["encoder.bias"], after["encoder.bias"])
    assert after["decoder.head.weight"].shape[1] == before["decoder.head.weight"].shape[1] + 1  # the step input was added
    assert not torch.equal(before["decoder.tail.weight"], after["decoder.tail.weight"])
