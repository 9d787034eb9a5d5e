"""A stack of MRI slices in a plain multi-page TIFF (no axes metadata): which model walloc picks
by default, and what the CT/MRI and multispectral models give on it (q 75).

The input is the held-out MNI ICBM152 2009a T1 (shipped in the ``nilearn`` wheel; or give any
NIfTI path); 62 axial slices (``k`` = 60..121) are written as a ``(Z, Y, X)`` uint8 multi-page
TIFF with ``metadata=None``, as a user's slice stack would be.

    python bench/slices_tiff.py [NIFTI] > bench/results/slices_tiff.txt
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

import numpy as np
import tifffile

from walloc_cli.api.files import compress_file


def _mni() -> Path:
    spec = importlib.util.find_spec("nilearn")
    if spec is None or spec.origin is None:
        sys.exit("give a NIfTI path, or pip install nilearn (it ships the MNI152 template)")
    return Path(spec.origin).parent / "datasets" / "data" / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"


def main() -> None:
    import nibabel as nib

    source = Path(sys.argv[1]) if len(sys.argv) > 1 else _mni()
    data = np.asarray(nib.load(source).dataobj)  # (i, j, k)
    stack = np.ascontiguousarray(np.transpose(data[:, :, 60:122], (2, 1, 0)))  # 62 axial slices (Z, Y, X)
    with tempfile.TemporaryDirectory() as folder:
        tiff = Path(folder) / "slices.tif"
        tifffile.imwrite(tiff, stack, photometric="minisblack", metadata=None)
        print(f"{source.name}: {stack.shape[0]} axial slices {stack.shape[1]}x{stack.shape[2]} {stack.dtype}, plain multi-page TIFF, q 75")
        for axes in (None, "ZYX", "CYX"):
            report = compress_file(tiff, Path(folder) / f"{axes}.wlc", axes=axes)
            label = "default (no --axes)" if axes is None else f"--axes {axes}"
            print(f"{label:20} {report.model:12} {report.bpv:.3f} bits/voxel  {report.psnr:.2f} dB")


if __name__ == "__main__":
    main()
