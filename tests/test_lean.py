"""The torch-free runtime (walloc_cli.model.lean) against the torch reference, on every shipped model.

* the packet transform equals walloc_cli.model.wpt (lifting and fast paths, 1-D to 3-D);
* latents: bit-exact against the torch network encoding in float64 (TorchRuntime), on real
  signals and noise, at several steps; against today's float32 torch path the only differences
  allowed are indices whose value sits at a half-integer within float32 rounding;
* decoded samples within 1e-4 of the torch network's;
* the codecs' commands run with torch unimportable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from walloc_cli.errors import ModelError
from walloc_cli.files.images import read_image
from walloc_cli.model import lean_wpt, wpt
from walloc_cli.model.lean import LeanCodec, erf
from walloc_cli.model.runtime import TorchRuntime, runtime_name
from walloc_cli.model.zoo import available_models, load_model, load_network

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "formats" / "reference"
MODELS = sorted(card.name for card in available_models())


def _signals(name: str) -> list[np.ndarray]:
    """Real signals of the model's kind, ``(C, *S)`` float32 in about [-0.5, 0.5], plus noise."""
    card = load_model(name)[1]
    cfg = card.config
    rng = np.random.default_rng(7)
    if cfg.dims == 2:
        photo = read_image(ROOT / "samples" / "photo.png").float_pixels()[:, :200, :264]
        real = photo if cfg.channels == 3 else photo.mean(axis=0, keepdims=True)
        noise = rng.uniform(-0.5, 0.5, (cfg.channels, 61, 83))
    elif cfg.dims == 1:
        wav = "mono-8k-4001.src.wav" if "8k" in name else "stereo-44k-70000.src.wav"
        samples, _ = sf.read(REFERENCE / "audio" / wav, dtype="float64", always_2d=True)
        real = (samples[:20000, :1].T / (2 * np.abs(samples).max()))
        noise = rng.uniform(-0.5, 0.5, (1, 3001))
        return [real.astype(np.float32), noise.astype(np.float32)]
    else:
        source = "ct-int16-20x136x40" if name.startswith("ct") else "ms-uint16-8x48x56"
        volume = np.load(REFERENCE / "volume" / f"{source}.src.npy").astype(np.float64)
        real = ((volume - volume.mean()) / (6 * volume.std()))[None]
        noise = rng.uniform(-0.5, 0.5, (1, 13, 30, 22))
        return [real.astype(np.float32), noise.astype(np.float32)]
    return [np.ascontiguousarray(real - 0.5, np.float32), noise.astype(np.float32)]


@pytest.mark.parametrize("levels", [1, 2, 3, 5])
@pytest.mark.parametrize("shape", [(2, 4096), (1, 48, 200), (3, 304, 96), (1, 24, 40, 320)])
def test_packet_transform_equals_the_torch_module(levels: int, shape: tuple[int, ...]) -> None:
    step = 2**levels
    shape = (shape[0], *(-(-s // step) * step for s in shape[1:]))
    x = np.random.default_rng(1).standard_normal(shape)
    reference = wpt.wpt(torch.from_numpy(x)[None], levels)[0].numpy()  # (C B^d, *S')
    ours = lean_wpt.wpt(x, levels)  # (*S', C B^d)
    np.testing.assert_allclose(np.moveaxis(ours, -1, 0), reference, atol=1e-12)
    coeffs = np.random.default_rng(2).standard_normal(reference.shape)
    back = wpt.iwpt(torch.from_numpy(coeffs)[None], levels)[0].numpy()
    np.testing.assert_allclose(lean_wpt.iwpt(np.moveaxis(coeffs, 0, -1), shape[0], levels), back, atol=1e-12)


def test_periodic_boundary_goes_through_lifting_as_the_torch_module_does() -> None:
    x = np.random.default_rng(3).standard_normal((1, 64, 80))
    reference = wpt.wpt(torch.from_numpy(x)[None], 2, "periodic")[0].numpy()
    np.testing.assert_allclose(np.moveaxis(lean_wpt.wpt(x, 2, "periodic"), -1, 0), reference, atol=1e-12)


def test_erf_is_exact_to_float64_rounding() -> None:
    import math

    x = np.concatenate([np.linspace(-7, 7, 20001), np.random.default_rng(4).standard_normal(20000) * 0.3])
    expected = np.array([math.erf(v) for v in x])
    assert np.abs(erf(x) - expected).max() < 1e-15


@pytest.mark.parametrize("name", MODELS)
def test_latents_are_bit_exact_and_decoding_within_1e4_of_torch(name: str) -> None:
    lean, card = load_model(name, "lean")
    reference = load_model(name, "torch")[0]
    network = load_network(name)[0]
    assert isinstance(lean, LeanCodec) and isinstance(reference, TorchRuntime)
    for x in _signals(name):
        u = lean.companded(x[None])
        np.testing.assert_allclose(u, reference.companded(x[None]), rtol=0, atol=1e-10)
        with torch.no_grad():
            u32 = network.companded(torch.from_numpy(x)[None]).numpy()
        for step in (1.0, 0.37, 2.5):
            q = lean.quantize(u, step)
            assert q.dtype == np.int32
            np.testing.assert_array_equal(q, reference.quantize(reference.companded(x[None]), step))
            # today's float32 path: equal but where float32 rounding straddles a half-integer
            q32 = network.quantize(torch.from_numpy(u32), step).numpy()
            differ = q != q32
            fraction = np.abs(u[differ] / step - np.floor(u[differ] / step) - 0.5)
            assert np.all(fraction < 1e-4), (name, step, fraction.max())
            assert differ.mean() < 1e-4
        spatial = x.shape[1:]
        step = 0.8
        q = lean.quantize(u, step)
        for condition in (None, 1.0):
            decoded = lean.decode(q, spatial, step, condition)
            assert decoded.dtype == np.float32 and decoded.shape == (1, card.config.channels, *spatial)
            with torch.no_grad():
                expected = network.decode(torch.from_numpy(q), spatial, step, condition).numpy()
            assert np.abs(decoded - expected).max() < 1e-4


def test_runtime_is_chosen_by_argument_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WALLOC_RUNTIME", raising=False)
    assert runtime_name() == "lean" and runtime_name("torch") == "torch"
    monkeypatch.setenv("WALLOC_RUNTIME", "torch")
    assert runtime_name() == "torch" and isinstance(load_model("rgb-16x")[0], TorchRuntime)
    monkeypatch.setenv("WALLOC_RUNTIME", "onnx")
    with pytest.raises(ModelError, match="unknown runtime 'onnx'"):
        load_model("rgb-16x")


def test_weights_that_do_not_fit_the_config_raise(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    from walloc_cli.model.zoo import sha256_file

    card = json.loads((ROOT / "models" / "rgb-16x.json").read_text())
    save_file({"encoder.weight": np.zeros((2, 2, 1, 1), np.float32)}, str(tmp_path / "bad.safetensors"))
    card.update(name="bad", weights="bad.safetensors", sha256=sha256_file(tmp_path / "bad.safetensors"))
    (tmp_path / "bad.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="do not fit"):
        load_model(str(tmp_path / "bad.json"), "lean")


def test_the_codecs_and_the_lean_runtime_import_no_torch() -> None:
    modules = ["walloc_cli.model.lean", "walloc_cli.model.lean_wpt", "walloc_cli.model.runtime", "walloc_cli.model.zoo",
               "walloc_cli.codecs.image", "walloc_cli.codecs.audio", "walloc_cli.codecs.volume", "walloc_cli.api.arrays",
               "walloc_cli.api.files", "walloc_cli.api.latents", "walloc_cli.api.verify"]
    code = f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\nprint(sorted({{'torch', 'safetensors.torch'}} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


_NO_TORCH = """
import runpy, sys
sys.modules["torch"] = None  # import torch now raises ImportError
sys.argv = ["walloc", *sys.argv[1:]]
runpy.run_module("walloc_cli", run_name="__main__")
"""


def test_commands_run_with_torch_unimportable(tmp_path: Path) -> None:
    """compress, decompress, info, verify and latents of a photo, a music file and a volume."""
    import shutil

    shutil.copy(ROOT / "samples" / "photo.png", tmp_path / "photo.png")
    shutil.copy(REFERENCE / "audio" / "stereo-44k-70000.src.wav", tmp_path / "music.wav")
    np.save(tmp_path / "ct.npy", np.load(REFERENCE / "volume" / "ct-int16-20x136x40.src.npy"))
    script = tmp_path / "no_torch.py"
    script.write_text(_NO_TORCH)
    commands = []
    for name, out in (("photo.png", "back.png"), ("music.wav", "back.wav"), ("ct.npy", "back.npy")):
        wlc = str(tmp_path / Path(name).with_suffix(".wlc").name)
        commands += [["compress", str(tmp_path / name)], ["decompress", wlc, "-o", str(tmp_path / out)], ["info", wlc], ["verify", wlc], ["latents", wlc, "-O", str(tmp_path / "latents")]]
    for command in commands:
        done = subprocess.run([sys.executable, str(script), *command], capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 0, (command, done.stdout, done.stderr)
        assert "torch" not in done.stderr, (command, done.stderr)
    assert read_image(tmp_path / "back.png").width == 451
    assert sf.info(str(tmp_path / "back.wav")).frames == 70000
    assert np.load(tmp_path / "back.npy").shape == (20, 136, 40)


RACE = """
import threading
from walloc_cli.model.lean_wpt import in_parallel

barrier = threading.Barrier(8)
errors = []

def run():
    barrier.wait()  # all eight ask for the (not yet decided) worker pool at once
    try:
        in_parallel(1000, lambda lo, hi: None)
    except Exception as error:
        errors.append(repr(error))

threads = [threading.Thread(target=run) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(len(errors))
"""


def test_the_worker_pool_is_decided_once_when_threads_ask_at_once() -> None:
    """Zarr and Dask call the codecs from several threads: the first calls of a fresh process
    must not each build a pool and shut down the one another thread is submitting to
    ("cannot schedule new futures after shutdown"; 1-2 of 8 threads failed before the lock)."""
    root = Path(__file__).resolve().parents[1]
    for _ in range(3):  # a fresh interpreter each time: the race is in the first decision
        result = subprocess.run([sys.executable, "-c", RACE], capture_output=True, text=True, timeout=120, cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["0"]
