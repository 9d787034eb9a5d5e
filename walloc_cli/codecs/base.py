"""What every codec shares: the :class:`Report` contract, the :data:`Progress` callback, the
one way to open a ``.wlc`` (:func:`open_wlc`) and :func:`human_bytes` for the summaries.

Torch-free (it is imported by :mod:`walloc_cli.api.latents`, which reads latents without the
model). The modality codecs (:mod:`walloc_cli.codecs.image`, :mod:`walloc_cli.codecs.audio`,
:mod:`walloc_cli.codecs.volume`) import it; they never import each other.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable

from walloc_cli.errors import InputError
from walloc_cli.format.container import WlcReader, default_major
from walloc_cli.format.payload import DEFAULT_EFFORT, resolve_payload

Progress = Callable[[int, int], None]
"""``progress(done, total)``: called as a long job advances (audio frames, volume tiles)."""

WlcSource = str | Path | bytes | bytearray | memoryview | BinaryIO
"""Where a ``.wlc`` is read from: a path, its bytes, or a binary stream at its first byte."""


@runtime_checkable
class Report(Protocol):
    """What one compression or decompression did, whatever the modality.

    The CLI prints :meth:`summary` (or :meth:`to_dict` with ``--json``), each of ``warnings``
    as ``walloc: SRC: warning`` on standard error unless ``--quiet``, and each of ``problems``
    as ``walloc: SRC: problem`` (the file then counts as failed: exit status 1).
    """

    modality: str  # "image" | "audio" | "volume"
    input: str
    output: str
    seconds: float
    partial: bool  # the output holds only part of the input (audio --start/--duration): never delete the input for it

    @property
    def warnings(self) -> list[str]: ...

    @property
    def problems(self) -> list[str]: ...

    def summary(self) -> str:
        """The one line ``walloc compress``/``decompress`` prints for the file."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """The JSON record ``--json`` prints for the file."""
        ...


class ReportBase:
    """The :class:`Report` defaults, for a report class (a dataclass) to inherit: the output is
    the whole input (``partial`` False), no warnings, no problems, and the JSON record is the
    dataclass's fields. A report overrides what it has: the image compress report its
    "target not reachable" warning, the audio decompress report its damaged blocks.
    (Class attributes, not dataclass fields: they stay out of the JSON record.)"""

    partial = False

    @property
    def warnings(self) -> list[str]:
        return []

    @property
    def problems(self) -> list[str]:
        return []

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]  # subclasses are dataclasses


def checked_payload(payload: str | None, effort: int = DEFAULT_EFFORT) -> str:
    """The lossless coder a writer uses: ``payload``, or for ``None`` the default of the format
    written here at ``effort`` (``ctx`` at efforts 5-6 in format 2, else ``webp``;
    :func:`resolve_payload`).

    Raises:
        InputError: an unknown payload, or one the format written cannot hold (``ctx`` in 1.x).
    """
    try:
        return resolve_payload(payload, default_major(), effort)
    except ValueError as error:
        raise InputError(str(error)) from None


def human_bytes(n: int) -> str:
    """``512 B``, ``1.5 KiB``, ``2.0 MiB``, ``1.1 GiB``: sizes in the summaries."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def setting_label(model: str, step: float, quality: float | None) -> str:
    """``rgb-16x-v step 2`` or ``rgb-16x-v step 2 (q 75)``: the setting in a summary."""
    return f"{model} step {step:g}" + (f" (q {quality:g})" if quality is not None else "")


@contextlib.contextmanager
def open_wlc(source: WlcSource) -> Iterator[WlcReader]:
    """A :class:`WlcReader` over a ``.wlc`` given as bytes, a path or a binary stream (read
    from its current position), with its header read; a file opened here is closed on exit.

    Raises:
        InputError: the path does not exist or is a directory.
        TypeError: ``source`` is none of these.
        FormatError: not a ``.wlc`` (from the container's header checks).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield WlcReader(io.BytesIO(bytes(source)))
    elif isinstance(source, (str, Path)):
        try:
            handle = open(source, "rb")  # noqa: SIM115 (the with below closes it)
        except FileNotFoundError:
            raise InputError("no such file") from None
        except IsADirectoryError:
            raise InputError("is a directory, not a .wlc file") from None
        with handle:
            yield WlcReader(handle)
    elif hasattr(source, "read"):
        yield WlcReader(source)
    else:
        raise TypeError(f"expected bytes, a path or a binary file object, got {type(source).__name__}")


__all__ = ["Progress", "Report", "WlcSource", "human_bytes", "open_wlc", "setting_label"]
