"""walloc: a command-line learned lossy codec (WaLLoC) for photos, audio and volumes.

The package reads as the pipeline, one sub-package a layer, lowest first: ``format`` (the
``.wlc`` bytes: container, payload, header validation; no torch) -> ``model`` (config, wavelet
transform, network, zoo, quality) and ``files`` (readers/writers, sniffing, safe output) ->
``codecs`` (one file codec per modality) and ``data`` (training sets) -> ``api`` (the public
functions) and ``train`` -> ``eval`` -> ``cli``. ``errors``, ``metrics`` and ``_version`` sit
below them all.

Rules (``tests/test_layers.py`` checks them on the source, imports in function bodies
included): a module imports only from lower layers or its own sub-package; modality modules
(image, audio, volume) never import each other; no private name is imported from another
module; no module over 600 lines; nothing changes another library's state at import time
(this module's one registration, below, is the Pillow plugin users ask for); the CLI parses
arguments, calls one library function and renders its :class:`~walloc_cli.codecs.base.Report`.
"""

from walloc_cli._version import __version__

# The Python API (walloc_cli.api.arrays, walloc_cli.api.latents, walloc_cli.api.dataset) is exported
# lazily: `import walloc_cli` (and so every `walloc` command) must not pay for importing torch.
_LAZY = {
    "compress": "walloc_cli.api.arrays",
    "decompress": "walloc_cli.api.arrays",
    "read_latents": "walloc_cli.api.latents",
    "decode_latents": "walloc_cli.api.arrays",
    "dequantize": "walloc_cli.api.latents",
    "audio_timeline": "walloc_cli.api.latents",
    "LatentInfo": "walloc_cli.api.latents",
    "WlcDataset": "walloc_cli.api.dataset",
    "WlcShards": "walloc_cli.api.dataset",
    "pad_collate": "walloc_cli.api.dataset",
}
__all__ = [  # noqa: RUF022 (grouped as _LAZY is)
    "__version__", "compress", "decompress", "read_latents", "decode_latents", "dequantize",
    "audio_timeline", "LatentInfo", "WlcDataset", "WlcShards", "pad_collate",
]

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what the lazy names are, for type checkers and IDEs
    from walloc_cli.api.latents import LatentInfo, audio_timeline, dequantize, read_latents
    from walloc_cli.api.arrays import compress, decode_latents, decompress
    from walloc_cli.api.dataset import WlcDataset, WlcShards, pad_collate


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'walloc_cli' has no attribute {name!r}")


def _register_pillow_plugin() -> None:
    """Make `PIL.Image.open("x.wlc")` work; imports Pillow and the container only, not torch."""
    from walloc_cli.api.pil_plugin import register

    register()


_register_pillow_plugin()
