"""The ``.wlc`` header, checked field by field: the one validator every reader goes through.

``decompress``, ``info``, ``verify``, ``latents``, the Python API and the Pillow plugin all call
:func:`validate_header` right after the container is read, before any field is used or anything
is allocated. It checks the type and range of every header field any reader touches, for every
modality (``formats/wlc.md``, "Header fields (v1)", "Audio files", "Volume files"), and raises
:class:`~walloc_cli.errors.FormatError` (``invalid header: ...``, one line) for the first one that
is wrong. A reader may then index the header without further checks: whatever JSON a CRC-valid
file holds (a list where a number belongs, 2**63, a missing table), the answer is that one line,
never a ``TypeError`` from deep inside a decoder.

It also holds the format's limits (sizes, steps, rates, dtypes; the codec table's ranges) and
the chunk rules of each modality (:class:`ChunkTally`: which critical chunk types a file of that
modality may carry, and how many), so that a limit is written down once.

This is the bytes/format layer: it imports no torch, no audio or image library.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct
from typing import Any

from walloc_cli.errors import FormatError
from walloc_cli.format.payload import MAX_BITS as PAYLOAD_MAX_BITS
from walloc_cli.format.payload import MAX_SIDE as PAYLOAD_MAX_SIDE
from walloc_cli.format.payload import PAYLOAD_CODECS

__all__ = [
    "BOUNDARIES", "CODEC_INT_RANGES", "DTYPES", "ICC_FLAGS", "MAX_AXIS", "MAX_CHANNELS", "MAX_DECODE_MARGIN", "MAX_FRAMES",
    "MAX_GAIN", "MAX_PIXELS", "MAX_SAMPLERATE", "MAX_SIDE", "MAX_STEP", "MAX_TILE", "MAX_TILE_CONTEXT", "MAX_VOXELS",
    "MAX_WAVELET_CHANNELS", "MIN_SAMPLERATE", "MIN_STEP", "MODALITIES", "MODES", "TIGHT_BITS_SINCE", "ChunkTally", "check_codec_matches",
    "check_latent_bits", "chunk_tally", "declares_split", "minor_needed", "same_model", "tight_bits",
    "int_field", "require", "stream_layout", "table", "validate_audio_header", "validate_codec",
    "validate_header", "validate_image_header", "validate_volume_header",
]

MODALITIES = ("image", "audio", "volume")

# --- images --------------------------------------------------------------------------------
MAX_SIDE = PAYLOAD_MAX_SIDE * 8  # 131064: a latent row (side / 2**J, J=3) must fit one WebP image
MAX_PIXELS = 1 << 28  # 268 MP: refuse larger declared images before allocating anything
# Quantisation steps a file may use: below 1/4 the index needs > 10 bits for no visible gain;
# above 16 an 8-bit model is left with a handful of levels.
MIN_STEP, MAX_STEP = 0.25, 16.0
#: The first format version whose ``latent.bits`` may be fewer than the model's index bits.
TIGHT_BITS_SINCE = (1, 3)
#: Values of ``image.icc`` (format 1.3): ``"srgb"`` stands for an sRGB profile, no ``ICCP`` chunk.
ICC_FLAGS = ("srgb",)
#: image mode -> (colour channels, has alpha, bit depth)
MODES: dict[str, tuple[int, bool, int]] = {
    "1": (1, False, 8),
    "L": (1, False, 8),
    "LA": (1, True, 8),
    "RGB": (3, False, 8),
    "RGBA": (3, True, 8),
    "I;16": (1, False, 16),
    "LA;16": (1, True, 16),
    "RGB;16": (3, False, 16),
    "RGBA;16": (3, True, 16),
}

# --- audio ---------------------------------------------------------------------------------
MIN_SAMPLERATE = 1000
MAX_SAMPLERATE = 768_000  # the highest rate libsndfile's formats use
MAX_CHANNELS = 64
MAX_FRAMES = 1 << 40
MAX_GAIN = 256.0  # a file gain above this would amplify a near-silent file's noise floor to full scale
MAX_BLOCK = 1 << 20  # frames per audio block (walloc writes 65536)
MAX_MARGIN = 1 << 16  # context frames on each side of an audio block (walloc writes 1024)

# --- volumes -------------------------------------------------------------------------------
DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64")
MAX_VOXELS = 2**31
MAX_AXIS = 65535
MAX_TILE = 1024  # latents per axis of one volume tile
MAX_DECODE_MARGIN = 64  # latents of context a volume tile's decoder may read from its neighbours
# Largest decoder context a volume file may ask for: prod(tile + 2 * decode_margin) latents
# (normative, formats/wlc.md). walloc's default tile and margin need 73,728; at the limit one
# tile's decoder activations are 16 MiB per layer for the shipped 32-channel decoders, where a
# file declaring a 1024**3 volume as one tile asked for 16.7 M latents (GBs, then a crash).
MAX_TILE_CONTEXT = 1 << 17
VOLUME_FORMATS = ("tiff", "ome-tiff", "npy", "nifti")
VOLUME_KINDS = ("ct", "mri", "multispectral", "volume")
# Values a volume of each dtype can hold: the decoder clips to [min, max] and casts, so a range
# past the dtype's would wrap around (integers) or overflow to infinity (float32).
_DTYPE_RANGE: dict[str, tuple[float, float]] = {
    "uint8": (0, 255), "int8": (-128, 127), "uint16": (0, 65535), "int16": (-32768, 32767),
    "uint32": (0, 2**32 - 1), "int32": (-(2**31), 2**31 - 1),
    "float32": (-3.4028234663852886e38, 3.4028234663852886e38), "float64": (-math.inf, math.inf),
}

# --- the codec table (also the bounds of a model card's config, walloc_cli.model.config.CodecConfig) --
# Bounds of every integer field, far beyond any trained model (the shipped ones use levels 3-5,
# latent_dim <= 96, 64 decoder channels). bits: companding needs a non-zero range (2) and the
# payload packs at most walloc_cli.format.payload.MAX_BITS (15).
CODEC_INT_RANGES: tuple[tuple[str, int, int], ...] = (
    ("dims", 1, 3),
    ("channels", 1, 64),
    ("levels", 1, 8),
    ("latent_dim", 1, 4096),
    ("bits", 2, PAYLOAD_MAX_BITS),
    ("decoder_channels", 1, 1024),
    ("decoder_blocks", 0, 64),
)
BOUNDARIES: tuple[str, ...] = ("symmetric", "periodic")
MAX_WAVELET_CHANNELS = 1 << 16  # channels * 2**(dims*levels): 3 RGB channels at 5 levels are 3072
_CODEC_FIELDS = frozenset(name for name, _, _ in CODEC_INT_RANGES) | {"boundary", "step_input"}
_DIMS = {"audio": 1, "image": 2, "volume": 3}

# Short names from a fixed vocabulary (libsndfile subtypes and formats, TIFF photometric and
# compression names, units): printable, no path separators, bounded.
_NAME = re.compile(r"[A-Za-z0-9_.;+\- ]{0,64}")
# A model's SHA-256 as a header gives it: all 64 hex digits (1.x), or its first 16 (2.0's
# compact header stores 8 bytes: a 2**-64 chance that another model matches, never a security
# claim: the hash tells models apart, it does not authenticate them).
_SHA256 = re.compile(r"[0-9a-f]{16}(?:[0-9a-f]{48})?")
_MAX_TEXT = 1 << 20  # a text field can be as long as the header allows (ImageDescription, OME-XML)


# --- field checks ----------------------------------------------------------------------------
def require(condition: bool, message: str) -> None:
    """Raise ``FormatError("invalid header: <message>")`` unless ``condition``."""
    if not condition:
        raise FormatError(f"invalid header: {message}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A finite JSON number (int or float; not a bool, whose type is an int in Python)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float (10**400)
        return False


def int_field(node: dict[str, Any], key: str, low: int, high: int) -> int:
    """``node[key]``, which must be an integer in ``low..high``."""
    value = node.get(key)
    if not (_is_int(value) and low <= value <= high):
        raise FormatError(f"invalid header: {key}={_show(value)} is not an integer in {low}..{high}")
    return value


def _text_field(node: dict[str, Any], key: str, what: str | None = None, pattern: re.Pattern[str] = _NAME) -> str:
    value = node.get(key)
    require(isinstance(value, str) and pattern.fullmatch(value) is not None, f"{what or key}={_show(value)}")
    return value  # type: ignore[return-value]


def table(node: dict[str, Any], key: str) -> dict[str, Any]:
    """``node[key]``, which must be a JSON object."""
    value = node.get(key)
    if not isinstance(value, dict):
        raise FormatError(f"invalid header: missing {key} table")
    return value


def _int_list(value: Any, length: int | tuple[int, int], low: int, high: int, what: str) -> list[int]:
    lo, hi = (length, length) if isinstance(length, int) else length
    require(isinstance(value, list) and lo <= len(value) <= hi and all(_is_int(n) and low <= n <= high for n in value), f"{what}={_show(value)}")
    return value  # type: ignore[no-any-return]


def _show(value: Any) -> str:
    """A value for an error line: its repr, cut short (a header may hold a megabyte of JSON)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _a(word: str) -> str:
    """``word`` with its indefinite article: ``an image``, ``a volume``, ``an ALPH``."""
    return f"{'an' if word[0].lower() in 'aeiou' else 'a'} {word}"


def stream_layout(channels: int) -> str:
    """``mono``, ``mid-side`` or ``channels`` for an audio file of ``channels`` channels."""
    return "mono" if channels == 1 else "mid-side" if channels == 2 else "channels"


# --- shared tables ---------------------------------------------------------------------------
def validate_codec(codec: Any, modality: str | None = None) -> None:
    """The ``codec`` table: every field known, each in range (the bounds of
    :class:`walloc_cli.model.config.CodecConfig`), and, for a ``modality``, a model of that rank."""
    require(isinstance(codec, dict), "missing codec table")
    unknown = sorted(set(codec) - _CODEC_FIELDS)
    require(not unknown, f"unknown codec config fields: {unknown}")
    for name, low, high in CODEC_INT_RANGES:  # every field is required but step_input
        value = codec.get(name)
        require(_is_int(value) and low <= value <= high, f"codec {name}={_show(value)} is not an integer in {low}..{high}")
    require(codec.get("boundary") in BOUNDARIES, f"codec boundary={_show(codec.get('boundary'))} is not one of {', '.join(BOUNDARIES)}")
    require(isinstance(codec.get("step_input", False), bool), f"codec step_input={_show(codec.get('step_input'))} is not true or false")
    dims, channels, levels = codec["dims"], codec["channels"], codec["levels"]
    wavelet = channels * 2 ** (dims * levels)  # safe to compute: dims <= 3, levels <= 8
    require(wavelet <= MAX_WAVELET_CHANNELS, f"codec channels * 2**(dims*levels) = {wavelet} exceeds {MAX_WAVELET_CHANNELS}")
    if modality is not None:
        require(dims == _DIMS[modality], f"codec dims={dims}: {_a(modality)} file needs a {_DIMS[modality]}-D model")
        if modality != "image":
            require(channels == 1, f"codec channels={channels}: {_a(modality)} model codes one channel")


def check_codec_matches(header: dict[str, Any], config: dict[str, Any]) -> None:
    """The validated header's ``codec`` table must be the configuration of the model it names
    (``config``: that model card's, as a dict): a file whose copy disagrees with its model is
    inconsistent, and readers without the model (``walloc latents``) would read it otherwise."""
    stated = {"step_input": False, **header["codec"]}
    differ = [key for key in config if stated.get(key) != config[key] or type(stated.get(key)) is not type(config[key])]
    require(not differ, f"codec table does not match model {header['model']['name']!r}: " + ", ".join(f"{key}={_show(stated.get(key))} where the model has {config[key]!r}" for key in differ[:3]))


def _validate_model(header: dict[str, Any]) -> None:
    model = table(header, "model")
    require(isinstance(model.get("name"), str) and isinstance(model.get("sha256"), str), "model name/sha256")
    require(0 < len(model["name"]) <= 256, f"model name={_show(model['name'])}")
    require(_SHA256.fullmatch(model["sha256"]) is not None, f"model sha256={_show(model['sha256'])} is not 16 or 64 hex digits")


def same_model(stated: str, sha256: str) -> bool:
    """Whether a header's ``model.sha256`` (``stated``: 64 hex digits in 1.x files, the first 16
    in 2.0 files) names the model whose weights hash to ``sha256`` (64 hex digits): the one
    comparison every reader makes between a file and a model card."""
    return len(stated) in (16, 64) and sha256.startswith(stated)


def _validate_step(latent: dict[str, Any], key: str = "step") -> None:
    step = latent.get(key)
    require(_is_number(step) and MIN_STEP <= step <= MAX_STEP, f"{key}={_show(step)} is not in {MIN_STEP}..{MAX_STEP}")


def _validate_common(header: dict[str, Any], modality: str) -> dict[str, Any]:
    """Fields every modality has: encoder, model, codec, latent bits/step/payload. Returns ``latent``."""
    encoder = header.get("encoder", "")
    require(isinstance(encoder, str) and len(encoder) <= 256, f"encoder={_show(encoder)}")
    _validate_model(header)
    validate_codec(header.get("codec"), modality)
    latent = table(header, "latent")
    int_field(latent, "bits", 1, PAYLOAD_MAX_BITS)
    require(latent.get("payload") in PAYLOAD_CODECS, f"payload={_show(latent.get('payload'))}")
    if "split" in latent:  # 2.1: the low-pass group's chunks of their own (webp and png payloads)
        require(latent["split"] is True and latent["payload"] in ("webp", "png"), f"split={_show(latent['split'])} with payload {latent['payload']}")
    _validate_step(latent)
    return latent


def minor_needed(header: Any) -> tuple[int, str]:
    """The format 2 minor that defines everything ``header`` declares (2 for the ``ctx``
    payload, 1 for ``latent.split``, else 0), and what needs it, as writer and reader say it."""
    latent = header.get("latent") if isinstance(header, dict) else None
    if isinstance(latent, dict) and latent.get("payload") == "ctx":
        return 2, "latent.payload ctx is a format 2.2 payload"
    return (1, "latent.split is a format 2.1 field") if declares_split(header) else (0, "")


def declares_split(header: Any) -> bool:
    """Whether ``header`` (any parsed header) declares ``latent.split`` (format 2.1: the payload's
    low-pass channel group in chunks of its own, :func:`walloc_cli.format.payload.chunk_rows`)."""
    latent = header.get("latent") if isinstance(header, dict) else None
    return isinstance(latent, dict) and latent.get("split") is True


def tight_bits(q: Any, index_bits: int) -> int:
    """The ``latent.bits`` a writer declares for indices ``q`` (a numpy integer array, any shape)
    of a model whose largest index at the step takes ``index_bits``: the fewest that hold their
    largest magnitude K (``bit_length(K) + 1``), but never fewer than 8 nor more than
    ``index_bits``. So only a second byte plane is ever dropped: the model's index bits cover the
    largest index it can make (10 bits for ``rgb-2x-v`` at step 0.354), while real photos'
    indices stay inside 8 bits (|k| <= 122 on 130 files), and a 9-15-bit payload stores a high
    byte plane that is then constant. Below 8 the declared bits would only move the offset
    of the one byte plane away from 128, which WebP codes worse (its clamped predictors meet 0):
    on 4 photos at q 10/50/75/95, +0.04% in all and +0.5% on one file, against -0.8% for
    dropping the plane (``formats/wlc.md``, "Format 1.3: tight latent bits")."""
    largest = max(-int(q.min()), int(q.max())) if q.size else 0
    return min(index_bits, max(8, largest.bit_length() + 1))


def check_latent_bits(header: dict[str, Any], version: tuple[int, int], index_bits: int) -> None:
    """``latent.bits`` of a validated header against ``index_bits``, the bits of the model's
    largest index at ``latent.step``: equal in files before 1.3; at most that from 1.3 on, where a
    writer declares the bits its indices actually need (``formats/wlc.md``, "Format 1.3: tight
    latent bits"). More would let a payload hold indices the model never makes."""
    bits, step = header["latent"]["bits"], header["latent"]["step"]
    if tuple(version) >= TIGHT_BITS_SINCE:
        require(bits <= index_bits, f"latent bits {bits} exceed the {index_bits} of step {step} for this model")
    else:
        require(bits == index_bits, f"latent bits {bits} do not match step {step} for this model")


# --- images ----------------------------------------------------------------------------------
def validate_image_header(header: dict[str, Any]) -> None:
    """Check every field the image decoder relies on, before anything is allocated."""
    require(header.get("modality") == "image", f"modality {_show(header.get('modality'))} is not supported by this walloc (images only)")
    image, latent = table(header, "image"), table(header, "latent")
    height = int_field(image, "height", 1, MAX_SIDE)
    width = int_field(image, "width", 1, MAX_SIDE)
    require(height * width <= MAX_PIXELS, f"{width}x{height} exceeds the {MAX_PIXELS}-pixel limit")
    channels = int_field(image, "channels", 1, 3)
    bit_depth = image.get("bit_depth")
    require(_is_int(bit_depth) and bit_depth in (8, 16), f"bit_depth={_show(bit_depth)}")
    mode = image.get("mode")
    require(isinstance(mode, str) and mode in MODES, f"mode={_show(mode)} is not one of {', '.join(MODES)}")
    assert isinstance(mode, str) and isinstance(bit_depth, int)  # checked just above
    # ImageData refuses a mode that contradicts the samples; catch it here, as a header problem.
    mode_channels, mode_alpha, mode_depth = MODES[mode]
    require(mode_channels == channels, f"mode {mode} has {mode_channels} channel(s), not channels={channels}")
    require(mode_depth == bit_depth, f"mode {mode} has bit depth {mode_depth}, not bit_depth={bit_depth}")
    if "source_format" in image:  # informational
        _text_field(image, "source_format")
    if "icc" in image:  # 1.3: the profile is sRGB, stored as this word
        require(image["icc"] in ICC_FLAGS, f"icc={_show(image['icc'])} is not one of {', '.join(ICC_FLAGS)}")
    _validate_common(header, "image")
    shape = latent.get("shape")
    require(isinstance(shape, list) and len(shape) == 3 and all(_is_int(n) and 1 <= n <= MAX_SIDE for n in shape), f"latent shape {_show(shape)}")
    require(shape[0] == header["codec"]["latent_dim"], f"latent shape {_show(shape)} does not match codec latent_dim={header['codec']['latent_dim']}")
    if "chunks" in latent:  # informational
        int_field(latent, "chunks", 0, 1 << 20)
    norm = table(header, "normalisation")
    require(norm.get("offset") == 0.5 and not isinstance(norm.get("offset"), bool), f"normalisation offset={_show(norm.get('offset'))}, expected 0.5")
    require(_is_int(norm.get("peak")) and norm.get("peak") == (1 << bit_depth) - 1, f"normalisation peak={_show(norm.get('peak'))}, expected {(1 << bit_depth) - 1}")
    alpha = header.get("alpha")
    require(alpha is None or isinstance(alpha, dict), "alpha")
    require((alpha is not None) == mode_alpha, f"mode {mode} {'needs' if mode_alpha else 'has no'} alpha table")
    if isinstance(alpha, dict):
        require(alpha.get("bit_depth") == bit_depth and _is_int(alpha.get("bit_depth")), f"alpha bit_depth={_show(alpha.get('bit_depth'))}, expected {bit_depth}")
        if "constant" in alpha:
            int_field(alpha, "constant", 0, (1 << bit_depth) - 1)
        else:
            require(alpha.get("codec") in ("webp", "png"), f"alpha codec={_show(alpha.get('codec'))}")


# --- audio -----------------------------------------------------------------------------------
def validate_audio_header(header: dict[str, Any]) -> None:
    """Every field the audio decoder relies on, checked before anything is allocated."""
    require(header.get("modality") == "audio", f"modality {_show(header.get('modality'))} is not audio")
    audio, latent, model = header.get("audio"), header.get("latent"), header.get("model")
    require(isinstance(audio, dict) and isinstance(latent, dict) and isinstance(model, dict), "missing audio/latent/model table")
    assert isinstance(audio, dict) and isinstance(latent, dict) and isinstance(model, dict)
    int_field(audio, "samplerate", MIN_SAMPLERATE, MAX_SAMPLERATE)
    channels = int_field(audio, "channels", 1, MAX_CHANNELS)
    int_field(audio, "frames", 1, MAX_FRAMES)
    _text_field(audio, "subtype")
    _text_field(audio, "format")
    require(latent.get("streams") == stream_layout(channels), f"streams={_show(latent.get('streams'))} for {channels} channels")
    int_field(latent, "block", 1, MAX_BLOCK)
    int_field(latent, "margin", 0, MAX_MARGIN)
    normalisation = header.get("normalisation")
    gain = normalisation.get("gain") if isinstance(normalisation, dict) else None
    require(_is_number(gain) and 0 < gain <= MAX_GAIN, f"gain={_show(gain)}")  # type: ignore[operator]
    _validate_common(header, "audio")


# --- volumes ---------------------------------------------------------------------------------
def _validate_volume_meta(meta: dict[str, Any]) -> None:
    """The metadata a volume writer restores (``walloc_cli.files.volumes``): each key it reads, typed.
    Keys this walloc does not know are left alone (a newer writer may add some)."""
    if meta.get("shape") is not None:
        _int_list(meta["shape"], (1, 8), 1, MAX_AXIS, "meta.shape")
    if meta.get("spacing") is not None:
        spacing = meta["spacing"]
        require(isinstance(spacing, list) and len(spacing) == 3 and all(s is None or _is_number(s) for s in spacing), f"meta.spacing={_show(spacing)}")
    for key in ("photometric", "compression"):  # tifffile enum names
        if key in meta:
            _text_field(meta, key, f"meta.{key}")
    for key in ("unit", "description", "ome_xml", "descrip"):  # free text (a TIFF's own unit string)
        if key in meta:
            require(isinstance(meta[key], str) and len(meta[key]) <= _MAX_TEXT, f"meta.{key} is not text")
    if "tiff_layout" in meta:
        require(meta["tiff_layout"] in ("pages", "planar", "contig"), f"meta.tiff_layout={_show(meta['tiff_layout'])}")
    if "predictor" in meta:
        int_field(meta, "predictor", 1, 3)
    if "resolution" in meta:
        resolution = meta["resolution"]
        require(isinstance(resolution, list) and len(resolution) == 2 and all(_is_number(r) and r > 0 for r in resolution), f"meta.resolution={_show(resolution)}")
    if "resolution_unit" in meta:
        int_field(meta, "resolution_unit", 1, 5)  # TIFF's none, inch, cm, and tifffile's mm, um
    if "imagej" in meta:
        require(isinstance(meta["imagej"], bool), f"meta.imagej={_show(meta['imagej'])}")
    if "extratags" in meta:
        tags = meta["extratags"]
        require(isinstance(tags, list), "meta.extratags is not a list")
        for tag in tags:
            # [code, TIFF data type, count, value]: a value is text, a number or a list of numbers
            require(
                isinstance(tag, list) and len(tag) == 4 and _is_int(tag[0]) and 0 < tag[0] <= 65535 and _is_int(tag[1]) and 1 <= tag[1] <= 18
                and _is_int(tag[2]) and 0 <= tag[2] <= _MAX_TEXT
                and (isinstance(tag[3], str) or _is_number(tag[3]) or (isinstance(tag[3], list) and all(_is_number(v) for v in tag[3]))),
                f"meta.extratags entry {_show(tag)}",
            )
    if "nifti_version" in meta:
        require(meta["nifti_version"] in (1, 2) and _is_int(meta["nifti_version"]), f"meta.nifti_version={_show(meta['nifti_version'])}")
    if "nifti_header" in meta:
        _validate_nifti_header(meta["nifti_header"], meta.get("nifti_version", 1))
    if "affine" in meta:
        affine = meta["affine"]
        require(isinstance(affine, list) and len(affine) == 4 and all(isinstance(r, list) and len(r) == 4 and all(_is_number(v) for v in r) for r in affine), "meta.affine is not a 4x4 matrix")
    if "zooms" in meta:
        zooms = meta["zooms"]
        require(isinstance(zooms, list) and 1 <= len(zooms) <= 8 and all(_is_number(z) for z in zooms), f"meta.zooms={_show(zooms)}")
    for key in ("qform_code", "sform_code"):
        if key in meta:
            int_field(meta, key, -32768, 32767)
    for key in ("scl_slope", "scl_inter"):
        if meta.get(key) is not None:
            require(_is_number(meta[key]), f"meta.{key}={_show(meta[key])}")


# The NIfTI header checks nibabel refuses to load a header without (its problem level >= 40):
# sizeof_hdr (which also gives the byte order), the magic string, a data type code with a fixed
# item size, a single-file voxel offset past the header, and NIfTI-2's end-of-line check bytes.
# nibabel guesses the byte order from dim[0] (1..7 as stored: this order), so it must agree with
# sizeof_hdr's. version: (size, magic at, single-file magic, pair magic, datatype at,
# vox_offset at and format, dim[0] at and format)
_NIFTI_LAYOUT = {1: (348, 344, b"n+1\0", b"ni1\0", 70, 108, "f", 40, "h"), 2: (540, 4, b"n+2\0", b"ni2\0", 12, 168, "q", 16, "q")}
_NIFTI_DTYPES = (2, 4, 8, 16, 32, 64, 128, 256, 512, 768, 1024, 1280, 1792, 2304)


def _validate_nifti_header(raw: Any, version: int) -> None:
    """``meta.nifti_header``: base64 of a NIfTI-1 (348 bytes) or NIfTI-2 (540 bytes) header, as
    ``meta.nifti_version`` says, that nibabel can load."""
    message = "meta.nifti_header is not a base64 NIfTI-1 or NIfTI-2 header"
    try:
        block = base64.b64decode(raw, validate=True) if isinstance(raw, str) else b""
    except (binascii.Error, ValueError):
        block = b""
    size, magic_at, single, pair, datatype_at, offset_at, offset_format, dim_at, dim_format = _NIFTI_LAYOUT[version]
    require(len(block) == size, message)
    order = "<" if struct.unpack_from("<i", block)[0] == size else ">"
    require(struct.unpack_from(order + "i", block)[0] == size, f"{message} (sizeof_hdr)")
    require(1 <= struct.unpack_from(order + dim_format, block, dim_at)[0] <= 7, f"{message} (dim[0])")
    magic = block[magic_at : magic_at + 4]
    require(magic in (single, pair), f"{message} (magic)")
    datatype = struct.unpack_from(order + "h", block, datatype_at)[0]
    require(datatype in _NIFTI_DTYPES, f"{message} (data type code {datatype})")
    offset = struct.unpack_from(order + offset_format, block, offset_at)[0]
    require(not (magic == single and offset != 0 and offset < size + 4), f"{message} (voxel offset {offset})")
    if version == 2:
        require(block[8:12] in (b"\r\n\x1a\n", b"\0\0\0\0"), f"{message} (end-of-line check)")


def validate_volume_header(header: dict[str, Any]) -> None:
    """Every field the volume decoder and writers rely on, checked before anything is allocated."""
    require(header.get("modality") == "volume", f"modality {_show(header.get('modality'))} is not volume")
    volume, latent, model, norm = (header.get(k) for k in ("volume", "latent", "model", "normalisation"))
    require(all(isinstance(t, dict) for t in (volume, latent, model, norm)), "missing volume/latent/model/normalisation table")
    assert isinstance(volume, dict) and isinstance(latent, dict) and isinstance(model, dict) and isinstance(norm, dict)
    shape = volume.get("shape")
    require(isinstance(shape, list) and len(shape) == 3, f"shape={_show(shape)}")
    sides = [int_field({"side": s}, "side", 1, MAX_AXIS) for s in shape]  # type: ignore[union-attr]
    require(math.prod(sides) <= MAX_VOXELS, f"shape={shape!r} is more than {MAX_VOXELS} voxels")
    dtype = volume.get("dtype")
    require(isinstance(dtype, str) and dtype in DTYPES, f"dtype={_show(dtype)}")
    for key in ("axes", "coding_axes", "format", "kind"):
        require(isinstance(volume.get(key), str), f"{key}={_show(volume.get(key))}")
    coding, axes = volume["coding_axes"], volume["axes"]
    require(coding in ("ZYX", "CYX"), f"coding_axes={_show(coding)}")
    require(len(axes) == 3 and sorted(axes) == sorted(coding), f"axes={_show(axes)} for coding axes {coding}")
    require(volume["format"] in VOLUME_FORMATS, f"format={_show(volume['format'])} is not one of {', '.join(VOLUME_FORMATS)}")
    require(volume["kind"] in VOLUME_KINDS, f"kind={_show(volume['kind'])} is not one of {', '.join(VOLUME_KINDS)}")
    meta = volume.get("meta")
    require(isinstance(meta, dict), "meta")
    _validate_volume_meta(meta)  # type: ignore[arg-type]
    tile = latent.get("tile")
    require(isinstance(tile, list) and len(tile) == 3, f"tile={_show(tile)}")
    for side in tile:  # type: ignore[union-attr]
        int_field({"tile": side}, "tile", 1, MAX_TILE)
    margin = int_field(latent, "decode_margin", 0, MAX_DECODE_MARGIN)
    context = math.prod(side + 2 * margin for side in tile)  # type: ignore[union-attr]
    require(context <= MAX_TILE_CONTEXT, f"tile={tile!r} with decode_margin={margin} needs {context} latents of decoder context, more than {MAX_TILE_CONTEXT}")
    if "encode_margin" in latent:  # descriptive
        int_field(latent, "encode_margin", 0, 1 << 16)
    for key in ("step", "condition"):  # condition (1.1) defaults to the step
        value = latent.get(key, latent.get("step"))
        require(_is_number(value) and MIN_STEP <= value <= MAX_STEP, f"{key}={_show(value)}")
    low, high = _finite(norm, "min"), _finite(norm, "max")
    _finite(norm, "offset")
    require(low <= high and _finite(norm, "scale") > 0, "normalisation range")
    lowest, highest = _DTYPE_RANGE[dtype]  # type: ignore[index]
    require(lowest <= low and high <= highest, f"normalisation range {low:g}..{high:g} does not fit {dtype}")
    _validate_common(header, "volume")


def _finite(node: dict[str, Any], key: str) -> float:
    value = node.get(key)
    if not _is_number(value):
        raise FormatError(f"invalid header: {key}={_show(value)}")
    return float(value)


# --- one entry point -------------------------------------------------------------------------
_VALIDATORS = {"image": validate_image_header, "audio": validate_audio_header, "volume": validate_volume_header}


def validate_header(header: dict[str, Any], modality: str | None = None) -> str:
    """Validate a whole header (any modality, or only ``modality``); return its modality.

    Raises:
        FormatError: the first field whose type or range is wrong, or a modality this walloc
            does not read (or not ``modality`` when one is asked for).
    """
    found = header.get("modality")
    if not isinstance(found, str) or found not in _VALIDATORS:
        raise FormatError(f"modality {_show(found)} is not supported by this walloc (reads {', '.join(MODALITIES)})")
    if modality is not None and found != modality:
        raise FormatError(f"holds {found} data, not {modality}")
    _VALIDATORS[found](header)
    return found  # type: ignore[no-any-return]


# --- chunks ----------------------------------------------------------------------------------
# The critical chunk types each modality defines, with the most of each a file may carry
# (None: as many as the header implies; the decoder checks that count). Any other known
# critical type in a file of that modality is refused: a reader would otherwise ignore data the
# writer meant to be decoded. An ancillary type (lowercase first letter) that a modality does not
# define is skipped, as the container skips unknown ancillary ones; one it defines (an image's
# ``exif`` and ``xmp ``) is counted like a critical one: a second copy would be ambiguous.
CHUNK_LIMITS: dict[str, dict[str, int | None]] = {
    "image": {"LATN": None, "ALPH": 1, "ICCP": 1, "exif": 1, "xmp ": 1},
    "audio": {"AUDB": None},
    "volume": {"VOLT": None},
}


class ChunkTally:
    """Counts the chunks of one file as they are read, refusing a type its modality does not
    define or one past its limit (``formats/wlc.md``: at most one each of ``ALPH``, ``ICCP``,
    ``exif`` and ``xmp ``).

    ``limits`` overrides some counts (an image without an alpha plane allows no ``ALPH``).
    """

    def __init__(self, modality: str, **limits: int | None) -> None:
        self.modality = modality
        self.limits = {**CHUNK_LIMITS[modality], **limits}
        self.counts: dict[str, int] = {}

    def add(self, chunk_type: str) -> int:
        """Count one chunk of ``chunk_type``; return its count (0 for an ancillary type this
        modality does not define, which is skipped)."""
        if chunk_type not in self.limits:
            if chunk_type[:1].islower():
                return 0
            raise FormatError(f"{_a(chunk_type.rstrip())} chunk has no place in {_a(self.modality)} file")
        count = self.counts[chunk_type] = self.counts.get(chunk_type, 0) + 1
        limit = self.limits[chunk_type]
        if limit is not None and count > limit:
            if limit == 0:
                raise FormatError(f"{_a(chunk_type)} chunk is present but the header declares none")
            raise FormatError(f"more than {limit} {chunk_type} chunk{'s' if limit > 1 else ''} (the format allows {limit})")
        return count


def chunk_tally(header: dict[str, Any]) -> ChunkTally:
    """The :class:`ChunkTally` of a file whose header is validated: an image carries an ``ALPH``
    chunk only when its alpha table names a codec (a constant alpha, or none, has no chunk), and
    an ``ICCP`` chunk only when ``image.icc`` does not flag the profile."""
    modality = header["modality"]
    if modality == "image":
        alpha = header.get("alpha")
        # a profile flagged in the header (image.icc) has no ICCP chunk: two would be ambiguous
        return ChunkTally(modality, ALPH=1 if isinstance(alpha, dict) and "codec" in alpha else 0, ICCP=0 if "icc" in header["image"] else 1)
    return ChunkTally(modality)
