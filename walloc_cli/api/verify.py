"""``walloc verify``: test a ``.wlc`` file end to end without keeping anything (like ``flac -t``).

:func:`verify_file` checks, in order, and stops at the first problem:

1. the container (:class:`walloc_cli.format.container.WlcReader`): signature, format version, header
   length and CRC, the JSON header, every chunk's framing and CRC-32, the END chunk, no
   trailing bytes; then every header field (:func:`walloc_cli.format.header.validate_header`: types,
   sizes within limits, before anything is allocated) and the chunk types and counts the
   modality allows;
2. the model: named in the header with the SHA-256 of its weights, installed (or given as
   ``model``) with exactly those weights;
3. the payload: the whole file is decoded by :func:`walloc_cli.api.files.decompress_file`, the same
   code as ``walloc decompress``, into a temporary folder that is removed afterwards. Any
   modality ``decompress`` reads is verified the same way.

:func:`check_decoded_output` is the check ``--delete-input`` makes on a decompressed output:
the file exists and has the size (images: width x height; audio: rate, channels, frames) that
the decoder reported, and is not a partial (``--start``/``--duration``) decode.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

from walloc_cli.api.files import decompress_file
from walloc_cli.api.modalities import modality
from walloc_cli.codecs.base import Report
from walloc_cli.errors import FormatError, WallocError, internal_error
from walloc_cli.format.container import WlcReader
from walloc_cli.format.header import chunk_tally, validate_header
from walloc_cli.format.limits import DEFAULT_MAX_PIXELS, DEFAULT_MAX_VOXELS
from walloc_cli.model.zoo import load_by_identity


@dataclasses.dataclass
class VerifyReport:
    """One file's verdict. ``problem`` is one line when ``ok`` is false."""

    file: str
    ok: bool
    problem: str | None = None
    modality: str | None = None
    model: str | None = None
    format_version: str | None = None
    bytes: int = 0
    chunks: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _problem(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return str(error) or type(error).__name__


def verify_file(path: Path | str, model: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS, max_voxels: int = DEFAULT_MAX_VOXELS) -> VerifyReport:
    """Verify ``path`` (see the module docstring). Problems with the file are reported in the
    result, never raised; any other exception is a bug in walloc, reported in the result too,
    as ``internal error (TYPE: message); please report it``. A file declaring more than
    ``max_pixels``/``max_voxels`` is reported as a problem (it is not decoded)."""
    path = Path(path)
    started = time.perf_counter()
    report = VerifyReport(str(path), ok=False)
    try:
        with open(path, "rb") as handle:
            reader = WlcReader(handle)
            chunks = list(chunk.type for chunk in reader.iter_chunks())
        header = reader.header
        report.chunks = len(chunks)
        report.bytes, report.format_version = path.stat().st_size, ".".join(map(str, reader.version))
        report.modality = header.get("modality") if isinstance(header.get("modality"), str) else None
        validate_header(header)
        tally = chunk_tally(header)
        for chunk_type in chunks:
            tally.add(chunk_type)
        identity = header["model"]
        report.model = identity["name"]
        load_by_identity(identity["name"], identity["sha256"], model)
        with tempfile.TemporaryDirectory(prefix="walloc-verify-") as folder:
            # Decoded beside a link named like the input, so the output gets decompress's own
            # default name and format for whatever modality the file holds.
            link = Path(folder) / (path.name if path.suffix else path.name + ".wlc")
            link.symlink_to(path.resolve())
            decompress_file(link, None, model=model, max_pixels=max_pixels, max_voxels=max_voxels)
        report.ok = True
    except (WallocError, OSError) as error:
        report.problem = _problem(error)
    except Exception as error:  # noqa: BLE001 - a bug in walloc: reported as such, for this file only
        report.problem = internal_error(error)
    report.seconds = time.perf_counter() - started
    return report


def check_decoded_output(report: Report) -> None:
    """Raise :class:`FormatError` unless ``report.output`` exists, is not empty and holds what
    the decoder reported (image size; audio rate, channels and frames)."""
    output = Path(report.output)
    if report.partial:  # a --start/--duration decode is never the whole input
        raise FormatError(f"{output}: holds only part of the input (--start/--duration)")
    if not output.is_file() or output.stat().st_size == 0:
        raise FormatError(f"{output}: output missing or empty")
    modality(report.modality).check_output(report)
