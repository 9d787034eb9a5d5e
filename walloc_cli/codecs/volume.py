"""Compress and decompress volumes (CT/MRI, multispectral cubes): the library behind
``walloc compress vol.nii.gz`` and ``walloc decompress vol.wlc``.

Reading and writing the files is :mod:`walloc_cli.files.volumes`; the tiled 3-D coding is
:mod:`walloc_cli.codecs.volume_tiles`. Measured figures (:class:`VolumeReport`): bits per voxel of the
whole ``.wlc`` file, compression ratio against the raw voxels at their dtype, and PSNR against
the original's data range (max - min), on the values the decoder gives back.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, BinaryIO

import numpy as np

from walloc_cli._version import __version__
from walloc_cli.codecs.base import Progress, ReportBase, checked_payload, human_bytes, setting_label
from walloc_cli.model.runtime import Runtime
from walloc_cli.format.container import WlcReader, WlcWriter, default_major
from walloc_cli.files.safe_io import CountingWriter
from walloc_cli.format.limits import DEFAULT_MAX_VOXELS
from walloc_cli.errors import FormatError, InputError
from walloc_cli.format.header import check_codec_matches, check_latent_bits, chunk_tally, declares_split, tight_bits, validate_header
from walloc_cli.format.payload import DEFAULT_EFFORT, PAYLOAD_MINOR, chooses_split, index_dtype
from walloc_cli.model.quality import choose_setting, trained_steps
from walloc_cli.model.zoo import find_card, load_by_identity, load_model
from walloc_cli.codecs.tiles import latent_grid
from walloc_cli.codecs.volume_tiles import (
    CONDITIONS,
    DECODE_MARGIN,
    ENCODE_MARGIN,
    TILE,
    Normalisation,
    check_voxels,
    choose_condition,
    decode_tile,
    encode_tile,
    pack_tile,
    parse_tile,
    tile_count,
    tile_voxels,
    tiles,
    unpack_tile,
)
from walloc_cli.files.volumes import DTYPES, VolumeData



@dataclasses.dataclass
class VolumeReport(ReportBase):
    """What one volume compression cost and lost. ``psnr`` is against ``peak`` = the original's
    data range (max - min)."""

    input: str
    output: str
    n_bytes: int
    shape: tuple[int, ...]
    dtype: str
    raw_bytes: int
    reduction: float
    model: str
    step: float
    quality: float | None
    seconds: float
    peak: float
    psnr: float | None = None

    @property
    def voxels(self) -> int:
        return math.prod(self.shape)

    @property
    def bpv(self) -> float:
        """Bits of the whole file per voxel."""
        return 8 * self.n_bytes / max(1, self.voxels)

    @property
    def ratio(self) -> float:
        return self.raw_bytes / max(1, self.n_bytes)

    modality = "volume"  # a class attribute: not a field

    def summary(self) -> str:
        """PSNR against the original's data range."""
        measured = f"PSNR {self.psnr:.2f} dB (range {self.peak:g})" if self.psnr is not None else "PSNR skipped"
        shape = "x".join(map(str, self.shape))
        return (
            f"{self.input} -> {self.output}  {human_bytes(self.n_bytes)}  {shape} {self.dtype}  {self.bpv:.3f} bits/voxel  {self.ratio:.1f}:1  "
            f"{measured}  DR {self.reduction:g}x  {setting_label(self.model, self.step, self.quality)}  {self.seconds:.2f} s"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "shape": list(self.shape), "modality": "volume", "bpv": self.bpv, "ratio": self.ratio}


@dataclasses.dataclass
class VolumeDecompressReport(ReportBase):
    """What one volume decompression wrote."""

    input: str
    output: str
    shape: tuple[int, ...]
    dtype: str
    seconds: float

    modality = "volume"

    def summary(self) -> str:
        return f"{self.input} -> {self.output}  {'x'.join(map(str, self.shape))} {self.dtype}  {self.seconds:.2f} s"


def volume_family(volume: VolumeData) -> str:
    """``multispectral`` for band cubes, ``volume`` (the CT/MRI model) for everything else."""
    return "multispectral" if volume.kind == "multispectral" else "volume"


def compress_volume(volume: VolumeData, dst_stream: BinaryIO, *, source: str = "", model: str | None = None, quality: float | None = None, payload: str | None = None, effort: int | None = None, measure: bool = True, progress: Progress | None = None, max_voxels: int = DEFAULT_MAX_VOXELS) -> VolumeReport:
    """Code ``volume`` into ``dst_stream`` (written front to back: a pipe works), tile by tile;
    ``progress(done, total)`` is called after each tile (coded, then measured).

    ``quality`` (0..100) picks the model and step through the family's quality map; a ``model``
    given alone codes at step 1, with ``quality`` across its own step range. Volumes of more
    than ``max_voxels`` voxels are refused (:func:`walloc_cli.codecs.volume_tiles.check_voxels`).
    """
    checked_payload(payload)  # refused before any work
    array = volume.array
    if array.ndim != 3:
        raise InputError(f"a volume must be 3-D, got shape {array.shape}")
    if array.dtype.name not in DTYPES:
        raise InputError(f"volume dtype {array.dtype.name} is not supported (use one of {', '.join(DTYPES)})")
    check_voxels(array.shape, max_voxels)
    started = time.perf_counter()
    card = find_card(model) if model else None
    setting, quality_used = choose_setting(quality, volume_family(volume), card)
    codec, card = load_model(model if card is not None else setting.model)
    if card.modality != "volume" or codec.cfg.dims != 3 or codec.cfg.channels != 1:
        raise InputError(f"model {card.name!r} is a {card.modality} model, not a volume model")
    step = setting.step
    effort = int(card.card.get("payload_effort", DEFAULT_EFFORT)) if effort is None else effort
    payload = checked_payload(payload, effort)
    norm = Normalisation.of(array)
    norm.check()
    shape = tuple(int(s) for s in array.shape)
    grid = latent_grid(shape, codec.cfg.block)
    bits = codec.index_bits(step)
    latent: dict[str, Any] = {"bits": bits, "step": float(step), "payload": payload, "tile": list(TILE), "encode_margin": ENCODE_MARGIN, "decode_margin": DECODE_MARGIN}
    condition = step
    if codec.cfg.step_input:  # the header must precede the tiles (streamed), so measure first
        largest, smallest = trained_steps(card)
        candidates = tuple(sorted({step, *(c for c in CONDITIONS if smallest <= c <= largest)}))
        condition = latent["condition"] = choose_condition(codec, array, norm, grid, step, candidates)
    header = {
        "encoder": f"walloc {__version__}",
        "modality": "volume",
        "volume": {"shape": list(shape), "dtype": array.dtype.name, "axes": volume.axes, "coding_axes": volume.coding_axes, "format": volume.format, "kind": volume.kind, "meta": volume.meta},
        "model": {"name": card.name, "sha256": card.sha256},
        "codec": codec.cfg.to_dict(),
        "latent": latent,
        "normalisation": norm.to_dict(),
    }
    # Every tile is encoded before the header is written: the header declares the bits the
    # indices need (format 1.3, format.header.tight_bits), and it precedes the tiles. The grid
    # (1/8 of the voxels for 8x models, int8/int16) is what the measurement below holds anyway;
    # the encoder does no more work, only the first byte comes out later.
    q = np.zeros((codec.cfg.latent_dim, *grid), index_dtype(bits))
    total = tile_count(grid) * (2 if measure else 1)
    for done, tile in enumerate(tiles(grid), 1):
        q[(slice(None), *tile.slices())] = encode_tile(codec, array, norm, tile, step)
        if progress is not None:
            progress(done, total)
    latent["bits"] = tight_bits(q, bits)
    # format 2.1: the low-pass group in images of its own, -1.1..-2.2% bytes on the corpus MRI
    # volumes at q 10/50/90 (bench/results/payload_layouts.md); decided on a whole tile's grid
    split = chooses_split((codec.cfg.latent_dim, *(min(g, t) for g, t in zip(grid, TILE))), payload, default_major())
    if split:
        latent["split"] = True
    # the lowest version that defines what the file uses: 1.3 tight bits or the jxl payload, 1.1 latent.condition
    minor = max(3 if latent["bits"] < bits else 1 if "condition" in latent else 0, PAYLOAD_MINOR.get(payload, 0))
    counted = CountingWriter(dst_stream)
    with WlcWriter(counted, header, minor=minor) as writer:  # type: ignore[arg-type]
        for tile in tiles(grid):
            writer.write_chunk(pack_tile(tile, np.ascontiguousarray(q[(slice(None), *tile.slices())]), latent["bits"], payload, effort, split))
    report = VolumeReport(
        input=source, output="", n_bytes=counted.count, shape=shape, dtype=array.dtype.name,
        raw_bytes=array.size * array.dtype.itemsize, reduction=codec.cfg.reduction, model=card.name, step=step,
        quality=quality_used, seconds=time.perf_counter() - started, peak=norm.high - norm.low,
    )
    if measure:  # from the indices themselves: the lossless stage is exact
        # Errors in units of the data range: squaring raw differences overflows float64 for
        # values past about 1e154, which a float64 volume may hold.
        unit = report.peak if report.peak > 0 else 1.0
        squared = 0.0
        for done, tile in enumerate(tiles(grid), total // 2 + 1):
            where = tile_voxels(tile, shape, codec.cfg.block)
            decoded = norm.inverse(decode_tile(codec, q, shape, tile, step, condition=condition), array.dtype)
            squared += float((((decoded.astype(np.float64) - np.asarray(array[where], np.float64)) / unit) ** 2).sum())
            if progress is not None:
                progress(done, total)
        mse = squared / max(1, array.size)  # of the error / peak
        report.psnr = -10 * math.log10(mse) if mse > 0 and report.peak > 0 else math.inf
    return report


def decode_volume(reader: WlcReader, *, model: str | None = None, progress: Progress | None = None, max_voxels: int = DEFAULT_MAX_VOXELS) -> VolumeData:
    """Decode a volume ``.wlc`` (its header already read by ``reader``) into a :class:`VolumeData`
    of the original shape, dtype, axes and metadata; ``progress(done, total)`` after each tile.
    A file declaring more than ``max_voxels`` voxels is refused from its header."""
    header = reader.header
    validate_header(header, "volume")
    check_voxels(tuple(header["volume"]["shape"]), max_voxels)
    codec, _ = load_by_identity(header["model"]["name"], header["model"]["sha256"], model)
    check_codec_matches(header, dataclasses.asdict(codec.cfg))
    if codec.cfg.dims != 3 or codec.cfg.channels != 1:
        raise FormatError("invalid header: the model is not a volume model")
    check_latent_bits(header, reader.version, codec.index_bits(header["latent"]["step"]))
    q = volume_latents(reader, codec.cfg.latent_dim, codec.cfg.block)
    return synthesize_volume(codec, q, header, progress)


def volume_latents(reader: WlcReader, latent_dim: int, block: int) -> np.ndarray:
    """The integer latent grid ``(latent_dim, *ceil(shape / block))`` of a volume file, int8 or
    int16 (:func:`walloc_cli.format.payload.index_dtype`)
    (header validated, chunks not yet read): lossless stage only, no model run.

    Every chunk is read and checked before the grid is allocated: a short file declaring a huge
    shape fails here, not after a multi-gigabyte allocation.
    """
    header = reader.header
    volume, latent = header["volume"], header["latent"]
    shape = tuple(volume["shape"])
    size = tuple(latent["tile"])
    grid = latent_grid(shape, block)
    expected = tile_count(grid, size)  # type: ignore[arg-type]
    parsed = []
    tally = chunk_tally(header)
    for chunk in reader.iter_chunks():
        tally.add(chunk.type)
        if len(parsed) == expected:
            raise FormatError(f"more volume tiles than the {expected} the header declares")
        parsed.append(parse_tile(chunk.data, grid, size))  # type: ignore[arg-type]
    if len(parsed) != expected:
        raise FormatError(f"truncated: {len(parsed)} of {expected} volume tiles")
    if [tile for tile, _ in parsed] != list(tiles(grid, size)):  # type: ignore[arg-type]
        raise FormatError("volume tiles are out of order or overlap")
    q = np.zeros((latent_dim, *grid), index_dtype(latent["bits"]))
    for tile, images in parsed:
        q[(slice(None), *tile.slices())] = unpack_tile(tile, images, latent_dim, latent["bits"], latent["payload"], declares_split(header))
    return q


def synthesize_volume(codec: Runtime, q: np.ndarray, header: dict[str, Any], progress: Progress | None = None) -> VolumeData:
    """Run the decoder over the latent grid ``q`` ``(L, *G)`` tile by tile (each with its
    neighbours' latents as context) into the original shape, dtype, axes and metadata."""
    volume, latent, n = header["volume"], header["latent"], header["normalisation"]
    shape = tuple(volume["shape"])
    expected = (codec.cfg.latent_dim, *latent_grid(shape, codec.cfg.block))
    if q.shape != expected:
        raise InputError(f"latents are {q.shape}, this file's model and shape need {expected}")
    if not np.issubdtype(q.dtype, np.integer):
        raise InputError(f"latents must be integer indices, not {q.dtype}")
    dtype = np.dtype(volume["dtype"])
    norm = Normalisation(float(n["offset"]), float(n["scale"]), float(n["min"]), float(n["max"]))
    out = np.empty(shape, dtype)
    grid, size = latent_grid(shape, codec.cfg.block), tuple(latent["tile"])
    for done, tile in enumerate(tiles(grid, size), 1):  # type: ignore[arg-type]
        part = decode_tile(codec, q, shape, tile, float(latent["step"]), latent["decode_margin"], latent.get("condition"))  # type: ignore[arg-type]
        out[tile_voxels(tile, shape, codec.cfg.block)] = norm.inverse(part, dtype)  # type: ignore[arg-type]
        if progress is not None:
            progress(done, tile_count(grid, size))  # type: ignore[arg-type]
    return VolumeData(array=out, axes=volume["axes"], coding_axes=volume["coding_axes"], format=volume["format"], meta=volume["meta"], kind=volume["kind"])
