"""What a file is, by its content: the one place that decides between a ``.wlc``, an image,
audio and a volume.

``walloc compress`` (one file or a batch), the directory walk of ``compress -r``, ``walloc eval``,
``walloc info`` and the Python API (:func:`walloc_cli.api.arrays.compress`,
:func:`walloc_cli.codecs.image.compress_file`) all call :func:`detect`, so one file is one kind
everywhere. The extension is never looked at. The order matters, because some files match more
than one test; the first that matches wins:

1. ``wlc``: walloc's magic bytes (:func:`walloc_cli.format.container.sniff`);
2. ``volume``: :func:`walloc_cli.files.volumes.sniff_volume`: ``.npy`` (2-D or 3-D), NIfTI (also
   gzipped), and a gray or RGB TIFF whose first series has several pages (a multi-page TIFF is
   a volume) or is 3-D, has more samples per pixel than its colour model plus one alpha, or is
   one gray page of a sample type the image path does not code (signed or 32-bit integers,
   float64). Before images, because such a TIFF also has the TIFF magic bytes;
3. ``image``: PNG, JPEG, TIFF (one gray/RGB(A) page), WebP or BMP magic bytes
   (:func:`walloc_cli.files.images.sniff_image`);
4. ``audio``: anything libsndfile recognises from the content (:func:`walloc_cli.files.audio.sniff_audio`),
   last because it is the slowest test (libsndfile opens the file);
5. ``unknown``: none of these, or a file that cannot be read (missing, a directory, empty,
   no permission). :func:`detect` never raises: the reader of the chosen kind (or the image
   reader, for ``unknown``) reports the problem in one line.

Whether a volume is slices or bands is not decided here but by :func:`walloc_cli.files.volumes.read_volume`
from what the file says (its module docstring).
"""

from __future__ import annotations

import enum
from pathlib import Path

__all__ = ["Kind", "detect"]

#: Leading bytes read for the magic-number tests (images need 32, ``.wlc`` 8).
_PREFIX_BYTES = 64


class Kind(str, enum.Enum):
    """What :func:`detect` found; the value is the word the CLI and reports use."""

    WLC = "wlc"
    IMAGE = "image"
    AUDIO = "audio"
    VOLUME = "volume"
    UNKNOWN = "unknown"

    @property
    def phrase(self) -> str:
        """The kind in a sentence: "an image", "audio", "a volume", "a .wlc file", "unknown"."""
        return {"wlc": "a .wlc file", "image": "an image", "audio": "audio", "volume": "a volume"}.get(self.value, "unknown")


def detect(path: Path | str) -> Kind:
    """The kind of ``path`` by its content, in the order of the module docstring. Never raises."""
    from walloc_cli.format.container import sniff
    from walloc_cli.files.images import sniff_image
    from walloc_cli.files.volumes import sniff_volume

    path = Path(path)
    try:
        with open(path, "rb") as handle:
            prefix = handle.read(_PREFIX_BYTES)
    except OSError:  # missing, a directory, no permission: the reader names the problem
        return Kind.UNKNOWN
    if not prefix:
        return Kind.UNKNOWN
    if sniff(prefix):
        return Kind.WLC
    if sniff_volume(path) is not None:
        return Kind.VOLUME
    if sniff_image(prefix) is not None:
        return Kind.IMAGE
    from walloc_cli.files.audio import sniff_audio

    if sniff_audio(path):
        return Kind.AUDIO
    return Kind.UNKNOWN
