"""walloc as a numcodecs codec: Zarr and HDF5-style chunked arrays compressed chunk by chunk.

:class:`Walloc` (``codec_id = "walloc"``) codes one chunk into one self-describing ``.wlc``
stream (:func:`walloc_cli.api.arrays.compress`) and back (:func:`~walloc_cli.api.arrays.decompress`),
so any chunk read on any machine decodes alone, with nothing but the codec's name from the
array's metadata. It is registered in numcodecs' ``numcodecs.codecs`` entry-point group (and the
Zarr v3 wrapper :class:`walloc_cli.api.zarr3.WallocZarr3` in ``zarr.codecs``), so
``pip install 'walloc[zarr]'`` is all a reader needs::

    import zarr
    from walloc_cli.api.zarr_codec import Walloc

    z = zarr.create_array("ct.zarr", shape=volume.shape, chunks=(32, 128, 128), dtype=volume.dtype,
                          zarr_format=2, compressors=Walloc(quality=75))   # Zarr v2 format
    z[:] = volume                       # int16 HU, chunk by chunk
    again = zarr.open_array("ct.zarr")[:]   # anywhere walloc is installed

Chunk layouts (``axes``; default: a 2-D chunk is a gray image, a 3-D chunk a volume ``ZYX``):

* ``"YX"``: ``(H, W)`` uint8 or uint16 gray images (bool: 1-bit), coded by the image models;
* ``"YXC"``: ``(H, W, C)`` uint8 or uint16 with C = 2 (gray + alpha), 3 (RGB) or 4 (RGBA);
* a volume's three axis letters in the chunk's order: ``"ZYX"`` (the default for 3-D chunks)
  or any order of ``Z``, ``Y``, ``X``; ``"CYX"`` (or another order with ``C``, except ``YXC``,
  which is the image layout) for a multispectral cube's bands. Any dtype the volume codec takes
  (int8..uint32, float32/64), coded by the models ``walloc compress`` picks for it
  (:func:`walloc_cli.files.volumes.guess_kind`: signed data with negative values as CT, else a
  ``C`` axis as multispectral, else the CT/MRI models), decoded back to the chunk's own axis
  order and dtype.

Configuration (``get_config`` / ``from_config``, stored in the array's metadata): ``quality``
(0..100, default 75, as ``walloc compress -q``), ``model`` (a shipped model's name: then the
quality spans that model's trained steps; see :func:`walloc_cli.model.quality.choose_setting`),
``axes`` and ``payload`` (``webp``, ``ctx``, ``png`` or ``jxl``; unset: walloc's default,
``webp``). The decoder needs none of it: the ``.wlc`` header names the model by its SHA-256.

Chunks at array edges: Zarr pads edge chunks to the full chunk shape (with the fill value)
before they reach a codec; a codec called directly (``dask.array.map_blocks``) gets the smaller
block. Both work: the codecs pad any size to the transform's block and crop back.

Each chunk is normalised and coded on its own (that is what lets it decode alone), so a
volume's chunks do not share the whole-volume statistics and context ``walloc compress`` uses:
``bench/scale_out.py`` measures what that costs against one ``walloc compress`` of the volume.
Models load once per process (:func:`walloc_cli.model.zoo.load_model` caches them), so
parallel reads in Dask workers or threads pay for each model once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_bytes, ensure_ndarray_like, ndarray_copy

from walloc_cli.api.arrays import compress, decompress
from walloc_cli.errors import InputError
from walloc_cli.files.volumes import DTYPES
from walloc_cli.files.volumes.base import parse_axes

IMAGE_AXES = ("YX", "YXC")
IMAGE_DTYPES = ("bool", "uint8", "uint16")


def chunk_axes(axes: str | None, ndim: int) -> str:
    """The layout a chunk of ``ndim`` dimensions is coded as: ``axes`` checked, or the default
    (``YX`` for 2-D, ``ZYX`` for 3-D). Raises :class:`InputError` for a layout that does not
    fit the dimensions."""
    if axes is None:
        if ndim == 2:
            return "YX"
        if ndim == 3:
            return "ZYX"
        raise InputError(f"walloc codes 2-D (image) and 3-D (image or volume) chunks, not {ndim}-D ones")
    letters = axes.strip().upper()
    if letters in IMAGE_AXES:
        if len(letters) != ndim:
            raise InputError(f"axes {letters!r} need {len(letters)}-D chunks, not {ndim}-D ones")
        return letters
    if ndim != 3:
        raise InputError(f"axes {letters!r} name a volume, which needs 3-D chunks, not {ndim}-D ones")
    return parse_axes(letters)


def check_chunk_dtype(dtype: np.dtype[Any], axes: str) -> None:
    """Refuse a dtype the layout's codec cannot give back exactly as it is (Zarr reads the
    decoded bytes as the array's dtype)."""
    allowed = IMAGE_DTYPES if axes in IMAGE_AXES else DTYPES
    if dtype.name not in allowed:
        what = "images" if axes in IMAGE_AXES else "volumes"
        raise InputError(f"walloc codes {what} ({axes}) of dtype {', '.join(allowed)}, not {dtype.name}")


class Walloc(Codec):  # type: ignore[misc]
    """Lossy learned compression of one chunk (see the module docstring).

    Args:
        quality: 0..100 (``walloc compress -q``); ``None`` is walloc's default (75), or step 1
            of ``model`` when a model is named alone.
        model: a shipped model's name (``walloc models``), or ``None`` for the quality ladder.
        axes: the chunk layout (``"YX"``, ``"YXC"``, ``"ZYX"``, ``"CYX"``, ...) or ``None``.
        payload: the lossless coder of the latents, ``"ctx"``, ``"webp"``, ``"png"`` or ``"jxl"``;
            ``None`` (the default) is walloc's default coder (``webp``).
    """

    codec_id = "walloc"

    def __init__(self, quality: float | None = None, model: str | None = None, axes: str | None = None, payload: str | None = None) -> None:
        if quality is not None and not 0 <= float(quality) <= 100:
            raise InputError(f"quality must be 0..100, got {quality}")
        self.quality = None if quality is None else float(quality)
        self.model = model
        self.axes = None if axes is None else axes.strip().upper()
        self.payload = payload

    def encode(self, buf: Any) -> bytes:
        """One chunk (an array: ``(H, W)``, ``(H, W, C)`` or 3-D, see ``axes``) to ``.wlc`` bytes."""
        array = np.asarray(ensure_ndarray_like(buf))
        axes = chunk_axes(self.axes, array.ndim)
        check_chunk_dtype(array.dtype, axes)
        if axes in IMAGE_AXES:
            return compress(np.ascontiguousarray(array), quality=self.quality, model=self.model, payload=self.payload)
        return compress(array, quality=self.quality, model=self.model, payload=self.payload, axes=axes)

    def decode(self, buf: Any, out: Any = None) -> np.ndarray:
        """``.wlc`` bytes back to the chunk: the shape, axis order and dtype it was encoded from
        (copied into ``out`` when given, as numcodecs does)."""
        decoded, meta = decompress(ensure_bytes(buf))
        if meta["modality"] == "volume" and meta["file_axes"] != meta["axes"]:
            # the volume codec gives coding order (slices or bands first); the chunk was stored in its own
            decoded = np.transpose(decoded, [meta["axes"].index(letter) for letter in meta["file_axes"]])
        decoded = np.ascontiguousarray(decoded)
        return ndarray_copy(decoded, out) if out is not None else decoded

    def get_config(self) -> dict[str, Any]:
        """``{"id": "walloc", "quality": ..., "model": ..., "axes": ..., "payload": ...}`` (JSON)."""
        return {"id": self.codec_id, "quality": self.quality, "model": self.model, "axes": self.axes, "payload": self.payload}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Walloc:
        """The codec :meth:`get_config` describes (``id`` may be present)."""
        settings = {key: value for key, value in config.items() if key != "id"}
        return cls(**settings)

    def __repr__(self) -> str:
        return f"Walloc(quality={self.quality!r}, model={self.model!r}, axes={self.axes!r}, payload={self.payload!r})"


__all__ = ["Walloc", "check_chunk_dtype", "chunk_axes"]
