"""Build the photo training/validation/test sets from Debian/PyPI packages (no downloads).

    apt-get install lomiri-wallpapers-16.04 mate-backgrounds opencv-doc
    pip install scikit-image
    python scripts/build_photo_set.py data/photos

Writes data/photos/{train,val,test}/*.png and data/photos/manifest.json (sources, split,
downscale factors). The split is fixed in walloc_cli/datasets.py.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

from walloc_cli.datasets import build_photo_set

if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "data/photos")
    records = build_photo_set(target)
    counts = collections.Counter(r.split for r in records)
    print(f"wrote {len(records)} photos to {target}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
