"""The one modality dispatch: from a modality (a header's ``modality``, or what
:func:`walloc_cli.files.sniff.detect` found: a :class:`~walloc_cli.files.sniff.Kind`'s value is
the same word) to that modality's functions, a :class:`~walloc_cli.api.options.Modality`.

:func:`modality` is the table: ``"image"``, ``"audio"`` and ``"volume"`` to the record built by
:mod:`walloc_cli.api.image_io`, :mod:`walloc_cli.api.audio_io` and
:mod:`walloc_cli.api.volume_io`, each imported when first asked for (a photo's compress never
loads the audio and volume codecs). :mod:`walloc_cli.api.files`, :mod:`walloc_cli.api.arrays`
and :mod:`walloc_cli.api.verify` look modalities up here and never branch on them themselves
(:mod:`walloc_cli.api.latents` reads latents without the model, torch-free, and keeps its own
three readers). Public, so that evaluation can use it too.
"""

from __future__ import annotations

from typing import Any

from walloc_cli.api.latents import codec_config
from walloc_cli.api.options import Modality
from walloc_cli.errors import FormatError
from walloc_cli.files.sniff import Kind
from walloc_cli.format.header import MODALITIES
from walloc_cli.model.config import CodecConfig


def modality(name: str) -> Modality:
    """The functions of modality ``name`` (one of :data:`MODALITIES`); :class:`FormatError`
    naming any other."""
    if name == "image":
        from walloc_cli.api import image_io

        return image_io.MODALITY
    if name == "audio":
        from walloc_cli.api import audio_io

        return audio_io.MODALITY
    if name == "volume":
        from walloc_cli.api import volume_io

        return volume_io.MODALITY
    raise FormatError(f"modality {name!r} is not supported by this walloc (reads image, audio, volume)")


def for_input(kind: Kind, axes: str | None = None) -> Modality:
    """The modality a compress input of ``kind`` (not a ``.wlc``: callers refuse that in their
    own words) is coded as: a volume whenever ``axes`` are given, else its kind; an unknown
    file goes to the image reader, which names the problem."""
    return modality("volume" if axes is not None else kind.value if kind.value in MODALITIES else "image")


def for_header(header: dict[str, Any]) -> Modality:
    """The modality of a ``.wlc`` header; :class:`FormatError` for one this walloc does not read."""
    return modality(header.get("modality"))  # type: ignore[arg-type]  # anything else is refused there


def describe_rates(header: dict[str, Any], size: int) -> dict[str, Any]:
    """``walloc info``'s rates for a validated header and a file of ``size`` bytes: the
    modality's (bpp, kbit/s or bits/voxel; ratio), then the model's reduction."""
    info = for_header(header).rates(header, size)
    info["reduction"] = CodecConfig(**codec_config(header)).reduction
    return info


__all__ = ["MODALITIES", "describe_rates", "for_header", "for_input", "modality"]
