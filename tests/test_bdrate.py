"""BD-rate (``walloc_cli.eval.measures.bd_rate_values``) against worked examples and exact cases.

Published inputs:

* "Sample 1" of the VCEG-M33 reference implementations (G. Bjontegaard, "Calculation of average
  PSNR differences between RD-curves", VCEG-M33, 2001; the four-point curves that ship with the
  public bjontegaard.m / Python ports), rates in kbit/s;
* "Test 1" of the FAU-LMS ``bjontegaard`` package's README (x265 presets).

Expected values for the cubic (VCEG-M33) method are the independent evaluation of the M33
formulas (numpy.polyfit degree 3 of log10-rate over PSNR, integrated over the shared PSNR range)
published as constants in a public test suite: 31.397374054908013 % and -4.420462706090111 %.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("bjontegaard")

from walloc_cli.errors import InputError
from walloc_cli.eval.measures import Point, bd_rate, bd_rate_values, monotone_curve

M33_ANCHOR = ([686.76, 309.58, 157.11, 85.95], [40.28, 37.18, 34.24, 31.42])
M33_TEST = ([893.34, 407.80, 204.93, 112.75], [40.39, 37.21, 34.17, 31.24])
FAU_ANCHOR = ([9487.76, 4593.60, 2486.44, 1358.24], [40.037, 38.615, 36.845, 34.851])
FAU_TEST = ([9787.80, 4469.00, 2451.52, 1356.24], [40.121, 38.651, 36.970, 34.987])


def _bd(anchor, test, method):  # type: ignore[no-untyped-def]
    return bd_rate_values(np.array(anchor[0]), np.array(anchor[1]), np.array(test[0]), np.array(test[1]), method)


def test_vceg_m33_sample_cubic() -> None:
    assert _bd(M33_ANCHOR, M33_TEST, "cubic") == pytest.approx(31.397374054908013, abs=1e-8)


def test_fau_test1_cubic() -> None:
    assert _bd(FAU_ANCHOR, FAU_TEST, "cubic") == pytest.approx(-4.420462706090111, abs=1e-8)


def test_cubic_is_the_m33_formula() -> None:
    """The M33 recipe written out here (polyfit, polyint, 10**mean - 1) gives our number."""
    (ra, da), (rt, dt) = M33_ANCHOR, M33_TEST
    pa, pt = np.polyint(np.polyfit(da, np.log10(ra), 3)), np.polyint(np.polyfit(dt, np.log10(rt), 3))
    low, high = max(min(da), min(dt)), min(max(da), max(dt))
    mean = ((np.polyval(pt, high) - np.polyval(pt, low)) - (np.polyval(pa, high) - np.polyval(pa, low))) / (high - low)
    assert _bd(M33_ANCHOR, M33_TEST, "cubic") == pytest.approx((10**mean - 1) * 100, abs=1e-9)


def test_pchip_regression_values() -> None:
    # bjontegaard 1.3.0's pchip, which its authors checked against the JVET-T2010 CTC spreadsheet
    # to 10 decimals; pchip and cubic agree to a few hundredths of a percent on these smooth curves.
    assert _bd(FAU_ANCHOR, FAU_TEST, "pchip") == pytest.approx(-4.417485350589045, abs=1e-8)
    assert _bd(M33_ANCHOR, M33_TEST, "pchip") == pytest.approx(31.379878202397627, abs=1e-8)


@pytest.mark.parametrize("method", ["pchip", "cubic", "akima"])
def test_constant_rate_ratio_is_exact(method: str) -> None:
    """A curve that costs 25% more at every PSNR is +25%; the anchor against it is -20%."""
    rates, scores = M33_ANCHOR
    scaled = ([r * 1.25 for r in rates], scores)
    assert _bd(M33_ANCHOR, scaled, method) == pytest.approx(25.0, abs=1e-9)
    assert _bd(scaled, M33_ANCHOR, method) == pytest.approx(-20.0, abs=1e-9)
    assert _bd(M33_ANCHOR, M33_ANCHOR, method) == pytest.approx(0.0, abs=1e-12)


def test_pchip_is_exact_on_log_linear_curves_with_other_points() -> None:
    """log10 R linear in PSNR is reproduced exactly by pchip, so a test curve 20% cheaper,
    sampled at other PSNRs (6 points vs 4), is exactly -20% over the shared range."""
    anchor_psnr = np.array([30.0, 33.0, 36.0, 40.0])
    test_psnr = np.array([31.0, 32.5, 34.0, 35.0, 38.0, 42.0])
    anchor = (10 ** (0.1 * anchor_psnr - 3), anchor_psnr)
    test = (0.8 * 10 ** (0.1 * test_psnr - 3), test_psnr)
    assert _bd(anchor, test, "pchip") == pytest.approx(-20.0, abs=1e-9)


def test_too_few_points_or_overlap_is_nan() -> None:
    rates, scores = M33_ANCHOR
    assert math.isnan(_bd((rates[:3], scores[:3]), M33_TEST, "pchip"))
    far = (M33_TEST[0], [s + 20 for s in M33_TEST[1]])
    assert math.isnan(_bd(M33_ANCHOR, far, "pchip"))


def test_monotone_curve_drops_dominated_and_infinite_points() -> None:
    rates = np.array([1.0, 2.0, 1.5, 4.0, 8.0, 3.0])
    scores = np.array([30.0, 33.0, 33.0, 32.0, math.inf, 36.0])
    kept_rates, kept_scores = monotone_curve(rates, scores)
    # 33 dB kept at its cheaper rate 1.5; 4.0 at 32 dB is dominated by 1.5 at 33 dB; inf dropped
    assert kept_rates.tolist() == [1.0, 1.5, 3.0]
    assert kept_scores.tolist() == [30.0, 33.0, 36.0]


def test_point_wrapper_and_unknown_method() -> None:
    anchor = [Point("a", i, r, d) for i, (r, d) in enumerate(zip(*FAU_ANCHOR))]
    test = [Point("t", i, r, d) for i, (r, d) in enumerate(zip(*FAU_TEST))]
    assert bd_rate(anchor, test) == pytest.approx(-4.417485350589045, abs=1e-8)
    with pytest.raises(InputError, match="unknown BD-rate interpolation 'linear'"):
        _bd(FAU_ANCHOR, FAU_TEST, "linear")
