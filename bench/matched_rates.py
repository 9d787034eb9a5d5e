"""Walloc's points beside the other codecs at the *same* rate, from a ``walloc eval`` results.json.

For each file and each walloc point, the PSNR every other codec reaches at walloc's rate,
interpolated linearly in log-rate between that codec's two nearest measured points (blank when
walloc's rate is outside the codec's measured range). This is the "same bits per voxel"
comparison of issue 5, read off one evaluation run.

    python bench/matched_rates.py bench/results/eval_ct_mri/results.json
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from pathlib import Path


def at_rate(points: list[tuple[float, float]], rate: float) -> float | None:
    """PSNR of a codec's curve at ``rate`` (linear in log-rate), or None outside its points."""
    points = sorted(points)
    for (r0, p0), (r1, p1) in zip(points, points[1:]):
        if r0 <= rate <= r1 and r1 > r0:
            t = (math.log(rate) - math.log(r0)) / (math.log(r1) - math.log(r0))
            return p0 + t * (p1 - p0)
    return None


def main() -> None:
    rows = json.loads(Path(sys.argv[1]).read_text())["rows"]
    curves: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if isinstance(row["psnr"], (int, float)) and math.isfinite(row["psnr"]):
            curves[row["file"]][row["codec"]].append((row["rate"], row["psnr"]))
    for file, codecs in curves.items():
        others = [c for c in codecs if c != "walloc"]
        unit = rows[0]["rate_unit"]
        print(f"{Path(file).name}: PSNR (dB, peak = data range) at walloc's rates")
        print(f"  {unit:>11} {'walloc':>8} " + " ".join(f"{c:>9}" for c in others))
        for rate, psnr in sorted(codecs.get("walloc", [])):
            values = [at_rate(codecs[c], rate) for c in others]
            print(f"  {rate:11.3f} {psnr:8.2f} " + " ".join(f"{v:9.2f}" if v is not None else f"{'-':>9}" for v in values))


if __name__ == "__main__":
    main()
