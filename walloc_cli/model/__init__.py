"""Layer 2, the learned model: its configuration, its arithmetic, the network and the shipped zoo.

What it holds:

* :mod:`~walloc_cli.model.config`: :class:`~walloc_cli.model.config.CodecConfig` and the
  bottleneck's integer and companding arithmetic (index widths, dequantisation), torch-free;
* :mod:`~walloc_cli.model.wpt`: the wavelet packet transform (torch);
* :mod:`~walloc_cli.model.network`: :class:`~walloc_cli.model.network.WallocCodec`, the codec
  network for 1-D, 2-D and 3-D signals (torch);
* :mod:`~walloc_cli.model.zoo`: the registry of shipped models (cards listed once per process,
  weights verified by SHA-256 when loaded; torch only to load weights);
* :mod:`~walloc_cli.model.quality`: the quality knob, ``-q`` -> (model, step), and the searches
  for a target PSNR or size.

What it may import: the format layer (:mod:`walloc_cli.format`), :mod:`walloc_cli.errors` and
:mod:`walloc_cli.metrics`, numpy, torch and safetensors; nothing from ``files``, ``codecs`` or
above. ``config``, ``zoo`` and ``quality`` import no torch at import time, so reading latents and
choosing settings stay light. ``tests/test_layers.py`` checks it.
"""
