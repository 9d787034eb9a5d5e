"""Images through Pillow: every 1/8-bit image of every format (palettes, transparency keys,
CMYK, BMP variants, progressive JPEG ...), normalised to :class:`~walloc_cli.files.image_data.ImageData`.

The PNG and TIFF readers (:mod:`~walloc_cli.files.png`, :mod:`~walloc_cli.files.tiff_image`) come
here for what Pillow decodes best; JPEG, WebP and BMP come here directly from
:func:`walloc_cli.files.images.read_image`. Pillow's global ``MAX_IMAGE_PIXELS`` is lifted for one
``Image.open`` call at a time only (:func:`open_pillow`), never at import.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from walloc_cli.errors import InputError
from walloc_cli.files import image_meta
from walloc_cli.files.image_data import ImageData, check_dims, image_from_hwc, pixel_limit
from walloc_cli.format.pixels import pillow_samples

try:  # littleCMS support is optional in Pillow builds; only CMYK conversion uses it
    from PIL import ImageCms
except ImportError:  # pragma: no cover - depends on the Pillow build
    ImageCms = None  # type: ignore[assignment]

__all__ = ["image_from_pillow", "open_pillow", "read_pillow", "refuse_animation"]


@contextlib.contextmanager
def open_pillow(path: Path, fmt: str) -> Iterator[Image.Image]:
    """``Image.open`` restricted to ``fmt``, with the size check applied to the header.

    Pillow refuses images above twice its global ``MAX_IMAGE_PIXELS`` (~179 MP by default) on
    its own; our limit (:func:`~walloc_cli.files.image_data.check_pixels`) may be higher, so
    Pillow's is lifted for this one call only and put back (changing it at import would change
    it for the whole host program).
    """
    with warnings.catch_warnings():
        # Pillow warns between MAX_IMAGE_PIXELS and twice that; check_dims refuses what we do not take
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved = Image.MAX_IMAGE_PIXELS
        if saved is not None and 2 * saved < pixel_limit.get():
            Image.MAX_IMAGE_PIXELS = pixel_limit.get()
        try:
            image = Image.open(path, formats=[fmt])
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    with image:
        check_dims(image.width, image.height)
        yield image


def refuse_animation(image: Image.Image, fmt: str) -> None:
    """Animated PNG/WebP are sequences: coding only the first frame would silently drop data."""
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        raise InputError(
            f"animated {fmt} with {frames} frames is not supported; only still images are "
            "(export a single frame, or code frames as a volume)"
        )


def read_pillow(path: Path, fmt: str, key_scale: int = 1) -> ImageData:
    """1/8-bit images of any format, decoded by Pillow and normalised to our modes, with their
    EXIF and XMP (:func:`image_from_pillow` says what comes back). ``key_scale`` multiplies an
    integer transparency key (see :func:`walloc_cli.files.png.read_png`)."""
    with open_pillow(path, fmt) as image:
        if fmt in ("PNG", "WEBP"):
            # JPEG is exempt: MPO files (phone cameras) hold previews/depth as extra "frames";
            # the primary image is the photo. TIFF pages were counted by tifffile already.
            refuse_animation(image, fmt)
        image.load()  # decode now, inside our error translation (truncation shows up here)
        if key_scale != 1 and isinstance(image.info.get("transparency"), int):
            image.info["transparency"] *= key_scale
        data = image_from_pillow(image, fmt)
        data.exif, data.xmp = image_meta.pillow_metadata(image)
        return data


def image_from_pillow(image: Image.Image, fmt: str) -> ImageData:
    """A loaded Pillow image as :class:`ImageData`, its mode mapped onto
    :data:`~walloc_cli.format.header.MODES` (conversions: :mod:`walloc_cli.files.images`).

    ``image`` is ``W`` x ``H`` in any mode Pillow decodes to: ``1``, ``L``, ``LA``, ``La``,
    ``P``/``PA`` (expanded to RGB/RGBA), ``RGB``, ``RGBA``, ``RGBX``, ``RGBa``, ``YCbCr``, ``CMYK``
    (to sRGB through its ICC profile) and ``I;16`` variants. The result's ``pixels`` are
    ``(C, H, W)`` uint8 (mode ``1``: 0/255; uint16 for ``I;16``) with ``C`` 1 or 3, its
    ``alpha`` ``(H, W)`` when the image has transparency, its ICC profile
    ``image.info["icc_profile"]``. ``fmt`` becomes ``source_format`` and names the format in
    errors. EXIF/XMP are not read here (:func:`read_pillow` adds them). Raises
    :class:`InputError` for a mode we do not handle or a palette image without a palette.
    """
    icc: bytes | None = image.info.get("icc_profile") or None
    mode = image.mode
    if mode == "CMYK":
        image, icc = _cmyk_to_rgb(image, icc)
    elif mode in ("1", "L", "La"):
        # has_transparency_data: a tRNS key on gray becomes a real alpha plane
        target = "LA" if image.has_transparency_data else mode
        if target != mode:
            image = image.convert(target)
    elif mode in ("P", "PA") and image.palette is None:  # Pillow would fail an assertion
        raise InputError(f"corrupt {fmt} image (palette image without a palette)")
    elif mode in ("P", "PA", "RGB", "RGBX", "RGBa", "YCbCr"):
        # palettes are expanded (RGBA when the palette or a tRNS key carries transparency)
        target = "RGBA" if image.has_transparency_data else "RGB"
        if target != mode:
            image = image.convert(target)

    mode = image.mode
    if mode == "1":
        array = np.asarray(image, dtype=np.uint8)  # 0/1, not 0/255: exactly the stored bits
        pixels = array[None].astype(np.float32)
        return ImageData(pixels, None, 8, "1", icc, fmt)
    if mode in ("L", "LA", "RGB", "RGBA"):
        array = pillow_samples(image)
        if array.ndim == 2:
            array = array[..., None]
        return image_from_hwc(array, 1 if mode[0] == "L" else 3, 8, icc, fmt)
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        array = np.asarray(image).astype(np.uint16)  # native byte order
        return image_from_hwc(array[..., None], 1, 16, icc, fmt)
    raise InputError(f"unsupported {fmt} colour mode {mode!r}")


def _cmyk_to_rgb(image: Image.Image, icc: bytes | None) -> tuple[Image.Image, None]:
    """CMYK -> sRGB. Through the embedded profile when possible: naive conversion is far off.

    The CMYK profile cannot describe RGB pixels, so it is dropped (sRGB is the default).
    """
    if icc and ImageCms is not None:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            target = ImageCms.createProfile("sRGB")
            converted = ImageCms.profileToProfile(image, source, target, outputMode="RGB")
            if converted is not None:
                return converted, None
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # unusable profile: fall back to the naive formula
    return image.convert("RGB"), None
