"""Domain errors. Each carries one human line; the CLI prints ``walloc: <file>: <message>``."""

from __future__ import annotations


class WallocError(Exception):
    """Base class: a problem the user can act on (bad input, missing model, refused overwrite)."""


class FormatError(WallocError):
    """A ``.wlc`` file is not valid: wrong magic, unsupported version, truncated, bad CRC."""


class InputError(WallocError):
    """An input signal cannot be coded: unknown format, empty, NaN/Inf, absurd size."""


class ModelError(WallocError):
    """A model is unknown, its weights do not match their SHA-256, or it does not fit the input."""


class OutputError(WallocError, OSError):
    """An output cannot be written (missing folder, full disk, closed pipe). The message names
    the output, not the input: ``walloc: OUTPUT: cannot write: no space left on device``. It is
    also an :class:`OSError`, so code that handles write failures as such still sees one."""

    def __init__(self, message: str) -> None:
        WallocError.__init__(self, message)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def internal_error(error: BaseException) -> str:
    """The one line for an exception that is not a walloc error: a bug in walloc, said as such
    with its type, so that a user can report it and the other files of a batch still go on."""
    first = str(error).splitlines()[0] if str(error) else ""
    return f"internal error ({type(error).__name__}{': ' + first if first else ''}); please report it"
