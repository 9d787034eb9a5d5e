"""The quality knob and the target searches (walloc_cli.model.quality), on made-up model cards."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from walloc_cli.model.config import CodecConfig
from walloc_cli.errors import InputError, ModelError
from walloc_cli.eval.measures import Point, bd_rate
from walloc_cli.model.quality import (
    Setting,
    Stretch,
    Trial,
    ladder,
    search_psnr,
    search_size,
    setting_for_quality,
)
from walloc_cli.model.zoo import ModelCard


def _card(name: str, q: tuple[int, int] | None, steps: tuple[float, float], step_range: tuple[float, float] = (1.0, 4.0), family: str = "rgb") -> ModelCard:
    card: dict = {"steps": {"min": step_range[0], "max": step_range[1]}}
    if q is not None:
        card["quality"] = [{"family": family, "q": list(q), "step": list(steps)}]
    return ModelCard(name, "image", CodecConfig(), "0" * 64, Path(f"{name}.safetensors"), card)


ZOO = [_card("low", (0, 40), (4.0, 1.0)), _card("mid", (40, 76), (3.0, 1.0), (0.5, 3.0)), _card("high", (76, 100), (2.0, 0.5), (0.5, 2.0))]


@pytest.fixture()
def zoo(monkeypatch: pytest.MonkeyPatch) -> list[ModelCard]:
    monkeypatch.setattr("walloc_cli.model.quality.available_models", lambda: ZOO)
    return ZOO


def test_quality_walks_the_ladder_from_coarse_to_fine(zoo: list[ModelCard]) -> None:
    settings = [setting_for_quality(q, "rgb") for q in range(101)]
    assert settings[0] == Setting("low", 4.0) and settings[100] == Setting("high", 0.5)
    assert settings[40] == Setting("mid", 3.0)  # a boundary belongs to the higher-rate model
    assert settings[39].model == "low" and settings[75].model == "mid" and settings[76].model == "high"
    # q moves in rungs of 4: 26 distinct settings
    assert len(set(settings)) == 26 and settings[41] == settings[40] == settings[43]
    order = {"low": 0, "mid": 1, "high": 2}
    for a, b in zip(settings, settings[1:]):
        assert (order[a.model], -a.step) <= (order[b.model], -b.step)  # never back to a coarser setting
    assert settings[20].step == pytest.approx(2.0, rel=1e-3)  # geometric: halfway in q, halfway in log step


def test_an_explicit_model_spans_its_own_trained_range(zoo: list[ModelCard]) -> None:
    assert setting_for_quality(0, "rgb", ZOO[1]) == Setting("mid", 3.0)
    assert setting_for_quality(100, "rgb", ZOO[1]) == Setting("mid", 0.5)


@pytest.mark.parametrize("quality", [-1, 100.5, math.nan])
def test_quality_out_of_range_is_refused(zoo: list[ModelCard], quality: float) -> None:
    with pytest.raises(InputError, match="quality must be 0..100"):
        setting_for_quality(quality, "rgb")


def test_a_ladder_with_a_gap_is_an_error() -> None:
    gappy = [_card("a", (0, 40), (4.0, 1.0)), _card("b", (50, 100), (2.0, 0.5))]
    with pytest.raises(ModelError, match="does not tile 0..100"):
        ladder("rgb", gappy)
    with pytest.raises(ModelError, match="no shipped gray models"):
        ladder("gray", gappy)


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


def test_a_target_in_a_gap_between_models_stays_within_the_trained_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """A target no trained step hits exactly is met by the smallest file that reaches it, inside
    the trained steps: never by a step the decoder was not trained on."""
    from walloc_cli.codecs import image as api
    from walloc_cli.model import quality

    gap = [_card("a", (0, 50), (4.0, 1.0)), _card("b", (50, 100), (3.0, 0.5), (0.5, 3.0))]
    for card in gap:
        object.__setattr__(card, "config", CodecConfig(step_input=True))
    monkeypatch.setattr(quality, "available_models", lambda: gap)
    monkeypatch.setattr(api, "find_card", lambda name: next(c for c in gap if c.name == name))

    def fake_encode(image, model, payload, step, effort, cache=None, max_pixels=None):  # trained: "a" 18..30 dB, "b" 34..49.5 dB
        score = 30.0 - 6.0 * math.log2(step) if model == "a" else 34.0 - 6.0 * math.log2(step / 3.0)
        return f"{model}:{step}:{score}".encode() + b"x" * int(1000 / step)

    monkeypatch.setattr(api, "encode_image", fake_encode)
    monkeypatch.setattr(api, "decoded_psnr", lambda data, image, model=None, max_pixels=None: float(data.split(b":")[2].split(b"x")[0]))

    class Image:
        channels, bit_depth, pixels, width, height = 3, 8, None, 8, 8

    monkeypatch.setattr(api, "_family", lambda image, card: "rgb")
    encoded = api.compress_image(Image(), target_psnr=32.0)  # type: ignore[arg-type]
    assert encoded.target_reached and encoded.psnr == pytest.approx(34.0)
    assert encoded.setting == Setting("b", 3.0)  # "b"'s largest trained step: its smallest file


def _dipping_size(setting: Setting) -> int:
    """A photo on which each model starts 7-10% below where the one before ends; size rises with q elsewhere."""
    scale = {"low": 1000.0, "mid": 2400.0, "high": 4300.0}[setting.model]
    return int(scale / setting.step)


def test_the_guard_keeps_size_rising_across_a_dipping_hand_over(zoo: list[ModelCard]) -> None:
    from walloc_cli.model.quality import monotone_setting

    plain = [_dipping_size(setting_for_quality(q, "rgb")) for q in range(0, 101, 4)]
    assert any(b < a for a, b in zip(plain, plain[1:]))  # the ladder alone would dip at q 40
    sizes = [_dipping_size(monotone_setting(q, "rgb", _dipping_size)) for q in range(0, 101, 4)]
    assert all(b >= a for a, b in zip(sizes, sizes[1:]))
    guarded = monotone_setting(40, "rgb", _dipping_size)
    assert guarded.model == "mid" and guarded.step < setting_for_quality(40, "rgb").step  # finer, same model


def test_the_guard_looks_one_rung_down_away_from_hand_overs(zoo: list[ModelCard]) -> None:
    from walloc_cli.model.quality import monotone_setting

    asked: list[Setting] = []

    def size_of(setting: Setting) -> int:
        asked.append(setting)
        return _dipping_size(setting)

    assert monotone_setting(0, "rgb", size_of) == setting_for_quality(0, "rgb") and not asked
    assert monotone_setting(64, "rgb", size_of) == setting_for_quality(64, "rgb")
    assert set(asked) == {setting_for_quality(60, "rgb"), setting_for_quality(64, "rgb")}
    asked.clear()
    monotone_setting(44, "rgb", size_of)  # two rungs above the q 40 hand-over: walked from q 36
    assert asked[0] == setting_for_quality(36, "rgb")


def test_a_coarser_step_that_costs_more_is_refined(zoo: list[ModelCard]) -> None:
    """Within one model, a rung whose file comes out smaller than the rung below's (a lossless
    coder's heuristics) is coded finer until it is not."""
    from walloc_cli.model.quality import monotone_setting

    below = setting_for_quality(60, "rgb")

    def size_of(setting: Setting) -> int:
        return 1800 if setting == below else _dipping_size(setting)  # q 60 happens to cost 8% more than q 64

    chosen = monotone_setting(64, "rgb", size_of)
    assert size_of(chosen) >= 1800 and chosen.model == "mid" and chosen.step < setting_for_quality(64, "rgb").step
