"""Layer 4, the library API: what a program (and the CLI) calls, on files, arrays and latents.

* :mod:`~walloc_cli.api.files`: ``compress_file`` / ``decompress_file`` / ``describe`` (one file
  in, one file out, a :class:`~walloc_cli.codecs.base.Report`); :mod:`~walloc_cli.api.paths`:
  output names and checks, standard input as a file;
* :mod:`~walloc_cli.api.modalities`: the one modality dispatch (modality or sniffed kind ->
  that modality's functions), used by the modules here;
* :mod:`~walloc_cli.api.arrays`: the public ``walloc.compress`` / ``decompress`` /
  ``decode_latents``; :mod:`~walloc_cli.api.latents`: ``read_latents``, ``dequantize``,
  ``audio_timeline`` (no decoder run); :mod:`~walloc_cli.api.dataset`: ``WlcDataset``;
* :mod:`~walloc_cli.api.verify` (``walloc verify``), :mod:`~walloc_cli.api.batch` (many files,
  ``--jobs``), :mod:`~walloc_cli.api.pil_plugin` (``PIL.Image.open("x.wlc")``);
* beyond one machine: :mod:`~walloc_cli.api.zarr_codec` (the numcodecs codec ``"walloc"``) and
  :mod:`~walloc_cli.api.zarr3` (its Zarr v3 serializer), :mod:`~walloc_cli.api.distributed`
  (data set conversion on a Dask cluster), :mod:`~walloc_cli.api.shards` (tar shards of
  ``.wlc`` files; ``WlcShards`` streams them).

Imports: ``errors``, ``metrics``, ``_version``, ``format``, ``model``, ``files``, ``codecs``
and modules of this package; never ``train``, ``eval`` or ``cli``.
"""
