"""Size limits of what walloc codes and decodes unless the caller raises them, in one light
module (the CLI reads the defaults for its ``--help`` without importing the codec).

Like Pillow's ``MAX_IMAGE_PIXELS``: a few hundred bytes of ``.wlc`` can declare a picture of
hundreds of megapixels, so a file (or an input image) above the limit is refused from its
header, in one line naming the count, the limit and the option that raises it. Measured peak
memory under the defaults is in ``bench/results/memory.md`` (``bench/memory.py``).
"""

from __future__ import annotations

#: Pixels (width x height) of an image coded or decoded unless raised with ``--max-pixels`` or
#: the ``max_pixels`` keyword. Chosen by measurement (bench/results/memory.md, 2 cores): RSS
#: beyond the image's own samples was 772 MiB to compress a 10000 x 6700 (67 MP) photo and
#: 1159 MiB for 15000 x 10000 (150 MP); decompress 649 and 729 MiB. Compress grows with the
#: image's width (libwebp's lossless encoder takes ~28 bytes per pixel of a 16383-row band of
#: latents, the format's band), about 77 MiB per 1000 pixels of width: 80 MP stays within
#: ~850 MiB at 3:2 and ~980 MiB at 2:1. Pillow's own default is ~89 MP.
DEFAULT_MAX_PIXELS = 80_000_000

#: Voxels of a volume coded or decoded unless raised with ``--max-voxels`` or the
#: ``max_voxels`` keyword: 2**28 (e.g. 512 x 512 x 1024). The decoder holds the whole latent
#: grid (1/8 to 1/2 byte a voxel for the shipped models) besides the output.
DEFAULT_MAX_VOXELS = 1 << 28
