"""The inference runtime the codecs call: one small protocol, two implementations.

:class:`Runtime` is all the codecs need of a model: its config, the width of its indices, the
encoder (``companded`` then ``quantize``) and the decoder, on numpy arrays. Two runtimes fit it:

* ``lean`` (the default): :class:`walloc_cli.model.lean.LeanCodec`, numpy and BLAS only, so
  compress, decompress, info, verify and latents work where torch is not installed;
* ``torch``: :class:`TorchRuntime`, the training network :class:`walloc_cli.model.network.WallocCodec`
  behind the same protocol: the reference the lean path is tested against.

``WALLOC_RUNTIME=torch`` in the environment (or ``runtime="torch"`` to
:func:`walloc_cli.model.zoo.load_model`) selects the torch one. Both encode in float64, so that
they write the same latent indices (see :mod:`walloc_cli.model.lean`); both decode in float32.

Imports: numpy and the model layer's torch-free modules; torch only inside :class:`TorchRuntime`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from walloc_cli.errors import ModelError
from walloc_cli.model.config import CodecConfig

if TYPE_CHECKING:
    from walloc_cli.model.network import WallocCodec

RuntimeName = Literal["lean", "torch"]
RUNTIMES: tuple[RuntimeName, ...] = ("lean", "torch")
ENVIRONMENT = "WALLOC_RUNTIME"


class Runtime(Protocol):
    """A model ready for inference. Signals ``(N, C, *S)`` float32, latents ``(N, L, *S')``."""

    cfg: CodecConfig

    def index_max(self, step: float = 1.0) -> int:
        """Largest magnitude of a latent index at ``step``."""
        ...

    def index_bits(self, step: float = 1.0) -> int:
        """Bits of a signed latent index at ``step``."""
        ...

    def companded(self, x: np.ndarray) -> np.ndarray:
        """Signals ``(N, C, *S)`` to companded latents ``u`` ``(N, L, *S')`` (float64): the
        whole encoder cost, shared by every step."""
        ...

    def quantize(self, u: np.ndarray, step: float = 1.0) -> np.ndarray:
        """``u`` to indices ``round(u / step)`` clamped to ``±index_max(step)``, int32."""
        ...

    def encode(self, x: np.ndarray, step: float = 1.0) -> np.ndarray:
        """Signals ``(N, C, *S)`` to indices ``(N, L, *S')`` int32."""
        ...

    def decode(self, q: np.ndarray, shape: tuple[int, ...], step: float = 1.0, condition: float | None = None) -> np.ndarray:
        """Indices ``(N, L, *S')`` coded at ``step`` to signals ``(N, C, *shape)`` float32."""
        ...


def runtime_name(requested: str | None = None) -> RuntimeName:
    """The runtime to use: ``requested``, else ``$WALLOC_RUNTIME``, else ``lean``.

    :class:`ModelError` for an unknown name, and for ``torch`` where torch is not installed
    (one line naming the extra that brings it).
    """
    name = requested or os.environ.get(ENVIRONMENT) or "lean"
    if name not in RUNTIMES:
        raise ModelError(f"unknown runtime {name!r} (from {'the call' if requested else ENVIRONMENT}; choose {' or '.join(RUNTIMES)})")
    if name == "torch":
        try:
            import torch  # noqa: F401
        except ImportError:
            raise ModelError(f"runtime 'torch' needs torch, which is not installed (pip install 'walloc[train]'), or unset {ENVIRONMENT}") from None
    return name  # type: ignore[return-value]


class TorchRuntime:
    """:class:`walloc_cli.model.network.WallocCodec` behind the :class:`Runtime` protocol.

    The encoder runs in float64 (the fused transform and projection with the network's weights
    cast up), as the lean runtime does, so both write the same indices; ``network`` is the
    float32 module itself (its own ``encode`` is today's float32 path, kept for comparison).
    """

    def __init__(self, network: WallocCodec) -> None:
        self.network = network
        self.cfg = network.cfg

    def index_max(self, step: float = 1.0) -> int:
        return self.network.index_max(step)

    def index_bits(self, step: float = 1.0) -> int:
        return self.network.index_bits(step)

    def companded(self, x: np.ndarray) -> np.ndarray:
        import torch

        from walloc_cli.model.wpt import pad_to_multiple, wpt_project

        cfg = self.cfg
        with torch.no_grad():
            padded, _ = pad_to_multiple(torch.from_numpy(np.asarray(x, np.float64)), cfg.levels)
            encoder = self.network.encoder
            bias = encoder.bias.double() if encoder.bias is not None else None
            z = wpt_project(padded, cfg.levels, encoder.weight.double(), bias, cfg.boundary)
            return self.network.compand(z).numpy()

    def quantize(self, u: np.ndarray, step: float = 1.0) -> np.ndarray:
        import torch

        return self.network.quantize(torch.from_numpy(np.asarray(u)), step).numpy()

    def encode(self, x: np.ndarray, step: float = 1.0) -> np.ndarray:
        return self.quantize(self.companded(x), step)

    def decode(self, q: np.ndarray, shape: tuple[int, ...], step: float = 1.0, condition: float | None = None) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.network.decode(torch.from_numpy(np.asarray(q, np.int32)), shape, step, condition).numpy()


def set_threads(threads: int) -> None:
    """Use ``threads`` CPU threads for inference: the lean runtime's workers
    (:func:`walloc_cli.model.lean_wpt.set_threads`) and torch's pool if torch is already
    imported (this never imports it)."""
    import sys

    from walloc_cli.model.lean_wpt import set_threads as set_lean_threads

    set_lean_threads(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


__all__ = ["ENVIRONMENT", "RUNTIMES", "Runtime", "RuntimeName", "TorchRuntime", "runtime_name", "set_threads"]
