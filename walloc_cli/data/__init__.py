"""Layer 3, data: reproducible training and test sets built from locally installed Debian and
PyPI packages only (nothing is downloaded), with fixed splits and a manifest of every file.

- :mod:`~walloc_cli.data.photos`: the photo set;
- :mod:`~walloc_cli.data.audio`: the music and speech sets (sources, splits, manifests), with
  :mod:`~walloc_cli.data.render` (scores -> MIDI -> fluidsynth) and
  :mod:`~walloc_cli.data.resample` (the speech set's 8/16 kHz conversion);
- :mod:`~walloc_cli.data.volume`: the CT/MRI/multispectral volume set.

May import the layers below: :mod:`walloc_cli.files` (to read and write the files),
:mod:`walloc_cli.model`, :mod:`walloc_cli.format`, :mod:`walloc_cli.errors`,
:mod:`walloc_cli.metrics`; never the codecs, the API, training, evaluation or the CLI (they use
these sets, not the other way round).
"""
