"""The wavelet packet transform of :mod:`walloc_cli.model.wpt`, on numpy alone.

Same definition (CDF 9/7 lifting, whole-sample symmetric extension, packet bands with the first
level most significant), same fast path, laid out for BLAS instead of torch's convolutions:

* One J-level 1-D packet transform along an axis is a *block convolution*: with ``B = 2**J``,
  output block ``k`` (``B`` bands) is a fixed linear map of input blocks ``k-P .. k+P`` (``B``
  samples each). The signal's rows are contiguous, so the ``2P+1`` input blocks of output block
  ``k`` are one contiguous window of ``(2P+1) * B`` samples; :func:`block_convolve` copies
  ``G`` output blocks' windows at a time (overlapping by ``2P`` blocks) into a matrix and makes
  one GEMM of it. Synthesis is the same operation with another matrix (bands in, samples out).
* The ``E`` blocks at each end, where the filters would reach past the signal, are overwritten
  with exact symmetric-extension values from small matrices, as the torch path does.
* Short signals and periodic boundaries go through lifting itself (:func:`packet_lifting`).

Layout: 1-D signals keep the transformed axis last (:func:`transform_last`, a window copy per
block group); 2-D and 3-D arrays bring it to the front (:func:`transform_front`, one GEMM per
group of blocks over whole rows of the rest of the array). Coefficients end channels-last
(positions, channels): the order the encoder's projection and the decoder's convolutions take.

The filters and boundary matrices are derived from lifting in float64 on impulses and then
rounded to float32, exactly as :mod:`walloc_cli.model.wpt` rounds them, so that a float64 run of
the torch reference and this module compute the same numbers (bit-exact latents, see
:mod:`walloc_cli.model.lean`). Imports: numpy, :mod:`walloc_cli.model.lifting` and :mod:`walloc_cli.model.config`.
"""

from __future__ import annotations

import contextvars
import functools
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence, TypeVar

import numpy as np

from walloc_cli.model import lifting
from walloc_cli.model.config import Boundary

# Output blocks per GEMM row of :func:`block_convolve` (1-D signals): a window of G + 2P blocks
# costs (G + 2P) / (2P + 1) times the multiply-adds of G = 1 per block but gives BLAS a wide,
# well-shaped product (G = 4 measured fastest on a 640x400 RGB photo, 1 and 2 threads).
GROUP = 4
# Rows of the signal transformed per GEMM: keeps the window matrix (rows * (G + 2P) * B floats)
# in the cache instead of materialising it for a whole tile.
_ROWS_PER_CHUNK = 1 << 15


class _Workers:
    """The threads the lean runtime splits its products over (numpy releases the GIL in them).

    Why not BLAS's own threads: the products here are many and small (a tile's rows), where
    OpenBLAS's threading costs more than it gives (measured: 1 BLAS thread per worker is faster
    than 2 BLAS threads on one call). So, where threadpoolctl can pin numpy's BLAS to one
    thread, the work is split over ``threads`` Python threads; without it BLAS threads as it
    likes and the work runs in one piece.
    """

    def __init__(self) -> None:
        self.threads = 0  # 0: not decided yet
        self.pool: ThreadPoolExecutor | None = None

    def count(self) -> int:
        """Worker threads to split over (decided once: :func:`set_threads`, or the CPUs this
        process may use)."""
        if not self.threads:
            # Under a lock: callers in several threads at once (Zarr and Dask decode chunks in
            # threads) would each create a pool and shut down the one another just got.
            with _DECIDING:
                if not self.threads:
                    set_threads(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
        return self.threads


_WORKERS = _Workers()
_DECIDING = threading.Lock()
_THREAD_PREFIX = "walloc-lean"
T = TypeVar("T")
U = TypeVar("U")


def set_threads(threads: int) -> None:
    """Split the lean runtime's work over ``threads`` threads, numpy's BLAS pinned to one
    thread each (process-wide, through threadpoolctl); without threadpoolctl, one thread and
    BLAS's own threading."""
    threads = max(1, int(threads))
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        threads = 1
    else:
        ThreadpoolController().limit(limits=1, user_api="blas")
    if _WORKERS.pool is not None:
        _WORKERS.pool.shutdown()
    _WORKERS.pool = ThreadPoolExecutor(threads, thread_name_prefix=_THREAD_PREFIX) if threads > 1 else None
    _WORKERS.threads = threads


def worker_count() -> int:
    """Worker threads the lean runtime uses (1 where it runs in the caller's thread)."""
    return _WORKERS.count()


def _in_worker() -> bool:
    """Whether the calling thread is one of the workers (which then work alone: a worker
    waiting on its own pool could wait forever)."""
    return threading.current_thread().name.startswith(_THREAD_PREFIX)


def parallel_map(function: Callable[[T], U], items: Sequence[T]) -> list[U]:
    """``[function(item) for item in items]``, the items spread over the worker threads (each
    call then runs its own products in one thread): coarse parallelism, for independent tiles."""
    if len(items) < 2 or _WORKERS.count() < 2 or _WORKERS.pool is None or _in_worker():
        return [function(item) for item in items]
    # Each call runs in a copy of the caller's context: settings held in context variables (the
    # .wlc version a writer writes, format.container.wlc_version) follow the work into the threads.
    contexts = [contextvars.copy_context() for _ in items]
    return list(_WORKERS.pool.map(lambda pair: pair[0].run(function, pair[1]), zip(contexts, items)))


def in_parallel(total: int, work: Callable[[int, int], None], least: int = 1) -> None:
    """Run ``work(lo, hi)`` on contiguous ranges covering ``0 .. total``, one per worker thread
    (fewer where a range would hold under ``least`` items); returns when all are done."""
    parts = max(1, min(_WORKERS.count(), total // max(1, least)))
    if parts == 1 or _WORKERS.pool is None or _in_worker():
        work(0, total)
        return
    bounds = [total * i // parts for i in range(parts + 1)]
    for future in [_WORKERS.pool.submit(contextvars.copy_context().run, work, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]:
        future.result()


def packet_lifting(x: np.ndarray, levels: int, boundary: Boundary = "symmetric") -> np.ndarray:
    """J-level 1-D packet transform along the last axis by lifting: ``(..., n)`` to
    ``(..., 2**levels, n / 2**levels)`` (:func:`walloc_cli.model.lifting.packet_lifting`)."""
    return lifting.packet_lifting(x, levels, boundary, np)


def packet_lifting_inverse(bands: np.ndarray, levels: int, boundary: Boundary = "symmetric") -> np.ndarray:
    """Inverse of :func:`packet_lifting`: ``(..., 2**levels, m)`` to ``(..., m * 2**levels)``."""
    return lifting.packet_lifting_inverse(bands, levels, boundary, np)


def boundary_blocks(levels: int) -> int:
    """Blocks at each end recomputed exactly (:func:`walloc_cli.model.wpt._boundary_blocks`)."""
    step = 2**levels
    return -(-4 * (step - 1) // step) + 1


@functools.lru_cache(maxsize=None)
def _polyphase(levels: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Block-convolution weights ``(analysis [j, phase, band], synthesis [j, band, phase], P)``,
    float32-rounded float64, ``j`` the block offset ``0 .. 2P`` (input block ``k - P + j``)."""
    step = 2**levels
    pad = 4 * (step - 1)
    blocks = 2 * (pad // step) + 8
    n = blocks * step
    centre = (blocks // 2) * step
    fwd = packet_lifting(np.eye(n), levels, "periodic")  # (n, B, n/B): response to impulse at i
    ana = fwd[:, :, centre // step].T[:, centre - pad : centre + step + pad]  # (B, K)
    coeffs = np.zeros((step, step, n // step))
    for b in range(step):
        coeffs[b, b, centre // step] = 1.0
    syn = packet_lifting_inverse(coeffs, levels, "periodic")[:, centre - pad : centre + step + pad]  # (B, K)
    reach = -(-pad // step)
    taps = 2 * reach + 1
    shift = reach * step - pad
    ana_aligned = np.zeros((step, taps * step))
    ana_aligned[:, shift : shift + ana.shape[-1]] = ana.astype(np.float32)
    syn_aligned = np.zeros((step, taps * step))
    syn_aligned[:, shift : shift + syn.shape[-1]] = syn.astype(np.float32)
    # analysis: band b of block k = sum_j sum_p a[b, j*B + p] x[(k - P + j)*B + p]
    analysis = ana_aligned.reshape(step, taps, step).transpose(1, 2, 0)  # [j, phase, band]
    # synthesis: sample p of block k = sum_j sum_b g_b[B*(2P - j) + p] c[b, k - P + j]
    synthesis = syn_aligned.reshape(step, taps, step)[:, ::-1, :].transpose(1, 0, 2)  # [j, band, phase]
    return np.ascontiguousarray(analysis), np.ascontiguousarray(synthesis), reach


@functools.lru_cache(maxsize=None)
def _boundary_maps(levels: int) -> dict[str, np.ndarray]:
    """The exact head/tail maps (float32-rounded float64), laid out for ``(..., blocks, B)`` rows:
    ``analysis_*``: ``(2E*B samples, E*B coefficients)``; ``synthesis_*``: ``(2E*B
    coefficients, E*B samples)``; coefficient index ``block * B + band``."""
    step, edge = 2**levels, boundary_blocks(levels)
    span = 2 * edge * step
    responses = packet_lifting(np.eye(span), levels)  # (span, B, 2E)
    units = np.eye(span).reshape(span, step, 2 * edge)  # unit coefficient i at (band, block)
    signals = packet_lifting_inverse(units, levels)  # (span, span samples), rows in (band, block) order
    # rows reordered to (block, band): the channels-last order of this module
    signals = signals.reshape(step, 2 * edge, span).transpose(1, 0, 2).reshape(span, span)
    f32 = np.float32
    return {
        "analysis_head": np.ascontiguousarray(responses[..., :edge].transpose(0, 2, 1).reshape(span, -1)).astype(f32).astype(np.float64),
        "analysis_tail": np.ascontiguousarray(responses[..., -edge:].transpose(0, 2, 1).reshape(span, -1)).astype(f32).astype(np.float64),
        "synthesis_head": np.ascontiguousarray(signals[:, : edge * step]).astype(f32).astype(np.float64),
        "synthesis_tail": np.ascontiguousarray(signals[:, -edge * step :]).astype(f32).astype(np.float64),
    }


@functools.lru_cache(maxsize=None)
def _group_matrix(levels: int, synthesis: bool, group: int, dtype: str) -> np.ndarray:
    """The block convolution of ``group`` output blocks as one ``((group + 2P) * B, group * B)``
    matrix: rows the window's samples (or coefficients), columns the group's outputs."""
    ana, syn, reach = _polyphase(levels)
    weights = syn if synthesis else ana  # [j, in, out]
    taps, step = weights.shape[0], weights.shape[1]
    matrix = np.zeros(((group + taps - 1) * step, group * step))
    for g in range(group):
        for j in range(taps):
            matrix[(g + j) * step : (g + j + 1) * step, g * step : (g + 1) * step] = weights[j]
    matrix.flags.writeable = False
    return matrix.astype(dtype)


def block_convolve(x: np.ndarray, levels: int, synthesis: bool, group: int = GROUP) -> np.ndarray:
    """Interior of the fast 1-D transform: ``(R, m, B)`` blocks to ``(R, m, B)`` blocks (bands
    for analysis, samples for synthesis), each output block from input blocks ``k-P .. k+P``
    (zeros past the ends: :func:`transform_last` overwrites the end blocks)."""
    rows, blocks, step = x.shape
    _, _, reach = _polyphase(levels)
    matrix = _group_matrix(levels, synthesis, group, x.dtype.str)
    groups = -(-blocks // group)
    width = (groups * group + 2 * reach) * step
    out = np.empty((rows, groups * group * step), x.dtype)
    window = (group + 2 * reach) * step
    chunk = max(1, _ROWS_PER_CHUNK // max(1, groups))

    def work(first: int, last: int) -> None:
        padded = np.zeros((min(chunk, last - first), width), x.dtype)
        for top in range(first, last, chunk):
            part = x[top : min(last, top + chunk)]
            n = part.shape[0]
            padded[:n, reach * step : reach * step + blocks * step] = part.reshape(n, -1)
            view = np.lib.stride_tricks.as_strided(padded, (n, groups, window), (padded.strides[0], group * step * padded.itemsize, padded.itemsize))
            np.matmul(np.ascontiguousarray(view).reshape(n * groups, window), matrix, out=out[top : top + n].reshape(n * groups, group * step))

    in_parallel(rows, work, least=max(1, 256 // groups))
    return out.reshape(rows, groups * group, step)[:, :blocks]


def transform_last(x: np.ndarray, levels: int, synthesis: bool, boundary: Boundary = "symmetric") -> np.ndarray:
    """J-level packet analysis (``synthesis=False``) or synthesis along the last axes.

    Analysis: ``(..., n)`` samples to ``(..., n/B, B)`` (blocks, bands). Synthesis: ``(..., m,
    B)`` to ``(..., m*B)``. Equals lifting with ``boundary`` (tested against the torch module).
    """
    step = 2**levels
    lead = x.shape[: -1 if not synthesis else -2]
    blocks = x.shape[-1] // step if not synthesis else x.shape[-2]
    if levels == 0:
        return x[..., None] if not synthesis else x[..., 0]
    edge = boundary_blocks(levels)
    if boundary != "symmetric" or blocks <= 4 * edge:
        if synthesis:
            return packet_lifting_inverse(np.swapaxes(x, -1, -2), levels, boundary)
        return np.swapaxes(packet_lifting(x, levels, boundary), -1, -2)
    rows = math.prod(lead)
    flat = np.ascontiguousarray(x).reshape(rows, blocks, step)
    out = block_convolve(flat, levels, synthesis)
    maps = _boundary_maps(levels)
    kind = "synthesis" if synthesis else "analysis"
    span = 2 * edge
    head = flat[:, :span].reshape(rows, -1) @ maps[f"{kind}_head"].astype(x.dtype)
    tail = flat[:, -span:].reshape(rows, -1) @ maps[f"{kind}_tail"].astype(x.dtype)
    out[:, :edge] = head.reshape(rows, edge, step)
    out[:, -edge:] = tail.reshape(rows, edge, step)
    return out.reshape(*lead, blocks * step) if synthesis else out.reshape(*lead, blocks, step)


# Output blocks per GEMM of :func:`transform_front`, for analysis and for synthesis: the product
# is (G B) x ((G + 2P) B) by (G + 2P) B x (rest of the array), wide enough for BLAS whatever G;
# larger G costs more multiply-adds per sample ((G + 2P) B against (2P + 1) B), smaller G more,
# smaller calls. Measured on this project's 2-core AMD machine, rgb-4x-v, warm, best of 3: the
# float64 analysis of a 3.4 MP photo took 0.437 s at G = 1 against 0.548 s at G = 8 (13.7 MP:
# 1.86 s against 2.26 s; 640x400 equal), with the same indices; the float32 synthesis of that
# photo's decode was slower at G = 1 (1.60 s against 1.46 s).
FRONT_GROUP = {False: 1, True: 8}


@functools.lru_cache(maxsize=None)
def _front_matrix(levels: int, synthesis: bool, group: int, dtype: str) -> np.ndarray:
    """:func:`_group_matrix` transposed, contiguous: outputs by window rows."""
    matrix = np.ascontiguousarray(_group_matrix(levels, synthesis, group, "f8").T).astype(dtype)
    matrix.flags.writeable = False
    return matrix


def transform_front(x: np.ndarray, levels: int, synthesis: bool, dtype: type = np.float64, boundary: Boundary = "symmetric") -> np.ndarray:
    """J-level packet analysis or synthesis along axis 0 of any-rank ``x`` (any layout), in ``dtype``.

    Analysis: ``(n, *R)`` samples to ``(n/B, B, *R)`` (blocks, bands). Synthesis: ``(m, B, *R)``
    to ``(m*B, *R)``. The rest ``R`` of each row is one GEMM column, so each group of ``G``
    output blocks is one product of the transposed :func:`_group_matrix` with a contiguous
    window of rows: no window copies, and the first copy (into the zero-padded buffer) also
    converts to ``dtype``.
    """
    step = 2**levels
    rest = x.shape[2:] if synthesis else x.shape[1:]
    blocks = x.shape[0] if synthesis else x.shape[0] // step
    if levels == 0:
        return x.astype(dtype)[:, None] if not synthesis else x.astype(dtype)[:, 0]
    edge = boundary_blocks(levels)
    if boundary != "symmetric" or blocks <= 4 * edge:
        moved = np.moveaxis(x.astype(dtype), (0, 1) if synthesis else (0,), (-2, -1) if synthesis else (-1,))
        out = transform_last(moved, levels, synthesis, boundary)
        return np.moveaxis(out, (-1,) if synthesis else (-2, -1), (0,) if synthesis else (0, 1))
    _, _, reach = _polyphase(levels)
    group = FRONT_GROUP[synthesis]
    groups = -(-blocks // group)
    width = math.prod(rest)
    padded = np.zeros(((groups * group + 2 * reach) * step, width), dtype)
    padded.reshape(-1, *rest)[reach * step : reach * step + blocks * step] = x.reshape(blocks * step, *rest)
    matrix = _front_matrix(levels, synthesis, group, np.dtype(dtype).str)
    out = np.empty((groups * group * step, width), dtype)
    span = (group + 2 * reach) * step

    def work(first: int, last: int) -> None:
        for g in range(first, last):
            top = g * group * step
            np.matmul(matrix, padded[top : top + span], out=out[top : top + group * step])

    in_parallel(groups, work)
    maps = _boundary_maps(levels)
    kind = "synthesis" if synthesis else "analysis"
    data = padded[reach * step : (reach + blocks) * step]
    ends = 2 * edge * step
    out[: edge * step] = maps[f"{kind}_head"].T.astype(dtype) @ data[:ends]
    out[(blocks - edge) * step : blocks * step] = maps[f"{kind}_tail"].T.astype(dtype) @ data[-ends:]
    out = out[: blocks * step]
    return out.reshape(blocks * step, *rest) if synthesis else out.reshape(blocks, step, *rest)


def wpt(x: np.ndarray, levels: int, boundary: Boundary = "symmetric") -> np.ndarray:
    """Forward nD packet transform of ``(C, *S)`` to channels-last ``(*S', C * B**d)`` float64.

    Channel order ``((c*B + b0)*B + b1)...`` as :func:`walloc_cli.model.wpt.wpt`; ``S' = S / B``.
    1-D signals go through :func:`transform_last` (a row is the whole signal); 2-D and 3-D ones
    through :func:`transform_front`, axis by axis, each axis brought to the front by the copy
    into the padded buffer.
    """
    dims = x.ndim - 1
    if dims == 1:
        return np.moveaxis(transform_last(x.astype(np.float64), levels, False, boundary), 0, -2).reshape(x.shape[1] >> levels, -1)
    labels: list[str] = ["c"] + [f"n{a}" for a in range(dims)]
    for a in range(dims):
        order = [labels.index(f"n{a}")] + [i for i, name in enumerate(labels) if name != f"n{a}"]
        x = transform_front(x.transpose(order), levels, False, np.float64, boundary)
        labels = [f"m{a}", f"b{a}"] + [labels[i] for i in order[1:]]
    final = [labels.index(f"m{a}") for a in range(dims)] + [labels.index("c")] + [labels.index(f"b{a}") for a in range(dims)]
    x = np.ascontiguousarray(x.transpose(final))
    return x.reshape(*x.shape[:dims], -1)


def iwpt(coeffs: np.ndarray, channels: int, levels: int, boundary: Boundary = "symmetric") -> np.ndarray:
    """Inverse of :func:`wpt`: channels-last ``(*S', C * B**d)`` to ``(C, *S)`` in the dtype of ``coeffs``."""
    dims = coeffs.ndim - 1
    step = 2**levels
    x = coeffs.reshape(*coeffs.shape[:dims], channels, *([step] * dims))
    if dims == 1:
        return transform_last(np.moveaxis(x, 0, -2), levels, True, boundary)
    labels: list[str] = [f"m{a}" for a in range(dims)] + ["c"] + [f"b{a}" for a in range(dims)]
    for a in reversed(range(dims)):
        pair = [labels.index(f"m{a}"), labels.index(f"b{a}")]
        order = pair + [i for i in range(len(labels)) if i not in pair]
        x = transform_front(x.transpose(order), levels, True, coeffs.dtype.type, boundary)
        labels = [f"n{a}"] + [labels[i] for i in order[2:]]
    return x.transpose([labels.index("c")] + [labels.index(f"n{a}") for a in range(dims)])
