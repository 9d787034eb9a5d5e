"""ICC profiles: which ones are sRGB, and the one standard sRGB profile walloc writes back.

Photos carry many sRGB profiles: v2 and v4, curve tables and parametric curves, D50 and D65
white points, named "sRGB IEC61966-2.1", "sRGB built-in", "GIMP built-in sRGB", "c2" or after a
file; 0.5 to 20 KiB each, a few KiB that are 13% of a q 75 640x400 photo and 67% of a q 10 one.
A colour-managed reader shows the same colours with any of them, so a ``.wlc`` file stores an
sRGB profile as the header flag ``image.icc = "srgb"`` (format 1.3) and the decoder writes
:data:`SRGB_PROFILE` back. :func:`is_srgb` decides by content, never by name; every other
profile is kept byte for byte in an ``ICCP`` chunk, as before.

Pure Python and numpy: no LittleCMS is needed to decide, nor to decode.
"""

from __future__ import annotations

import base64
import math
import struct

import numpy as np

__all__ = ["SRGB_PROFILE", "is_srgb"]

#: The sRGB profile a ``.wlc`` file flagged ``image.icc = "srgb"`` decodes with: LittleCMS's
#: built-in sRGB (ICC v4.3, 588 bytes, "sRGB built-in", "No copyright, use freely"; what Pillow's
#: ``ImageCms.createProfile("sRGB")`` writes), frozen here with a fixed creation date so that
#: every decode writes the same bytes whatever LittleCMS is installed, or none.
SRGB_PROFILE: bytes = base64.b64decode(
    "AAACTGxjbXMEQAAAbW50clJHQiBYWVogB+oADAAFAAAAAAAAYWNzcEFQUEwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "APbWAAEAAAAA0y1sY21zAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAALZGVzYwAA"
    "AQgAAAA2Y3BydAAAAUAAAABMd3RwdAAAAYwAAAAUY2hhZAAAAaAAAAAsclhZWgAAAcwAAAAUYlhZWgAAAeAAAAAUZ1hZ"
    "WgAAAfQAAAAUclRSQwAAAggAAAAgZ1RSQwAAAggAAAAgYlRSQwAAAggAAAAgY2hybQAAAigAAAAkbWx1YwAAAAAAAAAB"
    "AAAADGVuVVMAAAAaAAAAHABzAFIARwBCACAAYgB1AGkAbAB0AC0AaQBuAABtbHVjAAAAAAAAAAEAAAAMZW5VUwAAADAA"
    "AAAcAE4AbwAgAGMAbwBwAHkAcgBpAGcAaAB0ACwAIAB1AHMAZQAgAGYAcgBlAGUAbAB5WFlaIAAAAAAAAPbWAAEAAAAA"
    "0y1zZjMyAAAAAAABDEIAAAXe///zJQAAB5MAAP2Q///7of///aIAAAPcAADAblhZWiAAAAAAAABvoAAAOPUAAAOQWFla"
    "IAAAAAAAACSfAAAPhAAAtsNYWVogAAAAAAAAYpcAALeHAAAY2XBhcmEAAAAAAAMAAAACZmYAAPKnAAANWQAAE9AAAApb"
    "Y2hybQAAAAAAAwAAAACj1wAAVHsAAEzNAACZmgAAJmYAAA9c"
)

# sRGB's primaries adapted to the ICC's D50 connection space (Bradford), as every sRGB profile
# stores them in rXYZ, gXYZ, bXYZ (IEC 61966-2-1 Amendment 1; LittleCMS, HP, Elle Stone's).
_SRGB_COLORANTS = {
    "rXYZ": (0.4361, 0.2225, 0.0139),
    "gXYZ": (0.3851, 0.7169, 0.0971),
    "bXYZ": (0.1431, 0.0606, 0.7141),
}
# The media white point: D50 in v4 profiles (the PCS illuminant, with a chad tag), D65 in v2 ones.
_SRGB_WHITES = ((0.9642, 1.0, 0.8249), (0.9505, 1.0, 1.0890))
# How far a profile's numbers may stray and still be sRGB. Colorants: 0.002 (the variants seen
# differ by <= 0.0003, s15Fixed16 rounding and D50 adaptation by Bradford or by the chad tag's own
# rounding; the nearest other gamut, Display P3, is 0.08 away on red). White: 0.002. Tone curve:
# at most 1/4 of an 8-bit level at any of 1024 points, in sRGB-encoded units (curve tables of
# 1024 or 4096 u16 entries and the exact parametric curve are within 0.05 level; gamma 2.2, the
# usual look-alike, is 2.4 levels off near black, Rec. 709's curve 9 levels).
_COLORANT_TOLERANCE = 0.002
_TRC_TOLERANCE = 0.25 / 255
# LUT-based transforms: a CMM prefers them to the matrix and curves, so those cannot vouch for it.
_LUT_TAGS = frozenset({"A2B0", "A2B1", "A2B2", "B2A0", "B2A1", "B2A2", "D2B0", "D2B1", "D2B2", "D2B3", "B2D0", "B2D1", "B2D2", "B2D3"})
_SRGB_TRC = ("rTRC", "gTRC", "bTRC")


def _srgb_encode(y: np.ndarray) -> np.ndarray:
    """sRGB's transfer function (IEC 61966-2-1), linear ``[0, 1]`` -> encoded."""
    y = np.clip(y, 0.0, 1.0)
    return np.where(y <= 0.0031308, y * 12.92, 1.055 * y ** (1 / 2.4) - 0.055)


def _icc_tags(icc: bytes) -> dict[str, bytes]:
    """The tag table of an ICC profile: signature -> the tag's bytes (bounds checked)."""
    (count,) = struct.unpack_from(">I", icc, 128)
    if count > 1000 or 132 + 12 * count > len(icc):
        raise ValueError("tag table")
    tags = {}
    for index in range(count):
        signature, offset, size = struct.unpack_from(">4sII", icc, 132 + 12 * index)
        if offset + size > len(icc) or size < 8:
            raise ValueError("tag past the end")
        tags[signature.decode("latin-1")] = icc[offset : offset + size]
    return tags


def _xyz(tag: bytes) -> tuple[float, float, float]:
    """An ``XYZType`` tag's first XYZ number (three s15Fixed16)."""
    if tag[:4] != b"XYZ " or len(tag) < 20:
        raise ValueError("not an XYZ tag")
    x, y, z = struct.unpack_from(">iii", tag, 8)
    return x / 65536, y / 65536, z / 65536


def _tone_curve(tag: bytes, x: np.ndarray) -> np.ndarray:
    """A ``curv`` or ``para`` tag evaluated at encoded values ``x`` ``(n,)`` in ``[0, 1]`` -> linear."""
    if tag[:4] == b"curv":
        (count,) = struct.unpack_from(">I", tag, 8)
        if count == 0:
            return x.copy()
        if 12 + 2 * count > len(tag):
            raise ValueError("curve past its tag")
        if count == 1:
            return x ** (struct.unpack_from(">H", tag, 12)[0] / 256)
        table = np.frombuffer(tag, ">u2", count, 12).astype(np.float64) / 65535
        return np.interp(x * (count - 1), np.arange(count), table)
    if tag[:4] == b"para":
        (kind,) = struct.unpack_from(">H", tag, 8)
        needed = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}.get(kind)
        if needed is None or 12 + 4 * needed > len(tag):
            raise ValueError("parametric curve")
        g, a, b, c, d, e, f = [v / 65536 for v in struct.unpack_from(f">{needed}i", tag, 12)] + [0.0] * (7 - needed)
        if kind == 0:
            return x**g
        power = np.maximum(a * x + b, 0.0) ** g
        if kind in (1, 2):
            threshold = -b / a if a else math.inf
            return np.where(x >= threshold, power + (c if kind == 2 else 0.0), c if kind == 2 else 0.0)
        return np.where(x >= d, power + (e if kind == 4 else 0.0), c * x + (f if kind == 4 else 0.0))
    raise ValueError("not a tone curve")


def is_srgb(icc: bytes | None) -> bool:
    """Whether ``icc`` is an sRGB profile: any variant (v2 or v4, curve table or parametric curve,
    D50 or D65 white, whatever it calls itself) that a colour-managed reader turns into sRGB's
    colours, so that :data:`SRGB_PROFILE` may stand in for it.

    Decided by content, not by name: an RGB matrix/TRC profile (no LUT transforms, which a CMM
    would use instead) whose three colorants and white point are sRGB's (within
    ``_COLORANT_TOLERANCE``) and whose three tone curves are sRGB's (within a quarter of an 8-bit
    level). Names are not trusted: "Linear Rec709 RGB" and "Rec709-elle-V4" have sRGB's colorants
    but other curves, a profile named "sRGB" may be a camera's own variant, and real sRGB profiles
    are called "c2", "GIMP built-in sRGB" or a file name. A damaged or unreadable profile is not
    sRGB (it is then kept as bytes, as every profile was before format 1.3).
    """
    if not icc or len(icc) < 132 or icc[36:40] != b"acsp" or icc[16:24] != b"RGB XYZ ":
        return False
    try:
        tags = _icc_tags(icc)
        if _LUT_TAGS & tags.keys():
            return False
        for name, expected in _SRGB_COLORANTS.items():
            if max(abs(v - e) for v, e in zip(_xyz(tags[name]), expected)) > _COLORANT_TOLERANCE:
                return False
        white = _xyz(tags["wtpt"])
        if min(max(abs(v - e) for v, e in zip(white, known)) for known in _SRGB_WHITES) > _COLORANT_TOLERANCE:
            return False
        x = np.linspace(0.0, 1.0, 1024)
        for name in _SRGB_TRC:
            with np.errstate(all="ignore"):  # a hostile curve (a negative power of 0) is simply not sRGB's
                linear = _tone_curve(tags[name], x)
            if not np.all(np.isfinite(linear)) or np.abs(_srgb_encode(linear) - x).max() > _TRC_TOLERANCE:
                return False
    except (KeyError, ValueError, struct.error, OverflowError, ZeroDivisionError):
        return False
    return True
