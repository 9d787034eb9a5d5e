"""The quality knob: ``-q 0..100`` -> (model, quantisation step), and searches for a target
PSNR or file size (as ``cwebp -psnr`` / ``-size``). q is used in rungs of ``QUALITY_RUNG``.

A *family* (``rgb``, ``gray``) is an ordered set of shipped variable-rate models. Each model's card
claims a stretch of the 0..100 scale in its ``quality`` field (one entry per family)::

    "quality": [{"family": "rgb", "q": [0, 40], "step": [4.0, 1.0]}]

meaning q = 0 codes with step 4 and q = 40 with step 1, the step moving geometrically in
between (rate is roughly linear in log step). Stretches are chosen from measured rate-distortion
curves (``scripts/build_quality_map.py``) so that rate rises with q across model boundaries on
every test photo. A model given explicitly with ``--model`` spans its own trained step range.

The searches take an ``evaluate`` callback (setting -> :class:`Trial`) so that they know nothing
about images; :mod:`walloc_cli.codecs.image` supplies one that encodes and decodes.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

from walloc_cli.errors import InputError, ModelError
from walloc_cli.model.zoo import ModelCard, available_models, quality_entries

DEFAULT_QUALITY = 75.0
# q moves in rungs of 4 (26 settings): at finer spacing the lossless WebP stage's own size noise
# (up to ~5% between neighbouring steps, measured on the 8 test photos) could make a higher q
# give a smaller file; 4 apart, every test photo's size rises with q.
QUALITY_RUNG = 4
FAMILIES = {3: "rgb", 1: "gray"}  # image channels -> model family


@dataclasses.dataclass(frozen=True)
class Setting:
    """One operating point: a model and its quantisation step."""

    model: str
    step: float


@dataclasses.dataclass(frozen=True)
class Trial:
    """An encoded result of one setting: the file bytes and the PSNR they decode to."""

    setting: Setting
    data: bytes
    psnr: float

    @property
    def size(self) -> int:
        return len(self.data)


@dataclasses.dataclass(frozen=True)
class Stretch:
    """The part of the q scale one model covers: ``q_lo -> step_lo`` ... ``q_hi -> step_hi``."""

    model: str
    q_lo: float
    q_hi: float
    step_lo: float  # the larger step (lower rate), used at q_lo
    step_hi: float

    def step_at(self, q: float) -> float:
        t = 0.0 if self.q_hi == self.q_lo else (q - self.q_lo) / (self.q_hi - self.q_lo)
        return _round_step(math.exp(math.log(self.step_lo) + t * (math.log(self.step_hi) - math.log(self.step_lo))))


def _round_step(step: float) -> float:
    """4 significant digits: the header stores the step, and equal q must give equal files."""
    return float(f"{step:.4g}")


def trained_steps(card: ModelCard) -> tuple[float, float]:
    """(largest, smallest) step the model was trained for; fixed-rate models give (1, 1)."""
    steps = card.card.get("steps", {"min": 1.0, "max": 1.0})
    return float(steps["max"]), float(steps["min"])


def stanzas(card: ModelCard) -> list[dict[str, object]]:
    """The card's ``quality`` entries: one per family the model serves (an RGB model also
    serves the high end of the gray scale, coding gray as three equal planes), in the one shape
    :func:`walloc_cli.model.zoo.quality_entries` accepts (:class:`ModelError` otherwise)."""
    try:
        return quality_entries(card.card)
    except ModelError as error:
        raise ModelError(f"model card {card.name}: {error}") from None


def ladder(family: str, cards: list[ModelCard] | None = None) -> list[Stretch]:
    """The family's stretches in q order; they must tile 0..100 without gaps."""
    stretches = []
    for card in cards if cards is not None else available_models():
        for spec in stanzas(card):
            if spec.get("family") == family:
                (q_lo, q_hi), (step_lo, step_hi) = spec["q"], spec["step"]
                stretches.append(Stretch(card.name, float(q_lo), float(q_hi), float(step_lo), float(step_hi)))
    stretches.sort(key=lambda s: s.q_lo)
    if not stretches:
        raise ModelError(f"no shipped {family} models carry a quality map")
    edges = [stretches[0].q_lo] + [s.q_hi for s in stretches]
    if edges[0] != 0 or edges[-1] != 100 or any(a.q_hi != b.q_lo for a, b in zip(stretches, stretches[1:])):
        raise ModelError(f"the {family} quality map does not tile 0..100: {[(s.model, s.q_lo, s.q_hi) for s in stretches]}")
    return stretches


def setting_for_quality(quality: float, family: str, model: ModelCard | None = None) -> Setting:
    """Map ``quality`` (0..100) to a setting: through the family's ladder, or, for an explicit
    ``model``, across that model's own trained step range (q = 0: its largest step)."""
    if not 0 <= quality <= 100 or math.isnan(quality):
        raise InputError(f"quality must be 0..100, got {quality}")
    quality = rung(quality)
    if model is not None:
        largest, smallest = trained_steps(model)
        return Setting(model.name, Stretch(model.name, 0, 100, largest, smallest).step_at(quality))
    stretches = ladder(family)
    # A boundary q belongs to the upper stretch (the higher-rate model starts there).
    stretch = next((s for s in reversed(stretches) if s.q_lo <= quality), stretches[0])
    return Setting(stretch.model, stretch.step_at(quality))


def choose_setting(quality: float | None, family: str, card: ModelCard | None = None) -> tuple[Setting, float | None]:
    """The setting a compress of ``family`` uses, with the quality it stands for (every modality
    chooses this way): a named model (``card``) alone is used at step 1 (quality ``None``); else
    ``quality`` (default :data:`DEFAULT_QUALITY`) through :func:`setting_for_quality`, across
    the named model's trained steps or the family's ladder. (Images with no model named go
    through the monotone guard instead: :func:`monotone_setting`.)"""
    if card is not None and quality is None:
        return Setting(card.name, 1.0), None
    chosen = DEFAULT_QUALITY if quality is None else float(quality)
    return setting_for_quality(chosen, family, card), chosen


def rung(quality: float) -> float:
    """The rung a quality falls on: ``QUALITY_RUNG * floor(q / QUALITY_RUNG)`` (100 stays 100)."""
    return min(100.0, QUALITY_RUNG * math.floor(quality / QUALITY_RUNG + 1e-9))


# Rungs walked after each hand-over between models (and after q 0): the hand-over itself can dip
# on a photo unlike the tuning photos, and the rungs just above it then have to clear the raised
# floor. Elsewhere a rung is checked against the one below it only: within one model the
# lossless WebP stage's heuristics can still make a coarser step cost more (measured: 6% on one
# training photo between q 44 and q 48).
GUARD_RUNGS = 3
FINER = 1.06  # how much finer each retry of a guarded rung quantises


def guard_walk(quality: float, family: str) -> list[Setting]:
    """The plain ladder settings :func:`monotone_setting` codes for ``quality``, in the order it
    walks them: the trusted rung first, then every rung up to ``quality``'s (one setting at
    q < ``QUALITY_RUNG``). Those are all it codes unless a rung comes out smaller than the one
    below it, so a caller can code them all at once (in parallel) before the walk asks."""
    if not 0 <= quality <= 100 or math.isnan(quality):
        raise InputError(f"quality must be 0..100, got {quality}")
    q = rung(quality)
    if q < QUALITY_RUNG:
        return [setting_for_quality(q, family)]
    starts = sorted({float(QUALITY_RUNG)} | {s.q_lo for s in ladder(family) if s.q_lo > 0})
    start = next((h for h in reversed(starts) if h <= q < h + GUARD_RUNGS * QUALITY_RUNG), q)
    rungs = [start - QUALITY_RUNG]
    while rungs[-1] + QUALITY_RUNG <= q:
        rungs.append(rungs[-1] + QUALITY_RUNG)
    return [setting_for_quality(r, family) for r in rungs]


def monotone_setting(quality: float, family: str, size_of: Callable[[Setting], int], min_step: float = 0.25) -> Setting:
    """:func:`setting_for_quality` of the family's ladder, but never giving a smaller file than
    the rung below on this very image.

    ``size_of(setting)`` is the file size that setting gives this image (the caller memoises:
    each setting is encoded once). The rungs are walked up from a trusted one (:func:`guard_walk`):
    the rung below ``quality``, or, within ``GUARD_RUNGS`` rungs after a hand-over (or q 0), the
    rung below the hand-over. A rung whose file would be smaller than the previous rung's is
    coded at finer steps of the same model (``FINER`` apart, at most 8 tries) until it is not,
    and failing that takes the previous rung's setting. The cost is one extra encode (the rung
    below) for most q, up to four just after a hand-over, and none at q 0; the image codec codes
    the walk's settings side by side (:func:`walloc_cli.codecs.image.compress_image`), so on two
    cores the extra encode costs little wall time.
    """
    walk = guard_walk(quality, family)
    chosen = walk[0]
    if len(walk) == 1:
        return chosen
    floor = size_of(chosen)
    for plain in walk[1:]:
        current, tries = plain, 0
        while size_of(current) < floor and tries < 8 and current.step / FINER >= min_step:
            current, tries = Setting(current.model, _round_step(current.step / FINER)), tries + 1
        if size_of(current) >= floor:
            chosen, floor = current, size_of(current)
    return chosen


def candidate_ranges(family: str, model: ModelCard | None = None) -> list[Stretch]:
    """Per model, the whole trained step range (wider than its stretch of the q scale): the
    range both target searches (``--target-psnr``, ``--target-size``) walk, and never leave: a
    decoder is only known to work at the steps it was trained on."""
    if model is not None:
        cards = [model]
    else:
        names = [s.model for s in ladder(family)]
        by_name = {c.name: c for c in available_models()}
        cards = [by_name[n] for n in dict.fromkeys(names)]
    ranges = []
    for card in cards:
        largest, smallest = trained_steps(card)
        ranges.append(Stretch(card.name, 0, 100, largest, smallest))
    return ranges


Evaluate = Callable[[Setting], Trial]


def _bisect(stretch: Stretch, evaluate: Evaluate, too_low: Callable[[Trial], bool], iterations: int) -> list[Trial]:
    """Bisect the stretch's q axis for the boundary of ``too_low``; returns every trial made."""
    lo, hi = 0.0, 100.0
    trials = []
    for _ in range(iterations):
        mid = (lo + hi) / 2
        trial = evaluate(Setting(stretch.model, stretch.step_at(mid)))
        trials.append(trial)
        if too_low(trial):
            lo = mid
        else:
            hi = mid
    return trials


def search_psnr(target: float, ranges: list[Stretch], evaluate: Evaluate, tolerance: float = 0.1, iterations: int = 9) -> tuple[Trial, bool]:
    """The smallest file whose PSNR is within ``tolerance`` above ``target`` (dB).

    Every model whose trained range brackets the target is bisected on log step; the smallest
    result that reaches the target wins. Returns (trial, reached): when no setting reaches the
    target, the highest-PSNR trial and False.
    """
    trials: list[Trial] = []
    for stretch in ranges:
        ends = [evaluate(Setting(stretch.model, stretch.step_at(q))) for q in (0.0, 100.0)]
        trials += ends
        if ends[0].psnr <= target <= ends[1].psnr:
            for trial in _bisect(stretch, evaluate, lambda t: t.psnr < target, iterations):
                trials.append(trial)
                if target <= trial.psnr <= target + tolerance:
                    break
    reaching = [t for t in trials if t.psnr >= target]
    if not reaching:
        return max(trials, key=lambda t: t.psnr), False
    return min(reaching, key=lambda t: t.size), True


def search_size(max_bytes: int, ranges: list[Stretch], evaluate: Evaluate, iterations: int = 9) -> Trial | None:
    """The best-PSNR file of at most ``max_bytes`` bytes, or None when even the smallest setting
    is larger. The result never exceeds ``max_bytes``: only trials that fit are candidates."""
    trials: list[Trial] = []
    for stretch in ranges:
        ends = [evaluate(Setting(stretch.model, stretch.step_at(q))) for q in (0.0, 100.0)]
        trials += ends
        if ends[0].size <= max_bytes < ends[1].size:
            trials += _bisect(stretch, evaluate, lambda t: t.size <= max_bytes, iterations)
    fitting = [t for t in trials if t.size <= max_bytes]
    return max(fitting, key=lambda t: (t.psnr, -t.size)) if fitting else None
