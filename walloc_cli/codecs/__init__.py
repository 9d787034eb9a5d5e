"""Layer 3, the codecs: each modality's signal <-> ``.wlc`` coding, in memory and on streams.

* :mod:`~walloc_cli.codecs.base`: what every codec shares and the API relies on: the
  :class:`~walloc_cli.codecs.base.Report` protocol, the ``Progress(done, total)`` callback,
  :func:`~walloc_cli.codecs.base.open_wlc` (a reader over bytes, a path or a stream) and
  ``human_bytes``. Torch-free.
* :mod:`~walloc_cli.codecs.image` (+ :mod:`~walloc_cli.codecs.image_tiles`): photos;
  :mod:`~walloc_cli.codecs.audio` (+ :mod:`~walloc_cli.codecs.audio_blocks`): audio;
  :mod:`~walloc_cli.codecs.volume` (+ :mod:`~walloc_cli.codecs.volume_tiles`): volumes;
  :mod:`~walloc_cli.codecs.tiles`: tiling with matched boundaries, shared by images and volumes.

Imports: ``errors``, ``metrics``, ``_version`` and the layers below (``format``, ``model``,
``files``), never ``api`` or anything above it. Codec modules of different modalities never
import each other: a modality module imports only ``base``, ``tiles`` and its own tile/block
module. Choosing the codec for a file (the modality dispatch) is the API's job
(:mod:`walloc_cli.api.modalities`).
"""
