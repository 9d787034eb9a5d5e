"""File safety helpers: outputs appear whole or not at all, and never clobber without consent."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import secrets
import signal
import sys
import threading
from pathlib import Path
from typing import IO, Any, BinaryIO, Iterator

from walloc_cli.format.container import write_all
from walloc_cli.errors import OutputError

STDIO = "-"  # as a path: standard input / standard output
STDOUT_NAME = "standard output"  # how messages name it


def _hold_sigint() -> set[int | signal.Signals] | None:
    """Block SIGINT in this thread and return the mask to restore (None where nothing was done).

    Only the main thread runs Python signal handlers, so only there can Ctrl-C raise
    KeyboardInterrupt; platforms without ``pthread_sigmask`` (Windows) keep the old window.
    """
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        return None
    return signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


def _release_sigint(mask: set[int | signal.Signals] | None) -> None:
    """Undo :func:`_hold_sigint`; a SIGINT that arrived meanwhile raises KeyboardInterrupt now."""
    if mask is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _create(tmp: str) -> int:
    """Create ``tmp`` exclusively for writing (mode 0o666 less the umask, as ``open`` would)."""
    return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)


def _reason(error: OSError) -> str:
    """``no space left on device``: the OS's words, as one lower-case phrase."""
    return (error.strerror or str(error) or type(error).__name__).lower()


def write_failure(name: str, error: OSError) -> OutputError:
    """The one-line error for a failed write to output ``name`` (a path or ``standard output``)."""
    if isinstance(error, OutputError):
        return error
    return OutputError(f"{name}: cannot write: {_reason(error)}")


class CheckedFile(io.BufferedWriter):
    """A buffered file whose ``write`` writes every byte or raises :class:`OutputError`.

    ``io.BufferedWriter.write`` may return a short count instead of raising: measured on an 8 KiB
    tmpfs, writing 21 868 bytes returned 8192 and the rest was silently dropped. Callers (Pillow,
    tifffile, soundfile, our container) rarely check that count, so it is checked here, once.
    """

    def __init__(self, raw: io.RawIOBase, name: str) -> None:
        super().__init__(raw)
        self.output_name = name

    def write(self, data: Any) -> int:  # type: ignore[override]
        view = memoryview(data).cast("B")
        total = len(view)
        try:
            while view:
                n = super().write(view)
                if not n:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view = view[n:]
            return total
        except OSError as error:
            raise write_failure(self.output_name, error) from None

    def flush(self) -> None:
        try:
            super().flush()
        except OSError as error:
            raise write_failure(self.output_name, error) from None


class CheckedStdout:
    """Standard output as a write-only binary stream whose every write is checked.

    A short write or ``ENOSPC`` (``walloc compress -o - x.png > /full/disk/x.wlc``) and a closed
    pipe (``... | head -c 10``) raise :class:`OutputError` naming standard output, so the command
    fails instead of printing a success line over a cut file. After a broken pipe, descriptor 1
    is pointed at ``/dev/null`` so that Python's own flush at exit cannot print a traceback.
    """

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout.buffer
        self.count = 0

    def _failed(self, error: OSError) -> OutputError:
        if isinstance(error, BrokenPipeError) or error.errno == errno.EPIPE:
            with contextlib.suppress(OSError, ValueError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self.stream.fileno())
                os.close(devnull)
        return write_failure(STDOUT_NAME, error)

    def write(self, data: Any) -> int:
        try:
            write_all(self.stream, data)
        except OSError as error:
            raise self._failed(error) from None
        n = memoryview(data).nbytes
        self.count += n
        return n

    def flush(self) -> None:
        try:
            self.stream.flush()
        except OSError as error:
            raise self._failed(error) from None

    def writable(self) -> bool:
        return True


def check_writable(path: Path, overwrite: bool) -> None:
    """Refuse, before any work, an output that cannot be written: its folder is missing or not
    writable, it is a folder, or it exists without ``overwrite``. The message names the output.
    ``-`` (standard output) always passes."""
    path = Path(path)
    if str(path) == STDIO:
        return
    if path.is_dir():
        raise OutputError(f"{path}: cannot write: is a directory")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists (use -f to overwrite)")
    folder = path.parent
    if not folder.exists():
        raise OutputError(f"{path}: cannot write: folder {folder} does not exist")
    if not folder.is_dir():
        raise OutputError(f"{path}: cannot write: {folder} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: cannot write: permission denied in {folder}")


@contextlib.contextmanager
def output_stream(path: Path, overwrite: bool = False) -> Iterator[BinaryIO]:
    """The one way an output is written: ``-`` gives :class:`CheckedStdout` (flushed at the end),
    anything else :func:`atomic_output`. Every write is checked; a failure raises
    :class:`OutputError` naming the output, and a file output then does not exist."""
    if str(path) == STDIO:
        stream = CheckedStdout()
        yield stream  # type: ignore[misc]
        stream.flush()
        return
    with atomic_output(path, overwrite=overwrite) as handle:
        yield handle


@contextlib.contextmanager
def atomic_output(path: Path, overwrite: bool = False) -> Iterator[IO[bytes]]:
    """Yield a binary file in ``path``'s folder; on success rename it onto ``path``.

    On any exception (Ctrl-C included) the temporary file is removed, so a partial output is
    never left behind. ``FileExistsError`` if ``path`` exists and ``overwrite`` is false.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists (use -f to overwrite)")
    fd = -1
    handle: IO[bytes] | None = None
    # The temporary name is chosen before the file exists, so a Ctrl-C at any moment after it is
    # created finds the name already known to the cleanup below. (Blocking SIGINT is not
    # enough: with other threads running, e.g. torch's, the kernel may deliver it to one of
    # them and Python raises it in the main thread at once.) Ctrl-C is also held back in the
    # main thread while the file is opened, which keeps the descriptor from leaking.
    held = _hold_sigint()
    tmp = ""
    try:
        for _ in range(100):
            tmp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.part")
            try:
                fd = _create(tmp)
                break
            except FileExistsError:
                tmp = ""
        else:
            raise FileExistsError(f"{path}: cannot create a temporary file beside it")
        handle = CheckedFile(io.FileIO(fd, "w"), str(path))
        _release_sigint(held)
        held = None
        yield handle
        try:
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
        except OSError as error:  # a full disk may only show at flush or fsync
            raise write_failure(str(path), error) from None
        if path.exists() and not overwrite:  # appeared while we worked
            raise FileExistsError(f"{path}: already exists (use -f to overwrite)")
        try:
            os.replace(tmp, path)
        except OSError as error:
            raise write_failure(str(path), error) from None
    except BaseException:
        _release_sigint(held)
        if handle is not None:
            # Closing flushes: on a full disk that fails again, hiding the error that got us here.
            with contextlib.suppress(OSError):
                handle.close()
        elif fd >= 0:
            with contextlib.suppress(OSError):  # fdopen may have taken it before being interrupted
                os.close(fd)
        if tmp:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path, data: bytes, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_output`."""
    with atomic_output(path, overwrite=overwrite) as handle:
        handle.write(data)


def read_prefix(path: Path, size: int, kind: str) -> bytes:
    """The first ``size`` bytes of ``path``; file-system problems and empty files become one-line
    ``InputError`` messages (``kind`` names what a directory is not, e.g. "an image file")."""
    from walloc_cli.errors import InputError

    try:
        with open(path, "rb") as handle:
            prefix = handle.read(size)
    except FileNotFoundError as exc:
        raise InputError("no such file") from exc
    except IsADirectoryError as exc:
        raise InputError(f"is a directory, not {kind}") from exc
    except PermissionError as exc:
        raise InputError("permission denied") from exc
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror or exc})") from exc
    if not prefix:
        raise InputError("empty file")
    return prefix


def remove_previous_set(out_dir: Path, suffix: str) -> None:
    """Remove the files a data set builder wrote before (those its ``manifest.json`` lists, with
    ``suffix``, inside ``out_dir``) and the manifest; :func:`refuse_existing_set` ran first."""
    import json

    manifest = Path(out_dir) / "manifest.json"
    if not manifest.exists():
        return
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        root = Path(out_dir).resolve()
        for record in json.loads(manifest.read_text())["records"]:
            old = (Path(out_dir) / record["file"]).resolve()
            if old.is_relative_to(root) and old.suffix == suffix:  # only what a set wrote
                old.unlink(missing_ok=True)
    manifest.unlink()


def package_versions(packages: list[str]) -> dict[str, str]:
    """The installed version of each package, in the order given, for a data set's manifest:
    a PyPI distribution's, else a Debian package's (``dpkg-query``); "" when unknown."""
    import importlib.metadata
    import subprocess

    versions: dict[str, str] = {}
    for package in packages:
        try:
            versions[package] = importlib.metadata.version(package)
            continue
        except importlib.metadata.PackageNotFoundError:
            pass
        try:
            found = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=False)
            versions[package] = found.stdout.strip() if found.returncode == 0 else ""
        except OSError:
            versions[package] = ""
    return versions


def refuse_existing_set(out_dir: Path, overwrite: bool) -> None:
    """A data set builder's first check, before it needs any package: ``out_dir`` holding a set
    (its ``manifest.json``) is only rebuilt with ``overwrite``."""
    manifest = Path(out_dir) / "manifest.json"
    if manifest.exists() and not overwrite:
        raise FileExistsError(f"{manifest}: already exists (use -f to rebuild)")



class CountingWriter:
    """A write-only stream wrapper that counts the bytes passing through (a pipe cannot tell
    its size afterwards); the streaming coders report their file size from it."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream, self.count = stream, 0

    def write(self, data: bytes) -> int:
        n = self.stream.write(data)
        # A stream may take only part of a write (the caller loops): count what it took.
        self.count += len(data) if n is None else n
        return n

    def flush(self) -> None:
        self.stream.flush()
