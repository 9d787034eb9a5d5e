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


def internal_error(error: BaseException) -> str:
    """The one line for an exception that is not a walloc error: a bug in walloc, said as such
    with its type, so that a user can report it and the other files of a batch still go on."""
    first = str(error).splitlines()[0] if str(error) else ""
    return f"internal error ({type(error).__name__}{': ' + first if first else ''}); please report it"
