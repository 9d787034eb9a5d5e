"""Library API: compress and decompress images to and from ``.wlc``; the CLI is a thin layer on it.

Layered like python-soundfile: :func:`encode_image` / :func:`decode_image` work on in-memory
:class:`~walloc_cli.files.images.ImageData` and bytes; :func:`compress_file` / :func:`decompress_file`
add file handling (naming, no clobbering, atomic writes) and the measured report.

Header fields written here are specified in ``formats/wlc.md`` ("Header fields (v1)").
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import sys
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Iterable, Iterator

import numpy as np

from walloc_cli import __version__
from walloc_cli.format.container import Chunk, WlcReader, WlcWriter, sniff
from walloc_cli.errors import FormatError, InputError, ModelError, WallocError
from walloc_cli.format.header import MAX_PIXELS, MAX_SIDE, MAX_STEP, MIN_STEP, check_codec_matches, chunk_tally, require, validate_header, validate_image_header
from walloc_cli.codecs.image_tiles import image_indices, synthesize_samples, synthesized_tiles, tiles_psnr
from walloc_cli.files.image_meta import DEFAULT_METADATA, MAX_METADATA, METADATA_CHUNKS, keep_metadata, parse_metadata, upright_blocks
from walloc_cli.files.images import DEFAULT_MAX_PIXELS, ImageData, check_pixels, image_bytes, read_image, write_image
from walloc_cli.files.safe_io import STDIO, check_writable, output_stream
from walloc_cli.metrics import bits_per_pixel
from walloc_cli.model.config import CodecConfig
from walloc_cli.model.network import WallocCodec
from walloc_cli.format.payload import MAX_SIDE as PAYLOAD_MAX_SIDE
from walloc_cli.format.payload import DEFAULT_EFFORT, PAYLOAD_CODECS, PayloadError, chunk_rows, decode_planes, encode_planes, webp_settings
from walloc_cli.model.quality import DEFAULT_QUALITY, Setting, Trial, candidate_ranges, ladder, monotone_setting, search_psnr, search_size, setting_for_quality, stanzas
from walloc_cli.model.zoo import ModelCard, default_model, find_card, load_by_identity, load_model
from walloc_cli.format.limits import DEFAULT_MAX_VOXELS
from walloc_cli.files.sniff import Kind, detect

if TYPE_CHECKING:
    from walloc_cli.codecs.audio import AudioDecompressReport



@dataclasses.dataclass
class CompressReport:
    """What one compression cost and lost. ``psnr`` is over colour samples, peak ``2**bit_depth-1``."""

    input: str
    output: str
    n_bytes: int
    pixels: int
    raw_bytes: int
    reduction: float
    model: str
    seconds: float
    psnr: float | None = None
    peak: int = 255
    step: float = 1.0
    quality: float | None = None
    target: str | None = None  # "psnr 32" / "size 20000" when a search chose the setting
    target_reached: bool | None = None

    @property
    def bpp(self) -> float:
        return bits_per_pixel(self.n_bytes, self.pixels)

    @property
    def ratio(self) -> float:
        return self.raw_bytes / max(1, self.n_bytes)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "bpp": self.bpp, "ratio": self.ratio}


@dataclasses.dataclass
class DecompressReport:
    input: str
    output: str
    width: int
    height: int
    mode: str
    seconds: float


def _raw_bytes(height: int, width: int, channels: int, has_alpha: bool, bit_depth: int) -> int:
    """Size of the decoded samples at their native depth: what a compression ratio divides."""
    return height * width * (channels + int(has_alpha)) * (2 if bit_depth == 16 else 1)


# --- alpha -----------------------------------------------------------------------------------
def _encode_alpha(alpha: np.ndarray, bit_depth: int, payload: str, effort: int) -> tuple[dict[str, Any], Chunk | None]:
    """Alpha is coded losslessly on its own: exact masks matter more than their few bytes."""
    from PIL import Image

    if alpha.min() == alpha.max():
        return {"constant": int(alpha.flat[0]), "bit_depth": bit_depth}, None
    buffer = io.BytesIO()
    fits_webp = max(alpha.shape) <= PAYLOAD_MAX_SIDE and bit_depth == 8
    codec = "webp" if payload == "webp" and fits_webp else "png"
    image = Image.fromarray(np.ascontiguousarray(alpha.astype(np.uint16 if bit_depth == 16 else np.uint8)))
    if codec == "webp":
        image.save(buffer, format="WEBP", lossless=True, **webp_settings(effort))
    else:
        image.save(buffer, format="PNG", compress_level=9)
    return {"codec": codec, "bit_depth": bit_depth}, Chunk("ALPH", buffer.getvalue())


def _decode_alpha(spec: dict[str, Any], chunk: bytes | None, shape: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    dtype = np.uint16 if spec.get("bit_depth") == 16 else np.uint8
    if "constant" in spec:
        return np.full(shape, int(spec["constant"]), dtype=dtype)
    if chunk is None:
        raise FormatError("header declares an alpha plane but the ALPH chunk is missing")
    try:
        with Image.open(io.BytesIO(chunk), formats=["WEBP", "PNG"]) as image:
            image.load()
            array = np.asarray(image)
    except Image.UnidentifiedImageError:  # its message names a BytesIO object by address
        raise FormatError("alpha plane does not decode: not a webp or png image") from None
    except Exception as error:
        raise FormatError(f"alpha plane does not decode: {error}") from None
    if array.ndim == 3:
        array = array[..., 0]
    if array.shape != shape:
        raise FormatError(f"alpha plane is {array.shape}, expected {shape}")
    return array.astype(dtype)


# --- in-memory codec -------------------------------------------------------------------------
def encode_image(image: ImageData, model: str | None = None, payload: str = "webp", step: float = 1.0, effort: int | None = None, cache: dict[Any, Any] | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> bytes:
    """Compress an image to ``.wlc`` bytes.

    ``effort`` 0..6 is the lossless WebP effort for the latents (as ``cwebp -z``): higher is
    smaller and slower; it changes the bytes, never the decoded pixels. ``None`` takes the
    model card's ``payload_effort`` (measured per model), else 4.

    ``cache``: a dict kept across calls for the *same* image (the quality guard and the target
    searches code one image at several settings): the encoder's companded latents per model
    (up to :data:`walloc_cli.codecs.image_tiles.CACHE_BYTES` of them) and the alpha and ICC chunks are
    then computed once, and only quantisation and the lossless stage of the latents run again.

    Gray images are coded through the RGB model with the gray plane in all three channels
    (decoding averages them back).

    ``max_pixels``: images with more pixels are refused (:func:`check_pixels`).
    The encoder runs tile by tile (:mod:`walloc_cli.codecs.image_tiles`): memory is one tile's, the
    bytes those of a whole-image pass.
    """
    if payload not in PAYLOAD_CODECS:
        raise InputError(f"unknown payload codec {payload!r} (choose {', '.join(PAYLOAD_CODECS)})")
    codec, card = load_model(model or default_model("image"))
    if effort is None:
        effort = int(card.card.get("payload_effort", DEFAULT_EFFORT))
    if not 0 <= effort <= 6:
        raise InputError(f"effort must be 0..6, got {effort}")
    if not MIN_STEP <= step <= MAX_STEP:
        raise InputError(f"quantisation step must be {MIN_STEP}..{MAX_STEP}, got {step}")
    if card.modality != "image":
        raise InputError(f"model {card.name!r} is a {card.modality} model, not an image model")
    limit = min(MAX_SIDE, PAYLOAD_MAX_SIDE * codec.cfg.block)  # what decoders accept
    if max(image.width, image.height) > limit:
        raise InputError(f"image is {image.width}x{image.height}; sides above {limit} pixels are not supported")
    check_pixels(image.width, image.height, max_pixels)
    if image.channels == 3 and codec.cfg.channels == 1 and not is_gray(image):
        raise InputError(f"model {card.name!r} codes gray images; this image has colour")
    cache = {} if cache is None else cache
    q = image_indices(codec, image, step, cache, ("u", card.sha256))
    chunks = [Chunk("LATN", data) for data in encode_planes(q, codec.index_bits(step), payload, effort)]  # type: ignore[arg-type]
    alpha_spec: dict[str, Any] | None = None
    if image.alpha is not None:
        if ("alpha", payload, effort) not in cache:
            cache["alpha", payload, effort] = _encode_alpha(image.alpha, image.bit_depth, payload, effort)
        alpha_spec, alpha_chunk = cache["alpha", payload, effort]
        if alpha_chunk is not None:
            chunks.append(alpha_chunk)
    # ICC profile, EXIF and XMP: zlib, as PNG's iCCP does: profiles are a few KiB and compress
    # ~2x, which matters at 0.1 bpp (XMP is XML text: the reference file's 205-byte packet
    # takes 153 bytes, its 126-byte EXIF block 110).
    for kind, chunk_type, block in (("icc", "ICCP", image.icc_profile), ("exif", "exif", image.exif), ("xmp", "xmp ", image.xmp)):
        if not block:
            continue
        if len(block) > MAX_METADATA:  # decoders refuse more: do not write a file they refuse
            raise InputError(f"the {kind.upper()} block is {len(block)} bytes, more than the {MAX_METADATA} bytes walloc keeps; leave it out with --metadata")
        if kind not in cache:
            cache[kind] = Chunk(chunk_type, zlib.compress(block, 9))
        chunks.append(cache[kind])
    header = {
        "encoder": f"walloc {__version__}",
        "modality": "image",
        "image": {
            "height": image.height,
            "width": image.width,
            "channels": image.channels,
            "mode": image.mode,
            "bit_depth": image.bit_depth,
            "source_format": image.source_format,
        },
        "model": {"name": card.name, "sha256": card.sha256},
        "codec": codec.cfg.to_dict(),
        "latent": {"shape": list(q.shape), "bits": codec.index_bits(step), "step": float(step), "payload": payload, "chunks": sum(c.type == "LATN" for c in chunks)},
        "normalisation": {"offset": 0.5, "peak": 2**image.bit_depth - 1},
        "alpha": alpha_spec,
    }
    out = io.BytesIO()
    with WlcWriter(out, header, minor=2 if image.exif or image.xmp else 0) as writer:  # the exif and xmp chunks came in 1.2
        for chunk in chunks:
            writer.write_chunk(chunk)
    return out.getvalue()


@dataclasses.dataclass(frozen=True)
class Encoded:
    """What :func:`compress_image` chose and produced. ``psnr`` is known when a search measured it."""

    data: bytes
    setting: Setting
    quality: float | None = None
    psnr: float | None = None
    target: str | None = None
    target_reached: bool | None = None


def compress_image(
    image: ImageData,
    *,
    quality: float | None = None,
    model: str | None = None,
    target_psnr: float | None = None,
    target_size: int | None = None,
    payload: str = "webp",
    effort: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    metadata: str | Iterable[str] = DEFAULT_METADATA,
) -> Encoded:
    """Compress ``image`` choosing the model and quantisation step (see :mod:`walloc_cli.model.quality`).

    - ``quality`` 0..100 maps through the shipped ladder of the image's family (``gray`` for
      one-channel images when gray models ship, else ``rgb``), or across ``model``'s own
      trained step range when a model is named.
    - ``target_psnr`` (dB) finds the smallest file reaching it; ``target_size`` (bytes) the best
      file that fits (never larger; :class:`InputError` when nothing fits).
    - With none of these: ``model`` at step 1 when a model is named, else the default quality.

    ``max_pixels``: larger images are refused (:func:`walloc_cli.files.images.check_pixels`).
    ``metadata``: what of the ICC profile, EXIF and XMP is kept (``"all"``, ``"none"`` or names;
    :func:`walloc_cli.files.image_meta.parse_metadata`); by default the ICC profile only. The
    orientation is in the pixels already (:func:`walloc_cli.files.images.read_image`).
    """
    if sum(v is not None for v in (quality, target_psnr, target_size)) > 1:
        raise InputError("give at most one of quality, target PSNR and target size")
    check_pixels(image.width, image.height, max_pixels)
    image = keep_metadata(image, parse_metadata(metadata))
    card = find_card(model) if model else None
    family = _family(image, card)
    cache: dict[Any, Any] = {}  # one analysis per model, one alpha/ICC chunk, whatever the settings tried
    if target_psnr is None and target_size is None:
        if quality is None and card is not None:
            setting = Setting(card.name, 1.0)
        elif card is not None:
            quality = float(quality)  # type: ignore[arg-type]
            setting = setting_for_quality(quality, family, card)
        else:
            quality = DEFAULT_QUALITY if quality is None else float(quality)
            coded: dict[Setting, bytes] = {}

            def size_of(setting: Setting) -> int:
                if setting not in coded:
                    coded[setting] = encode_image(image, setting.model, payload, setting.step, effort, cache, max_pixels)
                return len(coded[setting])

            setting = monotone_setting(quality, family, size_of, MIN_STEP)
            size_of(setting)
            return Encoded(coded[setting], setting, quality)
        return Encoded(encode_image(image, model or setting.model, payload, setting.step, effort, cache, max_pixels), setting, quality)

    trials: dict[Setting, Trial] = {}  # each setting is coded and measured once

    def evaluate(setting: Setting) -> Trial:
        if setting not in trials:
            chosen = model if card is not None else setting.model  # a path stays a path
            data = encode_image(image, chosen, payload, setting.step, effort, cache, max_pixels)
            trials[setting] = Trial(setting, data, decoded_psnr(data, image, model, max_pixels))
        return trials[setting]

    # Both searches walk the same ranges: each model's trained steps, as documented. (Steps past
    # them were tried for targets between models, but then --target-psnr 10 wrote step 8 while
    # --target-size said the smallest file was the one at step 4: one range, one answer.)
    ranges = candidate_ranges(family, card)
    if target_psnr is not None:
        if not 0 < target_psnr < 200 or math.isnan(target_psnr):
            raise InputError(f"target PSNR must be a positive number of dB, got {target_psnr}")
        trial, reached = search_psnr(target_psnr, ranges, evaluate)
        return Encoded(trial.data, trial.setting, None, trial.psnr, f"psnr {target_psnr:g}", reached)
    assert target_size is not None
    if target_size < 1:
        raise InputError(f"target size must be a positive number of bytes, got {target_size}")
    fitted = search_size(target_size, ranges, evaluate)
    if fitted is None:  # the search coded every range's coarsest end: the smallest is among them
        smallest = min(trial.size for trial in trials.values())
        raise InputError(f"cannot fit in {target_size} bytes: the smallest this image compresses to is {smallest} bytes")
    return Encoded(fitted.data, fitted.setting, None, fitted.psnr, f"size {target_size}", True)


def _family(image: ImageData, card: ModelCard | None) -> str:
    """The ladder an image uses: its model's family, else gray for gray images when one ships."""
    if card is not None:
        if card.config.channels == 1:
            return "gray"
        return "gray" if is_gray(image) and any(s.get("family") == "gray" for s in stanzas(card)) else "rgb"
    if is_gray(image):
        try:
            ladder("gray")
            return "gray"
        except ModelError:
            pass  # no gray models installed: code gray through the RGB models
    return "rgb"


def is_gray(image: ImageData) -> bool:
    """One channel, or three identical ones (a gray picture saved as RGB)."""
    pixels = image.pixels
    return pixels.shape[0] == 1 or bool(np.array_equal(pixels[0], pixels[1]) and np.array_equal(pixels[0], pixels[2]))


def decode_image(source: bytes | BinaryIO, model: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageData:
    """Decompress ``.wlc`` bytes (or a binary stream) to an :class:`ImageData`.

    ``model`` names a card (path) to use besides the shipped models; it is used only if its
    SHA-256 is the one the file records. A file declaring more than ``max_pixels`` pixels is
    refused (:class:`InputError`) before anything is read past its header.
    """
    stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    return _decode_image(WlcReader(stream), model, max_pixels)


def _decode_image(reader: WlcReader, model: str | None, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageData:
    """:func:`decode_image` once the header is read (the caller may have looked at it)."""
    codec, q, extra = _read_image_file(reader, model, max_pixels)
    return synthesize_image(codec, q, reader.header, extra)


def _read_image_file(reader: WlcReader, model: str | None, max_pixels: int) -> tuple[WallocCodec, np.ndarray, dict[str, bytes]]:
    """The model, the latent indices ``(L, h, w)`` and the other chunks of an image file whose
    header ``reader`` has read: every check before the decoder runs."""
    header = reader.header
    validate_header(header, "image")
    check_pixels(header["image"]["width"], header["image"]["height"], max_pixels)
    codec, _ = load_by_identity(header["model"]["name"], header["model"]["sha256"], model)
    check_codec_matches(header, dataclasses.asdict(codec.cfg))
    meta, latent = header["image"], header["latent"]
    block = codec.cfg.block
    expected = [codec.cfg.latent_dim, -(-meta["height"] // block), -(-meta["width"] // block)]
    require(latent["shape"] == expected, f"latent shape {latent['shape']} does not match {expected} for this image and model")
    require(latent["bits"] == codec.index_bits(latent["step"]), f"latent bits {latent['bits']} do not match step {latent['step']} for this model")
    q, extra = image_latents(reader, tuple(expected))
    return codec, q, extra


def decoded_psnr(data: bytes, image: ImageData, model: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> float:
    """PSNR of the colour samples ``data`` (a ``.wlc`` of ``image``) decodes to, against
    ``image``: the value ``sample_psnr(image, decode_image(data))`` gives, measured tile by tile
    so that the decoded image is never held whole."""
    reader = WlcReader(io.BytesIO(data))
    codec, q, _ = _read_image_file(reader, model, max_pixels)
    meta = reader.header["image"]
    return tiles_psnr(image, synthesized_tiles(codec, q, meta["height"], meta["width"], meta["channels"], meta["bit_depth"], reader.header["latent"]["step"]))


def image_latents(reader: WlcReader, shape: tuple[int, ...]) -> tuple[np.ndarray, dict[str, bytes]]:
    """The lossless stage of an image file whose header is validated: its ``LATN`` planes as
    int32 indices of ``shape`` ``(L, h, w)``, and its other chunks by type (``ALPH``, ``ICCP``).
    No model runs; :func:`walloc_cli.api.latents.read_latents` stops here."""
    try:
        budget = len(chunk_rows(shape, reader.header["latent"]["bits"]))
    except PayloadError as error:
        raise FormatError(str(error)) from None
    planes: list[bytes] = []
    extra: dict[str, bytes] = {}
    tally = chunk_tally(reader.header)
    for chunk in reader.iter_chunks():
        tally.add(chunk.type)
        if chunk.type == "LATN":
            if len(planes) >= budget:
                raise FormatError(f"more LATN chunks than the {budget} the header implies")
            planes.append(chunk.data)
        else:
            extra[chunk.type] = chunk.data
    latent = reader.header["latent"]
    try:
        return decode_planes(planes, shape, latent["bits"], latent["payload"]), extra
    except PayloadError as error:
        raise FormatError(str(error)) from None


def synthesize_image(codec: WallocCodec, q: np.ndarray, header: dict[str, Any], extra: dict[str, bytes]) -> ImageData:
    """Indices ``(L, h, w)`` to the image the header describes: the decoder (tile by tile,
    :func:`walloc_cli.codecs.image_tiles.synthesize_samples`), the channel layout (gray from a colour
    model, or the reverse), alpha and ICC profile from ``extra``."""
    meta = header["image"]
    pixels = synthesize_samples(codec, q, meta["height"], meta["width"], meta["channels"], meta["bit_depth"], header["latent"]["step"])
    alpha = None
    if header.get("alpha") is not None:
        alpha = _decode_alpha(header["alpha"], extra.get("ALPH"), (meta["height"], meta["width"]))
    # the pixels are upright (formats/wlc.md, "Orientation"): blocks of a file written otherwise
    # must not make the output's viewer turn them
    exif, xmp = upright_blocks(
        _inflate_metadata(extra["exif"], "EXIF") if "exif" in extra else None,
        _inflate_metadata(extra["xmp "], "XMP") if "xmp " in extra else None,
    )
    return ImageData(
        pixels=pixels,
        alpha=alpha,
        bit_depth=meta["bit_depth"],
        mode=meta["mode"],
        icc_profile=_inflate_metadata(extra["ICCP"], "ICC profile") if "ICCP" in extra else None,
        source_format=meta.get("source_format", "PNG"),
        exif=exif,
        xmp=xmp,
    )


def _inflate_metadata(data: bytes, what: str) -> bytes:
    """Inflate an ICCP, exif or xmp chunk, refusing more than ``MAX_METADATA`` bytes (no zip bombs)."""
    inflater = zlib.decompressobj()
    try:
        block = inflater.decompress(data, MAX_METADATA)
    except zlib.error as error:
        raise FormatError(f"{what} chunk is corrupt: {error}") from None
    if inflater.unconsumed_tail or not inflater.eof:
        raise FormatError(f"{what} chunk is corrupt or larger than {MAX_METADATA} bytes")
    return block


def quantized(image: ImageData) -> np.ndarray:
    """Colour samples as the integers a user gets back: ``(C, H, W)`` float64, so differences
    cannot wrap around. A full float64 copy (8 bytes a sample): for evaluation of modest
    images; the codec measures PSNR tile by tile (:func:`decoded_psnr`)."""
    return image.pixels.astype(np.float64)


# --- files ---------------------------------------------------------------------------------
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


def _check_output(src: Path, dst: Path, overwrite: bool) -> None:
    """Before any coding: the output must not be the input and must be writable (named if not)."""
    if str(dst) == STDIO:
        return
    if str(src) != STDIO and dst.resolve() == src.resolve():
        raise InputError("output would overwrite the input")
    check_writable(dst, overwrite)


@contextlib.contextmanager
def _input_path(src: Path) -> Iterator[Path]:
    """``src`` itself, or standard input spooled to a temporary file (``-``): formats are
    sniffed from the content, and audio containers need to seek."""
    if str(src) != STDIO:
        yield src
        return
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="walloc-") as folder:
        spooled = Path(folder) / "stdin"
        with open(spooled, "wb") as handle:
            shutil.copyfileobj(sys.stdin.buffer, handle, 1 << 20)
        yield spooled


def _compress_volume_file(src: Path, path: Path, dst: Path, *, axes: str | None, overwrite: bool, max_voxels: int, **options: Any) -> Any:
    from walloc_cli.codecs.volume import compress_volume
    from walloc_cli.files.volumes import read_volume

    volume = read_volume(path, axes=axes)
    with output_stream(dst, overwrite=overwrite) as handle:
        report = compress_volume(volume, handle, source=str(src), max_voxels=max_voxels, **options)
    report.output = str(dst)
    return report


def _decompress_volume(reader: WlcReader, src: Path, dst: Path | None, overwrite: bool, model: str | None, started: float, progress: Callable[[int, int], None] | None = None, max_voxels: int = DEFAULT_MAX_VOXELS) -> Any:
    from walloc_cli.codecs.volume import VolumeDecompressReport, decode_volume
    from walloc_cli.files.volumes import default_volume_suffix, write_volume

    table = reader.header.get("volume")
    fmt = table.get("format", "") if isinstance(table, dict) else ""
    dst = Path(dst) if dst is not None else default_output(src, default_volume_suffix(fmt if isinstance(fmt, str) else ""))
    _check_output(src, dst, overwrite)
    volume = decode_volume(reader, model=model, progress=progress, max_voxels=max_voxels)
    if str(dst) == STDIO:
        with output_stream(dst) as handle:
            # np.save writes the header and then the array's bytes in pieces through .write
            np.save(handle, volume.array, allow_pickle=False)
    else:
        try:
            write_volume(dst, volume, overwrite=overwrite)
        except WallocError:
            raise
        except (TypeError, ValueError, KeyError, AttributeError, IndexError) as error:
            # the metadata a writer restores (spacing, NIfTI header, TIFF tags) comes from the file
            raise FormatError(f"invalid header: the volume metadata cannot be written back ({type(error).__name__}: {error})") from None
    return VolumeDecompressReport(str(src), str(dst), tuple(volume.array.shape), volume.array.dtype.name, time.perf_counter() - started)


def _compress_audio_file(src: Path, path: Path, dst: Path, **options: Any) -> Any:
    from walloc_cli.codecs.audio import compress_audio

    overwrite = options.pop("overwrite")
    with output_stream(dst, overwrite=overwrite) as handle:
        report = compress_audio(path, handle, **options)
    report.input, report.output = str(src), str(dst)
    return report


def compress_file(
    src: Path,
    dst: Path | None = None,
    *,
    model: str | None = None,
    payload: str = "webp",
    overwrite: bool = False,
    measure: bool = True,
    effort: int | None = None,
    quality: float | None = None,
    target_psnr: float | None = None,
    target_size: int | None = None,
    axes: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_voxels: int = DEFAULT_MAX_VOXELS,
    metadata: str | Iterable[str] = DEFAULT_METADATA,
) -> CompressReport:
    """Compress image, audio or volume ``src`` (sniffed by content) into ``dst`` (default: beside
    it with ``.wlc``); ``-`` is stdin/stdout.

    ``quality``/``target_psnr``/``target_size`` choose the operating point as in :func:`compress_image`
    (targets are for images). ``axes`` (e.g. ``ZYX``, ``CYX``, ``YXC``) reads ``src`` as a volume
    with those axes, overriding its metadata (:func:`walloc_cli.files.volumes.read_volume`).
    ``max_pixels``/``max_voxels``: larger images/volumes are refused before they are decoded.
    ``metadata`` (images): which of ICC, EXIF and XMP to keep, as in :func:`compress_image`.
    """
    src = Path(src)
    kept = parse_metadata(metadata)  # a bad value is refused before any work
    dst = Path(dst) if dst is not None else default_output(src, ".wlc")
    _check_output(src, dst, overwrite)
    with _input_path(src) as path:
        kind = detect(path)  # walloc_cli.files.sniff: the one order every command uses
        if kind is Kind.WLC:
            raise InputError("already a .wlc file (walloc decompress decodes it)")
        if axes is not None or kind is Kind.VOLUME:
            if target_psnr is not None or target_size is not None:
                raise InputError("--target-psnr and --target-size are for images in this version; use -q for volumes")
            return _compress_volume_file(src, path, dst, axes=axes, model=model, quality=quality, payload=payload, overwrite=overwrite, measure=measure, effort=effort, progress=progress, max_voxels=max_voxels)
        if kind is Kind.AUDIO:
            if target_psnr is not None or target_size is not None:
                raise InputError("--target-psnr and --target-size are for images in this version; use -q for audio")
            return _compress_audio_file(src, path, dst, model=model, quality=quality, payload=payload, overwrite=overwrite, measure=measure, effort=effort, progress=progress)
        image = read_image(path, also_accepted=" nor audio libsndfile reads nor a multi-page TIFF, .npy or NIfTI volume,", max_pixels=max_pixels)  # compress takes audio too
    started = time.perf_counter()
    encoded = compress_image(image, quality=quality, model=model, target_psnr=target_psnr, target_size=target_size, payload=payload, effort=effort, max_pixels=max_pixels, metadata=kept)
    data = encoded.data
    seconds = time.perf_counter() - started
    with output_stream(dst, overwrite=overwrite) as handle:
        handle.write(data)
    header = WlcReader(io.BytesIO(data)).header
    report = CompressReport(
        input=str(src),
        output=str(dst),
        n_bytes=len(data),
        pixels=image.height * image.width,
        raw_bytes=_raw_bytes(image.height, image.width, image.channels, image.alpha is not None, image.bit_depth),
        reduction=CodecConfig.from_dict(header["codec"]).reduction,
        model=header["model"]["name"],
        seconds=seconds,
        peak=2**image.bit_depth - 1,
        step=encoded.setting.step,
        quality=encoded.quality,
        target=encoded.target,
        target_reached=encoded.target_reached,
        psnr=encoded.psnr,
    )
    if measure and report.psnr is None:
        report.psnr = decoded_psnr(data, image, model, max_pixels)
    return report


def decompress_file(src: Path, dst: Path | None = None, *, overwrite: bool = False, model: str | None = None, keep_going: bool = False, start: float | None = None, duration: float | None = None, progress: Callable[[int, int], None] | None = None, max_pixels: int = DEFAULT_MAX_PIXELS, max_voxels: int = DEFAULT_MAX_VOXELS) -> "DecompressReport | AudioDecompressReport":
    """Decompress ``src`` (.wlc) into an image or audio file; format from ``dst``'s extension.
    Defaults: PNG for images; for audio the source's container when walloc writes it (FLAC,
    AIFF), else WAV. ``-`` reads standard input / writes PNG or WAV to standard output.
    ``keep_going`` (audio): a damaged block becomes silence, listed in the report's ``damaged``,
    instead of failing the file. ``start``/``duration`` (audio, seconds): decode only that
    stretch, skipping the blocks before it unread. ``max_pixels``/``max_voxels``: a file
    declaring a larger image/volume is refused from its header."""
    src = Path(src)
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        stream = sys.stdin.buffer if str(src) == STDIO else stack.enter_context(open(src, "rb"))
        reader = WlcReader(stream)
        validate_header(reader.header)  # first: every field is then safe to use (and each problem named)
        if reader.header.get("modality") == "audio":
            from walloc_cli.codecs.audio import AudioDecompressReport, decompress_audio, default_audio_suffix, header_samplerate, seconds_to_frames

            audio = reader.header.get("audio")
            suffix = default_audio_suffix(audio.get("format", "") if isinstance(audio, dict) else "")
            dst = Path(dst) if dst is not None else default_output(src, suffix)
            _check_output(src, dst, overwrite)
            damaged: list[str] | None = [] if keep_going else None
            first, frames = seconds_to_frames(header_samplerate(reader.header), start or 0.0, duration)
            info = decompress_audio(reader, dst, overwrite=overwrite, model=model, damaged=damaged, start=first, frames=frames, progress=progress)
            partial = start is not None or duration is not None
            return AudioDecompressReport(str(src), str(dst), info.samplerate, info.channels, info.frames, time.perf_counter() - started, damaged or [], partial)
        if start is not None or duration is not None:
            raise InputError(f"--start and --duration are for audio; this file holds {'a volume' if reader.header.get('modality') == 'volume' else 'an image'}")
        if reader.header.get("modality") == "volume":
            return _decompress_volume(reader, src, dst, overwrite, model, started, progress, max_voxels)
        dst = Path(dst) if dst is not None else default_output(src, ".png")
        _check_output(src, dst, overwrite)
        image = _decode_image(reader, model, max_pixels)
    if str(dst) == STDIO:
        with output_stream(dst) as handle:
            handle.write(image_bytes(image, "PNG"))
    else:
        write_image(dst, image, overwrite=overwrite)
    return DecompressReport(str(src), str(dst), image.width, image.height, image.mode, time.perf_counter() - started)


def describe(src: Path) -> dict[str, Any]:
    """Everything ``walloc info`` shows: header, chunk sizes, rates. Validates CRCs on the way."""
    from walloc_cli.api.latents import codec_config  # the model card's config (JSON only), checked against the header

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
    info: dict[str, Any] = {"file": str(src), "bytes": size, "format_version": ".".join(map(str, reader.version)), "header": header, "chunks": chunks}
    if header.get("modality") == "image":
        info["metadata"] = [kind for chunk_type, kind in METADATA_CHUNKS.items() if chunk_type in chunks]
        image = header["image"]
        info["bpp"] = bits_per_pixel(size, image["width"] * image["height"])
        raw = _raw_bytes(image["height"], image["width"], image["channels"], header.get("alpha") is not None, image["bit_depth"])
        info["ratio"] = raw / max(1, size)
        info["reduction"] = CodecConfig(**codec_config(header)).reduction
    elif header.get("modality") == "audio":
        from walloc_cli.files.audio import AudioInfo
        from walloc_cli.codecs.audio import sample_bits

        audio = header["audio"]
        source = AudioInfo(audio["samplerate"], audio["channels"], audio["frames"], audio["format"], audio["subtype"])
        info["kbps"] = size * 8 / source.seconds / 1000
        info["ratio"] = source.frames * source.channels * sample_bits(source) / 8 / max(1, size)
        info["reduction"] = CodecConfig(**codec_config(header)).reduction
    elif header.get("modality") == "volume":
        volume = header["volume"]
        voxels = math.prod(volume["shape"])
        info["bpv"] = 8 * size / voxels
        info["ratio"] = voxels * np.dtype(volume["dtype"]).itemsize / max(1, size)
        info["reduction"] = CodecConfig(**codec_config(header)).reduction
    return info


def is_wlc(path: Path) -> bool:
    """Sniff the magic bytes (not the extension)."""
    with open(path, "rb") as handle:
        return sniff(handle.read(8))


__all__ = [
    "CompressReport", "DecompressReport", "Encoded", "encode_image", "compress_image", "decode_image", "compress_file", "decompress_file",
    "describe", "is_wlc", "validate_image_header", "WallocError",
]
