"""Before/after tables of ``--refine`` from two ``bench/rd_holdout.py --json`` runs of the same
photos (the first without ``--refine``, the second with it and ``--anchors`` the first, so the
other codecs' rows are the same): per set, BD-rate of walloc against each codec before and
after, BD-rate of the refined walloc against the plain one, mean bytes and PSNR per quality, and
whether every photo's file sizes still rise with the quality (the monotone guard's promise).

    python bench/refine_compare.py PLAIN.json REFINED.json
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path

import numpy as np

from walloc_cli.eval.measures import bd_rate_values


def walloc_points(rows: list[dict], file: str) -> list[tuple[float, float, float]]:
    """``(quality, bpp, psnr)`` of the walloc file rows of one photo, by quality."""
    return sorted((r["quality"], r["rate"], r["psnr"]) for r in rows if r["file"] == file and r["codec"] == "walloc")


def main() -> None:
    plain, refined = (json.loads(Path(p).read_text()) for p in sys.argv[1:3])
    print(f"before: {plain['head']}\n\nafter: {refined['head']}\n")
    for name, before in plain["sets"].items():
        if name not in refined["sets"]:  # the refined run may cover fewer of the sets
            continue
        after = refined["sets"][name]
        files = sorted({r["file"] for r in before["rows"]})
        print(f"### {name} ({len(files)} photos)\n")
        print("| BD-rate of walloc vs | before | after |\n|---|---|---|")
        for codec, value in before["summary"]["bd"].items():
            print(f"| {codec} (mean / median) | {value['mean']:+.1f}% / {value['median']:+.1f}% | {after['summary']['bd'][codec]['mean']:+.1f}% / {after['summary']['bd'][codec]['median']:+.1f}% |")
        per = []
        monotone = 0
        for file in files:
            a, b = np.array(walloc_points(before["rows"], file)), np.array(walloc_points(after["rows"], file))
            per.append(bd_rate_values(a[:, 1], a[:, 2], b[:, 1], b[:, 2]))
            monotone += bool(np.all(np.diff(b[:, 1]) > 0))
        finite = [v for v in per if math.isfinite(v)]
        print(f"\nBD-rate of refined walloc vs plain walloc: mean {statistics.mean(finite):+.2f}%, median {statistics.median(finite):+.2f}%, "
              f"per photo {', '.join(f'{v:+.1f}' for v in per)}; file size rises with q on {monotone} of {len(files)} photos after\n")
        print("| q | bytes before | bytes after | change | PSNR before | PSNR after | change |\n|---|---|---|---|---|---|---|")
        for q, point in before["summary"]["ladder"].items():
            new = after["summary"]["ladder"][q]
            print(f"| {float(q):g} | {point['bytes']:,.0f} | {new['bytes']:,.0f} | {new['bytes'] / point['bytes'] - 1:+.1%} | {point['psnr']:.2f} | {new['psnr']:.2f} | {new['psnr'] - point['psnr']:+.2f} dB |")
        print()


if __name__ == "__main__":
    main()
