"""Layer 2, the learned model: its configuration, its arithmetic, the network and the shipped zoo.

What it holds:

* :mod:`~walloc_cli.model.config`: :class:`~walloc_cli.model.config.CodecConfig` and the
  bottleneck's integer and companding arithmetic (index widths, dequantisation), torch-free;
* :mod:`~walloc_cli.model.wpt`: the wavelet packet transform (torch, the reference);
* :mod:`~walloc_cli.model.network`: :class:`~walloc_cli.model.network.WallocCodec`, the codec
  network for 1-D, 2-D and 3-D signals (torch: training and the reference);
* :mod:`~walloc_cli.model.lean_wpt` and :mod:`~walloc_cli.model.lean`: the same transform and
  inference (:class:`~walloc_cli.model.lean.LeanCodec`) on numpy alone, what the codecs run;
* :mod:`~walloc_cli.model.runtime`: the inference protocol the codecs call, the lean runtime
  by default and the torch network behind it on request (``WALLOC_RUNTIME=torch``);
* :mod:`~walloc_cli.model.zoo`: the registry of shipped models (cards listed once per process,
  weights verified by SHA-256 when loaded; torch only for :func:`~walloc_cli.model.zoo.load_network`);
* :mod:`~walloc_cli.model.quality`: the quality knob, ``-q`` -> (model, step), and the searches
  for a target PSNR or size.

What it may import: the format layer (:mod:`walloc_cli.format`), :mod:`walloc_cli.errors` and
:mod:`walloc_cli.metrics`, numpy, torch and safetensors; nothing from ``files``, ``codecs`` or
above. Only ``network``, ``wpt`` and :class:`~walloc_cli.model.runtime.TorchRuntime` (inside its methods)
import torch: compressing, decompressing, reading latents and choosing settings work without it. ``tests/test_layers.py`` checks it.
"""
