"""Layer 5: measuring walloc against the classic codecs (``walloc eval``, ``walloc bench``).

* :mod:`~walloc_cli.eval.codecs`: the codec registry (walloc and WebP, JPEG, AVIF, JPEG XL,
  JPEG 2000, Opus, FLAC, SPERR behind one ``Codec`` interface) and ``Sample``;
* :mod:`~walloc_cli.eval.measures`: PSNR/SSIM, baselines, BD-rate;
* :mod:`~walloc_cli.eval.run`: the rate-distortion run (files x codecs x qualities), its
  summaries, CSV/JSON and plots;
* :mod:`~walloc_cli.eval.speed`: throughput and peak memory, one fresh process per timing.

May import ``api``, ``train``, ``codecs``, ``data``, ``model``, ``files``, ``format``,
``errors``, ``metrics`` and ``_version``; never ``cli`` nor the package root. Optional tools and
packages (matplotlib, pytorch-msssim, opusenc ...) are imported where used and their absence
is a note, not a failure.
"""
