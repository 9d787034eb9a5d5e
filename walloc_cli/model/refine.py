"""Encoder-side search: refine one signal's latent indices through the fixed decoder.

WaLLoC's encoder is one linear layer, trained for the average photo; the indices it writes for
*this* photo are not the ones that minimise this photo's rate-distortion cost (the amortisation
gap). Here a few gradient steps move the latents of one window of a signal against

    loss = bits / pixels + lam_scale * lam / step**2 * 255**2 * MSE

(the training loss of :mod:`walloc_cli.train.loop`, with the model's own ``lam``), through the
fixed decoder, starting from the linear encoder's output. Only what the encoder writes changes:
the indices are ordinary indices, so the file format and every decoder stay as they are.

* **Search** (the default, ``flip``): the latents stay integers; each step predicts from one
  backward pass the gain of moving each index by one and moves the most promising ones, kept
  only when the measured loss falls (:func:`_flip`). It beat gradient descent on continuous
  latents with a rounding surrogate on the validation photos (see :class:`RefineSettings`).
* **Rounding surrogates** (Yang et al. 2020, "Improving inference for neural image compression"):
  ``ste`` feeds the decoder the rounded indices and passes the gradient straight through, so
  every forward pass measures the loss of the indices that would be written, and the best of
  them is kept (the result is never worse, by this loss, than the plain encode); ``noise`` feeds
  it ``v + U(-1/2, 1/2)`` as in training and measures the rounded indices in a second pass.
* **Rate proxy**: the shipped models were trained with the ``gaussian`` proxy (one sigma per
  channel of a batch), which gives every latent of a channel the same cost whatever its value:
  no use for moving single latents. Here each index costs its bits under a per-channel
  Laplace density fitted to the plain encode's indices (:func:`laplace_fit`), integrated over
  its bin: the order-0 cost, which is about what the lossless WebP stage pays for these latents
  (DESIGN.md, "The entropy stage": WebP codes them at about their order-0 entropy).

Shapes: a window of ``L`` latent channels and ``S'`` latents per axis decodes to ``C`` channels
of ``S`` samples; tensors carry a batch axis of one. Needs torch (the ``train`` extra).
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Callable, Literal

import numpy as np

if TYPE_CHECKING:  # torch is imported by the functions that run the search: the settings are torch-free
    import torch

    from walloc_cli.model.network import WallocCodec

Surrogate = Literal["flip", "ste", "noise"]
SURROGATES: tuple[Surrogate, ...] = ("flip", "ste", "noise")


@dataclasses.dataclass(frozen=True)
class RefineSettings:
    """How one search runs: ``iterations`` steps of ``surrogate`` against the loss with
    ``lam_scale`` times the model's training ``lam``. ``flip`` moves the ``fraction`` of indices
    with the best predicted gain per step (:func:`_flip`); ``ste`` and ``noise`` take Adam steps
    of ``lr`` (index units) on continuous latents.

    Defaults from 4 validation photos (bench/results/refine.md, 256x256 crops, 25 steps): BD-rate
    against the plain encode ``flip`` -3.9% (no curvature term: -2.6%), ``ste`` at lr 0.005 -2.6%
    (larger lr diverged within 10 steps; 0.01: the loss rose after step 6), ``flip`` at
    ``fraction`` 0.03 -1.9%; ``lam_scale`` 2 -4.05%, within the spread, so the training ``lam``
    is kept."""

    iterations: int
    surrogate: Surrogate = "flip"
    fraction: float = 0.01
    lr: float = 0.005
    lam_scale: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {self.iterations}")
        if self.surrogate not in SURROGATES:
            raise ValueError(f"surrogate must be one of {', '.join(SURROGATES)}, got {self.surrogate!r}")


@dataclasses.dataclass(frozen=True)
class Window:
    """One search problem: the signal ``x`` ``(C, *S)`` float32 (normalised as the model takes
    it) of a box of latents ``q`` ``(L, *S')`` int (the current indices, context included), the
    slices of ``q`` that may move (``free``), their continuous start ``start`` (``u / step``,
    the shape of ``q[free]``; the ``ste`` and ``noise`` surrogates need it, ``flip`` starts
    from the indices) and the slices of ``x`` whose error counts (``scored``: every
    sample the free latents reach)."""

    x: np.ndarray
    q: np.ndarray
    free: tuple[slice, ...]
    start: np.ndarray | None
    scored: tuple[slice, ...]


def laplace_fit(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel location (median) and scale (mean absolute deviation, at least 0.05) of
    indices ``q`` ``(L, *S')``: each ``(L,)`` float64, in index units."""
    flat = q.reshape(q.shape[0], -1).astype(np.float64)
    loc = np.median(flat, axis=1)
    scale = np.maximum(np.abs(flat - loc[:, None]).mean(axis=1), 0.05)
    return loc, scale


def laplace_bits(v: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Bits of indices ``v`` ``(1, L, *S')`` under a Laplace density of per-channel ``loc`` and
    ``scale`` ``(L,)`` integrated over each unit bin; the sum, a scalar.

    With ``t = |v - loc|``: ``P = 1 - exp(-1/(2b)) cosh(t/b)`` for ``t < 1/2``, else
    ``P = exp(-(t - 1/2)/b) (1 - exp(-1/b)) / 2`` (so ``-log2 P`` is linear in ``t``: stable)."""
    import torch

    shape = (1, -1) + (1,) * (v.dim() - 2)
    b = scale.view(shape).to(v.dtype)
    t = (v - loc.view(shape).to(v.dtype)).abs()
    tail = (t - 0.5).clamp_min(0) / b / math.log(2.0) - torch.log2(0.5 * (1 - torch.exp(-1.0 / b)))
    inner = -torch.log2((1 - torch.exp(-0.5 / b) * torch.cosh(t.clamp_max(0.5) / b)).clamp_min(1e-12))
    return torch.where(t < 0.5, inner, tail)


def refine_window(network: WallocCodec, window: Window, step: float, lam: float, loc: np.ndarray, scale: np.ndarray, settings: RefineSettings) -> tuple[np.ndarray, float, float]:
    """The refined indices of ``window.free`` (int32, the shape of ``window.q[window.free]``),
    with the loss (bits per scored pixel + weighted MSE) of the plain indices and of the ones
    returned.

    The plain indices are ``window.q[window.free]``; the returned ones have a loss no higher.
    The decoder's weights are frozen meanwhile: the backward pass then computes the latents'
    gradient only (measured: 0.67 s of a 1.0 s step with the weights' gradients, on 384x384
    pixels through rgb-4x-v, one core).
    """
    frozen = [p for p in network.parameters() if p.requires_grad]
    for parameter in frozen:
        parameter.requires_grad_(False)
    try:
        return _refine_window(network, window, step, lam, loc, scale, settings)
    finally:
        for parameter in frozen:
            parameter.requires_grad_(True)


def _refine_window(network: WallocCodec, window: Window, step: float, lam: float, loc: np.ndarray, scale: np.ndarray, settings: RefineSettings) -> tuple[np.ndarray, float, float]:
    import torch

    torch.manual_seed(settings.seed)
    limit = network.index_max(step)
    x = torch.from_numpy(np.ascontiguousarray(window.x, np.float32))[None]
    scored = (slice(None), slice(None), *window.scored)
    target = x[scored]
    pixels = math.prod(target.shape[2:])
    weight = settings.lam_scale * lam / step**2 * 255.0**2
    loc_t, scale_t = torch.from_numpy(loc), torch.from_numpy(scale)
    context = torch.from_numpy(window.q.astype(np.float32))[None]
    free = (slice(None), slice(None), *window.free)
    shape = tuple(window.x.shape[1:])

    def distortion(indices: torch.Tensor) -> torch.Tensor:  # the weighted MSE of the scored samples
        latents = context.clone()
        latents[free] = indices
        x_hat = network.synthesis(latents * step, shape, step).clamp(-0.5, 0.5)
        return weight * (x_hat[scored] - target).pow(2).mean()

    def rate(indices: torch.Tensor) -> torch.Tensor:  # bits per scored pixel, per latent
        return laplace_bits(indices, loc_t, scale_t) / pixels

    def loss_of(indices: torch.Tensor) -> torch.Tensor:
        return rate(indices).sum() + distortion(indices)

    plain = window.q[(slice(None), *window.free)]
    if settings.surrogate == "flip":
        # the change of the error of one index moved by one, per channel (1, L, 1, ...): the squared
        # impulse response of the decoder, weighted as the distortion is (mean over the scored samples)
        curvature = weight * impulse_energy(network, step).view((1, -1) + (1,) * len(shape)) / target.numel()
        return _flip(torch.from_numpy(plain.astype(np.float32))[None], distortion, rate, curvature, limit, settings)
    if window.start is None:
        raise ValueError(f"the {settings.surrogate} surrogate starts from the continuous latents: give Window.start")
    v = torch.from_numpy(np.asarray(window.start, np.float32))[None].clamp(-limit, limit).requires_grad_(True)
    optimizer = torch.optim.Adam([v], lr=settings.lr)

    def rounded() -> torch.Tensor:
        hard = v.detach().round().clamp(-limit, limit)
        return v + (hard - v).detach()  # straight-through: forward the integers, backward identity

    with torch.no_grad():
        best_loss = first = float(loss_of(torch.from_numpy(plain.astype(np.float32))[None]))
    best = plain.astype(np.int32)
    for _ in range(settings.iterations):
        optimizer.zero_grad(set_to_none=True)
        if settings.surrogate == "ste":
            soft = rounded()
            loss = loss_of(soft)
            current = float(loss.detach())
            hard = soft.detach()
        else:
            loss = loss_of((v + torch.rand_like(v) - 0.5).clamp(-limit, limit))
            with torch.no_grad():
                hard = v.detach().round().clamp(-limit, limit)
                current = float(loss_of(hard))
        if current < best_loss:
            best_loss, best = current, hard[0].numpy().astype(np.int32)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            v.clamp_(-limit, limit)
    with torch.no_grad():  # the last update has not been measured yet
        hard = v.detach().round().clamp(-limit, limit)
        current = float(loss_of(hard))
    if current < best_loss:
        best_loss, best = current, hard[0].numpy().astype(np.int32)
    return best, first, best_loss


def impulse_energy(network: WallocCodec, step: float) -> torch.Tensor:
    """Per latent channel ``(L,)``: the sum of squares of the change of the decoded signal when
    one index (amid zeros) moves by one, at ``step``: the curvature of the squared error along
    that index, which a gradient alone does not see (at fine steps one index moves the error
    as much as its gradient predicts). Cached per network and step."""
    import torch

    key = (id(network), float(step))
    if key not in _IMPULSES:
        channels, dims = network.cfg.latent_dim, network.cfg.dims
        side = 2 * (2 * network.cfg.decoder_blocks + 4) + 1  # the decoder's and transform's reach each way
        latents = torch.zeros((channels + 1, channels) + (side,) * dims)
        centre = (side // 2,) * dims
        for c in range(channels):
            latents[(c + 1, c, *centre)] = step
        with torch.no_grad():
            out = network.synthesis(latents, (side * network.cfg.block,) * dims, step)
        _IMPULSES[key] = (out[1:] - out[:1]).pow(2).flatten(1).sum(1)
    return _IMPULSES[key]


_IMPULSES: dict[tuple[int, float], torch.Tensor] = {}


def _flip(start: torch.Tensor, distortion: Callable[[torch.Tensor], torch.Tensor], rate: Callable[[torch.Tensor], torch.Tensor], curvature: torch.Tensor, limit: int, settings: RefineSettings) -> tuple[np.ndarray, float, float]:
    """Gradient-guided moves of whole indices ``(1, L, *S')``: each step predicts, for every
    index, the change of the loss of moving it by +1 or -1 (the distortion's gradient and
    ``curvature``, the second-order term per channel, plus the exact change of its bits), moves the ``fraction`` of indices with the largest predicted
    gain, and keeps the move only when the measured loss falls. ``fraction`` grows by 1.5 after
    a kept move and halves after a refused one (the moves interact: neighbours decode to the
    same samples, so the linear prediction is optimistic). One forward pass per step, and one
    backward pass per kept move."""
    import torch

    current = start.clone().requires_grad_(True)
    loss = distortion(current)
    loss.backward()
    grad = current.grad
    current = current.detach()
    bits = rate(current)
    best = first = float(loss.detach()) + float(bits.sum())
    fraction = settings.fraction
    for _ in range(settings.iterations):
        assert grad is not None
        up, down = (current + 1).clamp(-limit, limit), (current - 1).clamp(-limit, limit)
        gain_up = grad * (up - current) + curvature * (up - current) + rate(up) - bits
        gain_down = grad * (down - current) + curvature * (current - down) + rate(down) - bits
        gain = torch.minimum(gain_up, gain_down)
        count = int(fraction * gain.numel())
        if count < 1:
            break
        threshold = torch.kthvalue(gain.flatten(), count).values
        move = (gain <= threshold) & (gain < 0)
        trial = torch.where(move, torch.where(gain_up < gain_down, up, down), current).requires_grad_(True)
        trial_loss = distortion(trial)
        trial_bits = rate(trial.detach())
        total = float(trial_loss.detach()) + float(trial_bits.sum())
        if total < best:
            trial_loss.backward()
            grad, current, bits, best = trial.grad, trial.detach(), trial_bits, total
            fraction = min(0.25, fraction * 1.25)
        else:
            fraction /= 2
    return current[0].numpy().astype(np.int32), first, best


__all__ = ["RefineSettings", "SURROGATES", "Surrogate", "Window", "laplace_bits", "laplace_fit", "refine_window"]
