"""Size limits of what walloc codes and decodes unless the caller raises them, in one light
module (the CLI reads the defaults for its ``--help`` without importing the codec).

Like Pillow's ``MAX_IMAGE_PIXELS``: a few hundred bytes of ``.wlc`` can declare a picture of
hundreds of megapixels, so a file (or an input image) above the limit is refused from its
header, in one line naming the count, the limit and the option that raises it. Measured peak
memory under the defaults is in ``bench/results/memory.md`` (``bench/memory.py``).
"""

from __future__ import annotations

#: Pixels (width x height) of an image coded or decoded unless raised with ``--max-pixels`` or
#: the ``max_pixels`` keyword. Measured (bench/memory.py): compress and decompress of a 150 MP
#: photo stay within 1 GB beyond the image itself; the default keeps a margin below that.
DEFAULT_MAX_PIXELS = 120_000_000

#: Voxels of a volume coded or decoded unless raised with ``--max-voxels`` or the
#: ``max_voxels`` keyword: 2**28 (e.g. 512 x 512 x 1024). The decoder holds the whole latent
#: grid (1/8 to 1/2 byte a voxel for the shipped models) besides the output.
DEFAULT_MAX_VOXELS = 1 << 28
