"""What a file is, by its content: the one place that decides between a ``.wlc``, an image,
audio and a volume.

``walloc compress`` (one file or a batch), the directory walk of ``compress -r``, ``walloc eval``,
``walloc info`` and the Python API (:func:`walloc_cli.api.arrays.compress`,
:func:`walloc_cli.api.files.compress_file`) all call :func:`detect`, so one file is one kind
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

import dataclasses
import enum
from pathlib import Path

__all__ = ["Kind", "Sniffed", "detect", "identify"]

#: Leading bytes read for the magic-number tests (``.wlc`` needs 8, images 32, a NIfTI-2 header
#: 540): the volume sniffer's :data:`~walloc_cli.files.volumes.CONTAINER_BYTES`, so that the
#: readers can take them from :class:`Sniffed` instead of reading them again.
PREFIX_BYTES = 1024
#: Image formats whose magic bytes no volume container shares (``.npy`` starts ``\x93NUMPY``, a
#: NIfTI header with its size 348 or 540, gzip ``\x1f\x8b``; only TIFF is both): such a file is an
#: image without asking the volume sniffer (which would load the volume readers and tifffile).
_NEVER_VOLUMES = frozenset({"PNG", "JPEG", "WEBP", "BMP"})


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


@dataclasses.dataclass(frozen=True)
class Sniffed:
    """What :func:`identify` found: the file, its kind, and its first bytes as read to decide
    (``b""`` when it could not be read). Handing ``prefix`` to the reader saves opening the
    file again only to sniff it: a photo's compress opened its input four times before."""

    path: Path
    kind: Kind
    prefix: bytes


def identify(path: Path | str) -> Sniffed:
    """The kind of ``path`` by its content, in the order of the module docstring, with the bytes
    read to decide. Never raises."""
    from walloc_cli.format.container import sniff
    from walloc_cli.files.images import sniff_image

    path = Path(path)
    try:
        with open(path, "rb") as handle:
            prefix = handle.read(PREFIX_BYTES)
    except OSError:  # missing, a directory, no permission: the reader names the problem
        return Sniffed(path, Kind.UNKNOWN, b"")
    if not prefix:
        return Sniffed(path, Kind.UNKNOWN, b"")
    if sniff(prefix):
        return Sniffed(path, Kind.WLC, prefix)
    if sniff_image(prefix) in _NEVER_VOLUMES:
        return Sniffed(path, Kind.IMAGE, prefix)
    from walloc_cli.files.volumes import sniff_volume  # the volume readers: not for a photo

    if sniff_volume(path, prefix) is not None:
        return Sniffed(path, Kind.VOLUME, prefix)
    if sniff_image(prefix) is not None:
        return Sniffed(path, Kind.IMAGE, prefix)
    from walloc_cli.files.audio import sniff_audio

    if sniff_audio(path):
        return Sniffed(path, Kind.AUDIO, prefix)
    return Sniffed(path, Kind.UNKNOWN, prefix)


def detect(path: Path | str) -> Kind:
    """The kind of ``path`` by its content (:func:`identify` without the bytes). Never raises."""
    return identify(path).kind
