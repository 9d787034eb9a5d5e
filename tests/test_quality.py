"""The quality knob and the target searches (walloc_cli.model.quality) with the shipped model cards.

Nothing here patches a module attribute: the ladder tests read the real cards, the searches and
the monotone guard take their codec as a callback (as :mod:`walloc_cli.codecs.image` supplies
it), and the search range is checked end to end through the public :func:`walloc_cli.compress`
on a crop of the sample photo.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import walloc_cli
from walloc_cli.errors import InputError, ModelError
from walloc_cli.eval.measures import Point, bd_rate
from walloc_cli.model.quality import DEFAULT_QUALITY, choose_setting
from walloc_cli.model.quality import (
    GUARD_RUNGS,
    QUALITY_RUNG,
    Setting,
    Stretch,
    Trial,
    candidate_ranges,
    ladder,
    monotone_setting,
    search_psnr,
    search_size,
    setting_for_quality,
    trained_steps,
)
from walloc_cli.model.zoo import find_card

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "photo.png"
RUNGS = range(0, 101, QUALITY_RUNG)


@pytest.mark.parametrize("family", ["rgb", "gray"])
def test_quality_walks_the_shipped_ladder_from_coarse_to_fine(family: str) -> None:
    """Guards the q -> setting map on the shipped ladder: q 0 is the first model's coarsest step
    and q 100 the last model's finest; a hand-over q belongs to the higher-rate model; q moves in
    rungs of 4 (26 settings); no rung is coarser than the one below; the step is geometric within
    a stretch (halfway in q is halfway in log step)."""
    stretches = ladder(family)
    assert len(stretches) >= 2  # hand-overs to check
    settings = {q: setting_for_quality(q, family) for q in range(101)}
    assert settings[0] == Setting(stretches[0].model, stretches[0].step_lo)
    assert settings[100] == Setting(stretches[-1].model, stretches[-1].step_hi)
    for lower, upper in zip(stretches, stretches[1:]):
        hand_over = int(upper.q_lo)
        assert settings[hand_over] == Setting(upper.model, upper.step_lo)
        assert settings[hand_over - 1].model == lower.model
    assert len({settings[q] for q in RUNGS}) == 26 and all(settings[q] == settings[QUALITY_RUNG * (q // QUALITY_RUNG)] for q in range(100))
    order = {s.model: i for i, s in enumerate(stretches)}
    for a, b in zip(RUNGS, RUNGS[1:]):
        assert (order[settings[a].model], -settings[a].step) < (order[settings[b].model], -settings[b].step)
    middle = next(s for s in stretches if (s.q_lo + s.q_hi) / 2 % QUALITY_RUNG == 0)
    assert settings[int((middle.q_lo + middle.q_hi) / 2)].step == pytest.approx(math.sqrt(middle.step_lo * middle.step_hi), rel=1e-3)


def test_an_explicit_model_spans_its_own_trained_range() -> None:
    """Guards ``-q`` with ``--model``: q 0..100 spans that model's trained steps (not its stretch
    of the family ladder), and the step chosen is the one the file records."""
    card = find_card("rgb-4x-v")
    largest, smallest = trained_steps(card)
    assert (largest, smallest) == (card.card["steps"]["max"], card.card["steps"]["min"])
    assert setting_for_quality(0, "rgb", card) == Setting("rgb-4x-v", largest)
    assert setting_for_quality(100, "rgb", card) == Setting("rgb-4x-v", smallest)
    assert largest > ladder("rgb")[1].step_lo  # wider than its stretch: the test tells them apart
    _, info = walloc_cli.read_latents(walloc_cli.compress(crop(), quality=0, model="rgb-4x-v"))
    assert (info.model, info.step) == ("rgb-4x-v", largest)


@pytest.mark.parametrize("quality", [-1, 100.5, math.nan])
def test_quality_out_of_range_is_refused(quality: float) -> None:
    with pytest.raises(InputError, match="quality must be 0..100"):
        setting_for_quality(quality, "rgb")


def test_a_ladder_with_a_gap_is_an_error() -> None:
    """Guards the ladder's check that the cards' stretches tile 0..100: shipped cards with one
    stretch moved so that q 36..40 belongs to no model."""
    cards = [find_card(stretch.model) for stretch in ladder("rgb")]  # 16x, 4x, 2x
    assert ladder("rgb", cards) == ladder("rgb")
    stanzas = [dict(s, q=[40, 84]) if s["family"] == "rgb" else s for s in cards[1].card["quality"]]
    gappy = [cards[0], dataclasses.replace(cards[1], card={**cards[1].card, "quality": stanzas}), cards[2]]
    with pytest.raises(ModelError, match="does not tile 0..100"):
        ladder("rgb", gappy)
    with pytest.raises(ModelError, match="no shipped ms models"):
        ladder("ms", gappy)


# --- searches on a synthetic codec: PSNR and size rise smoothly as the step falls -----------
RANGES = [Stretch("low", 0, 100, 4.0, 1.0), Stretch("high", 0, 100, 2.0, 0.5)]


def _evaluate(calls: list[Setting]):
    def evaluate(setting: Setting) -> Trial:
        calls.append(setting)
        offset = {"low": 0.0, "high": 1.5}[setting.model]
        size = int(1000 / setting.step * (1.6 if setting.model == "high" else 1.0))
        return Trial(setting, b"x" * size, 36.0 + offset - 6.02 * math.log2(setting.step))

    return evaluate


def test_target_psnr_lands_within_a_tenth_of_a_db_at_the_smallest_size() -> None:
    calls: list[Setting] = []
    trial, reached = search_psnr(30.0, RANGES, _evaluate(calls))
    assert reached and 30.0 <= trial.psnr <= 30.1
    # "low" reaches 30 dB with fewer bytes than "high" would need
    assert trial.setting.model == "low"
    assert len(calls) <= 2 * 2 + 2 * 9


def test_target_psnr_out_of_reach_returns_the_best_and_says_so() -> None:
    trial, reached = search_psnr(60.0, RANGES, _evaluate([]))
    assert not reached and trial.setting == Setting("high", 0.5)


@pytest.mark.parametrize("budget", [300, 700, 1000, 1999, 2500, 3200])
def test_target_size_never_exceeds_the_budget(budget: int) -> None:
    trial = search_size(budget, RANGES, _evaluate([]))
    assert trial is not None and trial.size <= budget
    assert trial.size > 0.85 * budget or trial.setting.step == 0.5  # and it uses most of it


def test_target_size_below_the_smallest_file_finds_nothing() -> None:
    assert search_size(100, RANGES, _evaluate([])) is None


# --- BD-rate -----------------------------------------------------------------------------------
ANCHOR = [Point("a", q, bpp, d) for q, (bpp, d) in enumerate([(0.1, 28.0), (0.2, 31.0), (0.4, 34.0), (0.8, 37.0), (1.6, 40.0)])]


def test_bd_rate_of_a_curve_needing_ten_percent_fewer_bits_is_minus_ten() -> None:
    test = [Point("t", p.quality, p.bpp * 0.9, p.psnr) for p in ANCHOR]
    assert bd_rate(ANCHOR, test) == pytest.approx(-10.0, abs=1e-6)
    assert bd_rate(test, ANCHOR) == pytest.approx(100 / 0.9 - 100, abs=1e-6)


def test_bd_rate_is_nan_without_a_shared_psnr_range() -> None:
    far = [Point("t", p.quality, p.bpp, p.psnr + 20) for p in ANCHOR]
    assert math.isnan(bd_rate(ANCHOR, far))


# --- the search range, end to end through the public API --------------------------------------
def crop() -> np.ndarray:
    """(48, 64, 3) uint8: a textured corner of the sample photo (small, so each trial is quick)."""
    return np.asarray(Image.open(SAMPLE).convert("RGB"))[100:148, 200:264].copy()


def psnr(reference: np.ndarray, decoded: np.ndarray) -> float:
    error = np.mean((reference.astype(np.float64) - decoded.astype(np.float64)) ** 2)
    return 10 * math.log10(255.0**2 / error)


def test_the_searches_walk_each_models_whole_trained_range() -> None:
    """Guards the widening of the search range: both target searches walk each ladder model's
    whole trained step range (wider than its stretch of the q scale, so a target between two
    models' stretches is still met) and never a step past it."""
    stretches = ladder("rgb")
    ranges = candidate_ranges("rgb")
    assert [r.model for r in ranges] == [s.model for s in stretches]
    for stretch, searched in zip(stretches, ranges):
        largest, smallest = trained_steps(find_card(stretch.model))
        assert (searched.step_at(0), searched.step_at(100)) == (largest, smallest)
    assert any(r.step_at(0) > s.step_lo or r.step_at(100) < s.step_hi for r, s in zip(ranges, stretches))
    own = candidate_ranges("rgb", find_card("rgb-2x-v"))
    assert [(r.model, r.step_at(0), r.step_at(100)) for r in own] == [("rgb-2x-v", *trained_steps(find_card("rgb-2x-v")))]


def test_a_low_target_psnr_gives_the_smallest_file_at_a_trained_step() -> None:
    """Guards that a target every model reaches even at its coarsest trained step gives the
    smallest of those files: never a coarser step the decoder was not trained on (the search
    used to extrapolate past the trained steps for targets between models)."""
    image = crop()
    coarsest = {s.model: walloc_cli.compress(image, quality=0, model=s.model) for s in ladder("rgb")}  # q 0 of a named model: its largest trained step
    data = walloc_cli.compress(image, target_psnr=5.0)
    _, info = walloc_cli.read_latents(data)
    assert info.step == trained_steps(find_card(info.model))[0]
    assert data == min(coarsest.values(), key=len)


def test_an_unreachable_target_psnr_keeps_the_best_trained_setting() -> None:
    """Guards the out-of-reach case: the best file any model gives within its trained steps, at
    a trained step (no finer, untrained one), and it does not reach the target."""
    image = crop()
    data = walloc_cli.compress(image, target_psnr=150.0)
    _, info = walloc_cli.read_latents(data)
    assert info.step == trained_steps(find_card(info.model))[1]
    finest = max(psnr(image, walloc_cli.decompress(walloc_cli.compress(image, quality=100, model=s.model))[0]) for s in ladder("rgb"))
    assert psnr(image, walloc_cli.decompress(data)[0]) == pytest.approx(finest, abs=1e-9) and finest < 150


def test_a_reachable_target_psnr_is_met_within_the_trained_steps() -> None:
    """Guards ``--target-psnr`` on a real photo: the target is reached, closely (the bisection
    lands within its tolerance of 0.1 dB; 1 dB allows for the step's rounding), at a step the
    chosen model was trained on."""
    image = crop()
    data = walloc_cli.compress(image, target_psnr=34.0)
    _, info = walloc_cli.read_latents(data)
    largest, smallest = trained_steps(find_card(info.model))
    assert smallest <= info.step <= largest
    assert 34.0 <= psnr(image, walloc_cli.decompress(data)[0]) <= 34.0 + 1.0


# --- the monotone guard on the shipped ladder, with a made-up size per setting ---------------
def hand_overs(family: str = "rgb") -> list[int]:
    """The q where the family's ladder moves to the next model."""
    return [int(s.q_lo) for s in ladder(family)[1:]]


def dipping_sizes(family: str = "rgb", dip: float = 0.92) -> dict[str, float]:
    """Per model, the ``scale`` of a size ``scale / step`` that rises within each model and drops
    by ``1 - dip`` at every hand-over of the shipped ladder (a photo unlike the tuning photos)."""
    stretches = ladder(family)
    scales = {stretches[0].model: 1000.0}
    for lower, upper, q in zip(stretches, stretches[1:], hand_overs(family)):
        below, at = setting_for_quality(q - QUALITY_RUNG, family), setting_for_quality(q, family)
        scales[upper.model] = dip * scales[lower.model] / below.step * at.step
    return scales


def dipping_size(setting: Setting) -> int:
    return int(dipping_sizes()[setting.model] / setting.step)


def test_the_guard_keeps_size_rising_across_a_dipping_hand_over() -> None:
    """Guards :func:`monotone_setting` at the shipped hand-overs: where the plain ladder would give
    a smaller file one rung up, the guard codes the same model finer, so size never falls."""
    plain = [dipping_size(setting_for_quality(q, "rgb")) for q in RUNGS]
    assert sum(b < a for a, b in zip(plain, plain[1:])) == len(hand_overs())  # the ladder alone dips at each
    sizes = [dipping_size(monotone_setting(q, "rgb", dipping_size)) for q in RUNGS]
    assert all(b >= a for a, b in zip(sizes, sizes[1:]))
    for q in hand_overs():
        guarded, plain_setting = monotone_setting(q, "rgb", dipping_size), setting_for_quality(q, "rgb")
        assert guarded.model == plain_setting.model and guarded.step < plain_setting.step  # finer, same model


def test_the_guard_looks_one_rung_down_away_from_hand_overs() -> None:
    """Guards the guard's cost: q 0 codes once, a rung well inside a stretch checks only the rung
    below, and a rung just after a hand-over is walked from the rung below the hand-over."""
    asked: list[Setting] = []

    def size_of(setting: Setting) -> int:
        asked.append(setting)
        return dipping_size(setting)

    first = hand_overs()[0]
    inside = first + (GUARD_RUNGS + 1) * QUALITY_RUNG
    assert all(not inside < h + GUARD_RUNGS * QUALITY_RUNG for h in hand_overs() if h <= inside) and inside + QUALITY_RUNG < hand_overs()[1]
    assert monotone_setting(0, "rgb", size_of) == setting_for_quality(0, "rgb") and not asked
    assert monotone_setting(inside, "rgb", size_of) == setting_for_quality(inside, "rgb")
    assert set(asked) == {setting_for_quality(inside - QUALITY_RUNG, "rgb"), setting_for_quality(inside, "rgb")}
    asked.clear()
    monotone_setting(first + 2 * QUALITY_RUNG, "rgb", size_of)  # two rungs above the hand-over
    assert asked[0] == setting_for_quality(first - QUALITY_RUNG, "rgb")


def test_a_coarser_step_that_costs_more_is_refined() -> None:
    """Within one model, a rung whose file comes out smaller than the rung below's (a lossless
    coder's heuristics) is coded finer until it is not."""
    q = hand_overs()[0] + (GUARD_RUNGS + 1) * QUALITY_RUNG
    below, plain = setting_for_quality(q - QUALITY_RUNG, "rgb"), setting_for_quality(q, "rgb")
    floor = int(dipping_size(plain) * 1.08)  # the rung below happens to cost 8% more

    def size_of(setting: Setting) -> int:
        return floor if setting == below else dipping_size(setting)

    chosen = monotone_setting(q, "rgb", size_of)
    assert size_of(chosen) >= floor and chosen.model == plain.model and chosen.step < plain.step


def test_every_modality_chooses_its_setting_one_way() -> None:
    """choose_setting is the one rule the image, audio and volume coders use: a named model
    alone runs at step 1 (no quality to report); a quality goes through the named model's own
    trained steps or, with no model, the family's ladder; no quality means the default."""
    card = find_card("ct-3d-2x-v")
    assert choose_setting(None, "volume", card) == (Setting("ct-3d-2x-v", 1.0), None)
    assert choose_setting(40, "volume", card) == (setting_for_quality(40, "volume", card), 40.0)
    assert choose_setting(None, "volume") == (setting_for_quality(DEFAULT_QUALITY, "volume"), DEFAULT_QUALITY)
    assert choose_setting(90, "volume")[0] != choose_setting(10, "volume")[0]


def test_rgb_4x_v2_took_rgb_4x_v_s_place_on_both_ladders() -> None:
    """rgb-4x-v2 (issue 18: the corpus-trained 4x model) codes q 36..84 of the rgb scale and q 24..84
    of the gray scale at rgb-4x-v's steps; rgb-4x-v leaves the scales but stays installed, so its
    files keep decoding and ``-m rgb-4x-v`` still works."""
    assert setting_for_quality(75, "rgb") == Setting("rgb-4x-v2", 0.7792)  # rgb-4x-v's step at q 75 (bench/results/rd_holdout_v3.md)
    assert setting_for_quality(50, "gray").model == "rgb-4x-v2"
    assert "rgb-4x-v" not in {s.model for s in ladder("rgb") + ladder("gray")}
    assert [s.model for s in ladder("rgb")] == ["rgb-16x-v", "rgb-4x-v2", "rgb-2x-v"]
    _, info = walloc_cli.read_latents(walloc_cli.compress(crop(), quality=60, model="rgb-4x-v"))
    assert info.model == "rgb-4x-v"
