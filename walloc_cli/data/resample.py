"""Sample-rate conversion for the speech set: a polyphase FIR, Kaiser-windowed sinc, through
scipy's ``resample_poly`` when scipy is installed and the same computation in numpy otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["kaiser_lowpass", "resample", "resample_numpy"]


# Resampling filter: a Kaiser-windowed sinc, beta 9 (stopband below -90 dB), 128 zero crossings
# on each side at the lower rate (transition band about 2% of that rate), cut off at 97.5% of the
# lower rate's Nyquist frequency so that images and aliases lie in the stopband.
_RESAMPLE_BETA = 9.0
_RESAMPLE_ZEROS = 128
_RESAMPLE_CUTOFF = 0.975


def kaiser_lowpass(up: int, down: int) -> np.ndarray:
    """The resampling FIR (see ``_RESAMPLE_*``), unit gain at DC, at ``up`` times the input rate."""
    ratio = max(up, down)
    half = _RESAMPLE_ZEROS * ratio
    n = np.arange(-half, half + 1, dtype=np.float64)
    cutoff = _RESAMPLE_CUTOFF / ratio  # in units of the Nyquist frequency at the upsampled rate
    taps: np.ndarray = cutoff * np.sinc(cutoff * n) * np.kaiser(2 * half + 1, _RESAMPLE_BETA)
    taps /= taps.sum()
    return taps


def _resampler() -> tuple[str, Callable[[np.ndarray, int, int, np.ndarray], np.ndarray]]:
    """scipy's polyphase ``resample_poly`` when scipy is installed, else the same in numpy."""
    try:
        from scipy.signal import resample_poly
    except ImportError:
        return "numpy polyphase", resample_numpy

    def run(samples: np.ndarray, up: int, down: int, taps: np.ndarray) -> np.ndarray:
        out: np.ndarray = resample_poly(samples, up, down, axis=-1, window=taps)
        return out

    return "scipy.signal.resample_poly", run


def resample_numpy(samples: np.ndarray, up: int, down: int, taps: np.ndarray) -> np.ndarray:
    """What ``resample_poly`` computes: zero-stuff by ``up``, filter (gain ``up``), keep every ``down``-th."""
    half = (len(taps) - 1) // 2
    frames = samples.shape[-1]
    out_frames = -(-frames * up // down)
    rows = []
    for row in samples:
        stuffed = np.zeros(frames * up, dtype=np.float64)
        stuffed[::up] = row
        filtered = np.convolve(stuffed, taps * up)[half:]
        rows.append(filtered[::down][:out_frames])
    out: np.ndarray = np.stack(rows)
    return out


def resample(samples: np.ndarray, rate: int, target: int) -> tuple[np.ndarray, str]:
    """``(channels, n)`` floats from ``rate`` to ``target`` Hz; returns them and the method used.

    Polyphase FIR, Kaiser-windowed sinc (beta 9: stopband below -90 dB; cut-off at 97.5% of the
    lower Nyquist frequency; 128 zero crossings a side), the rates' ratio reduced first.
    """
    if rate == target:
        return samples, "none"
    divisor = np.gcd(rate, target)
    up, down = target // divisor, rate // divisor
    name, run = _resampler()
    taps = kaiser_lowpass(up, down)
    out = run(samples.astype(np.float64), up, down, taps).astype(np.float32)
    return out, f"{name}, Kaiser FIR {len(taps)} taps"
