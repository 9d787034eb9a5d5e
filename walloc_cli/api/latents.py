"""Latents without decoding: read the integer latents of a ``.wlc`` file, dequantise them, export them.

WaLLoC's point is compressed-domain learning: a classifier can train on the latents directly, at a
fixed dimensionality reduction, without ever running the decoder CNN. This module parses the
container and the lossless payload only (WebP/PNG planes, :mod:`walloc_cli.format.payload`): it never
loads model weights. Reading needs the codec configuration (latent channels, wavelet levels,
companding bits), which it takes from the card of the installed model the file names (matched
by SHA-256, reading the JSON card only), else from the header's own ``codec`` table, so files
made with a model that is not installed still give their latents.

What a file gives, by the header's ``modality``:

* ``image``: one ``(L, ceil(H / 2**J), ceil(W / 2**J))`` int32 array (``L`` latent channels,
  12 for the 16x RGB models, at 1/8 resolution for ``J = 3``).
* ``audio``: a list with one ``(streams, L, T_b)`` int32 array per block, as coded: each block
  carries its context frames (``LatentInfo.blocks``), which the decoder needs to reproduce the
  file exactly. :func:`audio_timeline` drops the context and concatenates the blocks' own
  latents along time into one ``(streams, L, ceil(frames / 2**J))`` array, the form to learn
  on. ``streams`` follows the header's layout: ``mono`` (1), ``mid-side`` (2: M = (L+R)/2,
  S = (L-R)/2) or ``channels`` (one per channel).
* ``volume``: one ``(L, ceil(A0 / 2**J), ceil(A1 / 2**J), ceil(A2 / 2**J))`` int16 array, the
  latent grid of the whole volume (8 channels at 1/4 resolution per axis for the shipped 8x
  models), its tiles put back in place.
* anything else: :class:`FormatError` naming the modality.

Dequantisation (:func:`dequantize`) inverts the companding, as the codec's bottleneck defines it
(:mod:`walloc_cli.model.config`, the arithmetic :class:`walloc_cli.model.network.WallocCodec` uses)::

    u = index * step                        (companded value; clipped to +-qmax, what the decoder saw in training)
    z = s * sqrt(2) * erfinv(u / lmax)      (the linear encoder's output)

with ``lmax = 2**(bits-1) - 1/2``, ``qmax = 2**(bits-1) - 1`` and ``s = 2 lmax / sqrt(2 pi)`` for
the model's companding ``bits``. ``z`` is linear in the wavelet coefficients, which is what a
linear probe or a small CNN wants; the integer indices are the cheaper, exact form.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from walloc_cli.codecs.base import WlcSource, open_wlc
from walloc_cli.format.chunks import AudioBlockHead
from walloc_cli.format.container import WlcReader
from walloc_cli.format.header import declares_split
from walloc_cli.errors import FormatError, InputError
from walloc_cli.format.header import check_codec_matches, check_latent_bits, chunk_tally, same_model, validate_header
from walloc_cli.format.payload import PayloadError, decode_planes
from walloc_cli.model import config as model_config

Source = WlcSource
Latents = np.ndarray | list[np.ndarray]


@dataclasses.dataclass(frozen=True)
class LatentInfo:
    """What :func:`read_latents` knows about the latents besides their values.

    ``header`` is the file's whole JSON header; ``codec`` the model's configuration (a dict of
    :class:`walloc_cli.model.config.CodecConfig` fields); ``extra`` the file's other chunks (alpha
    plane, ICC profile) that :func:`walloc_cli.api.arrays.decode_latents` needs to give back
    exactly what decompression gives.
    """

    modality: str
    model: str
    sha256: str
    step: float
    bits: int  # bits of a signed index at ``step`` (the payload's width)
    codec: dict[str, Any]
    header: dict[str, Any]
    blocks: tuple[AudioBlockHead, ...] = ()
    extra: dict[str, bytes] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def latent_dim(self) -> int:
        return int(self.codec["latent_dim"])

    @property
    def block(self) -> int:
        """Samples per latent along each axis: ``2**levels``."""
        return 2 ** int(self.codec["levels"])

    @property
    def reduction(self) -> float:
        """Dimensionality reduction: signal values per latent value."""
        return model_config.CodecConfig.from_dict(self.codec).reduction

    @property
    def lmax(self) -> float:
        return model_config.compand_lmax(int(self.codec["bits"]))

    @property
    def qmax(self) -> int:
        return model_config.compand_qmax(int(self.codec["bits"]))

    @property
    def compand_scale(self) -> float:
        return model_config.compand_scale(int(self.codec["bits"]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (what ``walloc latents`` writes beside each ``.npy``)."""
        return {
            "modality": self.modality, "model": self.model, "sha256": self.sha256, "step": self.step,
            "bits": self.bits, "codec": self.codec, "reduction": self.reduction,
            "blocks": [b._asdict() for b in self.blocks],
        }


def codec_config(header: dict[str, Any]) -> dict[str, Any]:
    """The model's configuration of a validated header: from its installed card (JSON only, no
    weights) when the SHA-256 matches, after checking that the header's ``codec`` copy agrees
    with it, else the header's ``codec`` table."""
    from walloc_cli.model.zoo import available_models

    sha = header["model"]["sha256"]
    for card in available_models():
        if same_model(sha, card.sha256):
            config = dataclasses.asdict(card.config)
            check_codec_matches(header, config)
            return config
    return dataclasses.asdict(model_config.CodecConfig.from_dict(header["codec"]))  # validated (header.validate_codec)


def read_latents(source: Source) -> tuple[Latents, LatentInfo]:
    """Integer latents of a ``.wlc`` file (bytes, path or binary file object) and their metadata.

    Parses the container and the lossless payload only; the decoder is not run and no weights
    are loaded. Every CRC is checked. Images give an ``(L, h, w)`` int32 array, audio a list of
    per-block ``(streams, L, T_b)`` int32 arrays (see the module docstring and
    :func:`audio_timeline`).

    Raises:
        FormatError: not a valid ``.wlc`` file, damaged, or a modality this walloc cannot read.
        InputError: the path does not exist or is a directory.
    """
    with open_wlc(source) as reader:
        modality = validate_header(reader.header)  # every field, before any is used
        return LATENT_READERS[modality](reader)


def _info(header: dict[str, Any], codec: dict[str, Any], **extra: Any) -> LatentInfo:
    latent = header["latent"]
    return LatentInfo(
        modality=header["modality"], model=header["model"]["name"], sha256=header["model"]["sha256"],
        step=float(latent["step"]), bits=int(latent["bits"]), codec=codec, header=header, **extra,
    )


def _check_bits(reader: WlcReader, codec: dict[str, Any]) -> None:
    check_latent_bits(reader.header, reader.version, model_config.index_bits(int(codec["bits"]), float(reader.header["latent"]["step"])))


def _image_latents(reader: WlcReader) -> tuple[np.ndarray, LatentInfo]:
    from walloc_cli.codecs.image import image_latents

    header = reader.header
    codec = codec_config(header)
    if codec["dims"] != 2:
        raise FormatError(f"invalid header: an image file names a {codec['dims']}-D model")
    meta, latent = header["image"], header["latent"]
    block = 2 ** codec["levels"]
    shape = (codec["latent_dim"], -(-meta["height"] // block), -(-meta["width"] // block))
    if tuple(latent["shape"]) != shape:
        raise FormatError(f"invalid header: latent shape {latent['shape']} does not match {list(shape)} for this image and model")
    _check_bits(reader, codec)
    q, extra = image_latents(reader, shape)
    return q.astype(np.int32), _info(header, codec, extra=extra)  # the documented dtype; the decoder keeps them compact


def _volume_latents(reader: WlcReader) -> tuple[np.ndarray, LatentInfo]:
    from walloc_cli.codecs.volume import volume_latents

    header = reader.header
    codec = codec_config(header)
    if codec["dims"] != 3:
        raise FormatError(f"invalid header: a volume file names a {codec['dims']}-D model")
    _check_bits(reader, codec)
    return volume_latents(reader, codec["latent_dim"], 2 ** codec["levels"]).astype(np.int16, copy=False), _info(header, codec)  # the documented dtype


def _audio_latents(reader: WlcReader) -> tuple[list[np.ndarray], LatentInfo]:
    from walloc_cli.codecs.audio_blocks import parse_block, stream_count

    header = reader.header
    codec = codec_config(header)
    if codec["dims"] != 1:
        raise FormatError(f"invalid header: an audio file names a {codec['dims']}-D model")
    audio, latent = header["audio"], header["latent"]
    _check_bits(reader, codec)
    streams = stream_count(latent["streams"], audio["channels"])
    block = 2 ** codec["levels"]
    arrays: list[np.ndarray] = []
    blocks: list[AudioBlockHead] = []
    written = 0
    tally = chunk_tally(header)
    expected = -(-audio["frames"] // latent["block"])
    for chunk in reader.iter_chunks():
        if tally.add(chunk.type) > expected:
            raise FormatError(f"more AUDB chunks than the {expected} the header declares")
        head, images = parse_block(chunk.data, latent["block"], latent["margin"])
        if head.first != written or written + head.frames > audio["frames"]:
            raise FormatError(f"audio block at frame {head.first} is out of place (expected frame {written})")
        length = -(-head.extent // block)
        try:
            q = decode_planes(images, (streams * codec["latent_dim"], length), latent["bits"], latent["payload"], declares_split(header))
        except PayloadError as error:
            raise FormatError(f"audio block at frame {head.first}: {error}") from None
        arrays.append(q.reshape(streams, codec["latent_dim"], length).astype(np.int32))  # the documented dtype
        blocks.append(head)
        written += head.frames
    if written != audio["frames"]:
        raise FormatError(f"truncated: {written} of {audio['frames']} frames present")
    return arrays, _info(header, codec, blocks=tuple(blocks))


#: The lossless stage of each modality (no model runs): ``reader`` (header validated) to
#: ``(latents, info)``. The one place latents branch on the modality; it stays here, torch-free,
#: rather than in :mod:`walloc_cli.api.modalities` (which loads the codecs).
LATENT_READERS: dict[str, Callable[[WlcReader], tuple[Latents, LatentInfo]]] = {
    "image": _image_latents,
    "audio": _audio_latents,
    "volume": _volume_latents,
}


def audio_timeline(latents: Iterable[np.ndarray], info: LatentInfo) -> np.ndarray:
    """Per-block audio latents to one ``(streams, L, ceil(frames / 2**J))`` array along time.

    Each block keeps only the latents of its own frames (its context is dropped): latent ``t``
    of the result covers frames ``t*2**J .. (t+1)*2**J - 1``. Block starts and context lengths
    are multiples of ``2**J`` (65536 and 1024 frames against 32), so nothing is cut mid-latent.
    """
    if info.modality != "audio":
        raise InputError(f"audio_timeline takes audio latents, not {info.modality}")
    block = info.block
    parts = []
    for q, where in zip(latents, info.blocks, strict=True):
        start = where.lead // block
        parts.append(q[..., start : start + -(-where.frames // block)])
    return np.concatenate(parts, axis=-1)


def dequantize(latents: np.ndarray, info: LatentInfo) -> np.ndarray:
    """Integer indices (any shape) to the encoder's output ``z`` through the companding inverse.

    Returns float32 of the same shape: ``z = s sqrt2 erfinv(clip(index*step, +-qmax) / lmax)``
    (:func:`walloc_cli.model.config.dequantize`; torch is not imported).
    """
    return model_config.dequantize(latents, int(info.codec["bits"]), info.step)


def learning_array(latents: Latents, info: LatentInfo, dequantized: bool = False) -> np.ndarray:
    """One array per file, the form to learn on or export: images ``(L, h, w)``, audio the
    :func:`audio_timeline` ``(streams, L, T)``; int32 indices, or float32 ``z`` when ``dequantized``."""
    array = audio_timeline(latents, info) if info.modality == "audio" else latents
    assert isinstance(array, np.ndarray)
    return dequantize(array, info) if dequantized else array


def export_npy(src: Path, dst: Path, *, dequantized: bool = False, overwrite: bool = False) -> tuple[np.ndarray, LatentInfo]:
    """Write the latents of ``.wlc`` file ``src`` as ``.npy`` ``dst`` (:func:`learning_array`'s
    array), atomically, refusing to overwrite without ``overwrite``. Returns what was written."""
    from walloc_cli.files.safe_io import atomic_output

    latents, info = read_latents(src)
    array = learning_array(latents, info, dequantized)
    with atomic_output(Path(dst), overwrite=overwrite) as handle:
        np.save(handle, array, allow_pickle=False)
    return array, info


__all__ = ["LatentInfo", "audio_timeline", "codec_config", "dequantize", "export_npy", "learning_array", "read_latents"]
