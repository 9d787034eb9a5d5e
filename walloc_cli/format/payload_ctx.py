"""The ``ctx`` payload (format 2.2, the default of format 2): latents coded one channel group at
a time against a context model (:mod:`walloc_cli.format.ctx_model`) by a range coder.

WebP, PNG and JPEG XL see the latents as pictures: their predictors and entropy codes are built
for pixels, and WebP codes each latent value at about its order-0 entropy (issue 16's table).
What makes latents cheap is elsewhere: a high-pass value is large where its decoded neighbours,
and the channels decoded before it at the same place, are large; a low-pass value is close to
its neighbours' mean. The model is written here; `constriction
<https://github.com/bamler-lab/constriction>`_ (a 0.4 MB Rust wheel) supplies the range coder.

Layout (normative, ``formats/wlc.md`` "Format 2.2"), one chunk for latents ``q`` ``(L, *S)``:

* ``L`` channel records: a mode byte, 0 (all zeros, nothing more), 1 (values coded as they are:
  then three coefficient bytes ``a, b, c``), 2 (values minus their neighbours' rounded mean,
  the coarse grid minus its planar prediction: then ``a, b, c`` and the coarse grid's scale
  ``d``) or 3 (as 2, minus a share ``alpha`` of channel 0's residual at the same place: then
  ``a, b, c, d, alpha``);
* the range coder's 32-bit words, little-endian, to the end of the chunk.

For each channel group (:func:`walloc_cli.format.ctx_model.groups`), batch by batch
(:func:`walloc_cli.format.ctx_model.schedule`): every value's class is computed from what is
decoded, the batch's symbols are coded class by class, then its escapes. The encoder makes two
passes over a group: one that chooses each channel's mode and fits ``a, b, c`` (least squares of
``|residual|`` on ``own``, ``cross`` and 1), one that codes; both hold one slice of contexts at
a time (:data:`walloc_cli.format.ctx_model.SLICE`), so memory stays a few bytes a value.

Measured on 8 validation photos of the corpus, shipped ladder, same latents: -15.2% / -14.3% /
-9.5% / -9.1% bytes against format 2.1's split WebP payload at q 10 / 50 / 75 / 95
(``bench/payload_ctx.py``, ``bench/results/payload_ctx.md``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from walloc_cli.errors import WallocError
from walloc_cli.format.ctx_model import (
    CLASSES, ESCAPE, RANGE, Activity, class_models, classes, coarse_class, coefficient_code, constriction, difference, features,
    groups, integrate, magnitudes, schedule, slices, symbols, weights,
)

_WORD = np.dtype("<u4")
# The end check: one 16-bit symbol after the last group. A range decoder cannot tell that its
# words were cut or altered (it reads zeros past the end), so a decoder that does not find this
# value there, or finds words left after it, refuses the payload instead of returning wrong
# latents (a chance of 2**-16 to miss one); it costs 2 bytes.
_END_CHECK = 0x5A5A
# The encoder keeps pass 1's contexts for pass 2 when a group has at most this many values per
# mode tried (12 bytes each: 48 MB; every photo up to ~11 MP), else computes them again: the
# cache makes the encoder 1.3x faster.
_CACHE_VALUES = 1 << 22


class CtxError(WallocError, ValueError):
    """The ``ctx`` payload is truncated, corrupt or does not match the declared latents."""


def _encode_escapes(encoder: Any, residual: np.ndarray) -> None:
    """Values beyond ±RANGE: Exp-Golomb of ``|x| - RANGE`` (its length 0..31, then the bits
    below the leading one), then the sign. A residual can exceed 16 bits: a volume's coarse-grid
    difference reaches 8 x 16383, plus mode 3's share of channel 0's residual."""
    Uniform = constriction().stream.model.Uniform

    big = residual[np.abs(residual) > RANGE].astype(np.int64)
    if not big.size:
        return
    excess = np.abs(big) - RANGE
    lengths = np.frexp(excess.astype(np.float64))[1].astype(np.int64) - 1  # bit length - 1, exact below 2**53
    encoder.encode(lengths.astype(np.int32), Uniform(32))
    for length in np.unique(lengths):
        if length:
            encoder.encode((excess[lengths == length] - (1 << int(length))).astype(np.int32), Uniform(1 << int(length)))
    encoder.encode((big < 0).astype(np.int32), Uniform(2))


def _decode_escapes(decoder: Any, symbols: np.ndarray) -> np.ndarray:
    Uniform = constriction().stream.model.Uniform

    residual = symbols.astype(np.int64) - RANGE
    escaped = symbols == ESCAPE
    count = int(escaped.sum())
    if not count:
        return residual
    lengths = decoder.decode(Uniform(32), count).astype(np.int64)
    excess = np.int64(1) << lengths
    for length in np.unique(lengths):
        if length:
            excess[lengths == length] += decoder.decode(Uniform(1 << int(length)), int((lengths == length).sum()))
    negative = decoder.decode(Uniform(2), count).astype(bool)
    residual[escaped] = np.where(negative, -(excess + RANGE), excess + RANGE)
    return residual


def _class_runs(batch_classes: np.ndarray) -> Iterator[tuple[Any, np.ndarray]]:
    """The order in which a batch's symbols are coded: ``(model, where)`` per class present,
    ascending, ``where`` the positions (in the flat, channel-major batch) of that class's
    symbols, in batch order."""
    models = class_models()
    order = np.argsort(batch_classes, kind="stable")  # uint8 keys: a radix sort
    ends = np.cumsum(np.bincount(batch_classes, minlength=CLASSES))
    for j in np.flatnonzero(np.diff(ends, prepend=0)):
        yield models[j], order[ends[j - 1] if j else 0 : ends[j]]


def _decode_batch(decoder: Any, batch_classes: np.ndarray) -> np.ndarray:
    """Decode the symbols of one batch (``batch_classes`` flat, channel-major) run by run
    (:func:`_class_runs`)."""
    out = np.empty(len(batch_classes), np.int32)
    for model, where in _class_runs(batch_classes):
        out[where] = decoder.decode(model, len(where))
    return out


def _code_batch(encoder: Any, batch_classes: np.ndarray, batch_symbols: np.ndarray) -> None:
    """Code one batch's symbols (flat, channel-major) run by run, as :func:`_decode_batch`
    reads them."""
    for model, where in _class_runs(batch_classes):
        encoder.encode(batch_symbols[where], model)


def _fit(gram: np.ndarray, right: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Coefficient bytes (G, 3) of ``|residual| ~ a*own + b*cross + c`` from the normal equations
    ``gram`` (G, 3, 3) and ``right`` (G, 3) of each channel: a channel whose fit has a negative
    weight drops that term and takes the smaller subset's fit (clipping it to zero instead cost
    0.5-0.9% more bytes at q 50-95 on 8 validation photos); ``mean`` (G,) ``|residual|`` is
    the constant of a channel left with none."""
    solution = np.zeros((len(gram), 3))
    pending = np.ones(len(gram), bool)
    keep = np.tile(np.arange(3), (len(gram), 1))  # the terms each channel still has, in front
    for size in (3, 2, 1):
        for subset in sorted({tuple(row) for row in keep[pending, :size]}):
            rows = np.flatnonzero(pending & (keep[:, :size] == subset).all(1))
            index = list(subset)
            with np.errstate(all="ignore"):
                fit = np.linalg.solve(gram[rows][:, index][:, :, index] + 1e-9 * np.eye(size), right[rows][:, index, None])[:, :, 0]
            fit = np.nan_to_num(fit, nan=-1.0)
            done = (fit >= 0).all(1) | (size == 1)
            solution[rows[done][:, None], index] = np.maximum(fit[done], 0)
            pending[rows[done]] = False
            for row, weight in zip(rows[~done], fit[~done]):  # drop the most negative term
                keep[row, : size - 1] = [t for i, t in enumerate(subset) if i != int(np.argmin(weight))]
    empty = ~solution.any(1)
    solution[empty, 2] = np.maximum(mean[empty], 2.0**-8)
    return np.array([[coefficient_code(float(v)) for v in row] for row in solution], np.int64).reshape(-1, 3)


class _Group:
    """One channel group being coded or decoded: its values (G, P + 1) int32 with the zero
    sentinel last, the residual magnitudes the activity map will take, and the schedule."""

    def __init__(self, shape: tuple[int, ...], count: int) -> None:
        self.order, self.bounds, self.neighbours, self.coarse = schedule(shape)
        self.size = int(np.prod(shape))
        self.values = np.zeros((count, self.size + 1), np.int32)
        self.magnitudes = np.zeros((count, self.size), np.uint16)

    def batches(self) -> Any:
        return zip(range(len(self.neighbours)), self.bounds[:-1], self.bounds[1:], self.neighbours)

    def coarse_prediction(self, grid: np.ndarray) -> np.ndarray:
        """Mode 2's prediction of coarse-grid values ``grid`` (G, n0): value minus difference."""
        shaped = grid.reshape(len(grid), *self.coarse).astype(np.int64)
        return (shaped - np.stack([difference(g) for g in shaped])).reshape(len(grid), -1)


def _inter(alpha: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Mode 3's inter-channel term (G, k) int64: ``floor((alpha * r0 + 32) / 64)`` for the
    channels' signed bytes ``alpha`` (G,) (code - 128) and channel 0's residuals ``reference`` (k,)."""
    return (alpha[:, None].astype(np.int64) * reference[None, :] + 32) // 64


def _stats(group: _Group, flat: np.ndarray, cross: np.ndarray, tried: tuple[int, ...], cache: dict[Any, Any] | None, reference: np.ndarray) -> dict[int, tuple[np.ndarray, ...]]:
    """Pass 1 of the encoder over a group (values ``flat`` (G, P)): per mode tried, each
    channel's ``sum |r|``, normal equations (G, 3, 3) and (G, 3), coarse-grid ``sum |r|`` and
    (mode 3) the inter-channel bytes ``alpha - 128`` fitted on mode 2's residuals against
    channel 0's (``reference``, (P,) in flat spatial order); each slice's ``(mu, own)`` kept in
    ``cache`` under ``(mode, batch, lo)`` when given (mode 3 shares mode 2's)."""
    count = len(flat)
    out: dict[int, tuple[np.ndarray, ...]] = {}
    product, energy = np.zeros(count), 0.0  # sum r2 * r0 and sum r0**2, for mode 3's alpha
    for mode in tried:
        absolute, gram, right, coarse = np.zeros(count), np.zeros((count, 3, 3)), np.zeros((count, 3)), np.zeros(count)
        predict = np.full(count, mode >= 2)
        alpha = np.clip(np.round(64 * product / max(energy, 1.0)), -128, 127).astype(np.int64) if mode == 3 else np.zeros(count, np.int64)
        for batch, start, end, near in group.batches():
            for lo, hi in slices(count * near.shape[1], end - start):
                where = group.order[start + lo : start + hi]
                if cache is not None and mode == 3:
                    mu, own = cache[2, batch, lo]
                else:
                    mu, own = features(group.values, near[lo:hi], predict)
                    if batch == 0 and mode >= 2:
                        mu = group.coarse_prediction(flat[:, group.order[start:end]])[:, lo:hi]
                    if cache is not None:
                        cache[mode, batch, lo] = (mu, own)
                residual = flat[:, where] - mu
                if mode == 2 and 3 in tried:
                    product += residual @ reference[where].astype(np.float64)
                    energy += float(reference[where].astype(np.float64) @ reference[where])
                if mode == 3:
                    residual = residual - _inter(alpha, reference[where])
                target = np.abs(residual).astype(np.float64)
                c = cross[start + lo : start + hi]
                total = target.sum(1)
                absolute += total
                if batch == 0:
                    coarse += total
                gram[:, 0, 0] += np.einsum("gk,gk->g", own, own)
                gram[:, 0, 1] += own @ c
                gram[:, 0, 2] += own.sum(1)
                gram[:, 1, 1] += float(c @ c)
                gram[:, 1, 2] += float(c.sum())
                gram[:, 2, 2] += hi - lo
                right[:, 0] += np.einsum("gk,gk->g", own, target)
                right[:, 1] += target @ c
                right[:, 2] += total
        gram = gram + np.triu(gram, 1).transpose(0, 2, 1)
        out[mode] = (absolute, gram, right, coarse, alpha)
    return out


def encode(q: np.ndarray) -> bytes:
    """Code latents ``q`` ``(L, *S)`` (int, or a torch tensor) into one ``ctx`` chunk."""
    RangeEncoder = constriction().stream.queue.RangeEncoder

    q = np.asarray(q)
    shape = tuple(int(n) for n in q.shape[1:])
    encoder = RangeEncoder()
    activity = Activity(shape)
    reference = np.zeros(int(np.prod(shape)), np.int64)  # channel 0's coded residuals: mode 3's reference
    head = bytearray()
    for first, stop in groups(q.shape[0]):
        flat = q[first:stop].reshape(stop - first, -1).astype(np.int16)
        live = np.flatnonzero(flat.any(1))
        modes = np.zeros(len(flat), np.int64)
        codes = np.zeros((len(flat), 5), np.int64)
        if len(live):
            group = _Group(shape, len(live))
            group.values[:, :-1] = flat[live]
            cross = activity.at(group.order)
            # Modes 2 and 3 pay only for the low-pass channels 0-2: on 8 validation photos at
            # q 10-95 the encoder never chose mode 2 for a later channel.
            tried = (1, 2) if first == 0 else (1, 2, 3) if first == 1 else (1,)
            cache: dict[Any, Any] | None = {} if len(live) * group.size * min(2, len(tried)) <= _CACHE_VALUES else None
            stats = _stats(group, flat[live], cross, tried, cache, reference)
            chosen = 1 + np.argmin(np.stack([stats[mode][0] for mode in tried]), 0)
            positions = float(group.size)
            for mode in tried:
                rows = chosen == mode
                absolute, gram, right, coarse, alpha = (part[rows] for part in stats[mode])
                codes[live[rows], :3] = _fit(gram, right, absolute / positions)
                if mode >= 2:
                    codes[live[rows], 3] = [coefficient_code(float(v)) for v in coarse / max(1, group.bounds[1])]
                codes[live[rows], 4] = alpha + 128
            modes[live] = chosen
            signed = _code_group(encoder, group, cross, modes[live], codes[live], cache, reference)
            if first == 0 and live[0] == 0:
                reference = signed
            for row in group.magnitudes:
                activity.add(row)
        for mode, code in zip(modes, codes):
            head += bytes((int(mode), *(int(c) for c in code[: 2 + int(mode)]))) if mode else b"\0"
    encoder.encode(np.array([_END_CHECK], np.int32), constriction().stream.model.Uniform(1 << 16))
    return bytes(head) + encoder.get_compressed().astype(_WORD).tobytes()


def _code_group(encoder: Any, group: _Group, cross: np.ndarray, modes: np.ndarray, codes: np.ndarray, cache: dict[Any, Any] | None, reference: np.ndarray) -> np.ndarray:
    """Pass 2 of the encoder: each batch's classes, symbols and escapes, in decoding order
    (contexts from pass 1's ``cache`` when it kept them). Returns the first channel's coded
    residuals (P,) in flat spatial order (mode 3's reference when it is channel 0)."""
    predict, inter = modes >= 2, modes == 3
    alpha = codes[:, 4] - 128
    scale = weights(codes)
    coarse = np.array([coarse_class(int(code)) for code in codes[:, 3]])
    signed = np.zeros(group.size, np.int64)
    for batch, start, end, near in group.batches():
        where = group.order[start:end]
        truth = group.values[:, where]
        parts, residuals = [], []
        for lo, hi in slices(len(modes) * near.shape[1], end - start):
            if cache is None:
                mu, own = features(group.values, near[lo:hi], predict)
                if batch == 0 and predict.any():
                    mu[predict] = group.coarse_prediction(truth[predict])[:, lo:hi]
            elif predict.any():  # modes 1 and 2 were tried: each channel takes its own
                (mu1, own1), (mu2, own2) = cache[1, batch, lo], cache[2, batch, lo]
                mu, own = np.where(predict[:, None], mu2, mu1), np.where(predict[:, None], own2, own1)
            else:
                mu, own = cache[1, batch, lo]
            part = classes(own, cross[start + lo : start + hi], scale)
            if batch == 0:
                part[predict] = coarse[predict, None]
            parts.append(part)
            residual = truth[:, lo:hi] - mu
            if inter.any():
                residual[inter] -= _inter(alpha[inter], reference[where[lo:hi]]).astype(residual.dtype)
            residuals.append(residual)
        residual = np.concatenate(residuals, 1)
        _code_batch(encoder, np.concatenate(parts, 1).ravel(), symbols(residual).ravel())
        _encode_escapes(encoder, residual.ravel())
        group.magnitudes[:, where] = magnitudes(residual)
        signed[where] = residual[0]
    return signed


def _records(data: bytes, channels: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The channel records: ``(modes (L,), codes (L, 5), bytes used)``."""
    modes = np.zeros(channels, np.int64)
    codes = np.zeros((channels, 5), np.int64)
    at = 0
    for channel in range(channels):
        if at >= len(data):
            raise CtxError(f"ctx payload is truncated in the record of channel {channel}")
        modes[channel] = data[at]
        if data[at] == 0:
            at += 1
            continue
        if data[at] not in (1, 2, 3) or (data[at] == 3 and channel == 0):
            raise CtxError(f"ctx payload: channel {channel} has mode {data[at]}, expected 0, 1, 2{'' if channel == 0 else ' or 3'}")
        length = 3 + data[at]  # the mode byte, a, b, c, (modes 2-3) the coarse scale d, (mode 3) alpha
        if at + length > len(data):
            raise CtxError(f"ctx payload is truncated in the record of channel {channel}")
        codes[channel, : length - 1] = tuple(data[at + 1 : at + length])
        at += length
    return modes, codes, at


def decode(data: bytes, shape: tuple[int, ...], bits: int, out: np.ndarray) -> None:
    """Decode one ``ctx`` chunk into ``out`` (zeros, ``shape`` ``(L, *S)``, int8/int16).

    Raises:
        CtxError: the channel records are truncated or invalid, the words are not whole, the
            range coder meets words no encoder wrote, or a value leaves ``bits`` (corrupt words
            mostly decode to wrong values; those that leave the declared range are caught).
    """
    RangeDecoder = constriction().stream.queue.RangeDecoder

    modes, codes, at = _records(data, shape[0])
    tail = data[at:]
    if len(tail) % 4:
        raise CtxError(f"ctx payload: {len(tail)} bytes of coded words is not a multiple of 4")
    decoder = RangeDecoder(np.frombuffer(tail, _WORD).astype(np.uint32))
    try:
        _decode_groups(decoder, modes, codes, shape, bits, out)
        end = int(decoder.decode(constriction().stream.model.Uniform(1 << 16)))
    except (AssertionError, ValueError, OverflowError):  # what the range coder raises on words no encoder wrote
        raise CtxError("ctx payload is corrupt: its words do not decode") from None
    if end != _END_CHECK or not decoder.maybe_exhausted():
        raise CtxError("ctx payload is corrupt or truncated: its end check does not match" if end != _END_CHECK else "ctx payload has words after its end")


def _decode_groups(decoder: Any, modes: np.ndarray, codes: np.ndarray, shape: tuple[int, ...], bits: int, out: np.ndarray) -> None:
    """The body of :func:`decode`, once the channel records are read."""
    spatial = tuple(int(n) for n in shape[1:])
    activity = Activity(spatial)
    limit = (1 << (bits - 1)) - 1
    reference = np.zeros(int(np.prod(spatial)), np.int64)  # channel 0's coded residuals
    for first, stop in groups(shape[0]):
        live = np.flatnonzero(modes[first:stop]) + first
        if not len(live):
            continue
        group = _Group(spatial, len(live))
        cross = activity.at(group.order)
        predict, inter = modes[live] >= 2, modes[live] == 3
        alpha = codes[live, 4] - 128
        scale = weights(codes[live])
        coarse = np.array([coarse_class(int(code)) for code in codes[live, 3]])
        signed = np.zeros(group.size, np.int64)
        for batch, start, end, near in group.batches():
            where = group.order[start:end]
            parts, predictions = [], []
            for lo, hi in slices(len(live) * near.shape[1], end - start):
                mu, own = features(group.values, near[lo:hi], predict)
                part = classes(own, cross[start + lo : start + hi], scale)
                if batch == 0:
                    part[predict] = coarse[predict, None]
                parts.append(part)
                predictions.append(mu)
            residual = _decode_escapes(decoder, _decode_batch(decoder, np.concatenate(parts, 1).ravel())).reshape(len(live), end - start)
            signed[where] = residual[0]
            group.magnitudes[:, where] = magnitudes(residual)
            if inter.any():  # mode 3: add back the share of channel 0's residual
                residual[inter] += _inter(alpha[inter], reference[where])
            decoded = np.concatenate(predictions, 1) + residual
            if batch == 0 and predict.any():  # modes 2-3 on the coarse grid: integrate the differences
                decoded[predict] = np.stack([integrate(r.reshape(group.coarse)).ravel() for r in residual[predict]])
            if np.abs(decoded).max(initial=0) > limit:
                raise CtxError(f"ctx payload is corrupt: channels {first}-{stop - 1} decode a value beyond {bits} bits")
            group.values[:, where] = decoded
        out[live] = group.values[:, :-1].reshape((len(live), *spatial))
        if first == 0 and live[0] == 0:
            reference = signed
        for row in group.magnitudes:
            activity.add(row)
