"""Where outputs go and what may be written there: default names, compound extensions, the
output checks made before any coding, and standard input as a file.

Used by :mod:`walloc_cli.api.files` (one conversion), :mod:`walloc_cli.api.modalities` (the
per-modality file glue) and :mod:`walloc_cli.api.batch` (a batch's outputs must not collide).
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from walloc_cli.errors import InputError
from walloc_cli.files.safe_io import STDIO, check_writable

#: Two-part extensions that name one format, removed as one: ``head.nii.gz`` compresses to
#: ``head.wlc`` and decompresses to ``head.nii.gz`` (``Path.with_suffix`` made ``head.nii.wlc``,
#: then ``head.nii.nii.gz``).
COMPOUND_SUFFIXES = (".nii.gz", ".ome.tiff", ".ome.tif")


def output_stem(path: Path) -> Path:
    """``path`` without its extension, a compound one (:data:`COMPOUND_SUFFIXES`) as a whole."""
    path = Path(path)
    lower = path.name.lower()
    for compound in COMPOUND_SUFFIXES:
        if lower.endswith(compound) and len(lower) > len(compound):
            return path.with_name(path.name[: -len(compound)])
    return path.with_suffix("")


def default_output(src: Path, suffix: str) -> Path:
    """``photo.png`` -> ``photo.wlc`` beside it, ``head.nii.gz`` -> ``head.wlc`` -> ``head.nii.gz``;
    data read from standard input goes to standard output. A ``head.nii.wlc`` (named before
    compound extensions were stripped) still decompresses to ``head.nii.gz``, not ``head.nii.nii.gz``."""
    if str(src) == STDIO:
        return Path(STDIO)
    stem = output_stem(Path(src))
    for compound in COMPOUND_SUFFIXES:
        first = compound[: compound.index(".", 1)]  # ".nii" of ".nii.gz"
        if suffix.lower() == compound and stem.name.lower().endswith(first) and len(stem.name) > len(first):
            stem = stem.with_name(stem.name[: -len(first)])
    return stem.with_name(stem.name + suffix)


def check_output(src: Path, dst: Path, overwrite: bool) -> None:
    """Before any coding: the output must not be the input and must be writable (named if not)."""
    if str(dst) == STDIO:
        return
    if str(src) != STDIO and dst.resolve() == src.resolve():
        raise InputError("output would overwrite the input")
    check_writable(dst, overwrite)


@contextlib.contextmanager
def input_path(source: str | Path | bytes | bytearray | memoryview | BinaryIO, *, stdin: bool = True) -> Iterator[Path]:
    """A path to read ``source`` from: a path itself, else a temporary copy of its bytes, of a
    binary stream, or (with ``stdin``, for the path ``-``) of standard input. Formats are
    sniffed from the content, and audio containers need to seek: a pipe will not do."""
    if isinstance(source, (str, Path)) and not (stdin and str(source) == STDIO):
        yield Path(source)
        return
    with tempfile.TemporaryDirectory(prefix="walloc-") as folder:
        spooled = Path(folder) / ("stdin" if isinstance(source, (str, Path)) else "input")
        with open(spooled, "wb") as handle:
            if isinstance(source, (bytes, bytearray, memoryview)):
                handle.write(source)
            else:
                shutil.copyfileobj(sys.stdin.buffer if isinstance(source, (str, Path)) else source, handle, 1 << 20)
        yield spooled


__all__ = ["COMPOUND_SUFFIXES", "check_output", "default_output", "input_path", "output_stem"]
