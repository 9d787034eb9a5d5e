"""File safety helpers: outputs appear whole or not at all, and never clobber without consent."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import threading
from pathlib import Path
from typing import IO, BinaryIO, Iterator


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
        handle = os.fdopen(fd, "wb")
        _release_sigint(held)
        held = None
        yield handle
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        if path.exists() and not overwrite:  # appeared while we worked
            raise FileExistsError(f"{path}: already exists (use -f to overwrite)")
        os.replace(tmp, path)
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
        self.count += len(data)
        return self.stream.write(data)

    def flush(self) -> None:
        self.stream.flush()
