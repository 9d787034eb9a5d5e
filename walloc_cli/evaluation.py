"""Rate-distortion evaluation of images: walloc and the classic codecs on the same pixels.

Baselines are libraries, not re-implementations: WebP, JPEG and AVIF through Pillow (libwebp,
libjpeg-turbo, libavif), JPEG XL through imagecodecs (libjxl). BD-rate comes from the
``bjontegaard`` package (piecewise-cubic Hermite interpolation, ``pchip``, of log-rate over
PSNR, integrated over the PSNR range both curves cover), an optional dependency
(``pip install 'walloc[eval]'``).

Rates are bits per pixel of the whole coded file; PSNR is over the 8-bit R, G, B samples with peak
255 (gray: over the gray samples). Every codec sees the same uint8 array and no metadata.
"""

from __future__ import annotations

import dataclasses
import io
import math
import time
from typing import Callable

import numpy as np
from PIL import Image

from walloc_cli.errors import InputError
from walloc_cli.metrics import bits_per_pixel, psnr


@dataclasses.dataclass(frozen=True)
class Point:
    """One coded result: codec, quality setting, rate (bpp), PSNR (dB, peak 255) and timings (s)."""

    codec: str
    quality: float
    bpp: float
    psnr: float
    encode_s: float = 0.0
    decode_s: float = 0.0


Encoder = Callable[[np.ndarray, float], bytes]
Decoder = Callable[[bytes, bool], np.ndarray]  # (data, gray) -> (H, W) if gray else (H, W, 3)


def _pillow(format_name: str, **options: object) -> tuple[Encoder, Decoder]:
    def encode(rgb: np.ndarray, quality: float) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format=format_name, quality=int(round(quality)), **options)
        return buffer.getvalue()

    def decode(data: bytes, gray: bool = False) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("L" if gray else "RGB"))

    return encode, decode


def _jpegxl() -> tuple[Encoder, Decoder]:
    import imagecodecs

    def encode(rgb: np.ndarray, quality: float) -> bytes:
        return bytes(imagecodecs.jpegxl_encode(rgb, level=int(round(quality))))

    def decode(data: bytes, gray: bool = False) -> np.ndarray:
        decoded = np.asarray(imagecodecs.jpegxl_decode(data))
        return decoded if gray and decoded.ndim == 2 else decoded[..., 0] if gray else decoded[..., :3]

    return encode, decode


def baseline_codecs() -> dict[str, tuple[Encoder, Decoder]]:
    """The image baselines available here (a codec whose library lacks support is left out)."""
    from PIL import features

    codecs: dict[str, tuple[Encoder, Decoder]] = {}
    if features.check("webp"):
        codecs["webp"] = _pillow("WEBP", method=6)  # libwebp's best-compressing search
    codecs["jpeg"] = _pillow("JPEG", optimize=True)  # libjpeg-turbo, 4:2:0, optimised Huffman
    if features.check("avif"):
        codecs["avif"] = _pillow("AVIF")  # libavif, its default speed 6
    try:
        import imagecodecs

        if imagecodecs.JPEGXL.available:
            codecs["jxl"] = _jpegxl()
    except ImportError:
        pass
    return codecs


def baseline_points(codec: str, rgb: np.ndarray, qualities: list[float]) -> list[Point]:
    """Code ``rgb`` ``(H, W, 3)`` (or gray ``(H, W)``) uint8 with a baseline at each quality; one
    :class:`Point` each, PSNR over the same channels."""
    encode, decode = baseline_codecs()[codec]
    pixels = rgb.shape[0] * rgb.shape[1]
    points = []
    for quality in qualities:
        started = time.perf_counter()
        data = encode(rgb, quality)
        middle = time.perf_counter()
        decoded = decode(data, rgb.ndim == 2)
        ended = time.perf_counter()
        points.append(Point(codec, quality, bits_per_pixel(len(data), pixels), psnr(rgb, decoded, 255), middle - started, ended - middle))
    return points


def bd_rate(anchor: list[Point], test: list[Point]) -> float:
    """Bjontegaard-delta rate of ``test`` against ``anchor`` in percent (negative: fewer bits for
    the same PSNR), over the PSNR range the two curves share; NaN when they share too little."""
    try:
        import bjontegaard
    except ImportError:
        raise InputError("BD-rate needs the bjontegaard package: pip install 'walloc[eval]'") from None

    def curve(points: list[Point]) -> tuple[np.ndarray, np.ndarray]:
        # Strictly increasing PSNR, as the interpolation needs: keep the cheapest file per PSNR.
        ordered = sorted(points, key=lambda p: (p.psnr, p.bpp))
        rates, scores = [], []
        for point in ordered:
            if scores and point.psnr <= scores[-1] + 1e-9:
                continue
            if rates and point.bpp <= rates[-1]:
                continue  # dominated: a better PSNR was already cheaper
            rates.append(point.bpp)
            scores.append(point.psnr)
        return np.asarray(rates), np.asarray(scores)

    ra, da = curve(anchor)
    rt, dt = curve(test)
    low, high = max(da.min(), dt.min()), min(da.max(), dt.max())
    if len(ra) < 4 or len(rt) < 4 or high - low < 0.5:
        return math.nan
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the package warns when the overlap is partial; we report the range
        return float(bjontegaard.bd_rate(ra, da, rt, dt, method="pchip", require_matching_points=False))
