"""A model's configuration and the integer/companding arithmetic of its bottleneck, without torch.

:class:`CodecConfig` is everything needed to rebuild a model; it is stored in model cards and in
every ``.wlc`` header. The functions below are the one implementation of the bottleneck's
arithmetic, shared by the network (:class:`walloc_cli.model.network.WallocCodec`, torch) and the
latent reader (:mod:`walloc_cli.api.latents`, which must work without torch):

* companding: ``u = lmax * erf(z / (s * sqrt 2))`` with ``lmax = 2**(bits-1) - 1/2`` and
  ``s = 2 lmax / sqrt(2 pi)`` (slope 1 at 0, so one integer step is one unit of ``z`` near 0);
  decoded values are clipped to ``+-qmax = +-(2**(bits-1) - 1)``;
* quantisation at step ``step``: indices ``round(u / step)`` in ``+-index_max(bits, step)``,
  stored in ``index_bits(bits, step)`` signed bits (the payload's width, ``latent.bits`` in a
  header);
* dequantisation to the encoder's output: ``z = s sqrt2 erfinv(clip(index * step, +-qmax) / lmax)``.

``bits`` is always the model's companding width (``CodecConfig.bits``), not the index width.
Imports: numpy, the format layer's bounds, nothing else (no torch).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Literal

import numpy as np

from walloc_cli.format.header import BOUNDARIES, CODEC_INT_RANGES, MAX_WAVELET_CHANNELS

# Bounds of every integer field of CodecConfig, its boundaries and its wavelet channel limit are
# the format's (a .wlc header carries the config): walloc_cli.format.header holds them.

Boundary = Literal["symmetric", "periodic"]  # signal extension of the wavelet transform (format.header.BOUNDARIES)


@dataclasses.dataclass(frozen=True)
class CodecConfig:
    """Everything needed to rebuild a model; stored in model cards and ``.wlc`` headers."""

    dims: int = 2  # spatial rank: 1 audio, 2 image, 3 volume
    channels: int = 3  # signal channels the model codes together (RGB = 3)
    levels: int = 3  # WPT levels J
    latent_dim: int = 12  # latent channels; DR = channels * 2**(dims*levels) / latent_dim
    bits: int = 8  # companded latents are integers in [-(2**(bits-1)-1), 2**(bits-1)-1]
    decoder_channels: int = 128
    decoder_blocks: int = 4
    boundary: Boundary = "symmetric"
    # The decoder also sees log2(step) as one extra constant input channel, so that a
    # variable-rate model can dequantise differently at each step (a value of 4 means
    # "between 2 and 6" at step 4 but "between 3.5 and 4.5" at step 1).
    step_input: bool = False

    def __post_init__(self) -> None:
        """Refuse configurations no model can have, before anything derived is computed.

        Configs come from model cards and ``.wlc`` headers, i.e. from files: a ``levels`` of
        2**40 would make ``wavelet_channels`` a number with 10**12 digits (a hang), and a few
        thousand overflows the ``reduction`` float. Raises ``ValueError`` naming the field.
        """
        for name, low, high in CODEC_INT_RANGES:
            value = getattr(self, name)
            if not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
                raise ValueError(f"codec {name}={value!r} is not an integer in {low}..{high}")
        if self.boundary not in BOUNDARIES:
            raise ValueError(f"codec boundary={self.boundary!r} is not one of {', '.join(BOUNDARIES)}")
        if not isinstance(self.step_input, bool):
            raise ValueError(f"codec step_input={self.step_input!r} is not true or false")
        if self.wavelet_channels > MAX_WAVELET_CHANNELS:  # safe to compute: dims <= 3, levels <= 8
            raise ValueError(f"codec channels * 2**(dims*levels) = {self.wavelet_channels} exceeds {MAX_WAVELET_CHANNELS}")

    @property
    def decoder_inputs(self) -> int:
        """Channels the decoder takes: the latents, plus the step plane when ``step_input``."""
        return self.latent_dim + int(self.step_input)

    @property
    def wavelet_channels(self) -> int:
        return self.channels * 2 ** (self.dims * self.levels)

    @property
    def reduction(self) -> float:
        """Dimensionality reduction: input values per latent value."""
        return self.wavelet_channels / self.latent_dim

    @property
    def block(self) -> int:
        """Spatial downsampling factor along each axis (``2**levels``)."""
        return 2**self.levels

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CodecConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown codec config fields: {sorted(unknown)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if not self.step_input:
            del data["step_input"]  # optional field: files of models without it keep their exact header bytes
        return data


# --- companding and quantisation ------------------------------------------------------------


def compand_lmax(bits: int) -> float:
    """The companding bound ``lmax = 2**(bits-1) - 1/2``: ``|u| < lmax`` for every ``z``."""
    return 2 ** (bits - 1) - 0.5


def compand_qmax(bits: int) -> int:
    """The largest companded magnitude the decoder is shown, ``2**(bits-1) - 1`` (training
    clips to it; so does :func:`dequantize`)."""
    return 2 ** (bits - 1) - 1


def compand_scale(bits: int) -> float:
    """The scale ``s = 2 lmax / sqrt(2 pi)`` that gives the companding slope 1 at 0."""
    return 2 * compand_lmax(bits) / math.sqrt(2 * math.pi)


def index_max(bits: int, step: float = 1.0) -> int:
    """Largest magnitude of a latent index at quantisation step ``step`` (``qmax`` at 1)."""
    return math.ceil(compand_qmax(bits) / step - 1e-9)


def index_bits(bits: int, step: float = 1.0) -> int:
    """Bits of a signed latent index at ``step``: ``bits`` at 1, one more per halving of it."""
    return index_max(bits, step).bit_length() + 1


# Pavlis' rational first guess for erfinv (central |y| <= 0.7, and tails), then two Newton steps
# on math.erf: the algorithm torch.erfinv uses, so dequantised values are the ones walloc gave
# when it called torch for this, without importing torch (scipy is not a dependency either).
_ERFINV_CENTRAL = 0.7
_ERFINV_A = (0.886226899, -1.645349621, 0.914624893, -0.140543331)
_ERFINV_B = (-2.118377725, 1.442710462, -0.329097515, 0.012229801)
_ERFINV_C = (-1.970840454, -1.624906493, 3.429567803, 1.641345311)
_ERFINV_D = (3.543889200, 1.637067800)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _erfinv(y: float) -> float:
    """Inverse error function of one float64 ``y`` in ``[-1, 1]`` (NaN outside, +-inf at +-1)."""
    if math.isnan(y) or abs(y) > 1.0:
        return math.nan
    if abs(y) == 1.0:
        return math.copysign(math.inf, y)
    a, b, c, d = _ERFINV_A, _ERFINV_B, _ERFINV_C, _ERFINV_D
    if abs(y) <= _ERFINV_CENTRAL:
        z = y * y
        num = ((a[3] * z + a[2]) * z + a[1]) * z + a[0]
        dem = (((b[3] * z + b[2]) * z + b[1]) * z + b[0]) * z + 1.0
        x = y * num / dem
    else:
        z = math.sqrt(-math.log((1.0 - abs(y)) / 2.0))
        num = ((c[3] * z + c[2]) * z + c[1]) * z + c[0]
        dem = (d[1] * z + d[0]) * z + 1.0
        x = math.copysign(num, y) / dem
    for _ in range(2):
        x = x - (math.erf(x) - y) / (_TWO_OVER_SQRT_PI * math.exp(-x * x))
    return x


def _dequantize_value(index: float, bits: int, step: float) -> float:
    """:func:`dequantize` of one index, in float64."""
    qmax = compand_qmax(bits)
    u = min(max(index * step, -qmax), qmax)
    return compand_scale(bits) * math.sqrt(2.0) * _erfinv(u / compand_lmax(bits))


@functools.lru_cache(maxsize=32)
def _index_table(bits: int, step: float) -> np.ndarray:
    """:func:`dequantize` of the indices ``-reach .. reach`` as float32 (read-only), with
    ``reach = index_max + 1``: ``reach * step > qmax``, so every larger index clips like it.
    Cached: a data loader dequantises file after file at the same few steps."""
    reach = index_max(bits, step) + 1
    table = np.array([_dequantize_value(float(k), bits, step) for k in range(-reach, reach + 1)], np.float64).astype(np.float32)
    table.flags.writeable = False
    return table


def dequantize(indices: np.ndarray, bits: int, step: float) -> np.ndarray:
    """Latent indices ``(any shape)`` coded at ``step`` by a model of companding width ``bits``
    to the encoder's output ``z``: ``s sqrt2 erfinv(clip(index * step, +-qmax) / lmax)``.

    Returns float32 of the same shape. Integer indices take only ``2 * index_max + 3`` distinct
    values that matter (every index beyond ``index_max + 1`` clips like it), so they go through
    a table of those values: one gather, whatever the array's size. Other numbers are computed
    per distinct value.
    """
    array = np.asarray(indices)
    if array.dtype.kind in "ib" or (array.dtype.kind == "u" and array.dtype.itemsize < 8):  # int64 holds them all
        table = _index_table(bits, float(step))
        reach = table.size // 2
        return table[np.clip(array.astype(np.int64, copy=False), -reach, reach) + reach]
    values, inverse = np.unique(array.astype(np.float64), return_inverse=True)
    table = np.array([_dequantize_value(float(v), bits, step) for v in values], np.float64).astype(np.float32)
    return table[inverse].reshape(array.shape)


__all__ = [
    "Boundary", "CodecConfig", "compand_lmax", "compand_qmax", "compand_scale", "dequantize", "index_bits", "index_max",
]
