"""Layer 2, files: reading and writing the files users hand to walloc, as arrays the codecs take.

- :mod:`~walloc_cli.files.sniff`: what a file is by its content (``detect``: the one order of
  the tests, used by every command);
- images: :mod:`~walloc_cli.files.images` (sniffing, ``read_image``/``write_image``, arrays; the
  public face), :mod:`~walloc_cli.files.image_data` (``ImageData`` and the shared checks),
  :mod:`~walloc_cli.files.png`, :mod:`~walloc_cli.files.tiff_image`,
  :mod:`~walloc_cli.files.pillow_io` (one reader/writer each), :mod:`~walloc_cli.files.image_meta`
  (ICC/EXIF/XMP and orientation), :mod:`~walloc_cli.files.icc` (which
  ICC profiles are sRGB; the standard sRGB profile);
- :mod:`~walloc_cli.files.audio`: audio through libsndfile, streamed in blocks;
- :mod:`~walloc_cli.files.volumes`: volumes (TIFF/OME-TIFF, NIfTI, ``.npy``), one module a format;
- :mod:`~walloc_cli.files.safe_io`: atomic outputs, standard input/output (``STDIO``), prefixes.

May import: :mod:`walloc_cli.errors`, :mod:`walloc_cli.metrics`, :mod:`walloc_cli.format` (the
header's modes and limits, the container's magic), itself, and file libraries (Pillow,
imagecodecs, tifffile, soundfile, nibabel); never torch, the model, the codecs or anything
above. Importing a module here changes no other library's settings (Pillow's pixel limit is
lifted for one ``Image.open`` at a time only). This package's ``__init__`` imports nothing, so
importing one module here loads that module's libraries only (a command's start-up counts in a
shell loop: see ``tests/test_startup.py``).
"""
