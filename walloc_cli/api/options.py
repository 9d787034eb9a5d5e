"""What the API's modality table holds (:mod:`walloc_cli.api.modalities`): the options of a
conversion, whatever the modality, and :class:`Modality`, the record of one modality's
functions. The modality modules (:mod:`walloc_cli.api.image_io`, :mod:`walloc_cli.api.audio_io`,
:mod:`walloc_cli.api.volume_io`) each build one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from walloc_cli.codecs.base import Progress, Report
from walloc_cli.errors import InputError
from walloc_cli.files.image_meta import DEFAULT_METADATA
from walloc_cli.files.sniff import Sniffed
from walloc_cli.format.container import WlcReader
from walloc_cli.format.limits import DEFAULT_MAX_PIXELS, DEFAULT_MAX_VOXELS

if TYPE_CHECKING:  # in annotations only
    from walloc_cli.api.latents import LatentInfo, Latents

#: What the image reader adds to "not a supported image" for callers that take every modality.
ALSO_ACCEPTED = " nor audio libsndfile reads nor a multi-page TIFF, .npy or NIfTI volume,"


@dataclasses.dataclass(frozen=True)
class CompressOptions:
    """How to compress, whatever the modality (each uses the fields that apply to it)."""

    model: str | None = None
    payload: str | None = None  # None: webp, or ctx at effort 5-6 (format 2)
    overwrite: bool = False
    measure: bool = True
    effort: int | None = None
    quality: float | None = None
    target_psnr: float | None = None  # images
    target_size: int | None = None  # images
    axes: str | None = None  # volumes
    progress: Progress | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_voxels: int = DEFAULT_MAX_VOXELS
    metadata: frozenset[str] | str = DEFAULT_METADATA  # images
    wlc_version: int = 2  # .wlc major written: 2 (compact), or 1 for readers older than format 2.0
    refine: int = 0  # images: encoder-side search steps (walloc_cli.codecs.image_refine); needs torch

    def check_modality(self, modality: str, flags: bool = False) -> None:
        """Refuse the image-only options (targets, ``refine``) for an ``"audio"`` or ``"volume"``
        input, naming them as the CLI spells them (``flags``) or as the API does."""
        if modality == "image":
            return
        kind = "audio" if modality == "audio" else "volumes"
        if self.target_psnr is not None or self.target_size is not None:
            names, use = ("--target-psnr and --target-size", "-q") if flags else ("target_psnr and target_size", "quality")
            raise InputError(f"{names} are for images{' in this version' if flags else ''}; use {use} for {kind}")
        if self.refine:
            raise InputError(f"{'--refine' if flags else 'refine'} is for images{' in this version' if flags else ''}, not {kind}")


@dataclasses.dataclass(frozen=True)
class DecompressOptions:
    """How to decompress, whatever the modality."""

    model: str | None = None
    overwrite: bool = False
    keep_going: bool = False  # audio
    start: float | None = None  # audio, seconds
    duration: float | None = None  # audio, seconds
    progress: Progress | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_voxels: int = DEFAULT_MAX_VOXELS


@dataclasses.dataclass(frozen=True)
class Modality:
    """What the API does with one modality.

    * ``compress_file(src, found, dst, options)``: code the file :func:`~walloc_cli.files.sniff.identify`
      found (``found.path``; ``src`` as the user named it, ``-`` being standard input spooled
      to ``found.path``) into ``dst``; the report. Readers take ``found.prefix`` rather than
      opening the file again to sniff it.
    * ``encode_file(path, options)``: the same into bytes, unmeasured (``walloc.compress``).
    * ``decompress_file(reader, src, dst, options)``: decode a ``.wlc`` whose validated header
      ``reader`` has read into ``dst`` (``None``: the default output); the report.
    * ``decode_array(reader, options)``: ``(array, metadata)`` as ``walloc.decompress`` gives.
    * ``decode_latents(codec, latents, info)``: the decoder on :func:`read_latents`' latents.
    * ``rates(header, size)``: what ``walloc info`` adds for a file of ``size`` bytes.
    * ``check_output(report)``: raise :class:`FormatError` unless a decompressed output holds
      what the report says (``--delete-input``).
    """

    name: str
    compress_file: Callable[[Path, Sniffed, Path, CompressOptions], Report]
    encode_file: Callable[[Path, CompressOptions], bytes]
    decompress_file: Callable[[WlcReader, Path, Path | None, DecompressOptions], Report]
    decode_array: Callable[[WlcReader, DecompressOptions], tuple[np.ndarray, dict[str, Any]]]
    decode_latents: Callable[[Any, Latents, LatentInfo], np.ndarray]  # (a model.runtime.Runtime, ...)
    rates: Callable[[dict[str, Any], int], dict[str, float]]
    check_output: Callable[[Report], None]


__all__ = ["ALSO_ACCEPTED", "CompressOptions", "DecompressOptions", "Modality"]
