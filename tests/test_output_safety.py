"""Every write is checked: a full disk or a closed pipe fails the command, names the output and
leaves nothing behind (issue 14, items 1 and 12).

The failing streams here behave as a real full disk does (measured on an 8 KiB tmpfs): the kernel
accepts part of a write and returns a short count, and only the *next* write fails with ENOSPC.
``io.BufferedWriter`` passes that short count up instead of raising, which is how
``walloc compress -o - photo.png > /full/disk/x.wlc`` used to print a success line over a file cut
at the size of the free space.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from walloc_cli.api import files as api
from walloc_cli.codecs import image as image_codec
from walloc_cli.cli.app import app
from walloc_cli.errors import OutputError
from walloc_cli.files.safe_io import CheckedFile, atomic_output

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO / "formats" / "reference"


class FullDisk(io.RawIOBase):
    """A raw stream with ``room`` bytes of space: a short write, then ENOSPC (a full disk)."""

    def __init__(self, room: int) -> None:
        self.room, self.taken = room, bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if len(self.taken) >= self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = min(len(data), self.room - len(self.taken))
        self.taken += bytes(memoryview(data)[:n])
        return n


class ClosedPipe(FullDisk):
    """A pipe whose reader went away after ``room`` bytes."""

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if len(self.taken) >= self.room:
            raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))
        return super().write(data)


def _photo(path: Path) -> Path:
    yy, xx = np.mgrid[0:96, 0:128]
    base = 120 + 60 * np.sin(xx / 5.0) * np.cos(yy / 7.0)
    Image.fromarray(np.clip(np.stack([base, 0.8 * base, 255 - base], -1), 0, 255).astype(np.uint8)).save(path)
    return path


def _stdout_over(monkeypatch: pytest.MonkeyPatch, raw: io.RawIOBase) -> None:
    """Point ``sys.stdout`` at ``raw`` through the same buffered layers a real process has."""
    stream = io.TextIOWrapper(io.BufferedWriter(raw, buffer_size=8192), write_through=True)
    monkeypatch.setattr(sys, "stdout", stream)


def _inputs(tmp_path: Path) -> dict[str, Path]:
    volume = tmp_path / "ct.npy"
    shutil.copy(REFERENCE / "volume" / "ct-int16-20x136x40.src.npy", volume)
    audio = tmp_path / "song.wav"
    shutil.copy(REFERENCE / "audio" / "stereo-44k-70000.src.wav", audio)
    return {"image": _photo(tmp_path / "photo.png"), "volume": volume, "audio": audio}


@pytest.mark.parametrize("kind", ["image", "volume", "audio"])
@pytest.mark.parametrize("stream", [FullDisk, ClosedPipe])
def test_compress_to_a_stdout_that_fails_part_way_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, stream: type[FullDisk]) -> None:
    src = _inputs(tmp_path)[kind]
    raw = stream(100)  # less than any file (a 2.0 image file can be a few hundred bytes)
    _stdout_over(monkeypatch, raw)
    with pytest.raises(OutputError, match=r"^standard output: cannot write: (no space left on device|broken pipe)$"):
        api.compress_file(src, Path("-"), measure=False)
    assert len(raw.taken) == 100  # it really was cut part-way


@pytest.mark.parametrize("reference", ["rgba-17x9.wlc", "volume/ct-int16-20x136x40.wlc", "audio/mono-8k-4001.wlc"])
def test_decompress_to_a_stdout_that_fails_part_way_is_an_error(monkeypatch: pytest.MonkeyPatch, reference: str) -> None:
    _stdout_over(monkeypatch, FullDisk(100))
    with pytest.raises(OutputError, match="^standard output: cannot write: no space left on device$"):
        api.decompress_file(REFERENCE / reference, Path("-"))


def test_a_short_write_to_a_file_is_an_error_not_a_truncated_file(tmp_path: Path) -> None:
    raw = FullDisk(8192)
    handle = CheckedFile(raw, "out.wlc")  # type: ignore[arg-type]
    with pytest.raises(OutputError, match="^out.wlc: cannot write: no space left on device$"):
        handle.write(b"x" * 21868)
        handle.flush()


def test_atomic_output_failing_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "x.wlc"
    with pytest.raises(OutputError):
        with atomic_output(target) as handle:
            handle.write(b"abc")
            raise OutputError(f"{target}: cannot write: no space left on device")
    assert list(tmp_path.iterdir()) == []


def test_cli_reports_a_full_stdout_and_exits_1(tmp_path: Path) -> None:
    """Through the real entry point: stdout is a pipe whose reader closes after 100 bytes."""
    src = _photo(tmp_path / "photo.png")
    reader = "import sys; sys.stdin.buffer.read(100)"  # then exits: the pipe closes
    consumer = subprocess.Popen([sys.executable, "-c", reader], stdin=subprocess.PIPE)
    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)).save(big)
    wlc = tmp_path / "big.wlc"
    subprocess.run([sys.executable, "-m", "walloc_cli", "compress", "-q", "100", "--no-psnr", str(big), "-o", str(wlc)], check=True, capture_output=True)
    assert consumer.stdin is not None
    done = subprocess.run([sys.executable, "-m", "walloc_cli", "decompress", str(wlc), "-o", "-"], stdout=consumer.stdin, capture_output=False, stderr=subprocess.PIPE, timeout=120)
    consumer.stdin.close()
    consumer.wait(timeout=30)
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    assert stderr.strip() == "walloc: standard output: cannot write: broken pipe"
    assert "Traceback" not in stderr and src.exists()


def _mount_full_disk(where: Path) -> bool:
    """An 8 KiB tmpfs (root only; CI containers may forbid mounting: the test then skips)."""
    where.mkdir()
    if not shutil.which("mount") or os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(where)], capture_output=True)
    return done.returncode == 0


def test_a_real_full_disk_fails_both_to_a_file_and_through_stdout(tmp_path: Path) -> None:
    full = tmp_path / "full"
    if not _mount_full_disk(full):
        pytest.skip("cannot mount a small tmpfs here")
    try:
        src = _photo(tmp_path / "photo.png")
        big = tmp_path / "big.png"
        Image.fromarray(np.random.default_rng(1).integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(big)
        done = subprocess.run([sys.executable, "-m", "walloc_cli", "compress", "-q", "100", "--no-psnr", str(big), "-o", str(full / "x.wlc")], capture_output=True, timeout=120)
        assert done.returncode == 1 and done.stderr.decode().strip() == f"walloc: {full / 'x.wlc'}: cannot write: no space left on device"
        assert list(full.iterdir()) == []  # no partial file, no .part left
        with open(full / "y.wlc", "wb") as sink:
            done = subprocess.run([sys.executable, "-m", "walloc_cli", "compress", "-q", "100", "--no-psnr", str(big), "-o", "-"], stdout=sink, stderr=subprocess.PIPE, timeout=120)
        assert done.returncode == 1 and done.stderr.decode().strip() == "walloc: standard output: cannot write: no space left on device"
        assert src.exists()
    finally:
        subprocess.run(["umount", str(full)], check=False)


# --- item 12: the output is checked before any coding, and named --------------------------------


def test_an_output_in_a_missing_folder_is_refused_before_coding_and_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _photo(tmp_path / "kite.png")

    def no_coding(*args: object, **kwargs: object) -> None:
        raise AssertionError("coded before checking the output")

    monkeypatch.setattr(image_codec, "compress_image", no_coding)
    out = tmp_path / "no" / "such" / "dir" / "x.wlc"
    result = CliRunner().invoke(app, ["compress", str(src), "-o", str(out)])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"walloc: {out}: cannot write: folder {out.parent} does not exist"


def test_an_output_that_is_a_folder_is_refused_and_named(tmp_path: Path) -> None:
    src = _photo(tmp_path / "kite.png")
    folder = tmp_path / "taken.wlc"
    folder.mkdir()
    result = CliRunner().invoke(app, ["compress", str(src), "-o", str(folder), "-f"])
    assert result.exit_code == 1 and result.stderr.strip() == f"walloc: {folder}: cannot write: is a directory"


def test_decompress_into_a_missing_folder_names_the_output(tmp_path: Path) -> None:
    out = tmp_path / "missing" / "x.png"
    result = CliRunner().invoke(app, ["decompress", str(REFERENCE / "rgba-17x9.wlc"), "-o", str(out)])
    assert result.exit_code == 1 and result.stderr.strip() == f"walloc: {out}: cannot write: folder {out.parent} does not exist"
