"""walloc as a Zarr v3 array-to-bytes codec (``"name": "walloc"`` in ``zarr.json``).

Zarr v3 arrays name one *serializer* (array -> bytes) per array; :class:`WallocZarr3` is that
serializer, built on the numcodecs codec :class:`walloc_cli.api.zarr_codec.Walloc` (same
configuration, same ``.wlc`` chunks). It is registered in Zarr's ``zarr.codecs`` entry-point
group, so ``zarr.open_array`` finds it from the metadata once walloc is installed::

    import zarr
    from walloc_cli.api.zarr3 import WallocZarr3

    z = zarr.create_array("ms.zarr", shape=cube.shape, chunks=(8, 256, 256), dtype="uint16",
                          serializer=WallocZarr3(axes="CYX", quality=75), compressors=None)
    z[:] = cube

Without installing walloc (a checkout on ``PYTHONPATH``), call :func:`register` once first.
No compressor should follow it (``compressors=None``): the ``.wlc`` payload is already entropy
coded. The Zarr v2 format uses the numcodecs codec directly as its ``compressor``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from zarr.abc.codec import ArrayBytesCodec
from zarr.core.array_spec import ArraySpec
from zarr.core.buffer import Buffer, NDBuffer
from zarr.core.common import JSON, parse_named_configuration

from walloc_cli.api.zarr_codec import Walloc, check_chunk_dtype, chunk_axes
from walloc_cli.errors import InputError

NAME = "walloc"


@dataclass(frozen=True)
class WallocZarr3(ArrayBytesCodec):  # type: ignore[misc]
    """The Zarr v3 serializer of :class:`~walloc_cli.api.zarr_codec.Walloc` (same arguments)."""

    is_fixed_size = False

    quality: float | None = None
    model: str | None = None
    axes: str | None = None
    payload: str | None = None

    def __post_init__(self) -> None:
        # the numcodecs codec checks and normalises the settings; keep what it kept
        codec = self.numcodec
        object.__setattr__(self, "quality", codec.quality)
        object.__setattr__(self, "axes", codec.axes)

    @property
    def numcodec(self) -> Walloc:
        """The numcodecs codec doing the work (cheap: it holds only the settings)."""
        return Walloc(self.quality, self.model, self.axes, self.payload)

    @classmethod
    def from_dict(cls, data: dict[str, JSON]) -> WallocZarr3:
        """From ``{"name": "walloc", "configuration": {...}}`` as :meth:`to_dict` writes it."""
        _, configuration = parse_named_configuration(data, NAME, require_configuration=False)
        return cls(**(configuration or {}))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, JSON]:
        """``{"name": "walloc", "configuration": {quality, model, axes, payload}}``, unset ones left out."""
        settings: dict[str, Any] = {"quality": self.quality, "model": self.model, "axes": self.axes, "payload": self.payload}
        return {"name": NAME, "configuration": {key: value for key, value in settings.items() if value is not None}}

    def validate(self, *, shape: tuple[int, ...], dtype: Any, chunk_grid: Any) -> None:
        """Refuse, when the array is created, a layout or dtype the chunks could not be coded in."""
        chunks = getattr(chunk_grid, "chunk_shape", None)
        ndim = len(chunks) if chunks is not None else len(shape)
        try:
            check_chunk_dtype(dtype.to_native_dtype(), chunk_axes(self.axes, ndim))
        except InputError as error:
            raise ValueError(str(error)) from None

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        array = chunk_array.as_numpy_array()
        data = await asyncio.to_thread(self.numcodec.encode, array)
        return chunk_spec.prototype.buffer.from_bytes(data)

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        array = await asyncio.to_thread(self.numcodec.decode, chunk_bytes.to_bytes())
        if array.shape != tuple(chunk_spec.shape):
            raise InputError(f"a walloc chunk decoded to shape {array.shape}, the array's chunks are {tuple(chunk_spec.shape)}")
        return chunk_spec.prototype.nd_buffer.from_numpy_array(array)

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
        raise NotImplementedError  # variable size: a learned lossy coder


def register() -> None:
    """Register the codec with numcodecs and Zarr by hand, as the entry points of an installed
    walloc do on first use: for a checkout run without installing (benchmarks, notebooks)."""
    import numcodecs
    from zarr.registry import register_codec

    numcodecs.register_codec(Walloc)
    register_codec(NAME, WallocZarr3)


__all__ = ["NAME", "WallocZarr3", "register"]
