"""A Pillow plugin for ``.wlc`` images: ``Image.open("x.wlc")`` decodes, ``img.save("x.wlc")`` encodes.

``import walloc_cli`` registers it (:func:`register`). Registration imports Pillow and the
container framing only (not numpy: every ``walloc`` command pays for it, ``--version`` too); the
header checks are loaded when a ``.wlc`` is opened, numpy and the codec when it is actually
decoded (``load()``, i.e. the first pixel access) or saved, so opening a file to read its size
and mode is cheap, as with any Pillow format.

* Opening sniffs the magic bytes, never the extension; a ``.wlc`` holding audio (or another
  modality) is not an image, so Pillow goes on to say it cannot identify it.
* Modes: ``1``, ``L``, ``LA``, ``RGB``, ``RGBA`` and ``I;16`` (16-bit gray) come back as they
  were coded. Pillow has no 16-bit colour modes, so 16-bit ``LA``/``RGB``/``RGBA`` files open
  as 8-bit ``LA``/``RGB``/``RGBA`` (rounded; ``walloc_cli.decompress`` gives the 16 bits). The
  ICC profile is in ``img.info["icc_profile"]``.
* Saving (format ``WLC``, chosen by the ``.wlc`` extension or ``format="WLC"``) takes the options
  of :func:`walloc_cli.codecs.image.compress_image`: ``quality`` (0..100, default 75), ``model``,
  ``target_psnr``, ``target_size``, ``payload``, ``effort``. ``icc_profile`` in the options or in
  ``img.info`` is kept. Palette and CMYK images are converted as ``walloc compress`` converts them.
"""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Any, BinaryIO, cast

from PIL import Image, ImageFile

from walloc_cli.format.container import MAGIC, WlcReader
from walloc_cli.errors import WallocError

if TYPE_CHECKING:
    import numpy as np

FORMAT = "WLC"
EXTENSION = ".wlc"
# 16-bit colour has no Pillow mode: those open as the 8-bit mode named here.
_PIL_MODES = {"1": "1", "L": "L", "LA": "LA", "RGB": "RGB", "RGBA": "RGBA", "I;16": "I;16", "LA;16": "LA", "RGB;16": "RGB", "RGBA;16": "RGBA"}


def _accept(prefix: bytes) -> bool:
    return prefix[: len(MAGIC)] == MAGIC


class WlcImageFile(ImageFile.ImageFile):
    """A ``.wlc`` image. The header is parsed on open; ``load()`` runs the decoder."""

    format = FORMAT
    format_description = "walloc learned lossy image"

    def _open(self) -> None:
        from walloc_cli.format.header import validate_header

        assert self.fp is not None
        try:
            header = WlcReader(cast(BinaryIO, self.fp)).header
        except WallocError as error:
            raise SyntaxError(f"not a valid .wlc file: {error}") from None
        if header.get("modality") != "image":
            raise SyntaxError(f"a .wlc file of modality {header.get('modality')!r}, not an image")
        try:
            validate_header(header, "image")
        except WallocError as error:
            raise SyntaxError(f"invalid .wlc image header: {error}") from None
        image = header["image"]
        mode = _PIL_MODES[image["mode"]]
        width, height = image["width"], image["height"]
        self._mode = mode
        self._size = (width, height)
        self.info["walloc_header"] = header
        # One tile covering the image, decoded by _WlcDecoder from the start of the file.
        self.tile = [ImageFile._Tile(FORMAT, (0, 0, width, height), 0, None)]


class _WlcDecoder(ImageFile.PyDecoder):
    """Reads the whole file and decodes it through :func:`walloc_cli.api.arrays.decompress`."""

    _pulls_fd = True

    def decode(self, buffer: Any) -> tuple[int, int]:
        from walloc_cli.api.arrays import decompress

        assert self.fd is not None and self.im is not None
        self.fd.seek(0)
        try:
            array, meta = decompress(cast(BinaryIO, self.fd))
        except WallocError as error:
            raise OSError(f"cannot decode .wlc image: {error}") from None
        image = _to_pillow(array, meta["mode"])
        if image.mode != self.mode:
            image = image.convert(self.mode)
        self.set_as_raw(image.tobytes(), image.mode)
        return -1, 0


def _to_pillow(array: np.ndarray, mode: str) -> Image.Image:
    """An array from :func:`walloc_cli.api.arrays.decompress` as a Pillow image of ``mode``'s Pillow mode."""
    import numpy as np

    if mode == "1":
        return Image.fromarray(array.astype(np.uint8) * 255, "L").convert("1")
    if mode == "I;16":
        return Image.fromarray(array.astype("<u2"))  # Pillow's I;16 is little-endian
    if mode.endswith(";16"):  # 16-bit colour: Pillow holds 8 bits
        array = np.rint(array.astype(np.float64) * (255 / 65535)).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(array))  # (H, W[, 2|3|4]) uint8: L, LA, RGB, RGBA


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    from walloc_cli.codecs.image import compress_image
    from walloc_cli.files.pillow_io import image_from_pillow

    options: dict[str, Any] = dict(im.encoderinfo)
    icc = options.get("icc_profile") or im.info.get("icc_profile")
    image = image_from_pillow(im, "ARRAY")
    if icc:
        image.icc_profile = icc
    try:
        encoded = compress_image(
            image,
            quality=options.get("quality"),
            model=options.get("model"),
            target_psnr=options.get("target_psnr"),
            target_size=options.get("target_size"),
            payload=options.get("payload", "webp"),
            effort=options.get("effort"),
        )
    except WallocError as error:
        raise OSError(f"cannot save as .wlc: {error}") from None
    fp.write(encoded.data)


def register() -> None:
    """Register the ``WLC`` format with Pillow (idempotent)."""
    Image.register_open(FORMAT, WlcImageFile, _accept)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, EXTENSION)
    Image.register_mime(FORMAT, "image/x-walloc")
    Image.register_decoder(FORMAT, _WlcDecoder)


__all__ = ["EXTENSION", "FORMAT", "WlcImageFile", "register"]
