"""Batch conversion (walloc_cli/api/batch.py and the compress/decompress loop of walloc_cli/cli/convert.py):
input expansion (files, quoted globs, folders with -r, unsupported files skipped), -O mirroring,
--jobs in spawned processes, --json records, --delete-input only after verification, the same
input and output refused, exit codes 0/1/2, and Ctrl-C leaving no partial file.
"""

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
import soundfile as sf
import tifffile
from PIL import Image
from rich.console import Console
from typer.testing import CliRunner

import walloc_cli
from walloc_cli.api import batch
from walloc_cli.api.batch import Item, Task, convert_one, expand_inputs, plan, progress_bar
from walloc_cli.cli.app import app
from walloc_cli.format.container import MAGIC

REPO = Path(__file__).resolve().parent.parent


def save_png(path: Path, seed: int = 0, size: tuple[int, int] = (24, 32)) -> Path:
    """A small smooth RGB photo-like PNG (H, W) = ``size``."""
    y, x = np.mgrid[0 : size[0], 0 : size[1]] / 16.0
    planes = [0.5 + 0.4 * np.sin(2 * x + 3 * y + k + seed) for k in range(3)]
    Image.fromarray(np.rint(np.stack(planes, -1) * 255).astype(np.uint8)).save(path)
    return path


def save_wav(path: Path, seconds: float = 0.25, rate: int = 8000, channels: int = 1) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    sf.write(path, np.repeat(tone[:, None], channels, axis=1), rate, subtype="PCM_16")
    return path


def invoke(*args: object) -> object:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result


def error_lines(result: object) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("walloc: ")]  # type: ignore[attr-defined]


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    """in/a.png, in/sub/b.png, in/sub/tone.wav, in/sub/notes.txt, in/.hidden.png"""
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    save_png(root / "a.png")
    save_png(root / "sub" / "b.png", seed=1)
    save_wav(root / "sub" / "tone.wav")
    (root / "sub" / "notes.txt").write_text("not an image\n")
    save_png(root / ".hidden.png", seed=2)
    return root


# --- expansion and planning (library) ---------------------------------------------------------
def test_expand_directory_needs_recursive(tree: Path) -> None:
    found = expand_inputs([tree], "compress")
    assert found.items == [] and found.problems == [(str(tree), "is a directory (use -r to convert the files in it)")]


def test_expand_recursive_sniffs_content_and_skips_the_rest(tree: Path) -> None:
    (tree / "sub" / "disguised.txt").write_bytes((tree / "a.png").read_bytes())  # a PNG by content
    found = expand_inputs([tree], "compress", recursive=True)
    assert [str(i.rel) for i in found.items] == ["a.png", "sub/b.png", "sub/disguised.txt", "sub/tone.wav"]
    assert found.skipped == [tree / "sub" / "notes.txt"]  # .hidden.png is not even looked at
    assert found.problems == []


def test_expand_quoted_glob_mirrors_below_its_base(tree: Path) -> None:
    found = expand_inputs([f"{tree}/**/*.png"], "compress")
    assert [str(i.rel) for i in found.items] == ["a.png", "sub/b.png"]  # glob skips dot files too
    missing = expand_inputs([f"{tree}/*.jpg"], "compress")
    assert missing.items == [] and missing.problems == [(f"{tree}/*.jpg", "no files match")]


def test_expand_decompress_takes_only_wlc(tmp_path: Path) -> None:
    (tmp_path / "x.wlc").write_bytes(MAGIC + b"rest")
    (tmp_path / "renamed.bin").write_bytes(MAGIC + b"rest")
    save_png(tmp_path / "p.png")
    found = expand_inputs([tmp_path], "decompress", recursive=True)
    assert [i.src.name for i in found.items] == ["renamed.bin", "x.wlc"]
    assert [p.name for p in found.skipped] == ["p.png"]


CT = REPO / "formats" / "reference" / "volume" / "ct-int16-20x136x40.src.npy"  # a real head CT crop, (Z, Y, X) int16


def test_expand_finds_volumes_by_content_and_codes_them_as_volumes(tmp_path: Path) -> None:
    """Real volume files under names that say nothing (a CT ``.npy`` as ``ct.dat``, a multi-page
    TIFF as ``stack.bin``) are found by content, a file that only starts like ``.npy`` is skipped,
    and the batch codes what it found as volumes (the test once faked the volume sniffer)."""
    (tmp_path / "fake.npy").write_bytes(b"\x93NUMPY fake volume")
    (tmp_path / "ct.dat").write_bytes(CT.read_bytes())
    tifffile.imwrite(tmp_path / "stack.bin", np.load(CT)[:4].astype(np.uint16) + 1024, photometric="minisblack")
    found = expand_inputs([tmp_path], "compress", recursive=True)
    assert [i.src.name for i in found.items] == ["ct.dat", "stack.bin"]
    assert found.skipped == [tmp_path / "fake.npy"]
    result = invoke("compress", "-r", tmp_path, "-O", tmp_path / "out", "--no-psnr", "--json")
    assert result.exit_code == 0, result.stderr
    coded = {Path(r["output"]).name: walloc_cli.read_latents(Path(r["output"]))[1] for r in map(json.loads, result.stdout.splitlines())}
    assert sorted(coded) == ["ct.wlc", "stack.wlc"] and {info.modality for info in coded.values()} == {"volume"}
    volume, _ = walloc_cli.decompress(tmp_path / "out" / "ct.wlc")
    assert volume.shape == np.load(CT).shape and volume.dtype == np.int16


def test_plan_mirrors_and_refuses_colliding_outputs(tmp_path: Path) -> None:
    items = [Item(Path("in/a.png"), Path("a.png")), Item(Path("in/sub/b.png"), Path("sub/b.png")), Item(Path("in/a.jpg"), Path("a.jpg"))]
    tasks, refused = plan(items, "compress", output_dir=tmp_path / "out")
    assert [t.dst for t in tasks] == [tmp_path / "out" / "a.wlc", tmp_path / "out" / "sub" / "b.wlc"]
    assert refused == [("in/a.jpg", f"its output {tmp_path / 'out' / 'a.wlc'} is also the output of in/a.png; rename one, or use -o")]
    tasks, refused = plan([Item(Path("x/p.wlc"), Path("p.wlc"))], "decompress", output_dir=tmp_path / "o")
    assert tasks[0].into == tmp_path / "o" and tasks[0].dst is None and not refused


def test_plan_names_compound_extensions_as_one(tmp_path: Path) -> None:
    """``head.nii.gz`` -> ``head.wlc`` (was ``head.nii.wlc``), so it collides with ``head.npy``."""
    items = [Item(Path("in/sub/head.nii.gz"), Path("sub/head.nii.gz")), Item(Path("in/sub/Cells.OME.TIF"), Path("sub/Cells.OME.TIF")), Item(Path("in/sub/head.npy"), Path("sub/head.npy"))]
    tasks, refused = plan(items, "compress", output_dir=tmp_path / "out")
    assert [t.dst for t in tasks] == [tmp_path / "out" / "sub" / "head.wlc", tmp_path / "out" / "sub" / "Cells.wlc"]
    assert refused == [("in/sub/head.npy", f"its output {tmp_path / 'out' / 'sub' / 'head.wlc'} is also the output of in/sub/head.nii.gz; rename one, or use -o")]
    tasks, refused = plan(items, "compress")  # beside the inputs
    assert [str(r) for r, _ in refused] == ["in/sub/head.npy"]


def test_progress_bar_draws_on_a_terminal_only() -> None:
    import io

    screen = io.StringIO()
    with progress_bar(3, Console(file=screen, force_terminal=True, width=60), enabled=True) as advance:
        for _ in range(3):
            advance(batch.Outcome("x"))
    assert "3/3" in screen.getvalue()
    quiet = io.StringIO()
    with progress_bar(3, Console(file=quiet, force_terminal=True), enabled=False) as advance:
        advance(batch.Outcome("x"))
    assert quiet.getvalue() == ""


# --- the CLI ----------------------------------------------------------------------------------
def test_compress_recursive_mirrors_the_tree(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("compress", "-r", tree, "-O", out, "--no-psnr")
    assert result.exit_code == 0, result.stderr
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["a.wlc", "sub/b.wlc", "sub/tone.wlc"]
    assert all(p.read_bytes().startswith(MAGIC) for p in out.rglob("*.wlc"))
    assert error_lines(result) == [f"walloc: {tree / 'sub' / 'notes.txt'}: skipped (not an image, audio or volume file)"]
    assert len(result.stdout.splitlines()) == 3
    # and back, in parallel-safe order-free form, into a second mirror
    back = tmp_path / "back"
    result = invoke("decompress", "-r", out, "-O", back, "--json")
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(r["output"] for r in records) == sorted(str(back / p) for p in ("a.png", "sub/b.png", "sub/tone.wav"))
    assert Image.open(back / "sub" / "b.png").size == (32, 24)
    assert sf.info(str(back / "sub" / "tone.wav")).frames == 2000
    assert not [p for p in back.rglob(".*")]  # no staging folder left behind


def test_quiet_and_verbose(tree: Path, tmp_path: Path) -> None:
    quiet = invoke("compress", "-r", tree, "-O", tmp_path / "q", "--no-psnr", "--quiet")
    assert quiet.exit_code == 0 and quiet.stdout == "" and quiet.stderr == ""
    loud = invoke("compress", "-r", tree, "-O", tmp_path / "v", "--no-psnr", "-v")
    assert loud.exit_code == 0
    assert error_lines(loud)[-1].startswith("walloc: 3 of 3 converted, 0 failed, 1 skipped, ")
    assert invoke("compress", tree / "a.png", "--quiet", "-v").exit_code == 2


def test_failures_exit_1_and_the_rest_is_done(tree: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    result = invoke("compress", tree, bad, tree / "a.png", "-O", tmp_path / "out", "--no-psnr")
    assert result.exit_code == 1
    lines = error_lines(result)
    assert len(lines) == 2 and lines[0] == f"walloc: {tree}: is a directory (use -r to convert the files in it)"
    assert lines[1].startswith(f"walloc: {bad}: ")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.wlc"]


def test_usage_errors_exit_2(tree: Path, tmp_path: Path) -> None:
    png = tree / "a.png"
    assert invoke("compress", png, "-o", tmp_path / "x.wlc", "-O", tmp_path).exit_code == 2
    assert invoke("compress", "-r", tree, "-o", tmp_path / "x.wlc").exit_code == 2  # -o with a folder of 3
    assert invoke("compress", "--jobs", "0", png).exit_code == 2
    assert invoke("compress", "-", "--delete-input").exit_code == 2
    assert invoke("decompress", png, "-o", "-", "--delete-input").exit_code == 2
    assert not list(tmp_path.glob("*.wlc"))


def test_json_records_for_every_input(tree: Path, tmp_path: Path) -> None:
    result = invoke("compress", "--json", "--no-psnr", tree / "a.png", tmp_path / "missing.png", "-O", tmp_path / "o")
    assert result.exit_code == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records[0]["output"] == str(tmp_path / "o" / "a.wlc") and records[0]["n_bytes"] > 0
    assert records[1] == {"input": str(tmp_path / "missing.png"), "error": f"{tmp_path / 'missing.png'}: no such file"}


def test_json_error_record_stays_off_a_data_stdout(tmp_path: Path) -> None:
    result = invoke("compress", "--json", tmp_path / "missing.png", "-o", "-")
    assert result.exit_code == 1 and result.stdout == ""  # standard output carries .wlc data
    assert json.loads(result.stderr.splitlines()[-1])["input"] == str(tmp_path / "missing.png")


def test_o_does_not_create_folders_but_O_does(tmp_path: Path) -> None:
    png = save_png(tmp_path / "p.png")
    result = invoke("compress", "--no-psnr", png, "-o", tmp_path / "no" / "such" / "p.wlc")
    assert result.exit_code == 1 and not (tmp_path / "no").exists()
    assert invoke("compress", "--no-psnr", png, "-O", tmp_path / "made" / "here").exit_code == 0
    assert (tmp_path / "made" / "here" / "p.wlc").is_file()


def test_same_input_and_output_is_refused_even_with_force(tmp_path: Path) -> None:
    png = save_png(tmp_path / "p.png")
    before = png.read_bytes()
    result = invoke("compress", png, "-o", png, "-f")
    assert result.exit_code == 1 and "output would overwrite the input" in result.stderr
    os.link(png, tmp_path / "alias.wlc")  # the same file under another name
    result = invoke("compress", png, "-o", tmp_path / "alias.wlc", "-f")
    assert result.exit_code == 1 and "output would overwrite the input" in result.stderr
    assert png.read_bytes() == before


def test_delete_input_after_verified_output(tree: Path, tmp_path: Path) -> None:
    png, wav = tree / "a.png", tree / "sub" / "tone.wav"
    result = invoke("compress", "--delete-input", "--no-psnr", "-v", png, wav, "-O", tmp_path / "o")
    assert result.exit_code == 0, result.stderr
    assert not png.exists() and not wav.exists()
    assert f"walloc: deleted {png}" in result.stderr
    wlc = tmp_path / "o" / "a.wlc"
    result = invoke("decompress", "--delete-input", wlc, "-o", tmp_path / "a.png")
    assert result.exit_code == 0 and not wlc.exists() and Image.open(tmp_path / "a.png").size == (32, 24)


def test_delete_input_keeps_the_input_when_verification_fails(tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The input is deleted only once the written output verifies: here verification really
    fails (it decodes in a temporary folder, and there is none), the output is written, and the
    input is kept with a line naming the output and the problem. (The test once replaced the
    verifier with a fake, which stops working unseen when the verifier moves.)"""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-folder"))
    png = tree / "a.png"
    outcome = convert_one(Task("compress", png, tmp_path / "a.wlc", options={"measure": False}, delete_input=True))
    assert outcome.error is not None and outcome.error.startswith(f"{png}: input kept: the written {tmp_path / 'a.wlc'} does not verify (")
    assert png.exists() and not outcome.deleted and (tmp_path / "a.wlc").read_bytes().startswith(MAGIC)
    monkeypatch.undo()  # with a temporary folder again, the same task verifies and deletes
    outcome = convert_one(Task("compress", png, tmp_path / "a.wlc", options={"measure": False, "overwrite": True}, delete_input=True))
    assert outcome.error is None and outcome.deleted and not png.exists()


AUDIO_WLC = REPO / "formats" / "reference" / "audio" / "mono-8k-4001.wlc"  # 4001 frames at 8 kHz


def test_delete_input_with_a_range_is_a_usage_error(tmp_path: Path) -> None:
    """A --start/--duration decode holds only part of the .wlc: deleting it would lose the rest."""
    wlc = tmp_path / "a.wlc"
    wlc.write_bytes(AUDIO_WLC.read_bytes())
    for extra in (["--start", "0.1", "--duration", "0.2"], ["--start", "0.1"], ["--duration", "0.2"]):
        result = invoke("decompress", "--delete-input", *extra, wlc)
        message = " ".join(result.stderr.replace("│", " ").split())  # rich boxes and wraps usage errors
        assert result.exit_code == 2 and "--delete-input cannot be combined with --start/--duration" in message, result.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wlc"]
    result = invoke("decompress", "--start", "0.1", "--duration", "0.2", wlc)  # without --delete-input: fine
    assert result.exit_code == 0 and sf.info(tmp_path / "a.wav").frames == 1600 and wlc.exists()


def test_a_partial_decode_never_deletes_its_input(tmp_path: Path) -> None:
    """Defence in depth below the CLI check: the library refuses too."""
    wlc = tmp_path / "a.wlc"
    wlc.write_bytes(AUDIO_WLC.read_bytes())
    outcome = convert_one(Task("decompress", wlc, tmp_path / "a.wav", options={"start": 0.1, "duration": 0.2}, delete_input=True))
    assert outcome.error == f"{wlc}: input kept: {tmp_path / 'a.wav'} holds only part of it"
    assert wlc.exists() and not outcome.deleted and sf.info(tmp_path / "a.wav").frames == 1600


def test_a_full_disk_is_one_line_and_leaves_no_file(tmp_path: Path) -> None:
    """The file-size limit (as a full disk) hit while libsndfile writes: one line, no traceback
    (soundfile's cffi callbacks used to print them), no output and no .part left."""
    import resource

    wlc = tmp_path / "a.wlc"
    wlc.write_bytes(AUDIO_WLC.read_bytes())

    def limit() -> None:  # in the child only: 4001 16-bit frames need about 8 kB
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    done = subprocess.run([sys.executable, "-m", "walloc_cli", "decompress", "a.wlc"], cwd=tmp_path, capture_output=True, preexec_fn=limit, timeout=120, check=False, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 1, done.stderr
    assert done.stderr.decode().splitlines() == ["walloc: a.wav: cannot write: file too large"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wlc"]


def test_ctrl_c_in_any_command_prints_interrupted(tmp_path: Path) -> None:
    """Typer turns KeyboardInterrupt into a silent exit 130; every command must say why. A real
    Ctrl-C: ``walloc info`` reading a named pipe that has a writer but no data yet blocks in its
    read until SIGINT arrives. (The test once raised KeyboardInterrupt from a faked
    ``describe``, which patches nothing once the function moves.)"""
    fifo = tmp_path / "pipe.wlc"
    os.mkfifo(fifo)
    process = subprocess.Popen([sys.executable, "-m", "walloc_cli", "info", fifo.name], cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline, writer = time.monotonic() + 120, None
    while writer is None:  # opening the write end succeeds once walloc has the pipe open to read
        try:
            writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, process.communicate(timeout=10)
            time.sleep(0.01)
    try:
        time.sleep(0.2)  # into the blocking read
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        os.close(writer)
    assert process.returncode == 130 and stderr.decode().splitlines() == ["walloc: interrupted"], (process.returncode, stderr)
    assert stdout == b""


def test_a_refused_overwrite_keeps_both_files(tree: Path, tmp_path: Path) -> None:
    (tmp_path / "a.wlc").write_bytes(b"precious")
    result = invoke("compress", "--delete-input", tree / "a.png", "-O", tmp_path)
    assert result.exit_code == 1 and error_lines(result) == [f"walloc: {tmp_path / 'a.wlc'}: already exists (use -f to overwrite)"]
    assert (tmp_path / "a.wlc").read_bytes() == b"precious" and (tree / "a.png").exists()


def test_jobs_run_in_spawned_processes(tmp_path: Path) -> None:
    sources = [save_png(tmp_path / f"p{i}.png", seed=i) for i in range(4)]
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    result = invoke("compress", "--jobs", "2", "--json", "--no-psnr", *sources, tmp_path / "broken.png", "-O", tmp_path / "out")
    assert result.exit_code == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(Path(r["output"]).name for r in records if "output" in r) == [f"p{i}.wlc" for i in range(4)]
    assert [r["input"] for r in records if "error" in r] == [str(tmp_path / "broken.png")]
    # the parallel files are the ones a single process writes
    single = invoke("compress", "--no-psnr", sources[2], "-o", tmp_path / "single.wlc")
    assert single.exit_code == 0
    assert (tmp_path / "single.wlc").read_bytes() == (tmp_path / "out" / "p2.wlc").read_bytes()


# --- Ctrl-C -----------------------------------------------------------------------------------
def _interrupt_when_writing(command: list[str], folder: Path, group: bool) -> subprocess.CompletedProcess:
    """Start ``command``; as soon as a temporary ``.part`` output holds data, send SIGINT (to the
    whole process group, as a terminal does, when ``group``). Waiting for data keeps out of
    the instant the file is created: see test_interrupt_while_the_temporary_file_is_created."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if any(p.stat().st_size > 0 for p in folder.rglob(".*.part") if p.exists()):
            if group:
                os.killpg(process.pid, signal.SIGINT)
            else:
                process.send_signal(signal.SIGINT)
            break
        time.sleep(0.002)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@pytest.mark.parametrize("jobs", [1, 2])
def test_ctrl_c_leaves_no_partial_file(tmp_path: Path, jobs: int) -> None:
    names = ["long1.wav", "long2.wav"][:jobs]
    for name in names:
        save_wav(tmp_path / name, seconds=30, rate=44100, channels=2)
    done = _interrupt_when_writing([sys.executable, "-m", "walloc_cli", "compress", "--jobs", str(jobs), *names], tmp_path, group=jobs > 1)
    assert done.returncode == 130, (done.returncode, done.stderr)
    assert b"Traceback" not in done.stderr
    assert done.stderr.decode().strip().splitlines()[-1] == "walloc: interrupted"
    left = sorted(p.name for p in tmp_path.iterdir())
    assert not [n for n in left if n.endswith(".part")]  # no partial file
    # with two jobs the other file may have been finished before Ctrl-C: then it is whole
    finished = [n for n in left if n.endswith(".wlc")]
    assert left == sorted(names + finished) and len(finished) < jobs
    for name in finished:
        assert subprocess.run([sys.executable, "-m", "walloc_cli", "verify", name], cwd=tmp_path, capture_output=True).returncode == 0


def test_interrupt_while_the_temporary_file_is_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from walloc_cli.files import safe_io as io_util
    from walloc_cli.files.safe_io import atomic_output

    real = io_util._create

    def create_then_signal(tmp: str) -> int:
        made = real(tmp)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C lands just after the file exists
        return made

    monkeypatch.setattr(io_util, "_create", create_then_signal)
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(tmp_path / "out.wlc") as handle:
            handle.write(b"data")
    assert list(tmp_path.iterdir()) == []


def test_compound_extensions_come_back_without_doubling(tmp_path: Path) -> None:
    """``x.nii.gz`` became ``x.nii.wlc`` and decoded to ``x.nii.nii.gz``; ``x.ome.tif`` likewise."""
    nib = pytest.importorskip("nibabel")
    sub = tmp_path / "in" / "sub"
    sub.mkdir(parents=True)
    stack = (np.arange(6 * 16 * 12) % 251).astype(np.uint8).reshape(6, 16, 12)
    nib.save(nib.Nifti1Image(stack.T.copy(), np.eye(4)), sub / "head.nii.gz")
    tifffile.imwrite(sub / "cells.ome.tif", stack, ome=True, metadata={"axes": "ZYX"})
    # one file, beside it, and back
    single = tmp_path / "single"
    single.mkdir()
    (single / "head.nii.gz").write_bytes((sub / "head.nii.gz").read_bytes())
    assert invoke("compress", single / "head.nii.gz", "--no-psnr").exit_code == 0
    assert sorted(p.name for p in single.iterdir()) == ["head.nii.gz", "head.wlc"]
    (single / "head.nii.gz").unlink()
    assert invoke("decompress", single / "head.wlc").exit_code == 0
    assert sorted(p.name for p in single.iterdir()) == ["head.nii.gz", "head.wlc"]
    # a batch mirrored with -O, and back
    assert invoke("compress", "-r", tmp_path / "in", "-O", tmp_path / "out", "--no-psnr").exit_code == 0
    assert sorted(p.name for p in (tmp_path / "out" / "sub").iterdir()) == ["cells.wlc", "head.wlc"]
    assert invoke("decompress", "-r", tmp_path / "out", "-O", tmp_path / "back").exit_code == 0
    assert sorted(p.name for p in (tmp_path / "back" / "sub").iterdir()) == ["cells.ome.tif", "head.nii.gz"]
    assert nib.load(tmp_path / "back" / "sub" / "head.nii.gz").shape == (12, 16, 6)
    # a file named by an older walloc (head.nii.wlc) decodes to head.nii.gz too
    old = tmp_path / "old"
    old.mkdir()
    (old / "head.nii.wlc").write_bytes((single / "head.wlc").read_bytes())
    assert invoke("decompress", old / "head.nii.wlc").exit_code == 0
    assert (old / "head.nii.gz").is_file() and not (old / "head.nii.nii.gz").exists()


def test_two_inputs_with_one_output_name_fail_the_second(tmp_path: Path) -> None:
    nib = pytest.importorskip("nibabel")
    stack = (np.arange(4 * 8 * 8) % 200).astype(np.int16).reshape(8, 8, 4)
    nib.save(nib.Nifti1Image(stack, np.eye(4)), tmp_path / "x.nii.gz")
    np.save(tmp_path / "x.npy", stack)
    for where in ([], ["-O", tmp_path / "out"]):
        result = invoke("compress", tmp_path / "x.nii.gz", tmp_path / "x.npy", "-f", "--no-psnr", *where)
        assert result.exit_code == 1
        written = (tmp_path / "out" if where else tmp_path) / "x.wlc"
        assert error_lines(result)[0] == f"walloc: {tmp_path / 'x.npy'}: its output {written} is also the output of {tmp_path / 'x.nii.gz'}; rename one, or use -o"
        assert '"format":"nifti"' in written.read_bytes()[:4096].decode("latin-1")  # the first input's, not overwritten
