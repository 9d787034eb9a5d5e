"""Rate-distortion evaluation helpers: image baselines, SSIM and BD-rate.

Baselines are libraries, not re-implementations: WebP, JPEG and AVIF through Pillow (libwebp,
libjpeg-turbo, libavif), JPEG XL through imagecodecs (libjxl). BD-rate comes from the
``bjontegaard`` package (optional: ``pip install 'walloc[eval]'``). The default interpolation is
piecewise-cubic Hermite (``pchip``, as in the JCT-VC/JVET common-test-condition spreadsheets) of
log10-rate over PSNR, integrated over the PSNR range both curves cover; ``cubic`` is VCEG-M33's
original least-squares cubic polynomial (``numpy.polyfit`` of degree 3).

SSIM is Wang et al. (2004) with an 11x11 Gaussian window of sigma 1.5, K1 = 0.01, K2 = 0.03,
computed by ``pytorch-msssim`` over the valid region and averaged over channels (equal to
scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False)`` to about 1e-5, tested).

Rates are bits per pixel of the whole coded file; PSNR is over the 8-bit R, G, B samples with peak
255 (gray: over the gray samples). Every codec sees the same uint8 array and no metadata.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

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


def baseline_codecs() -> dict[str, tuple[Encoder, Decoder]]:
    """The classic image codecs available here as (encode, decode) pairs over uint8 arrays: WebP,
    JPEG, AVIF and JPEG XL of :mod:`walloc_cli.eval.codecs` (one definition of each baseline);
    a codec whose library lacks support is left out."""
    from walloc_cli.eval.codecs import CODECS, Codec, Sample

    def pair(codec: Codec) -> tuple[Encoder, Decoder]:
        def sample(pixels: np.ndarray) -> Sample:
            return Sample(Path("array"), "image", pixels, 255.0, float(pixels.shape[0] * pixels.shape[1]))

        def encode(rgb: np.ndarray, quality: float) -> bytes:
            return codec.encode(sample(rgb), quality)

        def decode(data: bytes, gray: bool = False) -> np.ndarray:
            # only the layout of the reference matters to the decoders: an empty one says it
            return codec.decode(data, sample(np.empty((0, 0) if gray else (0, 0, 3), np.uint8)))

        return encode, decode

    return {name: pair(CODECS[("image", name)]()) for name in ("webp", "jpeg", "avif", "jxl") if CODECS[("image", name)].missing() is None}


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


BD_METHODS = ("pchip", "cubic", "akima")  # the bjontegaard package's interpolations; pchip is ours by default
MIN_BD_POINTS = 4  # VCEG-M33 fits a cubic: four points at least on each curve
MIN_BD_OVERLAP_DB = 0.5  # less shared PSNR range than this says nothing about the curves


def monotone_curve(rates: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The RD points interpolation can use: the Pareto front, rate and PSNR both strictly rising.

    Walking from the cheapest point up, a point is kept only if it beats the PSNR of every
    cheaper one (a point that costs more for no more PSNR is dominated). Infinite PSNR
    (lossless) and empty files are left out. ``(n,)`` in, ``(m,)`` out, m <= n.
    """
    kept_rates: list[float] = []
    kept_scores: list[float] = []
    for rate, score in sorted(zip(rates.tolist(), scores.tolist()), key=lambda p: (p[0], -p[1])):
        if not (math.isfinite(score) and math.isfinite(rate) and rate > 0):
            continue  # lossless points and empty files have no place on a log-rate curve
        if kept_scores and score <= kept_scores[-1] + 1e-9:
            continue
        if kept_rates and rate <= kept_rates[-1]:
            continue  # same rate as a kept point with more PSNR (the sort put that one first)
        kept_rates.append(rate)
        kept_scores.append(score)
    return np.asarray(kept_rates), np.asarray(kept_scores)


def bd_rate_values(rate_anchor: np.ndarray, psnr_anchor: np.ndarray, rate_test: np.ndarray, psnr_test: np.ndarray, method: str = "pchip") -> float:
    """BD-rate in percent of the test curve against the anchor (negative: the test needs fewer
    bits for the same PSNR). Points are cleaned by :func:`monotone_curve`; NaN when either curve
    keeps fewer than 4 points or they share less than 0.5 dB of PSNR."""
    try:
        import bjontegaard
    except ImportError:
        raise InputError("BD-rate needs the bjontegaard package: pip install 'walloc[eval]'") from None
    if method not in BD_METHODS:
        raise InputError(f"unknown BD-rate interpolation {method!r} (choose {', '.join(BD_METHODS)})")
    ra, da = monotone_curve(np.asarray(rate_anchor, float), np.asarray(psnr_anchor, float))
    rt, dt = monotone_curve(np.asarray(rate_test, float), np.asarray(psnr_test, float))
    if len(ra) < MIN_BD_POINTS or len(rt) < MIN_BD_POINTS:
        return math.nan
    low, high = max(da.min(), dt.min()), min(da.max(), dt.max())
    if high - low < MIN_BD_OVERLAP_DB:
        return math.nan
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the package warns when the overlap is partial; we report the range
        return float(bjontegaard.bd_rate(ra, da, rt, dt, method=method, require_matching_points=False))


def bd_rate(anchor: list[Point], test: list[Point], method: str = "pchip") -> float:
    """Bjontegaard-delta rate of ``test`` against ``anchor`` in percent (negative: fewer bits for
    the same PSNR), over the PSNR range the two curves share; NaN when they share too little."""
    return bd_rate_values(
        np.array([p.bpp for p in anchor]), np.array([p.psnr for p in anchor]),
        np.array([p.bpp for p in test]), np.array([p.psnr for p in test]), method,
    )


def ssim_missing() -> str | None:
    """Why :func:`ssim` cannot run here (a one-line note naming the package to install), or None.
    ``walloc eval`` checks this once per run and leaves the SSIM column out instead of failing
    every point: pytorch-msssim is an optional extra, the default install lacks it."""
    try:
        import pytorch_msssim  # noqa: F401
    except ImportError:
        return "SSIM not measured: the pytorch-msssim package is not installed (pip install 'walloc[eval]')"
    return None


def bd_rate_missing() -> str | None:
    """Why :func:`bd_rate_values` cannot run here (a one-line note), or None: bjontegaard is an
    optional extra, so ``walloc eval`` skips its BD-rate tables with this note."""
    try:
        import bjontegaard  # noqa: F401
    except ImportError:
        return "BD-rate not computed: the bjontegaard package is not installed (pip install 'walloc[eval]')"
    return None


SSIM_WINDOW = 11  # pixels: the Gaussian window's side (sigma 1.5), as in Wang et al. 2004


def ssim(reference: np.ndarray, test: np.ndarray, peak: float = 255.0) -> float:
    """Mean SSIM of two images ``(H, W)`` or ``(H, W, C)`` (any numeric dtype), averaged over
    channels; NaN when a side is shorter than the 11-pixel window. Needs ``pytorch-msssim``."""
    try:
        from pytorch_msssim import ssim as _ssim
    except ImportError:
        raise InputError("SSIM needs the pytorch-msssim package: pip install 'walloc[eval]'") from None
    import torch

    if reference.shape != test.shape:
        raise ValueError(f"shape mismatch: {reference.shape} vs {test.shape}")
    if min(reference.shape[:2]) < SSIM_WINDOW:
        return math.nan

    def tensor(array: np.ndarray) -> torch.Tensor:
        planes = array[..., None] if array.ndim == 2 else array
        # float64: the statistics of 8-bit planes lose digits in float32 on large images
        return torch.from_numpy(np.ascontiguousarray(np.moveaxis(planes, -1, 0), dtype=np.float64))[None]

    return float(_ssim(tensor(reference), tensor(test), data_range=float(peak), win_size=SSIM_WINDOW, win_sigma=1.5))
