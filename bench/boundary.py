"""Periodic vs symmetric WPT boundary extension on real photos: PSNR near the edges.

Both variants code each held-out photo with the same *linear* WaLLoC (J=3 WPT, encoder = top-12
principal components of the photo's wavelet vectors, i.e. 16x DR, latents rounded with a fixed
step, linear decoder). Only the boundary rule differs, so the PSNR in the 16-pixel frame along
the border isolates the cost of the extension (periodic wraps the right edge onto the left).

    python bench/boundary.py /work/data/photos/test
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from walloc_cli.model.wpt import iwpt, wpt

FRAME = 16
STEP = 0.125  # quantisation step in wavelet units (about 30 dB overall)


def code(x: torch.Tensor, boundary: str, basis: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    coeffs = wpt(x, 3, boundary)  # (1, 192, h, w)
    flat = coeffs[0].reshape(192, -1).T.double() - mean
    latent = torch.round(flat @ basis.T / STEP) * STEP
    rec = (latent @ basis + mean).T.reshape(coeffs.shape).float()
    return iwpt(rec, 3, boundary)


def main(folder: str) -> None:
    rows = []
    for path in sorted(Path(folder).glob("*.png")):
        image = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
        h, w = (image.shape[0] // 8) * 8, (image.shape[1] // 8) * 8
        x = torch.from_numpy(image[:h, :w]).permute(2, 0, 1)[None] - 0.5
        # one basis for both variants: PCA of the symmetric-extension coefficients
        coeffs = wpt(x, 3, "symmetric")[0].reshape(192, -1).T.double()
        mean = coeffs.mean(0)
        _, vectors = torch.linalg.eigh(torch.cov((coeffs - mean).T))
        basis = vectors[:, -12:].T
        frame = torch.ones(h, w, dtype=torch.bool)
        frame[FRAME:-FRAME, FRAME:-FRAME] = False
        result = [path.stem]
        for boundary in ("symmetric", "periodic"):
            err = ((code(x, boundary, basis, mean) - x)[0] * 255).round() ** 2
            edge = err[:, frame].mean().item()
            inner = err[:, ~frame].mean().item()
            result += [10 * math.log10(255**2 / edge), 10 * math.log10(255**2 / inner)]
        rows.append(result)
    print(f"{'photo':<28}{'sym edge':>10}{'sym inner':>10}{'per edge':>10}{'per inner':>10}")
    for r in rows:
        print(f"{r[0]:<28}" + "".join(f"{v:>10.2f}" for v in r[1:]))
    means = np.mean([r[1:] for r in rows], axis=0)
    print(f"{'mean':<28}" + "".join(f"{v:>10.2f}" for v in means))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/work/data/photos/test")
