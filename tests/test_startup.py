"""Start-up and the optional torch: what a ``walloc`` process imports, and what works without torch.

People run ``walloc`` once per file in shell loops, so a command's start-up is part of its cost:

- ``walloc --version`` is answered before the Typer app is built: no Typer, Rich, numpy or torch
  (read from ``python -X importtime``), and the line is the one Typer's ``--version`` prints;
- ``walloc compress`` / ``decompress`` of a photo load no other command's library (training,
  data sets, evaluation, the audio and volume codecs, tifffile), no Pillow plugin but those of
  the formats they read and write, no Typer or pydantic (their plain command lines are parsed
  by ``walloc_cli/cli/fastpath.py``) and, off a terminal, no Rich: their lines are plain text,
  written as they are;
- torch is the ``train`` extra: with torch made unimportable (``sys.modules['torch'] = None`` in
  the process, so ``import torch`` raises ImportError as it does where torch is not installed)
  ``--version`` and ``models`` work, ``train`` says in one line which extra to install (exit 2),
  and ``from walloc_cli import WlcDataset`` raises an ImportError that does; compress, info,
  verify, latents and decompress of a photo, a music file and a volume work (the lean runtime,
  ``walloc_cli.model.lean``), and so does ``walloc eval``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from walloc_cli import __version__

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "samples" / "photo.png"
MUSIC = ROOT / "formats" / "reference" / "audio" / "stereo-44k-70000.src.wav"  # 1.6 s of 44.1 kHz stereo music
VOLUME = ROOT / "formats" / "reference" / "volume" / "ct-int16-20x136x40.src.npy"  # a head CT crop
TRAIN_HINT = "pip install 'walloc[train]'"
# Runs ``python -m walloc_cli ARGS`` with torch unimportable, as where it is not installed.
WITHOUT_TORCH = "import runpy, sys; sys.modules['torch'] = None; sys.argv = ['walloc', *sys.argv[1:]]; runpy.run_module('walloc_cli', run_name='__main__', alter_sys=True)"


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def walloc(*args: str | Path, cwd: Path, torch: bool = True, importtime: bool = False) -> subprocess.CompletedProcess[str]:
    """``python -m walloc_cli ARGS`` in a fresh process (``torch=False``: torch unimportable)."""
    python = [sys.executable, *(["-X", "importtime"] if importtime else [])]
    command = [*python, "-m", "walloc_cli"] if torch else [*python, "-c", WITHOUT_TORCH]
    return subprocess.run([*command, *map(str, args)], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300, check=False)


def imported(stderr: str) -> set[str]:
    """The modules ``python -X importtime`` reported as imported (its lines on stderr)."""
    return {m.group(1) for m in re.finditer(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", stderr, re.MULTILINE)}


def loaded(modules: set[str], *packages: str) -> list[str]:
    """The members of ``modules`` that are one of ``packages`` or inside one."""
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in packages))


# --- start-up ------------------------------------------------------------------------------------
def test_version_builds_no_app_and_prints_what_typer_prints(tmp_path: Path) -> None:
    done = walloc("--version", cwd=tmp_path, importtime=True)
    assert done.returncode == 0 and done.stdout == f"walloc {__version__}\n"
    modules = imported(done.stderr)
    assert "walloc_cli" in modules  # importtime did report
    assert loaded(modules, "typer", "rich", "numpy", "torch", "pydantic", "walloc_cli.cli.convert") == []
    # The fast path answers exactly ``--version``; the app's own option prints the same line.
    from walloc_cli.cli.app import build_app

    result = CliRunner().invoke(build_app(), ["--version"])
    assert result.exit_code == 0 and result.output == done.stdout


def test_importing_walloc_cli_loads_pillow_only(tmp_path: Path) -> None:
    """The package root registers its Pillow plugin (``Image.open("x.wlc")``) without numpy."""
    code = "import sys, walloc_cli; print(sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'torch', 'typer', 'rich', 'PIL'}))"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "['PIL']"


NOT_FOR_A_PHOTO = (
    "walloc_cli.train", "walloc_cli.data", "walloc_cli.eval", "walloc_cli.api.dataset", "walloc_cli.codecs.audio",
    "walloc_cli.codecs.volume", "walloc_cli.api.audio_io", "walloc_cli.api.volume_io", "soundfile", "nibabel",
    "matplotlib", "pytorch_msssim", "rich",  # Rich: tables and progress bars only, and off a terminal there are none
    "walloc_cli.format.payload_ctx", "walloc_cli.format.ctx_model", "constriction",  # the ctx payload: -e 5-6 only
    "typer", "pydantic",  # the plain forms of compress/decompress are parsed without Typer (cli/fastpath.py)
    "tifffile", "walloc_cli.files.volumes", "walloc_cli.files.tiff_image",  # TIFF and volumes only
    "PIL.PdfImagePlugin", "PIL.AvifImagePlugin",  # Pillow's other plugins: Image.init() never runs for a photo
)


def test_compress_and_decompress_of_a_photo_load_only_what_they_use(tmp_path: Path) -> None:
    done = walloc("compress", PHOTO, "-o", tmp_path / "p.wlc", cwd=tmp_path, importtime=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert loaded(imported(done.stderr), *NOT_FOR_A_PHOTO) == []
    done = walloc("decompress", tmp_path / "p.wlc", "-o", tmp_path / "p.png", cwd=tmp_path, importtime=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert loaded(imported(done.stderr), *NOT_FOR_A_PHOTO) == []


def test_compress_of_a_photo_imports_no_torch(tmp_path: Path) -> None:
    done = walloc("compress", PHOTO, "-o", tmp_path / "p.wlc", cwd=tmp_path, importtime=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert loaded(imported(done.stderr), "torch") == []


def test_plain_lines_are_written_as_they_are(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A report line is written verbatim (no Rich: no emoji codes or markup interpreted in a file
    name); anything richer still goes through Rich."""
    from walloc_cli.cli.render import Stream

    out, err = Stream(), Stream(stderr=True)
    out.print("a :smile: [b]x[/b].png -> x.wlc", markup=False, soft_wrap=True)
    err.print("walloc: :x:.png: no such file", markup=False, soft_wrap=True)
    assert capsys.readouterr() == ("a :smile: [b]x[/b].png -> x.wlc\n", "walloc: :x:.png: no such file\n")
    out.print("[b]bold[/b] words")  # markup: Rich's
    assert capsys.readouterr().out == "bold words\n"
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    assert out.is_terminal is False  # captured: no terminal


def test_batch_workers_set_threads_without_importing_torch(tmp_path: Path) -> None:
    """``--jobs``: a fresh worker's threads go through the environment (OpenMP and OpenBLAS read
    it when they load); importing torch for them would cost every worker over a second."""
    code = (
        "import os, sys\n"
        "from walloc_cli.api.batch import _worker_init\n"
        "assert 'numpy' not in sys.modules, 'numpy loaded before the threads are set'\n"
        "_worker_init(3, None)\n"
        "print(os.environ['OMP_NUM_THREADS'], os.environ['OPENBLAS_NUM_THREADS'], 'torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3", "3", "False"]


# --- without torch -------------------------------------------------------------------------------
def test_without_torch_version_and_models_work(tmp_path: Path) -> None:
    done = walloc("--version", cwd=tmp_path, torch=False)
    assert done.returncode == 0 and done.stdout == f"walloc {__version__}\n"
    for args in (("models",), ("models", "--json")):
        done = walloc(*args, cwd=tmp_path, torch=False)
        assert done.returncode == 0, done.stderr
        assert "rgb-16x-v" in done.stdout


def test_without_torch_train_names_the_extra_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    done = walloc("train", tmp_path / "photos", "--name", "mine", "-O", tmp_path / "out", cwd=tmp_path, torch=False)
    assert done.returncode == 2
    assert done.stderr == f"walloc: train needs PyTorch: {TRAIN_HINT}\n"
    assert not (tmp_path / "out").exists()


def test_train_help_names_the_extra_with_its_brackets() -> None:
    # Rich markup took "[train]" for a style tag and printed "pip install 'walloc'".
    from walloc_cli.cli.app import app

    done = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert done.exit_code == 0
    assert "pip install 'walloc[train]'" in done.output


def test_without_torch_wlcdataset_raises_importerror_with_the_hint(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import walloc_cli\n"
        "try:\n    from walloc_cli import WlcDataset\nexcept ImportError as error:\n    print(error)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"WlcDataset needs PyTorch: {TRAIN_HINT}\n"


@pytest.mark.parametrize("source, decoded", [(PHOTO, "back.png"), (MUSIC, "back.wav"), (VOLUME, "back.npy")], ids=["photo", "music", "volume"])
def test_without_torch_compress_info_verify_latents_decompress(tmp_path: Path, source: Path, decoded: str) -> None:
    coded = tmp_path / "coded.wlc"
    steps = (("compress", source, "-o", coded), ("info", coded), ("verify", coded), ("latents", coded, "-O", tmp_path / "latents"), ("decompress", coded, "-o", tmp_path / decoded))
    for args in steps:
        done = walloc(*args, cwd=tmp_path, torch=False)
        assert done.returncode == 0, f"{args[0]}: {done.stderr[-2000:]}"
    assert (tmp_path / decoded).stat().st_size > 0 and (tmp_path / "latents" / "coded.npy").is_file()


def test_without_torch_eval_works(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "photo.png").write_bytes(PHOTO.read_bytes())
    done = walloc("eval", tmp_path / "photos", "--codecs", "walloc,webp", "--quality", "50", "--out", tmp_path / "out", "--no-plot", cwd=tmp_path, torch=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "out" / "results.json").is_file() and "walloc" in (tmp_path / "out" / "results.csv").read_text()
