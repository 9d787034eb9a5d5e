"""Layer 1, the ``.wlc`` format: bytes in, bytes out (normative spec: ``formats/wlc.md``).

What it holds:

* :mod:`~walloc_cli.format.container`: the framing (signature, version, header, typed chunks
  with CRCs, the end marker) of formats 1.x and 2.x, writer and streaming reader;
* :mod:`~walloc_cli.format.compact`: the compact binary header of format 2.0 (and its varints);
* :mod:`~walloc_cli.format.header`: validation of every header field, for every modality, and
  the bounds the format sets (codec table, steps, tiles);
* :mod:`~walloc_cli.format.chunks`: the heads of the self-describing ``AUDB``/``VOLT`` chunks;
* :mod:`~walloc_cli.format.payload`: the lossless coding of integer latents as WebP/PNG planes,
  and the image list of a chunk; :mod:`~walloc_cli.format.payload_jxl`: the JPEG XL payload
  (format 1.3); :mod:`~walloc_cli.format.payload_ctx` and :mod:`~walloc_cli.format.ctx_model`:
  the ``ctx`` payload (format 2.2), a context model and a range coder;
  :mod:`~walloc_cli.format.pixels`: Pillow image -> samples;
* :mod:`~walloc_cli.format.limits`: the decoder's default resource limits.

What it may import: the standard library, numpy, Pillow, imagecodecs and constriction (the range
coder, imported when a ``ctx`` payload is coded), and from walloc only
:mod:`walloc_cli.errors` (and the other modules of this layer). Never torch, an audio or volume
library, or a layer above (``model``, ``files``, ``codecs``, ...): a reader of ``.wlc`` bytes
needs none of them. ``tests/test_layers.py`` checks it.

This ``__init__`` imports nothing, and :mod:`~walloc_cli.format.container` and
:mod:`~walloc_cli.format.limits` import no numpy: the package root's Pillow plugin needs the
container's signature, and every ``walloc`` command (``--version`` too) pays for what that loads.
"""
