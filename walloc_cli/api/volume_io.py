"""Volumes through the API: the file glue (read the volume, code it tile by tile, write the
output, the report), its in-memory decoding, as the :class:`~walloc_cli.api.options.Modality`
:data:`MODALITY` that :mod:`walloc_cli.api.modalities` hands out for ``"volume"``; and
:func:`encode_volume` for arrays (``walloc.compress(array, axes=...)``).
"""

from __future__ import annotations

import io
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from walloc_cli.api.latents import LatentInfo, Latents
from walloc_cli.api.options import CompressOptions, DecompressOptions, Modality
from walloc_cli.api.paths import check_output, default_output
from walloc_cli.codecs import volume
from walloc_cli.errors import FormatError, WallocError
from walloc_cli.files.sniff import Sniffed
from walloc_cli.files.safe_io import STDIO, output_stream
from walloc_cli.files.volumes import VolumeData, default_volume_suffix, read_volume, write_volume
from walloc_cli.format.container import WlcReader
from walloc_cli.model.runtime import Runtime


def compress_file(src: Path, found: Sniffed, dst: Path, options: CompressOptions) -> volume.VolumeReport:
    data = read_volume(found.path, axes=options.axes)
    with output_stream(dst, overwrite=options.overwrite) as handle:
        report = volume.compress_volume(
            data, handle, source=str(src), model=options.model, quality=options.quality, payload=options.payload,
            measure=options.measure, effort=options.effort, progress=options.progress, max_voxels=options.max_voxels,
        )
    report.output = str(dst)
    return report


def encode_file(path: Path, options: CompressOptions) -> bytes:
    return encode_volume(read_volume(path, axes=options.axes), options)


def encode_volume(data: VolumeData, options: CompressOptions) -> bytes:
    """A :class:`walloc_cli.files.volumes.VolumeData` to ``.wlc`` bytes, unmeasured."""
    buffer = io.BytesIO()
    volume.compress_volume(data, buffer, model=options.model, quality=options.quality, payload=options.payload, effort=options.effort, measure=False, max_voxels=options.max_voxels)
    return buffer.getvalue()


def decompress_file(reader: WlcReader, src: Path, dst: Path | None, options: DecompressOptions) -> volume.VolumeDecompressReport:
    started = time.perf_counter()
    table = reader.header.get("volume")
    fmt = table.get("format", "") if isinstance(table, dict) else ""
    dst = Path(dst) if dst is not None else default_output(src, default_volume_suffix(fmt if isinstance(fmt, str) else ""))
    check_output(src, dst, options.overwrite)
    data = volume.decode_volume(reader, model=options.model, progress=options.progress, max_voxels=options.max_voxels)
    if str(dst) == STDIO:
        with output_stream(dst) as handle:
            # np.save writes the header and then the array's bytes in pieces through .write
            np.save(handle, data.array, allow_pickle=False)
    else:
        try:
            write_volume(dst, data, overwrite=options.overwrite)
        except WallocError:
            raise
        except (TypeError, ValueError, KeyError, AttributeError, IndexError) as error:
            # the metadata a writer restores (spacing, NIfTI header, TIFF tags) comes from the file
            raise FormatError(f"invalid header: the volume metadata cannot be written back ({type(error).__name__}: {error})") from None
    return volume.VolumeDecompressReport(str(src), str(dst), tuple(data.array.shape), data.array.dtype.name, time.perf_counter() - started)


def decode_array(reader: WlcReader, options: DecompressOptions) -> tuple[np.ndarray, dict[str, Any]]:
    data = volume.decode_volume(reader, model=options.model, max_voxels=options.max_voxels)
    return data.array, {"modality": "volume", "axes": data.coding_axes, "file_axes": data.axes, "kind": data.kind, "meta": data.meta, "header": reader.header}


def decode_latents(codec: Runtime, latents: Latents, info: LatentInfo) -> np.ndarray:
    return volume.synthesize_volume(codec, np.asarray(latents), info.header).array


def rates(header: dict[str, Any], size: int) -> dict[str, Any]:
    table = header["volume"]
    voxels = math.prod(table["shape"])
    return {"bpv": 8 * size / voxels, "ratio": voxels * np.dtype(table["dtype"]).itemsize / max(1, size)}


def check_output_holds(report: volume.VolumeDecompressReport) -> None:
    """Nothing beyond the output's presence (checked for every modality) is checked for volumes."""


MODALITY = Modality("volume", compress_file, encode_file, decompress_file, decode_array, decode_latents, rates, check_output_holds)

__all__ = ["MODALITY", "encode_volume"]
