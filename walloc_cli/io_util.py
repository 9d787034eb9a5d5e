"""File safety helpers: outputs appear whole or not at all, and never clobber without consent."""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
from pathlib import Path
from typing import IO, Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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


@contextlib.contextmanager
def atomic_output(path: Path, overwrite: bool = False) -> Iterator[IO[bytes]]:
    """Yield a binary file in ``path``'s folder; on success rename it onto ``path``.

    On any exception (Ctrl-C included) the temporary file is removed, so a partial output is
    never left behind. ``FileExistsError`` if ``path`` exists and ``overwrite`` is false.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists (use -f to overwrite)")
    fd, tmp = -1, ""  # what exists so far: the cleanup below removes exactly that
    handle: IO[bytes] | None = None
    # Ctrl-C is held back from before the temporary file exists until its name is known inside
    # this try, so there is no moment when it exists and the cleanup below does not know it.
    held = _hold_sigint()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent or ".")
        handle = os.fdopen(fd, "wb")
        _release_sigint(held)
        held = None
        # mkstemp creates 0600; give the output the permissions a plain open() would (umask).
        os.fchmod(handle.fileno(), 0o666 & ~_umask())
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


def refuse_existing_set(out_dir: Path, overwrite: bool) -> None:
    """A data set builder's first check, before it needs any package: ``out_dir`` holding a set
    (its ``manifest.json``) is only rebuilt with ``overwrite``."""
    manifest = Path(out_dir) / "manifest.json"
    if manifest.exists() and not overwrite:
        raise FileExistsError(f"{manifest}: already exists (use -f to rebuild)")

