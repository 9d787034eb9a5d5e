"""Layer 3, data: reproducible training and test sets built from Debian and PyPI packages only
(installed ones; the corpus fetches its own into a cache), with fixed splits and a manifest of
every file.

- :mod:`~walloc_cli.data.photos`: the photo set;
- :mod:`~walloc_cli.data.audio`: the music and speech sets (sources, splits, manifests), with
  :mod:`~walloc_cli.data.render` (scores -> MIDI -> fluidsynth) and
  :mod:`~walloc_cli.data.resample` (the speech set's 8/16 kHz conversion);
- :mod:`~walloc_cli.data.volume`: the CT/MRI/multispectral volume set;
- :mod:`~walloc_cli.data.corpus` (photos, sources in :mod:`~walloc_cli.data.corpus_sources`) and
  :mod:`~walloc_cli.data.corpus_media` (speech, music, volumes): the larger corpus, fetched from
  Debian and PyPI into a cache by :mod:`~walloc_cli.data.packages`, with readers for the photo
  bundles it finds there (:mod:`~walloc_cli.data.rcc` Qt resources, :mod:`~walloc_cli.data.eet`
  Enlightenment ``.edj``).

May import the layers below: :mod:`walloc_cli.files` (to read and write the files),
:mod:`walloc_cli.model`, :mod:`walloc_cli.format`, :mod:`walloc_cli.errors`,
:mod:`walloc_cli.metrics`; never the codecs, the API, training, evaluation or the CLI (they use
these sets, not the other way round).
"""
