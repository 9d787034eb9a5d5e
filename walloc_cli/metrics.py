"""Distortion and rate figures, defined once so the CLI, the API and the benchmarks agree.

PSNR = 10 log10(peak^2 / MSE) over all compared samples. For integer data the peak is
``2**bit_depth - 1`` (255 for 8-bit photos); samples are compared after rounding to the integers
the user gets back.
"""

from __future__ import annotations

import math

import numpy as np


def mse(reference: np.ndarray, test: np.ndarray) -> float:
    """Mean squared error between two arrays of the same shape (computed in float64)."""
    if reference.shape != test.shape:
        raise ValueError(f"shape mismatch: {reference.shape} vs {test.shape}")
    diff = reference.astype(np.float64) - test.astype(np.float64)
    return float(np.mean(diff * diff)) if diff.size else 0.0


def psnr(reference: np.ndarray, test: np.ndarray, peak: float) -> float:
    """PSNR in dB; ``inf`` for identical inputs."""
    error = mse(reference, test)
    return math.inf if error == 0 else 10.0 * math.log10(peak * peak / error)


def bits_per_pixel(n_bytes: int, n_pixels: int) -> float:
    """Rate in bits per pixel (all channels of a pixel together)."""
    return 8.0 * n_bytes / max(1, n_pixels)
