"""Files in, files out: what ``walloc compress``, ``decompress`` and ``info`` do for one file.

:func:`compress_file` sniffs the input (:func:`walloc_cli.files.sniff.identify`, the one order
every command uses) and :func:`decompress_file` reads the header; both then hand the file to
its modality (:data:`walloc_cli.api.modalities.MODALITIES`) and return its
:class:`~walloc_cli.codecs.base.Report`. Outputs are named and checked by
:mod:`walloc_cli.api.paths` before any coding, written atomically, never clobbered without
``overwrite``; ``-`` is standard input / standard output.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any, Iterable

from walloc_cli.api.modalities import describe_rates, for_header, for_input
from walloc_cli.api.options import CompressOptions, DecompressOptions
from walloc_cli.api.paths import check_output, default_output, input_path
from walloc_cli.codecs.base import Progress, Report
from walloc_cli.errors import FormatError, InputError
from walloc_cli.files.image_meta import DEFAULT_METADATA, METADATA_CHUNKS, parse_metadata
from walloc_cli.files.images import DEFAULT_MAX_PIXELS
from walloc_cli.files.safe_io import STDIO
from walloc_cli.files.sniff import Kind, detect, identify
from walloc_cli.format.container import WlcReader, sniff
from walloc_cli.format.container import wlc_version as wlc_version_written
from walloc_cli.format.header import chunk_tally, validate_header
from walloc_cli.format.limits import DEFAULT_MAX_VOXELS


def compress_file(
    src: Path,
    dst: Path | None = None,
    *,
    model: str | None = None,
    payload: str | None = None,
    overwrite: bool = False,
    measure: bool = True,
    effort: int | None = None,
    quality: float | None = None,
    target_psnr: float | None = None,
    target_size: int | None = None,
    axes: str | None = None,
    progress: Progress | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_voxels: int = DEFAULT_MAX_VOXELS,
    metadata: str | Iterable[str] = DEFAULT_METADATA,
    wlc_version: int = 2,
    refine: int = 0,
) -> Report:
    """Compress image, audio or volume ``src`` (sniffed by content) into ``dst`` (default: beside
    it with ``.wlc``); ``-`` is stdin/stdout. Returns the modality's report
    (:class:`walloc_cli.codecs.image.CompressReport`, :class:`walloc_cli.codecs.audio.AudioReport`
    or :class:`walloc_cli.codecs.volume.VolumeReport`).

    ``quality``/``target_psnr``/``target_size`` choose the operating point as in
    :func:`walloc_cli.codecs.image.compress_image` (targets are for images). ``axes`` (e.g.
    ``ZYX``, ``CYX``, ``YXC``) reads ``src`` as a volume with those axes, overriding its
    metadata (:func:`walloc_cli.files.volumes.read_volume`). ``max_pixels``/``max_voxels``:
    larger images/volumes are refused before they are decoded. ``metadata`` (images): which of
    ICC, EXIF and XMP to keep, as in :func:`walloc_cli.codecs.image.compress_image`.
    ``wlc_version``: the ``.wlc`` major to write, 2 (compact) or 1 (read by walloc before format
    2.0; :func:`walloc_cli.format.container.wlc_version`). ``payload``: the latents' lossless
    coder; ``None`` is ``webp``, or ``ctx`` at effort 5-6 in format 2. ``refine`` (images): steps of
    encoder-side search through the decoder (0: none; needs torch), as in
    :func:`walloc_cli.codecs.image.compress_image`.
    """
    src = Path(src)
    kept = parse_metadata(metadata)  # a bad value is refused before any work
    dst = Path(dst) if dst is not None else default_output(src, ".wlc")
    check_output(src, dst, overwrite)
    options = CompressOptions(model, payload, overwrite, measure, effort, quality, target_psnr, target_size, axes, progress, max_pixels, max_voxels, kept, wlc_version, refine)
    with input_path(src) as path:
        found = identify(path)  # the one open to sniff; the reader is handed the bytes it read
        if found.kind is Kind.WLC:
            raise InputError("already a .wlc file (walloc decompress decodes it)")
        modality = for_input(found.kind, axes)
        options.check_modality(modality.name, flags=True)
        with wlc_version_written(options.wlc_version):
            return modality.compress_file(src, found, dst, options)


def decompress_file(src: Path, dst: Path | None = None, *, overwrite: bool = False, model: str | None = None, keep_going: bool = False, start: float | None = None, duration: float | None = None, progress: Progress | None = None, max_pixels: int = DEFAULT_MAX_PIXELS, max_voxels: int = DEFAULT_MAX_VOXELS) -> Report:
    """Decompress ``src`` (.wlc) into an image, audio or volume file; format from ``dst``'s
    extension. Defaults: PNG for images; for audio the source's container when walloc writes it
    (FLAC, AIFF), else WAV; for volumes the source's format. ``-`` reads standard input /
    writes PNG, WAV or ``.npy`` to standard output. ``keep_going`` (audio): a damaged block
    becomes silence, listed in the report's ``problems``, instead of failing the file.
    ``start``/``duration`` (audio, seconds): decode only that stretch, skipping the blocks
    before it unread. ``max_pixels``/``max_voxels``: a file declaring a larger image/volume is
    refused from its header."""
    src = Path(src)
    options = DecompressOptions(model, overwrite, keep_going, start, duration, progress, max_pixels, max_voxels)
    with contextlib.ExitStack() as stack:
        stream = sys.stdin.buffer if str(src) == STDIO else stack.enter_context(open(src, "rb"))
        reader = WlcReader(stream)
        validate_header(reader.header)  # first: every field is then safe to use (and each problem named)
        modality = for_header(reader.header)
        if modality.name != "audio" and (start is not None or duration is not None):
            raise InputError(f"--start and --duration are for audio; this file holds {'a volume' if modality.name == 'volume' else 'an image'}")
        return modality.decompress_file(reader, src, dst, options)


#: The chunk types that hold a modality's coded latents: what ``payload_bytes`` counts.
PAYLOAD_CHUNKS = ("LATN", "AUDB", "VOLT")


def describe(src: Path) -> dict[str, Any]:
    """Everything ``walloc info`` shows: header, chunk sizes, rates. Validates CRCs on the way.

    ``bytes`` is the file's size, ``payload_bytes`` the bytes of its coded latents (the data of
    its ``LATN``, ``AUDB`` or ``VOLT`` chunks); the rest is header, framing and metadata."""
    src = Path(src)
    size = src.stat().st_size
    kind = detect(src)
    if kind in (Kind.IMAGE, Kind.AUDIO, Kind.VOLUME):  # the kind compress would code it as
        raise FormatError(f"not a .wlc file: by its content it is {kind.phrase} (walloc compress codes it)")
    with open(src, "rb") as handle:
        reader = WlcReader(handle)
        validate_header(reader.header)
        tally = chunk_tally(reader.header)
        chunks: dict[str, dict[str, int]] = {}
        for chunk in reader.iter_chunks():
            tally.add(chunk.type)
            entry = chunks.setdefault(chunk.type, {"count": 0, "bytes": 0})
            entry["count"] += 1
            entry["bytes"] += len(chunk.data)
    header = reader.header
    payload = sum(entry["bytes"] for kind, entry in chunks.items() if kind in PAYLOAD_CHUNKS)
    info: dict[str, Any] = {"file": str(src), "bytes": size, "payload_bytes": payload, "format_version": ".".join(map(str, reader.version)), "header": header, "chunks": chunks}
    if header.get("modality") == "image":  # which of ICC, EXIF and XMP the file keeps (an sRGB profile as a flag)
        flagged = {"ICCP"} if "icc" in header["image"] else set()
        info["metadata"] = [name for chunk_type, name in METADATA_CHUNKS.items() if chunk_type in chunks or chunk_type in flagged]
    info.update(describe_rates(header, size))
    return info


def is_wlc(path: Path) -> bool:
    """Sniff the magic bytes (not the extension)."""
    with open(path, "rb") as handle:
        return sniff(handle.read(8))


__all__ = ["PAYLOAD_CHUNKS", "compress_file", "decompress_file", "describe", "is_wlc"]
