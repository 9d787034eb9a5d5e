"""WaLLoC inference on numpy: encoder, companding, quantisation and the CNN decoder.

:class:`LeanCodec` computes what :class:`walloc_cli.model.network.WallocCodec` computes at
inference, from the same safetensors weights, with numpy (BLAS) only:

* **Encoder** (in float64): the packet transform (:mod:`walloc_cli.model.lean_wpt`), the 1x1
  projection as one GEMM over the channels-last coefficients, companding with a float64 ``erf``
  (:func:`erf`). Why float64: a latent index is ``round(u / step)``, so a different order of
  float32 sums (BLAS here, oneDNN in torch) moves the few values that land within ~1e-5 of a
  half-integer. In float64 both paths agree to ~1e-13 (the torch runtime encodes in float64 too,
  :mod:`walloc_cli.model.runtime`), and the indices are the same; the filters are the torch
  path's float32-rounded ones. The cost is small: the encoder is a few hundred multiply-adds per
  sample.
* **Decoder** (in float32, like torch): 3-wide convolutions on a zero-padded, flattened,
  channels-last activation (:class:`_Grid`): every tap of a convolution is then one contiguous
  row range of the same matrix, so a convolution is ``3**d`` GEMMs on views, summed (no
  im2col copy, no per-pixel gathers), and the zero borders stay put between layers. The work
  is split over threads (:func:`walloc_cli.model.lean_wpt.in_parallel`).

Arrays follow the torch model's shapes at the boundary (``(N, C, *S)`` signals, ``(N, L, *S')``
latents) so the codecs can use either runtime. Imports: numpy, safetensors (numpy flavour),
:mod:`walloc_cli.model.config`; never torch.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from walloc_cli.model.config import CodecConfig, compand_lmax, compand_qmax, compand_scale, index_bits, index_max
from walloc_cli.model.lean_wpt import in_parallel, iwpt, wpt

# erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1)): for |x| <= 1/2 the terms fall below
# 1e-18 by n = 13, so a fixed polynomial in x^2 is exact to float64 rounding there. The companding
# argument is z / 144 for the shipped 8-bit models, so nearly every latent takes this path; the
# rest (|z| > 72) use math.erf one by one.
_ERF_SERIES = np.array([(-1) ** n * 2 / math.sqrt(math.pi) / (math.factorial(n) * (2 * n + 1)) for n in range(14)])
_ERF_SERIES_BOUND = 0.5

LEAKY_SLOPE = np.float32(0.1)


def erf(x: np.ndarray) -> np.ndarray:
    """The error function of float64 ``x`` (any shape), to float64 rounding (~2e-16 absolute)."""
    x = np.asarray(x, np.float64)
    x2 = x * x
    out = np.full_like(x, _ERF_SERIES[-1])
    for coefficient in _ERF_SERIES[-2::-1]:
        out *= x2
        out += coefficient
    out *= x
    far = np.abs(x) > _ERF_SERIES_BOUND
    if far.any():
        out[far] = np.frompyfunc(math.erf, 1, 1)(x[far]).astype(np.float64)
    return out


class _Grid:
    """A zero-bordered, flattened, channels-last activation for 3-wide convolutions.

    A signal of spatial shape ``S`` is stored as ``prod(S + 2)`` rows (one per position of the
    padded grid, C order) of ``C`` channels, plus ``margin`` rows before and after so that every
    tap offset of every row stays inside the buffer. Row ``r``'s neighbour at offset ``o`` (per
    axis -1, 0, 1) is row ``r + sum o_a * stride_a``: a convolution reads each tap as one
    contiguous row range.
    """

    def __init__(self, spatial: tuple[int, ...]) -> None:
        self.spatial = spatial
        self.padded = tuple(s + 2 for s in spatial)
        self.strides = tuple(math.prod(self.padded[a + 1 :]) for a in range(len(spatial)))
        self.rows = math.prod(self.padded)
        self.margin = sum(self.strides)  # the largest |tap offset|
        offsets = np.array(np.meshgrid(*([[-1, 0, 1]] * len(spatial)), indexing="ij")).reshape(len(spatial), -1).T
        self.taps = [int(o @ np.array(self.strides)) for o in offsets]  # kernel order (C order over the 3**d taps)
        mask = np.zeros(self.padded, bool)
        mask[tuple(slice(1, s + 1) for s in spatial)] = True
        self.border = ~mask.reshape(-1)

    def empty(self, channels: int) -> np.ndarray:
        """A ``(margin + rows + margin, channels)`` float32 buffer with zero margins."""
        buffer = np.empty((self.rows + 2 * self.margin, channels), np.float32)
        buffer[: self.margin] = 0
        buffer[-self.margin :] = 0
        return buffer

    def body(self, buffer: np.ndarray) -> np.ndarray:
        """The ``rows`` rows of a buffer (a view)."""
        return buffer[self.margin : self.margin + self.rows]

    def put(self, values: np.ndarray) -> np.ndarray:
        """A buffer holding channels-last ``values`` ``(*S, C)`` with zero borders."""
        buffer = self.empty(values.shape[-1])
        body = self.body(buffer)
        body[:] = 0
        body.reshape(*self.padded, -1)[tuple(slice(1, s + 1) for s in self.spatial)] = values
        return buffer

    def take(self, buffer: np.ndarray) -> np.ndarray:
        """The interior ``(*S, C)`` of a buffer (a copy, contiguous)."""
        body = self.body(buffer).reshape(*self.padded, -1)
        return np.ascontiguousarray(body[tuple(slice(1, s + 1) for s in self.spatial)])


# Rows of the padded grid convolved per step: one step's operands (rows x C floats per tap)
# and its output stay in the cache between the taps' products (bench/lean_speed.py).
CONV_ROWS = 512


def conv3(grid: _Grid, x: np.ndarray, weight: np.ndarray, bias: np.ndarray, out: np.ndarray | None = None, rows: int = CONV_ROWS) -> np.ndarray:
    """3-wide convolution (zero padding 1) of a :class:`_Grid` buffer ``x`` ``(.., Cin)``.

    ``weight`` is ``(3**d * Cin, Cout)`` float32, tap-major (:func:`_conv_matrix`). Writes the
    body of ``out`` (a new buffer if ``None``) and zeroes its border rows. Returns ``out``.

    Each tap is a contiguous row range of ``x`` (see :class:`_Grid`), so the convolution is
    ``3**d`` GEMMs of ``(rows, Cin) @ (Cin, Cout)`` summed, on ``CONV_ROWS`` rows at a time: no
    copy of the input (an im2col window matrix measured 10-25% slower).
    """
    if out is None:
        out = grid.empty(weight.shape[1])
    channels = x.shape[1]
    body = grid.body(out)
    taps = [weight[t * channels : (t + 1) * channels] for t in range(len(grid.taps))]

    def work(first: int, last: int) -> None:
        scratch = np.empty((min(rows, last - first), weight.shape[1]), np.float32)
        for top in range(first, last, rows):
            n = min(rows, last - top)
            start = grid.margin + top
            target = body[top : top + n]
            np.matmul(x[start + grid.taps[0] : start + grid.taps[0] + n], taps[0], out=target)
            for offset, tap in zip(grid.taps[1:], taps[1:]):
                np.matmul(x[start + offset : start + offset + n], tap, out=scratch[:n])
                target += scratch[:n]
            target += bias

    in_parallel(grid.rows, work, least=256)
    body[grid.border] = 0
    return out


def leaky_relu(x: np.ndarray) -> np.ndarray:
    """LeakyReLU(0.1) in place: ``max(x, 0.1 x)`` equals ``x if x > 0 else 0.1 x`` exactly."""
    np.maximum(x, x * LEAKY_SLOPE, out=x)
    return x


def _conv_matrix(weight: np.ndarray) -> np.ndarray:
    """Torch conv weight ``(Cout, Cin, 3, ..., 3)`` to the tap-major GEMM matrix ``(3**d * Cin, Cout)``."""
    cout, cin = weight.shape[:2]
    taps = weight.reshape(cout, cin, -1)  # (Cout, Cin, 3**d), taps in C order
    return np.ascontiguousarray(taps.transpose(2, 1, 0).reshape(-1, cout), np.float32)


class LeanCodec:
    """WaLLoC inference (:class:`walloc_cli.model.network.WallocCodec`'s ``companded``,
    ``quantize``, ``encode`` and ``decode``) from an inference state dict of numpy arrays."""

    def __init__(self, cfg: CodecConfig, state: dict[str, np.ndarray]) -> None:
        self.cfg = cfg
        self.lmax = compand_lmax(cfg.bits)
        self.qmax = compand_qmax(cfg.bits)
        self.compand_scale = compand_scale(cfg.bits)
        self.encoder_weight = np.ascontiguousarray(state["encoder.weight"].reshape(cfg.latent_dim, -1).T, np.float64)  # (wavelet, L)
        self.encoder_bias = np.asarray(state["encoder.bias"], np.float64)
        self.linear = (np.ascontiguousarray(state["decoder.linear.weight"].reshape(cfg.wavelet_channels, -1).T, np.float32), state["decoder.linear.bias"].astype(np.float32))
        self.head = (_conv_matrix(state["decoder.head.weight"]), state["decoder.head.bias"].astype(np.float32))
        self.blocks = [
            (_conv_matrix(state[f"decoder.blocks.{i}.conv1.weight"]), state[f"decoder.blocks.{i}.conv1.bias"].astype(np.float32),
             _conv_matrix(state[f"decoder.blocks.{i}.conv2.weight"]), state[f"decoder.blocks.{i}.conv2.bias"].astype(np.float32))
            for i in range(cfg.decoder_blocks)
        ]
        self.tail = (_conv_matrix(state["decoder.tail.weight"]), state["decoder.tail.bias"].astype(np.float32))

    @classmethod
    def from_file(cls, cfg: CodecConfig, weights: Path) -> "LeanCodec":
        """Load a safetensors file (numpy flavour: no torch). Raises ``KeyError``/``ValueError``
        when the weights do not fit ``cfg``."""
        from safetensors.numpy import load_file

        state = load_file(str(weights))
        expected = _expected_shapes(cfg)
        names = {k for k in state if not k.startswith("density.")}
        if names != set(expected) or any(tuple(state[k].shape) != shape for k, shape in expected.items()):
            raise ValueError(f"weights {weights.name} do not fit config {cfg}")
        return cls(cfg, state)

    # --- bottleneck -----------------------------------------------------------------------
    def index_max(self, step: float = 1.0) -> int:
        """Largest magnitude of a latent index at ``step``."""
        return index_max(self.cfg.bits, step)

    def index_bits(self, step: float = 1.0) -> int:
        """Bits of a signed latent index at ``step``."""
        return index_bits(self.cfg.bits, step)

    def quantize(self, u: np.ndarray, step: float = 1.0) -> np.ndarray:
        """Indices ``round(u / step)`` (half to even, as torch) clamped to ``±index_max(step)``; int32."""
        limit = self.index_max(step)
        return np.clip(np.round(u / step), -limit, limit).astype(np.int32)

    # --- encoder ----------------------------------------------------------------------------
    def companded(self, x: np.ndarray) -> np.ndarray:
        """Signals ``(N, C, *S)`` to companded latents ``u`` ``(N, L, *ceil(S / 2**J))`` float64."""
        return np.stack([self._companded_one(np.asarray(signal, np.float64)) for signal in x])

    def _companded_one(self, x: np.ndarray) -> np.ndarray:
        """One signal ``(C, *S)`` to ``u`` ``(L, *S')``."""
        padded = pad_to_multiple(x, self.cfg.levels)
        coeffs = wpt(padded, self.cfg.levels, self.cfg.boundary)  # (*S', wavelet)
        z = coeffs.reshape(-1, coeffs.shape[-1]) @ self.encoder_weight
        z += self.encoder_bias
        u = erf(z / (self.compand_scale * math.sqrt(2.0)))
        u *= self.lmax
        return np.ascontiguousarray(u.T).reshape(-1, *coeffs.shape[:-1])

    def encode(self, x: np.ndarray, step: float = 1.0) -> np.ndarray:
        """Signals ``(N, C, *S)`` to indices ``(N, L, *S')`` int32."""
        return self.quantize(self.companded(x), step)

    # --- decoder ----------------------------------------------------------------------------
    def decode(self, q: np.ndarray, shape: tuple[int, ...], step: float = 1.0, condition: float | None = None) -> np.ndarray:
        """Indices ``(N, L, *S')`` coded at ``step`` to signals ``(N, C, *shape)`` float32;
        ``condition`` is the step shown to a ``step_input`` decoder (default ``step``)."""
        shown = step if condition is None else condition
        return np.stack([self._decode_one(np.asarray(latents), shape, step, shown) for latents in q])

    def _decode_one(self, q: np.ndarray, shape: tuple[int, ...], step: float, condition: float) -> np.ndarray:
        """One latent ``(L, *S')`` to ``(C, *shape)``."""
        cfg = self.cfg
        spatial = tuple(q.shape[1:])
        # torch: (q.float() * step) / lmax in float32
        y = np.moveaxis(q.astype(np.float32) * np.float32(step), 0, -1) / np.float32(self.lmax)
        if cfg.step_input:
            plane = np.full((*spatial, 1), np.log2(np.float32(condition)), np.float32)
            y = np.concatenate([y, plane], axis=-1)
        grid = _Grid(spatial)
        inputs = grid.put(y)
        h = conv3(grid, inputs, *self.head)
        inner = grid.empty(h.shape[1])
        spare = grid.empty(h.shape[1])
        for w1, b1, w2, b2 in self.blocks:
            conv3(grid, leaky_relu(conv3(grid, h, w1, b1, inner)), w2, b2, spare)
            spare += h  # residual: h + conv2(act(conv1(h)))
            h, spare = spare, h
        leaky_relu(h)
        coeffs = grid.take(conv3(grid, h, *self.tail))  # (*S', wavelet)
        linear_w, linear_b = self.linear
        coeffs += (y.reshape(-1, y.shape[-1]) @ linear_w).reshape(coeffs.shape)
        coeffs += linear_b
        x = iwpt(coeffs, cfg.channels, cfg.levels, cfg.boundary)
        return x[(slice(None), *(slice(0, n) for n in shape))]


def _expected_shapes(cfg: CodecConfig) -> dict[str, tuple[int, ...]]:
    """Every inference tensor of a model of ``cfg`` and its shape (torch's conv layouts)."""
    k3 = (3,) * cfg.dims
    k1 = (1,) * cfg.dims
    width, inputs, wavelet = cfg.decoder_channels, cfg.decoder_inputs, cfg.wavelet_channels
    shapes: dict[str, tuple[int, ...]] = {
        "encoder.weight": (cfg.latent_dim, wavelet, *k1), "encoder.bias": (cfg.latent_dim,),
        "decoder.linear.weight": (wavelet, inputs, *k1), "decoder.linear.bias": (wavelet,),
        "decoder.head.weight": (width, inputs, *k3), "decoder.head.bias": (width,),
        "decoder.tail.weight": (wavelet, width, *k3), "decoder.tail.bias": (wavelet,),
    }
    for i in range(cfg.decoder_blocks):
        for conv in ("conv1", "conv2"):
            shapes[f"decoder.blocks.{i}.{conv}.weight"] = (width, width, *k3)
            shapes[f"decoder.blocks.{i}.{conv}.bias"] = (width,)
    return shapes


def pad_to_multiple(x: np.ndarray, levels: int) -> np.ndarray:
    """Pad the spatial axes of ``(C, *S)`` to multiples of ``2**levels`` as
    :func:`walloc_cli.model.wpt.pad_to_multiple` does: reflect, or edge (replicate) on an axis
    too short to reflect (then on every axis, as torch pads all axes in one mode)."""
    step = 2**levels
    shape = x.shape[1:]
    pads = [(-n) % step for n in shape]
    if not any(pads):
        return x
    mode = "reflect" if all(p < n for p, n in zip(pads, shape)) else "edge"
    return np.pad(x, [(0, 0)] + [(0, p) for p in pads], mode=mode)
