"""The compact binary header of ``.wlc`` format 2.0, and the varints of its framing.

Format 1.x stores the header as canonical JSON: 532 bytes for a photo, 17% of a q 10 file on
average. Format 2.0 stores the same dict as a few binary *core* fields (modality, model name and
hash, the codec table packed into six bytes, the step as an exact decimal, bits and payload, an
image's size, mode, source format and sRGB flag) followed by an optional *extras* JSON object
(canonical, as 1.x) holding everything the core neither stores nor implies. Whatever a header
holds, :func:`encode` writes it losslessly: what the core cannot express goes into the extras,
and a header that does not fit the core at all (another shape of ``model``, a step that is an
integer, ...) is stored as extras alone (modality code 0, "generic"). So

    decode(encode(h)) == stored_form(h)   for every dict h,

where :func:`stored_form` is what a 2.0 file keeps of a header: without the top-level
``encoder`` string, and with ``model.sha256`` cut to its first 16 hex digits (8 bytes) when the
core holds it. :func:`decode` returns a dict of the same shape as a 1.x header, so
:func:`~walloc_cli.format.header.validate_header` and every decoder read both alike.

Encodings are canonical: :func:`decode` re-encodes what it decoded and refuses bytes that differ
(an overlong varint, extras that restate a derived field, an unsorted JSON key), so a header has
exactly one 2.0 encoding, as it has one 1.x encoding.

The normative description is ``formats/wlc.md``, "Format 2.0". This module is bytes only: it
imports no torch, no image library.
"""

from __future__ import annotations

import decimal
import json
import math
import re
from typing import Any

from walloc_cli.errors import FormatError
from walloc_cli.format.header import CODEC_INT_RANGES, MAX_PIXELS, MAX_SIDE
from walloc_cli.format.payload import MAX_SIDE as PAYLOAD_MAX_SIDE
from walloc_cli.format.payload import PayloadError, chunk_count

__all__ = [
    "MODALITY_CODES",
    "MODE_CODES",
    "PAYLOAD_CODES",
    "SOURCE_FORMATS",
    "canonical_json",
    "decode",
    "decode_json_object",
    "decode_varint",
    "encode",
    "encode_varint",
    "stored_form",
]

#: modality code (bits 0-1 of the first byte) -> modality; 0 is the generic form (extras only)
MODALITY_CODES: tuple[str | None, ...] = (None, "image", "audio", "volume")
#: payload code (bits 3-4 of the first byte) -> ``latent.payload``
PAYLOAD_CODES: tuple[str, ...] = ("webp", "png", "jxl", "ctx")
#: image mode code (low nibble of the mode byte) -> ``image.mode``; with its channels, alpha, depth
MODE_CODES: tuple[tuple[str, int, bool, int], ...] = (
    ("1", 1, False, 8), ("L", 1, False, 8), ("LA", 1, True, 8), ("RGB", 3, False, 8), ("RGBA", 3, True, 8),
    ("I;16", 1, False, 16), ("LA;16", 1, True, 16), ("RGB;16", 3, False, 16), ("RGBA;16", 3, True, 16),
)
#: source format code (high nibble of the mode byte; 0: none, or the name is in the extras)
SOURCE_FORMATS: tuple[str | None, ...] = (
    None, "PNG", "JPEG", "TIFF", "WEBP", "BMP", "ARRAY", "GIF", "PPM", "JPEG2000", "TGA", "ICO", "MPO", "JXL", "AVIF", "HEIF",
)
BOUNDARIES: tuple[str, ...] = ("symmetric", "periodic")
#: codec.step_input states (bits 6-7 of the codec byte): absent, false, true
STEP_INPUT: tuple[bool | None, ...] = (None, False, True)

# First byte: modality (bits 0-1), extras present (bit 2), payload (bits 3-4), for images the
# sRGB flag (bit 5) and a constant alpha (bit 6), and (format 2.1) latent.split (bit 7).
_EXTRAS = 0x04
_SRGB = 0x20
_CONSTANT_ALPHA = 0x40
_SPLIT = 0x80
# The core holds a field only within the format's own bounds (the codec table's ranges, an
# image's sides and pixels): a decoder then derives nothing from a hostile size, and a header
# outside them keeps the field in its extras (or is stored in the generic form).
_RANGES = {name: (low, high) for name, low, high in CODEC_INT_RANGES}
_MAX_MANTISSA = (1 << 64) - 1  # 17 significant digits (a double's shortest repr) need 57 bits
_MAX_EXPONENT = 400  # doubles span 1e-324 .. 1.8e308
_NAME = re.compile(r"[\x20-\x7e]{1,255}")
_HASH = re.compile(r"[0-9a-f]{16}(?:[0-9a-f]{48})?")
_CODEC_VARINTS = ("channels", "latent_dim", "decoder_channels", "decoder_blocks")


# --- varints ---------------------------------------------------------------------------------
def encode_varint(value: int) -> bytes:
    """Unsigned LEB128, minimal: 7 bits a byte, least significant first, high bit = more follow."""
    if value < 0:
        raise ValueError(f"a varint is unsigned, got {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(data: bytes, at: int, limit: int, what: str) -> tuple[int, int]:
    """The minimal LEB128 varint of at most ``limit`` at ``data[at:]``: ``(value, next offset)``.

    Raises FormatError (naming ``what``) for a varint that runs past the data, exceeds ``limit``
    or is not minimal (a last byte 0 after others: the same value has a shorter encoding)."""
    value = shift = 0
    start = at
    most = max(1, -(-limit.bit_length() // 7))  # bytes of the longest minimal varint <= limit
    while True:
        if at >= len(data):
            raise FormatError(f"header is not valid: {what} is cut short")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if value > limit:
            raise FormatError(f"header is not valid: {what} exceeds {limit}")
        if not byte & 0x80:
            if byte == 0 and at - start > 1:
                raise FormatError(f"header is not valid: {what} is an overlong varint")
            return value, at
        if at - start >= most:
            raise FormatError(f"header is not valid: {what} is an overlong varint")


def _zigzag(value: int) -> int:
    return value * 2 if value >= 0 else -value * 2 - 1


def _unzigzag(value: int) -> int:
    return value // 2 if value % 2 == 0 else -(value + 1) // 2


# --- canonical JSON (the extras, and the whole header of format 1.x) --------------------------
def canonical_json(obj: dict[str, Any]) -> bytes:
    """Sorted keys, no spaces, ASCII only, no NaN: equal objects give equal bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")


def _reject_constant(name: str) -> Any:
    raise FormatError(f"header is not valid JSON: {name} is not allowed")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Duplicate keys make the meaning reader-dependent (first or last wins); refuse them.
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise FormatError(f"header is not valid: duplicate key {key!r}")
        obj[key] = value
    return obj


def decode_json_object(raw: bytes, what: str = "header") -> dict[str, Any]:
    """UTF-8 JSON text whose top level is an object; no duplicate keys, NaN or Infinity."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError(f"{what} is not valid UTF-8 (byte {e.start})") from None
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except RecursionError:
        raise FormatError(f"{what} is not valid: JSON nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, and int-digit limits of Python >= 3.11
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise FormatError(f"{what} is not valid JSON: {first}") from None
    if not isinstance(obj, dict):
        raise FormatError(f"{what} is not a JSON object (got {type(obj).__name__})")
    return obj


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON, types included (``1``, ``1.0`` and ``true`` differ)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


# --- the step: an exact decimal ----------------------------------------------------------------
def _decimal(step: float) -> tuple[int, int] | None:
    """``(mantissa, exponent)`` of ``repr(step)`` with no trailing zero in the mantissa, so that
    ``float(f"{m}e{e}") == step``; None for a step the core does not hold."""
    if not (type(step) is float and math.isfinite(step) and step > 0):
        return None
    sign, digits, exponent = decimal.Decimal(repr(step)).as_tuple()
    mantissa = int("".join(map(str, digits)))
    assert isinstance(exponent, int) and not sign
    while mantissa % 10 == 0:
        mantissa //= 10
        exponent += 1
    if mantissa > _MAX_MANTISSA or abs(exponent) > _MAX_EXPONENT:
        return None
    return mantissa, exponent


# --- what a 2.0 file keeps of a header ---------------------------------------------------------
def stored_form(header: dict[str, Any]) -> dict[str, Any]:
    """``header`` as a 2.0 file gives it back: no top-level ``encoder``, and ``model.sha256`` cut
    to 16 hex digits when the core holds it (the header has a core-expressible form)."""
    kept = {key: value for key, value in header.items() if key != "encoder"}
    if _core(kept) is not None:
        kept["model"] = {**kept["model"], "sha256": kept["model"]["sha256"][:16]}
    return kept


# --- the core ----------------------------------------------------------------------------------
def _int(value: Any, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def _core(header: dict[str, Any]) -> dict[str, Any] | None:
    """The core fields of ``header`` (a flat dict), or None when it has no core form."""
    modality = header.get("modality")
    model, codec, latent = header.get("model"), header.get("codec"), header.get("latent")
    if modality not in MODALITY_CODES[1:] or not all(isinstance(t, dict) for t in (model, codec, latent)):
        return None
    assert isinstance(model, dict) and isinstance(codec, dict) and isinstance(latent, dict)
    name, sha = model.get("name"), model.get("sha256")
    if not (isinstance(name, str) and _NAME.fullmatch(name) and isinstance(sha, str) and _HASH.fullmatch(sha)):
        return None
    if not all(_int(codec.get(key), *_RANGES[key]) for key in ("dims", "levels", "bits", *_CODEC_VARINTS)):
        return None
    if codec.get("boundary") not in BOUNDARIES:
        return None
    step_input = codec.get("step_input")
    if "step_input" in codec and type(step_input) is not bool:
        return None
    step = _decimal(latent.get("step"))  # type: ignore[arg-type]
    if step is None or not _int(latent.get("bits"), 1, 15) or latent.get("payload") not in PAYLOAD_CODES:
        return None
    core: dict[str, Any] = {
        "modality": modality, "name": name, "hash": bytes.fromhex(sha[:16]),
        "dims": codec["dims"], "levels": codec["levels"], "boundary": codec["boundary"],
        "step_input": step_input if "step_input" in codec else None, "codec_bits": codec["bits"],
        **{key: codec[key] for key in _CODEC_VARINTS},
        "step": step, "bits": latent["bits"], "payload": latent["payload"], "split": latent.get("split") is True,
    }
    if modality == "image":
        image = header.get("image")
        if not isinstance(image, dict) or not _int(image.get("width"), 1, MAX_SIDE) or not _int(image.get("height"), 1, MAX_SIDE):
            return None
        mode = next((code for code, entry in enumerate(MODE_CODES) if entry[0] == image.get("mode")), None)
        if mode is None or image["width"] * image["height"] > MAX_PIXELS:
            return None
        source = image.get("source_format")
        alpha = header.get("alpha")
        constant = alpha.get("constant") if isinstance(alpha, dict) and MODE_CODES[mode][2] else None
        core.update(
            width=image["width"], height=image["height"], mode=mode,
            source=SOURCE_FORMATS.index(source) if isinstance(source, str) and source in SOURCE_FORMATS else 0,
            srgb=image.get("icc") == "srgb",
            constant=constant if _int(constant, 0, 65535) else None,
        )
    return core


def _expand(core: dict[str, Any]) -> dict[str, Any]:
    """The header the core fields state and imply (derived fields included), before the extras."""
    codec: dict[str, Any] = {
        "dims": core["dims"], "channels": core["channels"], "levels": core["levels"], "latent_dim": core["latent_dim"],
        "bits": core["codec_bits"], "decoder_channels": core["decoder_channels"], "decoder_blocks": core["decoder_blocks"],
        "boundary": core["boundary"],
    }
    if core["step_input"] is not None:
        codec["step_input"] = core["step_input"]
    mantissa, exponent = core["step"]
    latent: dict[str, Any] = {"bits": core["bits"], "step": float(f"{mantissa}e{exponent}"), "payload": core["payload"]}
    if core["split"]:
        latent["split"] = True
    header: dict[str, Any] = {
        "modality": core["modality"], "model": {"name": core["name"], "sha256": core["hash"].hex()}, "codec": codec, "latent": latent,
    }
    if core["modality"] == "image":
        mode, channels, alpha, depth = MODE_CODES[core["mode"]]
        width, height = core["width"], core["height"]
        image: dict[str, Any] = {"height": height, "width": width, "channels": channels, "mode": mode, "bit_depth": depth}
        if core["source"]:
            image["source_format"] = SOURCE_FORMATS[core["source"]]
        if core["srgb"]:
            image["icc"] = "srgb"
        block = 1 << core["levels"]
        latent["shape"] = [core["latent_dim"], -(-height // block), -(-width // block)]
        try:
            latent["chunks"] = chunk_count(tuple(latent["shape"]), core["bits"], core["payload"], core["split"])
        except PayloadError:  # a latent too wide for any payload: no count to derive
            pass
        header["image"] = image
        header["normalisation"] = {"offset": 0.5, "peak": (1 << depth) - 1}
        # an alpha plane of the image's depth, coded as the image writer codes it (WebP when the
        # payload is WebP or ctx and the plane fits it, else PNG); a constant alpha is an extra
        fits_webp = core["payload"] in ("webp", "ctx") and depth == 8 and max(width, height) <= PAYLOAD_MAX_SIDE
        if not alpha:
            header["alpha"] = None
        elif core["constant"] is not None:
            header["alpha"] = {"constant": core["constant"], "bit_depth": depth}
        else:
            header["alpha"] = {"bit_depth": depth, "codec": "webp" if fits_webp else "png"}
    return header


def _extras(header: dict[str, Any], implied: dict[str, Any]) -> dict[str, Any] | None:
    """What ``header`` holds beyond ``implied``, as extras that :func:`_merge` puts back; None
    when it lacks something ``implied`` has (the extras cannot delete)."""
    extras: dict[str, Any] = {}
    for key, value in header.items():
        if key not in implied:
            extras[key] = value
        elif isinstance(value, dict) and isinstance(implied[key], dict):
            inner = _extras(value, implied[key])
            if inner is None:
                return None
            if inner:
                extras[key] = inner
        elif not _same(value, implied[key]):
            extras[key] = value
    if any(key not in header for key in implied):
        return None
    return extras


def _merge(base: dict[str, Any], extras: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extras`` merged in: objects merge key by key, any other value replaces."""
    out = dict(base)
    for key, value in extras.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _pack(core: dict[str, Any], extras: dict[str, Any]) -> bytes:
    form = MODALITY_CODES.index(core["modality"]) | (_EXTRAS if extras else 0) | PAYLOAD_CODES.index(core["payload"]) << 3
    if core.get("srgb"):
        form |= _SRGB
    if core.get("constant") is not None:
        form |= _CONSTANT_ALPHA
    if core["split"]:
        form |= _SPLIT
    name = core["name"].encode("ascii")
    codec_byte = (core["dims"] - 1) | (core["levels"] - 1) << 2 | BOUNDARIES.index(core["boundary"]) << 5 | STEP_INPUT.index(core["step_input"]) << 6
    mantissa, exponent = core["step"]
    out = bytearray([form, len(name)]) + name + core["hash"]
    out += bytes([codec_byte]) + b"".join(encode_varint(core[key]) for key in _CODEC_VARINTS)
    out += bytes([core["bits"] | core["codec_bits"] << 4]) + encode_varint(mantissa) + encode_varint(_zigzag(exponent))
    if core["modality"] == "image":
        out += encode_varint(core["width"]) + encode_varint(core["height"]) + bytes([core["mode"] | core["source"] << 4])
        if core["constant"] is not None:
            out += encode_varint(core["constant"])
    if extras:
        out += canonical_json(extras)
    return bytes(out)


def encode(header: dict[str, Any]) -> bytes:
    """The 2.0 header bytes of ``header`` (any dict; :func:`decode` gives :func:`stored_form`)."""
    if not isinstance(header, dict):
        raise TypeError(f"header must be a dict, got {type(header).__name__}")
    kept = stored_form(header)
    core = _core(kept)
    if core is not None:
        extras = _extras(kept, _expand(core))
        if extras is not None:
            return _pack(core, extras)
    return bytes([_EXTRAS]) + canonical_json(kept) if kept else b"\x00"


def _unpack(raw: bytes) -> tuple[dict[str, Any] | None, bytes]:
    """The core fields of 2.0 header bytes (None for the generic form) and the extras' bytes."""
    form = raw[0]
    modality = MODALITY_CODES[form & 0x03]
    if (modality is None and form not in (0, _EXTRAS)) or (modality != "image" and form & (_SRGB | _CONSTANT_ALPHA)):
        raise FormatError(f"header is not valid: unknown header form byte 0x{form:02x}")
    if modality is None:
        return None, raw[1:]
    if len(raw) < 2 or len(raw) < 2 + raw[1] + 8:
        raise FormatError("header is not valid: model name and hash are cut short")
    name = raw[2 : 2 + raw[1]]
    at = 2 + raw[1]
    if not _NAME.fullmatch(name.decode("latin-1")):
        raise FormatError("header is not valid: model name is not 1..255 printable ASCII characters")
    core: dict[str, Any] = {
        "modality": modality, "payload": PAYLOAD_CODES[form >> 3 & 0x03], "split": bool(form & _SPLIT), "name": name.decode("ascii"), "hash": raw[at : at + 8],
    }
    at += 8
    if at >= len(raw):
        raise FormatError("header is not valid: codec table is cut short")
    codec_byte = raw[at]
    at += 1
    if (codec_byte & 0x03) == 3 or (codec_byte >> 6) == 3:
        raise FormatError(f"header is not valid: unknown codec byte 0x{codec_byte:02x}")
    core.update(dims=(codec_byte & 0x03) + 1, levels=(codec_byte >> 2 & 0x07) + 1, boundary=BOUNDARIES[codec_byte >> 5 & 1], step_input=STEP_INPUT[codec_byte >> 6])
    for key in _CODEC_VARINTS:
        low, high = _RANGES[key]
        core[key], at = decode_varint(raw, at, high, f"codec {key}")
        if core[key] < low:
            raise FormatError(f"header is not valid: codec {key} {core[key]} is below {low}")
    if at >= len(raw):
        raise FormatError("header is not valid: latent bits are cut short")
    bits_byte = raw[at]
    at += 1
    core["bits"], core["codec_bits"] = bits_byte & 0x0F, bits_byte >> 4
    if not (core["bits"] >= 1 and core["codec_bits"] >= 2):
        raise FormatError(f"header is not valid: bits byte 0x{bits_byte:02x}")
    mantissa, at = decode_varint(raw, at, _MAX_MANTISSA, "latent step mantissa")
    exponent, at = decode_varint(raw, at, 2 * _MAX_EXPONENT, "latent step exponent")
    core["step"] = (mantissa, _unzigzag(exponent))
    if mantissa == 0:
        raise FormatError("header is not valid: latent step is 0")
    if modality == "image":
        # the format's own bound on a side (header.MAX_SIDE): refused here, before anything is
        # derived from it, rather than after a derivation sized by a hostile value
        core["width"], at = decode_varint(raw, at, MAX_SIDE, "image width")
        core["height"], at = decode_varint(raw, at, MAX_SIDE, "image height")
        if not (core["width"] and core["height"]) or core["width"] * core["height"] > MAX_PIXELS:
            raise FormatError(f"header is not valid: image size {core['width']}x{core['height']}")
        if at >= len(raw):
            raise FormatError("header is not valid: image mode is cut short")
        mode_byte = raw[at]
        at += 1
        if (mode_byte & 0x0F) >= len(MODE_CODES):
            raise FormatError(f"header is not valid: image mode byte 0x{mode_byte:02x}")
        core.update(mode=mode_byte & 0x0F, source=mode_byte >> 4, srgb=bool(form & _SRGB), constant=None)
        if form & _CONSTANT_ALPHA:
            if not MODE_CODES[core["mode"]][2]:
                raise FormatError(f"header is not valid: a constant alpha for mode {MODE_CODES[core['mode']][0]}, which has none")
            core["constant"], at = decode_varint(raw, at, 65535, "constant alpha")
    if bool(form & _EXTRAS) != (at < len(raw)):
        raise FormatError("header is not valid: extras flag does not match the bytes after the core")
    return core, raw[at:]


def decode(raw: bytes) -> dict[str, Any]:
    """The header dict (1.x shape) of 2.0 header bytes; FormatError (one line) for bytes that are
    not a header or not its canonical encoding."""
    if not raw:
        raise FormatError("header is not valid: it is empty")
    core, extras_raw = _unpack(bytes(raw))
    extras = decode_json_object(extras_raw, "header extras") if extras_raw else {}
    header = _merge(_expand(core), extras) if core is not None else extras
    try:
        canonical = encode(header)
    except (ValueError, TypeError, RecursionError):  # e.g. an integer JSON cannot write back
        canonical = b""
    if canonical != raw:
        raise FormatError("header is not valid: not in canonical form (a writer writes each header one way)")
    return header
