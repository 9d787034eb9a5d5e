"""Latents without decoding (walloc_cli.api.latents) and the ``walloc latents`` command.

What is asserted: the latents read from a file are exactly the indices the encoder produced;
reading never loads model weights; dequantisation is the exact inverse of the companding; audio
blocks line up along time; unknown modalities and damaged files fail with one clear message.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from walloc_cli.api import arrays as library

from walloc_cli.model import zoo as registry
from walloc_cli.cli.app import app
from walloc_cli.format.container import Chunk, dumps, loads
from walloc_cli.format.header import tight_bits
from walloc_cli.errors import FormatError, InputError
from walloc_cli.files.images import image_from_array
from walloc_cli.api.latents import (
    audio_timeline,
    dequantize,
    export_npy,
    read_latents,
)
from walloc_cli.model.config import index_bits
from walloc_cli.model.zoo import load_model, load_network
from walloc_cli.model.wpt import pad_to_multiple, wpt_project


def photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8: smooth colour fields plus a little texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / 16.0
    planes = [0.5 + 0.3 * np.sin(x + 1.7 * y + k) + 0.05 * rng.standard_normal((height, width)) for k in range(3)]
    return np.rint(np.clip(np.stack(planes, -1), 0, 1) * 255).astype(np.uint8)


def encoder_indices(array: np.ndarray, model: str, step: float) -> np.ndarray:
    """What the model's encoder gives for ``array``, prepared as encode_image prepares it."""
    codec, _ = load_model(model)
    x = image_from_array(array).float_pixels()[None] - np.float32(0.5)
    return codec.encode(x, step)[0]


@pytest.mark.parametrize("model, quality", [("rgb-16x-v", 20.0), ("rgb-2x-v", 100.0)])  # 8-bit and 10-bit indices
def test_read_latents_equals_the_encoder_indices(model: str, quality: float) -> None:
    array = photo(37, 50)
    data = library.compress(array, model=model, quality=quality)
    q, info = read_latents(data)
    assert info.modality == "image" and info.model == model
    expected = encoder_indices(array, model, info.step)
    assert q.dtype == np.int32 and q.shape == expected.shape == (info.latent_dim, 5, 7)
    np.testing.assert_array_equal(q, expected)
    model_bits = index_bits(int(info.codec["bits"]), info.step)
    assert model_bits == load_model(model)[0].index_bits(info.step)
    assert info.bits == tight_bits(expected, model_bits)  # format 1.3: the bits the indices need
    if model == "rgb-2x-v":
        assert model_bits > 8 and info.bits == 8  # |k| < 128: one byte plane, not the model's two


def test_reading_never_loads_weights(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    data = library.compress(photo(24, 24), model="rgb-16x-v")
    expected, _ = read_latents(data)
    (tmp_path / "x.wlc").write_bytes(data)

    def refuse(*args: object) -> None:
        raise AssertionError("read_latents loaded model weights")

    monkeypatch.setattr(registry, "_load", refuse)
    for source in (data, tmp_path / "x.wlc", str(tmp_path / "x.wlc"), io.BytesIO(data)):
        q, _ = read_latents(source)
        np.testing.assert_array_equal(q, expected)


def test_dequantize_inverts_the_companding() -> None:
    array = photo(32, 40, seed=3)
    data = library.compress(array, model="rgb-16x-v", quality=10)  # a step above 1
    q, info = read_latents(data)
    assert info.step > 1
    z = dequantize(q, info)
    assert z.dtype == np.float32 and z.shape == q.shape
    codec, _ = load_network("rgb-16x-v")
    # exact inverse: companding z gives back index * step
    np.testing.assert_allclose(codec.compand(torch.from_numpy(z.astype(np.float64))).numpy(), q * info.step, atol=1e-4)
    # and z is the encoder's output up to the quantisation error (slope >= 1 away from saturation)
    x = torch.from_numpy(image_from_array(array).float_pixels())[None] - 0.5
    padded, _ = pad_to_multiple(x, codec.cfg.levels)
    with torch.no_grad():
        z_true = wpt_project(padded, codec.cfg.levels, codec.encoder.weight, codec.encoder.bias, codec.cfg.boundary)[0].numpy()
    inner = np.abs(q * info.step) < info.qmax / 2
    assert inner.mean() > 0.9
    assert np.max(np.abs(z - z_true)[inner]) <= 1.5 * info.step
    assert np.mean(np.abs(z - z_true)[inner]) <= info.step / 2


def music(tmp_path: Path, frames: int) -> Path:
    t = np.arange(frames) / 44100
    left = 0.4 * np.sin(2 * np.pi * 440 * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))
    right = 0.3 * np.sin(2 * np.pi * 660 * t + 1)
    path = tmp_path / "tone.wav"
    sf.write(path, np.stack([left, right], 1), 44100, subtype="PCM_16")
    return path


def test_audio_latents_per_block_and_along_time(tmp_path: Path) -> None:
    frames = 70000  # two blocks of 65536
    data = library.compress(music(tmp_path, frames), quality=50)
    blocks, info = read_latents(data)
    assert info.modality == "audio" and isinstance(blocks, list) and len(blocks) == 2 == len(info.blocks)
    assert info.block == 32
    for q, where in zip(blocks, info.blocks):
        assert q.dtype == np.int32 and q.shape == (2, info.latent_dim, math.ceil(where.extent / 32))  # mid/side
    assert [b.first for b in info.blocks] == [0, 65536] and info.blocks[1].lead == 1024
    timeline = audio_timeline(blocks, info)
    assert timeline.shape == (2, info.latent_dim, math.ceil(frames / 32))
    np.testing.assert_array_equal(timeline[..., :2048], blocks[0][..., :2048])
    np.testing.assert_array_equal(timeline[..., 2048:], blocks[1][..., 32 : 32 + math.ceil(4464 / 32)])


def test_unknown_modality_and_damage_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="modality 'hologram' is not supported"):
        read_latents(dumps({"modality": "hologram"}, [Chunk("LATN", b"x")]))
    with pytest.raises(FormatError, match="invalid header"):  # a volume header missing its tables
        read_latents(dumps({"modality": "volume"}, [Chunk("VOLT", b"x")]))
    data = library.compress(photo(16, 16), model="rgb-16x-v")
    with pytest.raises(FormatError, match="truncated"):
        read_latents(data[:-20])
    header, chunks = loads(data)
    header["latent"]["shape"] = [12, 3, 2]
    with pytest.raises(FormatError, match="latent shape"):
        read_latents(dumps(header, chunks))
    with pytest.raises(InputError, match="no such file"):
        read_latents(tmp_path / "missing.wlc")


def test_export_npy_is_atomic_and_refuses_to_overwrite(tmp_path: Path) -> None:
    src = tmp_path / "a.wlc"
    src.write_bytes(library.compress(photo(24, 40), model="rgb-16x-v"))
    array, info = export_npy(src, tmp_path / "a.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), read_latents(src)[0])
    with pytest.raises(FileExistsError):
        export_npy(src, tmp_path / "a.npy", dequantized=True)
    assert np.load(tmp_path / "a.npy").dtype == np.int32  # untouched
    export_npy(src, tmp_path / "a.npy", dequantized=True, overwrite=True)
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), dequantize(array, info))
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_cli_latents(tmp_path: Path) -> None:
    runner = CliRunner()
    image = tmp_path / "in" / "photo.wlc"
    image.parent.mkdir()
    image.write_bytes(library.compress(photo(40, 48), model="rgb-16x-v"))
    audio = tmp_path / "in" / "tone.wlc"
    audio.write_bytes(library.compress(music(tmp_path, 3000), quality=50))
    (tmp_path / "in" / "bad.wlc").write_bytes(b"not a wlc file at all")
    out = tmp_path / "out"
    result = runner.invoke(app, ["latents", str(image), str(audio), str(tmp_path / "in" / "bad.wlc"), "-O", str(out)])
    assert result.exit_code == 1
    assert "bad.wlc: not a .wlc file (bad signature)" in result.output
    assert "Traceback" not in result.output
    assert np.load(out / "photo.npy").shape == (12, 5, 6)
    assert np.load(out / "tone.npy").shape == (2, 8, math.ceil(3000 / 32))
    assert not (out / "bad.npy").exists()
    again = runner.invoke(app, ["latents", str(image), "-O", str(out), "--dequantize"])
    assert again.exit_code == 1 and "already exists (use -f to overwrite)" in again.output
    forced = runner.invoke(app, ["latents", str(image), "-O", str(out), "--dequantize", "-f"])
    assert forced.exit_code == 0, forced.output
    assert np.load(out / "photo.npy").dtype == np.float32
    (tmp_path / "file").write_bytes(b"")
    not_a_folder = runner.invoke(app, ["latents", str(image), "-O", str(tmp_path / "file")])
    assert not_a_folder.exit_code == 1 and "exists and is not a folder" in not_a_folder.output
