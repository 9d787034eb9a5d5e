"""The built wheel works on its own: installed into a fresh venv and run outside the source tree.

pyproject.toml lists the packages explicitly, so a new sub-package left out of that list is left
out of the wheel, while every in-tree test still passes (they import the checkout). This test
builds the wheel from a clean copy of the checkout, installs it with ``--no-deps`` into a fresh
venv (``--system-site-packages``: torch, numpy, Pillow... come from this machine, nothing is
downloaded), and from a temporary folder

- checks the wheel holds every package folder of the checkout (each folder with an
  ``__init__.py`` under ``walloc_cli/``, found here, not listed by hand), every module, and the
  shipped models (package data);
- imports ``walloc_cli`` and every sub-package with the venv's Python in isolated mode and checks
  each comes from the venv: an editable install of walloc in the system site-packages would
  otherwise fill in a missing package from another checkout without a word;
- checks ``import walloc_cli`` does not import torch;
- runs the venv's ``walloc`` console script to compress and decompress a photo, an audio file
  and a volume, and checks the decoded quality.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
# Left out of the build copy: version control, earlier build output (a stale build/lib would leak
# deleted modules into the wheel), caches, and top-level work folders.
NOT_COPIED = {".git", "build", "dist", "runs", "data", ".pytest_cache", ".hypothesis"}


def package_folders() -> list[str]:
    """Dotted names of the checkout's packages: every folder with an ``__init__.py`` under walloc_cli/."""
    root = REPO / "walloc_cli"
    return sorted(".".join(init.parent.relative_to(REPO).parts) for init in root.rglob("__init__.py") if "__pycache__" not in init.parts)


def clean_env() -> dict[str, str]:
    """This environment without anything that would point Python at the checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != "VIRTUAL_ENV"}
    return {**env, "OMP_NUM_THREADS": "1", "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def run(command: list[str | Path], cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(c) for c in command], cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{command} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Build the wheel, make a fresh venv and install the wheel into it: {"wheel", "venv", "work"}."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "src"

    def ignore(folder: str, names: list[str]) -> set[str]:
        top = Path(folder).resolve() == REPO
        return {n for n in names if n == "__pycache__" or n.endswith(".egg-info") or (top and n in NOT_COPIED)}

    shutil.copytree(REPO, source, ignore=ignore)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", base / "dist", "."], cwd=source)
    (wheel,) = (base / "dist").glob("walloc-*.whl")
    venv = base / "venv"
    run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv], cwd=base)
    # This machine's pip installs into the venv's interpreter (--python); --force-reinstall
    # because the system site-packages (visible to the venv) already has walloc, editable.
    run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--no-deps", "--force-reinstall", wheel], cwd=base)
    work = base / "work"  # outside the checkout, and not the folder the wheel was built in
    work.mkdir()
    return {"wheel": wheel, "venv": venv, "work": work}


def test_the_wheel_holds_every_package_module_and_model(installed: dict[str, Path]) -> None:
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    packages = package_folders()
    assert {"walloc_cli", "walloc_cli.format", "walloc_cli.model", "walloc_cli.files", "walloc_cli.codecs", "walloc_cli.api", "walloc_cli.cli", "walloc_cli.data", "walloc_cli.train", "walloc_cli.eval"} <= set(packages)
    missing = [p for p in packages if p.replace(".", "/") + "/__init__.py" not in names]
    assert not missing, f"packages missing from the wheel (add them to pyproject.toml's packages): {missing}"
    modules = sorted(str(p.relative_to(REPO)) for p in (REPO / "walloc_cli").rglob("*.py") if "__pycache__" not in p.parts)
    assert not [m for m in modules if m not in names], "modules missing from the wheel"
    shipped = sorted(p.name for p in (REPO / "models").iterdir() if p.suffix in (".json", ".safetensors"))
    assert shipped and [n for n in shipped if f"walloc_cli/models/{n}" not in names] == []
    assert any(n.endswith(".dist-info/entry_points.txt") for n in names)


def test_every_package_imports_from_the_venv_and_walloc_cli_imports_no_torch(installed: dict[str, Path]) -> None:
    venv = installed["venv"]
    packages = package_folders() + ["walloc_cli.models"]
    code = (
        "import importlib, json, sys\n"
        "import walloc_cli\n"
        "torch_after_package = 'torch' in sys.modules\n"
        f"found = {{name: list(getattr(importlib.import_module(name), '__path__', [])) for name in {packages!r}}}\n"
        "from walloc_cli.model.zoo import models_dir\n"
        "print(json.dumps({'file': walloc_cli.__file__, 'torch': torch_after_package, 'paths': found,"
        " 'models': str(models_dir()), 'cards': sorted(c.name for c in __import__('walloc_cli.model.zoo', fromlist=['x']).available_models())}))\n"
    )
    # -I: no PYTHONPATH, no user site, no script folder or cwd on sys.path.
    done = run([venv / "bin" / "python", "-I", "-c", code], cwd=installed["work"])
    seen = json.loads(done.stdout)
    inside = str(venv.resolve()) + os.sep
    assert str(Path(seen["file"]).resolve()).startswith(inside), f"walloc_cli came from {seen['file']}, not the venv"
    assert not seen["torch"], "import walloc_cli imported torch"
    elsewhere = {name: paths for name, paths in seen["paths"].items() if not paths or any(not str(Path(p).resolve()).startswith(inside) for p in paths)}
    assert not elsewhere, f"sub-packages not (only) from the wheel: {elsewhere}"
    assert str(Path(seen["models"]).resolve()).startswith(inside)
    assert seen["cards"] == sorted(p.stem for p in (REPO / "models").glob("*.json"))


def psnr(reference: np.ndarray, decoded: np.ndarray, peak: float) -> float:
    error = np.mean((reference.astype(np.float64) - decoded.astype(np.float64)) ** 2)
    return 10 * math.log10(peak**2 / error)


def test_the_console_script_round_trips_a_photo_an_audio_file_and_a_volume(installed: dict[str, Path]) -> None:
    work, walloc = installed["work"], installed["venv"] / "bin" / "walloc"
    shutil.copy(REPO / "samples" / "photo.png", work / "photo.png")
    shutil.copy(REPO / "formats" / "reference" / "audio" / "mono-8k-4001.src.wav", work / "speech.wav")  # 0.5 s of 8 kHz speech
    shutil.copy(REPO / "formats" / "reference" / "volume" / "ct-int16-20x136x40.src.npy", work / "ct.npy")  # a head CT crop
    run([walloc, "compress", "photo.png", "speech.wav", "ct.npy"], cwd=work)
    run([walloc, "decompress", "-O", "back", "photo.wlc", "speech.wlc", "ct.wlc"], cwd=work)
    photo, back = np.asarray(Image.open(work / "photo.png").convert("RGB")), np.asarray(Image.open(work / "back" / "photo.png"))
    assert back.shape == photo.shape and psnr(photo, back, 255) > 33  # measured 37.1 dB at the default q 75
    speech, rate = sf.read(work / "speech.wav")
    decoded, decoded_rate = sf.read(work / "back" / "speech.wav")
    assert decoded_rate == rate and decoded.shape == speech.shape
    assert 10 * math.log10(np.sum(speech**2) / np.sum((speech - decoded) ** 2)) > 17  # SNR, measured 20.8 dB
    volume, restored = np.load(work / "ct.npy"), np.load(work / "back" / "ct.npy")
    assert restored.dtype == volume.dtype and restored.shape == volume.shape
    assert psnr(volume, restored, float(volume.max()) - float(volume.min())) > 37  # measured 40.8 dB over the range


def test_zarr_finds_the_codec_through_the_installed_entry_points(installed: dict[str, Path]) -> None:
    """After installing the wheel, an array written with the codec reads back in a fresh process
    that only imports zarr: numcodecs (Zarr v2 format) and Zarr v3 resolve "walloc" from the
    entry points, nothing registered by hand."""
    pytest.importorskip("numcodecs")
    pytest.importorskip("zarr")
    venv, work = installed["venv"], installed["work"]
    shutil.copy(REPO / "formats" / "reference" / "volume" / "ct-int16-20x136x40.src.npy", work / "ct.npy")
    write = (
        "import numpy as np, zarr, numcodecs\n"
        "ct = np.load('ct.npy')\n"
        "assert type(numcodecs.get_codec({'id': 'walloc'})).__module__ == 'walloc_cli.api.zarr_codec'\n"
        "zarr.create_array('v2.zarr', shape=ct.shape, chunks=(20, 64, 40), dtype=ct.dtype, zarr_format=2, compressors=numcodecs.get_codec({'id': 'walloc', 'quality': 75}))[:] = ct\n"
        "from zarr.registry import get_codec_class\n"
        "codec = get_codec_class('walloc').from_dict({'name': 'walloc', 'configuration': {'quality': 75}})\n"
        "zarr.create_array('v3.zarr', shape=ct.shape, chunks=(20, 64, 40), dtype=ct.dtype, serializer=codec, compressors=None)[:] = ct\n"
    )
    run([venv / "bin" / "python", "-I", "-W", "ignore", "-c", write], cwd=work)
    read = (
        "import json, numpy as np, zarr\n"
        "print(json.dumps([zarr.open_array(p, mode='r')[:].tolist() for p in ('v2.zarr', 'v3.zarr')]))\n"
    )
    v2, v3 = (np.array(a, np.int16) for a in json.loads(run([venv / "bin" / "python", "-I", "-W", "ignore", "-c", read], cwd=work).stdout))
    volume = np.load(work / "ct.npy")
    assert np.array_equal(v2, v3) and v2.shape == volume.shape
    assert psnr(volume, v2, float(volume.max()) - float(volume.min())) > 30
