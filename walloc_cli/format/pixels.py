"""Pillow image -> numpy samples without holding the samples twice.

Shared by the payload decoder (:func:`walloc_cli.format.payload.decode_planes`, whose chunks are
WebP/PNG images of latent indices) and the image reader (:mod:`walloc_cli.files.images`). It
lives in the format layer because the payload needs it and the format layer imports nothing
above itself.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# Bytes converted per band of rows: bounds the temporary ``tobytes()`` copy whatever the size.
_BAND_BYTES = 8 << 20


def pillow_samples(image: Image.Image) -> np.ndarray:
    """The samples of a loaded 8-bit Pillow image (``L``, ``LA``, ``RGB``, ``RGBA``) as
    ``(H, W)`` or ``(H, W, S)`` uint8, copied in bands of rows into one array.

    ``np.asarray(image)`` goes through ``tobytes()``, which joins a list of pieces into one
    bytes object: twice the samples at once, beside Pillow's own 4 bytes a pixel (a 67 MP
    photo peaked 638 MB above the interpreter to read, against 470 MB this way).
    """
    width, height = image.size
    bands = len(image.getbands())
    out = np.empty((height, width, bands) if bands > 1 else (height, width), np.uint8)
    rows = max(1, _BAND_BYTES // max(1, width * bands))
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        out[top:bottom] = np.frombuffer(image.crop((0, top, width, bottom)).tobytes(), np.uint8).reshape(out[top:bottom].shape)
    return out
