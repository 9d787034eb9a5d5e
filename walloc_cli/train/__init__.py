"""Layer 4: training walloc models (``walloc train``), CPU or CUDA, resumable, DDP under torchrun.

* :mod:`~walloc_cli.train.loop`: the rate-distortion training loop for images, checkpoints,
  validation, distributed setup;
* :mod:`~walloc_cli.train.audio` / :mod:`~walloc_cli.train.volume`: the crops and validation of
  the other modalities;
* :mod:`~walloc_cli.train.run`: run configs (TOML/JSON) and train-then-export to a model card.

May import ``codecs``, ``data``, ``model``, ``files``, ``format``, ``errors``, ``metrics`` and
``_version``; never ``api``, ``eval``, ``cli`` nor the package root. Torch at module level is
fine here: the CLI imports this layer only inside ``walloc train``.
"""
