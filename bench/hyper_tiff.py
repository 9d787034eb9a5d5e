"""Write the 128-band test cubes of ``walloc data volumes`` as OME-TIFF with axes CYX, for ``walloc eval``.

A bare ``.npy`` carries no axes, and by the documented rule a first axis of 128 (> 64) reads as
slices, not bands; an OME-TIFF says which it is, so walloc codes them with its multispectral
models, as a user's band-first cube file would be.

    python bench/hyper_tiff.py [OUT_DIR]          # default data/hyper_tiff
    walloc eval data/hyper_tiff --codecs walloc,jpeg2000,sperr --out bench/results/eval_hyper
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from walloc_cli.files.volumes import volume_from_array, write_volume


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("data/hyper_tiff")
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(Path("data/volumes/hyper/test").glob("*.npy")):
        target = out / f"{path.stem}.ome.tif"
        write_volume(target, volume_from_array(np.load(path), "CYX"), overwrite=True)
        print(target)


if __name__ == "__main__":
    main()
