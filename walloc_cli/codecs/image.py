"""The image codec: photos to and from ``.wlc`` (in memory), the operating-point choice, the reports.

Layered like python-soundfile: :func:`encode_image` / :func:`decode_image` work on in-memory
:class:`~walloc_cli.files.images.ImageData` and bytes; :func:`compress_image` chooses the model
and step (quality, target PSNR or size). Files (naming, no clobbering, atomic writes, the
modality dispatch) are :mod:`walloc_cli.api.files`. The tiled transform is
:mod:`walloc_cli.codecs.image_tiles`.

Header fields written here are specified in ``formats/wlc.md`` ("Header fields (v1)").
"""

from __future__ import annotations

import dataclasses
import io
import math
import zlib
from typing import Any, BinaryIO, Iterable

import numpy as np

from walloc_cli._version import __version__
from walloc_cli.codecs.base import ReportBase, checked_payload, human_bytes, open_wlc, setting_label
from walloc_cli.codecs.image_refine import refine_settings, refined_indices
from walloc_cli.codecs.image_tiles import image_indices, synthesize_samples, synthesized_tiles, tiles_psnr
from walloc_cli.errors import FormatError, InputError, ModelError
from walloc_cli.files.icc import SRGB_PROFILE, is_srgb
from walloc_cli.files.image_meta import DEFAULT_METADATA, MAX_METADATA, keep_metadata, parse_metadata, upright_blocks
from walloc_cli.files.images import DEFAULT_MAX_PIXELS, ImageData, check_pixels, pillow_plugin
from walloc_cli.format.container import Chunk, WlcReader, WlcWriter, chunk_size, default_major
from walloc_cli.format.header import MAX_SIDE, MAX_STEP, MIN_STEP, check_codec_matches, check_latent_bits, chunk_tally, declares_split, require, tight_bits, validate_header
from walloc_cli.model.lean_wpt import parallel_map
from walloc_cli.model.refine import RefineSettings
from walloc_cli.model.runtime import Runtime
from walloc_cli.format.payload import MAX_SIDE as PAYLOAD_MAX_SIDE
from walloc_cli.format.payload import BEST_OF_EFFORT, DEFAULT_EFFORT, PAYLOAD_MINOR, PayloadError, chooses_split, chunk_count, decode_planes, encode_planes, webp_settings
from walloc_cli.metrics import bits_per_pixel
from walloc_cli.model.quality import DEFAULT_QUALITY, Setting, Trial, candidate_ranges, choose_setting, guard_walk, ladder, monotone_setting, search_psnr, search_size, stanzas
from walloc_cli.model.zoo import ModelCard, default_model, find_card, load_by_identity, load_model


# The latents' default lossless coder is WebP through Pillow: registering its plugin alone keeps
# Pillow from importing all of its plugins on the first encode or decode (files.images.pillow_plugin).
pillow_plugin("WEBP")


@dataclasses.dataclass
class CompressReport(ReportBase):
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

    modality = "image"  # a class attribute: not a field, so not in the JSON record

    @property
    def bpp(self) -> float:
        return bits_per_pixel(self.n_bytes, self.pixels)

    @property
    def ratio(self) -> float:
        return self.raw_bytes / max(1, self.n_bytes)

    @property
    def warnings(self) -> list[str]:
        if self.target_reached is False:
            return [f"target {self.target} dB not reachable; kept the best quality, {self.psnr:.2f} dB"]
        return []

    def summary(self) -> str:
        measured = f"PSNR {self.psnr:.2f} dB" if self.psnr is not None else "PSNR skipped"
        return (
            f"{self.input} -> {self.output}  {human_bytes(self.n_bytes)}  {self.bpp:.3f} bpp  "
            f"{self.ratio:.1f}:1  {measured}  DR {self.reduction:g}x  {setting_label(self.model, self.step, self.quality)}  {self.seconds:.2f} s"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "bpp": self.bpp, "ratio": self.ratio}


@dataclasses.dataclass
class DecompressReport(ReportBase):
    """What one image decompression wrote."""

    input: str
    output: str
    width: int
    height: int
    mode: str
    seconds: float

    modality = "image"

    def summary(self) -> str:
        return f"{self.input} -> {self.output}  {self.width}x{self.height} {self.mode}  {self.seconds:.2f} s"


def raw_bytes(height: int, width: int, channels: int, has_alpha: bool, bit_depth: int) -> int:
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
    # with the ctx payload too (format 2.2): an alpha plane is a picture, WebP's kind of signal
    codec = "webp" if payload in ("webp", "ctx") and fits_webp else "png"
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
@dataclasses.dataclass(frozen=True)
class CodedImage:
    """One encode, as the encoder knows it: the ``.wlc`` ``data``, the ``header`` it wrote, the
    latent indices ``q`` ``(L, ceil(H / 2**J), ceil(W / 2**J))`` the payload holds (int8/int16)
    and the ``codec`` that made them: enough to report and to measure the decode without
    reading the bytes back."""

    data: bytes
    header: dict[str, Any]
    q: np.ndarray
    codec: Runtime


def encode_image(image: ImageData, model: str | None = None, payload: str | None = None, step: float = 1.0, effort: int | None = None, cache: dict[Any, Any] | None = None, max_pixels: int = DEFAULT_MAX_PIXELS, refine: int | RefineSettings = 0) -> bytes:
    """Compress an image to ``.wlc`` bytes (:func:`encode_image_coded`'s ``data``)."""
    return encode_image_coded(image, model, payload, step, effort, cache, max_pixels, refine).data


def encode_image_coded(image: ImageData, model: str | None = None, payload: str | None = None, step: float = 1.0, effort: int | None = None, cache: dict[Any, Any] | None = None, max_pixels: int = DEFAULT_MAX_PIXELS, refine: int | RefineSettings = 0) -> CodedImage:
    """Compress an image to ``.wlc`` bytes, keeping what the encoder knows (:class:`CodedImage`).

    ``payload``: the lossless coder of the latents (``None``: the format's default,
    :func:`checked_payload`). ``effort`` 0..6 is the lossless WebP/PNG/JPEG XL effort for the
    latents (as ``cwebp -z``; ``ctx`` has one setting): higher is smaller and slower; it changes
    the bytes, never the decoded pixels. ``None`` takes the model card's ``payload_effort``
    (measured per model), else 4.

    ``cache``: a dict kept across calls for the *same* image (the quality guard and the target
    searches code one image at several settings): the encoder's companded latents per model
    (up to :data:`walloc_cli.codecs.image_tiles.CACHE_BYTES` of them) and the alpha and ICC chunks are
    then computed once, and only quantisation and the lossless stage of the latents run again.

    Gray images are coded through the RGB model with the gray plane in all three channels
    (decoding averages them back).

    ``refine``: steps of encoder-side search per tile, or :class:`RefineSettings` (0: the linear
    encoder's indices, the default; :mod:`walloc_cli.codecs.image_refine`, needs torch). Same
    format, same decoder.

    ``max_pixels``: images with more pixels are refused (:func:`check_pixels`).
    The encoder runs tile by tile (:mod:`walloc_cli.codecs.image_tiles`): memory is one tile's, the
    bytes those of a whole-image pass.
    """
    codec, card, effort = _checked_model(image, model, payload, step, effort, max_pixels)
    requested, payload = payload, checked_payload(payload, effort)
    settings = refine_settings(refine)
    cache = {} if cache is None else cache
    q = image_indices(codec, image, step, cache, ("u", card.sha256))
    if settings.iterations:  # the guard and the target searches code a setting once: its search runs once
        if ("refined", card.sha256, step, settings) not in cache:
            cache["refined", card.sha256, step, settings] = refined_indices(codec, model or default_model("image"), card, image, q, step, settings, cache, ("u", card.sha256))
        q = cache["refined", card.sha256, step, settings]
    bits = tight_bits(q, codec.index_bits(step))
    split = chooses_split(q.shape, payload, default_major())
    planes = encode_planes(q, bits, payload, effort, split)  # type: ignore[arg-type]
    if requested is None and payload == "ctx" and effort >= BEST_OF_EFFORT:  # the smaller of ctx and WebP
        webp_split = chooses_split(q.shape, "webp", default_major())
        webp = encode_planes(q, bits, "webp", DEFAULT_EFFORT, webp_split)
        if sum(chunk_size(len(p), default_major()) for p in webp) < sum(chunk_size(len(p), default_major()) for p in planes):
            payload, split, planes = "webp", webp_split, webp
    chunks = [Chunk("LATN", data) for data in planes]
    alpha_spec: dict[str, Any] | None = None
    if image.alpha is not None:
        if ("alpha", payload, effort) not in cache:
            cache["alpha", payload, effort] = _encode_alpha(image.alpha, image.bit_depth, payload, effort)
        alpha_spec, alpha_chunk = cache["alpha", payload, effort]
        if alpha_chunk is not None:
            chunks.append(alpha_chunk)
    # An sRGB profile (any of its many variants) is the header flag image.icc = "srgb" (format
    # 1.3): its 0.5-20 KiB are 13% of a q 75 640x400 photo, and the decoder writes one standard
    # sRGB profile back, which colour management treats the same (files.icc.is_srgb).
    if "srgb" not in cache:
        cache["srgb"] = is_srgb(image.icc_profile)
    srgb = bool(cache["srgb"])
    # ICC profile, EXIF and XMP: zlib, as PNG's iCCP does: profiles are a few KiB and compress
    # ~2x, which matters at 0.1 bpp (XMP is XML text: the reference file's 205-byte packet
    # takes 153 bytes, its 126-byte EXIF block 110).
    for kind, chunk_type, block in (("icc", "ICCP", image.icc_profile), ("exif", "exif", image.exif), ("xmp", "xmp ", image.xmp)):
        if not block or (kind == "icc" and srgb):
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
            **({"icc": "srgb"} if srgb else {}),
        },
        "model": {"name": card.name, "sha256": card.sha256},
        "codec": codec.cfg.to_dict(),
        "latent": {"shape": list(q.shape), "bits": bits, "step": float(step), "payload": payload, **({"split": True} if split else {}), "chunks": sum(c.type == "LATN" for c in chunks)},
        "normalisation": {"offset": 0.5, "peak": 2**image.bit_depth - 1},
        "alpha": alpha_spec,
    }
    # the lowest version that defines what the file uses: 1.3 the sRGB flag, bits below the
    # model's and the jxl payload, 1.2 the exif and xmp chunks
    minor = max(3 if srgb or bits < codec.index_bits(step) else 2 if image.exif or image.xmp else 0, PAYLOAD_MINOR.get(payload, 0))
    out = io.BytesIO()
    with WlcWriter(out, header, minor=minor) as writer:
        for chunk in chunks:
            writer.write_chunk(chunk)
    return CodedImage(out.getvalue(), header, q, codec)


def _checked_model(image: ImageData, model: str | None, payload: str | None, step: float, effort: int | None, max_pixels: int) -> tuple[Runtime, ModelCard, int]:
    """The model (loaded), its card and the lossless effort an encode of ``image`` at ``step``
    uses, once every argument is checked (:class:`InputError` naming the problem otherwise)."""
    checked_payload(payload)
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
    return codec, card, effort


@dataclasses.dataclass(frozen=True)
class Encoded:
    """What :func:`compress_image` chose and produced. ``psnr`` is known when a search measured it."""

    data: bytes
    setting: Setting
    model: str  # the card's name, as the header records it
    reduction: float  # the model's dimensionality reduction
    quality: float | None = None
    psnr: float | None = None
    target: str | None = None
    target_reached: bool | None = None
    coded: CodedImage | None = dataclasses.field(default=None, repr=False)  # when no search measured it


def compress_image(
    image: ImageData,
    *,
    quality: float | None = None,
    model: str | None = None,
    target_psnr: float | None = None,
    target_size: int | None = None,
    payload: str | None = None,
    effort: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    metadata: str | Iterable[str] = DEFAULT_METADATA,
    refine: int | RefineSettings = 0,
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
    ``refine``: encoder-side search steps for every setting coded (:func:`encode_image_coded`),
    so the quality guard and the target searches compare the sizes of refined files.
    """
    if sum(v is not None for v in (quality, target_psnr, target_size)) > 1:
        raise InputError("give at most one of quality, target PSNR and target size")
    check_pixels(image.width, image.height, max_pixels)
    image = keep_metadata(image, parse_metadata(metadata))
    card = find_card(model) if model else None
    family = _family(image, card)
    cache: dict[Any, Any] = {}  # one analysis per model, one alpha/ICC chunk, whatever the settings tried
    if target_psnr is None and target_size is None:
        if card is not None:
            setting, quality = choose_setting(quality, family, card)
        else:
            quality = DEFAULT_QUALITY if quality is None else float(quality)
            coded: dict[Setting, CodedImage] = {}

            def size_of(setting: Setting) -> int:
                if setting not in coded:
                    coded[setting] = encode_image_coded(image, setting.model, payload, setting.step, effort, cache, max_pixels, refine)
                return len(coded[setting].data)

            walk = guard_walk(quality, family)
            if len(walk) > 1:
                # The guard codes each rung of its walk (most q: the rung below and q's own):
                # the companded latents once per model (threaded inside), then the walk's
                # quantisations and lossless codings side by side, one per worker thread
                # (libwebp releases the GIL), instead of one after another. Any refinement
                # the walk then needs is coded when it asks.
                for name in dict.fromkeys(s.model for s in walk):
                    first = next(s for s in walk if s.model == name)
                    codec, card, _ = _checked_model(image, name, payload, first.step, effort, max_pixels)
                    image_indices(codec, image, first.step, cache, ("u", card.sha256))
                parallel_map(size_of, walk)
            setting = monotone_setting(quality, family, size_of, MIN_STEP)
            size_of(setting)
            return _encoded(coded[setting], setting, quality)
        return _encoded(encode_image_coded(image, model or setting.model, payload, setting.step, effort, cache, max_pixels, refine), setting, quality)

    trials: dict[Setting, Trial] = {}  # each setting is coded and measured once

    def evaluate(setting: Setting) -> Trial:
        if setting not in trials:
            chosen = model if card is not None else setting.model  # a path stays a path
            data = encode_image(image, chosen, payload, setting.step, effort, cache, max_pixels, refine)
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
        chosen = card or find_card(trial.setting.model)
        return Encoded(trial.data, trial.setting, chosen.name, chosen.config.reduction, None, trial.psnr, f"psnr {target_psnr:g}", reached)
    assert target_size is not None
    if target_size < 1:
        raise InputError(f"target size must be a positive number of bytes, got {target_size}")
    fitted = search_size(target_size, ranges, evaluate)
    if fitted is None:  # the search coded every range's coarsest end: the smallest is among them
        smallest = min(trial.size for trial in trials.values())
        raise InputError(f"cannot fit in {target_size} bytes: the smallest this image compresses to is {smallest} bytes")
    chosen = card or find_card(fitted.setting.model)
    return Encoded(fitted.data, fitted.setting, chosen.name, chosen.config.reduction, None, fitted.psnr, f"size {target_size}", True)


def _encoded(coded: CodedImage, setting: Setting, quality: float | None) -> Encoded:
    """The :class:`Encoded` of a setting chosen without a search (its PSNR not yet measured)."""
    return Encoded(coded.data, setting, coded.header["model"]["name"], coded.codec.cfg.reduction, quality, coded=coded)


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
    with open_wlc(source) as reader:
        return decode_image_reader(reader, model, max_pixels)


def decode_image_reader(reader: WlcReader, model: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageData:
    """:func:`decode_image` once the header is read (the caller may have looked at it)."""
    codec, q, extra = _read_image_file(reader, model, max_pixels)
    return synthesize_image(codec, q, reader.header, extra)


def _read_image_file(reader: WlcReader, model: str | None, max_pixels: int) -> tuple[Runtime, np.ndarray, dict[str, bytes]]:
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
    check_latent_bits(header, reader.version, codec.index_bits(latent["step"]))
    q, extra = image_latents(reader, tuple(expected))
    return codec, q, extra


def decoded_psnr(data: bytes, image: ImageData, model: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> float:
    """PSNR of the colour samples ``data`` (a ``.wlc`` of ``image``) decodes to, against
    ``image``: the value ``sample_psnr(image, decode_image(data))`` gives, measured tile by tile
    so that the decoded image is never held whole."""
    with open_wlc(data) as reader:
        codec, q, _ = _read_image_file(reader, model, max_pixels)
        return _coded_psnr(codec, q, reader.header, image)


def measured_psnr(encoded: Encoded, image: ImageData, model: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> float:
    """The PSNR of ``encoded`` (from :func:`compress_image` of ``image``): the search's
    measurement when one chose it, else the decode of the encoder's own indices (the lossless
    stage is exact, so this is :func:`decoded_psnr` without parsing the bytes back)."""
    if encoded.psnr is not None:
        return encoded.psnr
    if encoded.coded is None:
        return decoded_psnr(encoded.data, image, model, max_pixels)
    return _coded_psnr(encoded.coded.codec, encoded.coded.q, encoded.coded.header, image)


def _coded_psnr(codec: Runtime, q: np.ndarray, header: dict[str, Any], image: ImageData) -> float:
    meta = header["image"]
    return tiles_psnr(image, synthesized_tiles(codec, q, meta["height"], meta["width"], meta["channels"], meta["bit_depth"], header["latent"]["step"]))


def image_latents(reader: WlcReader, shape: tuple[int, ...]) -> tuple[np.ndarray, dict[str, bytes]]:
    """The lossless stage of an image file whose header is validated: its ``LATN`` planes as
    int32 indices of ``shape`` ``(L, h, w)``, and its other chunks by type (``ALPH``, ``ICCP``).
    No model runs; :func:`walloc_cli.api.latents.read_latents` stops here."""
    split = declares_split(reader.header)
    try:
        budget = chunk_count(shape, reader.header["latent"]["bits"], reader.header["latent"]["payload"], split)
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
        return decode_planes(planes, shape, latent["bits"], latent["payload"], split), extra
    except PayloadError as error:
        raise FormatError(str(error)) from None


def synthesize_image(codec: Runtime, q: np.ndarray, header: dict[str, Any], extra: dict[str, bytes]) -> ImageData:
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
        icc_profile=SRGB_PROFILE if meta.get("icc") == "srgb" else _inflate_metadata(extra["ICCP"], "ICC profile") if "ICCP" in extra else None,
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


__all__ = [
    "CodedImage", "CompressReport", "DecompressReport", "Encoded", "compress_image", "decode_image", "decode_image_reader",
    "decoded_psnr", "encode_image", "encode_image_coded", "image_latents", "measured_psnr", "raw_bytes", "synthesize_image",
]
