"""ICC profiles built for the tests: matrix/TRC RGB profiles with chosen colorants, white point
and tone curves (v2 ``curv`` tables or v4 ``para`` curves), so that sRGB variants and look-alikes
can be tested without shipping third-party profile files.

Not a test module (no ``test_`` prefix): imported by ``test_srgb.py``, ``test_api.py`` and
``test_image_meta.py``.
"""

from __future__ import annotations

import struct

import numpy as np

#: sRGB's primaries adapted to D50 (Bradford), as sRGB profiles store them.
SRGB_COLORANTS = ((0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141))
#: Display P3's, adapted the same way.
P3_COLORANTS = ((0.5151, 0.2412, -0.0011), (0.2919, 0.6922, 0.0419), (0.1571, 0.0666, 0.7841))
#: Adobe RGB (1998)'s.
ADOBE_COLORANTS = ((0.6097, 0.3111, 0.0195), (0.2053, 0.6257, 0.0609), (0.1492, 0.0632, 0.7446))
D50 = (0.9642, 1.0, 0.8249)
D65 = (0.9505, 1.0, 1.0891)
#: sRGB's curve as ICC parametric function 3: (g, a, b, c, d).
SRGB_PARA = (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(values: tuple[float, float, float]) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15(v) for v in values)


def srgb_table(entries: int) -> np.ndarray:
    """sRGB's decoding curve sampled at ``entries`` points, as ``curv`` u16 values."""
    x = np.linspace(0.0, 1.0, entries)
    linear = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    return np.round(linear * 65535).astype(">u2")


def curve_table(values: np.ndarray) -> bytes:
    """A ``curv`` tag of u16 ``values``."""
    return b"curv\0\0\0\0" + struct.pack(">I", len(values)) + np.asarray(values, ">u2").tobytes()


def gamma_curve(gamma: float) -> bytes:
    """A one-entry ``curv`` tag: a pure power law."""
    return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"


def para_curve(params: tuple[float, ...] = SRGB_PARA) -> bytes:
    """A ``para`` tag of function type 0 (g), 3 (g a b c d) or 4 (g a b c d e f)."""
    kind = {1: 0, 3: 1, 4: 2, 5: 3, 7: 4}[len(params)]
    return b"para\0\0\0\0" + struct.pack(">HH", kind, 0) + b"".join(_s15(p) for p in params)


def _desc_v2(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\0"
    return b"desc\0\0\0\0" + struct.pack(">I", len(ascii_text)) + ascii_text + bytes(4 + 4 + 2 + 1 + 67)


def rgb_profile(
    colorants: tuple[tuple[float, float, float], ...] = SRGB_COLORANTS,
    white: tuple[float, float, float] = D65,
    curve: bytes | None = None,
    name: str = "test profile",
    extra: dict[bytes, bytes] | None = None,
    version: int = 2,
) -> bytes:
    """A monitor-class RGB matrix/TRC profile (ICC v2 layout, or v4 with ``version`` 4): ``desc``,
    ``cprt``, ``wtpt``, the three colorants, one tone ``curve`` shared by the three channels
    (default: a 1024-entry sRGB table), and ``extra`` tags."""
    curve = curve_table(srgb_table(1024)) if curve is None else curve
    tags: list[tuple[bytes, bytes]] = [
        (b"desc", _desc_v2(name)),
        (b"cprt", b"text\0\0\0\0No copyright, test data\0"),
        (b"wtpt", _xyz(white)),
        (b"rXYZ", _xyz(colorants[0])),
        (b"gXYZ", _xyz(colorants[1])),
        (b"bXYZ", _xyz(colorants[2])),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
        *(extra or {}).items(),
    ]
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    entries, blobs = b"", b""
    for signature, data in tags:
        data += bytes(-len(data) % 4)  # tags start on 4-byte boundaries
        entries += struct.pack(">4sII", signature, offset + len(blobs), len(data))
        blobs += data
    size = 128 + table_size + len(blobs)
    header = struct.pack(">I4sI4s4s4s", size, b"test", (version << 24) | (0x40 << 16 if version == 4 else 0x10 << 16), b"mntr", b"RGB ", b"XYZ ")
    header += struct.pack(">6H", 2026, 12, 5, 0, 0, 0) + b"acsp" + bytes(4 + 4 + 4 + 4 + 8 + 4)
    header += b"".join(_s15(v) for v in D50) + bytes(128 - len(header) - 12)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + entries + blobs


def p3_like_profile() -> bytes:
    """An RGB profile that is not sRGB (Display P3's colorants, sRGB's curve): a ``.wlc`` file
    keeps its bytes."""
    return rgb_profile(P3_COLORANTS, D65, name="Display P3 (test)")
