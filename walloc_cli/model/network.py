"""The WaLLoC model: WPT -> 1x1 linear encoder -> companding + rounding -> CNN decoder -> inverse WPT.

One class serves 1D (audio), 2D (images) and 3D (volumes): ``CodecConfig.dims`` picks the
convolution rank; everything else is shared. The configuration and the bottleneck's integer and
companding arithmetic are torch-free, in :mod:`walloc_cli.model.config`. The model contract
follows CompressAI: ``forward`` returns a dict (``x_hat``, ``bits``), and inference is split into
:meth:`WallocCodec.encode` (signal -> integer latents) and :meth:`WallocCodec.decode` (integer
latents -> signal) so that the container can sit between them.

Signals enter normalised: ``x`` in roughly ``[-0.5, 0.5]`` (see :mod:`walloc_cli.files.images`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from walloc_cli.model.config import CodecConfig, compand_lmax, compand_qmax, compand_scale, index_bits, index_max
from walloc_cli.model.wpt import crop_to, iwpt, pad_to_multiple, wpt, wpt_project

ConvNd = nn.Conv1d | nn.Conv2d | nn.Conv3d


def _conv(dims: int) -> type[nn.Conv1d] | type[nn.Conv2d] | type[nn.Conv3d]:
    """The convolution class for spatial rank ``dims`` (1, 2 or 3)."""
    classes: dict[int, type[nn.Conv1d] | type[nn.Conv2d] | type[nn.Conv3d]] = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
    return classes[dims]


class ResidualBlock(nn.Module):
    """conv3 -> LeakyReLU -> conv3, plus identity. Shapes ``(N, C, *S)`` in and out."""

    def __init__(self, dims: int, width: int) -> None:
        super().__init__()
        conv = _conv(dims)
        self.conv1 = conv(width, width, 3, padding=1)
        self.conv2 = conv(width, width, 3, padding=1)
        self.act = nn.LeakyReLU(0.1, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


class Decoder(nn.Module):
    """Latent ``(N, decoder_inputs, *S)`` to wavelet coefficients ``(N, wavelet_channels, *S)``.

    All convolutions run at latent resolution (``1/2**J`` of the signal per axis), which is what
    keeps CPU decoding fast. A linear 1x1 path carries the coarse reconstruction so the residual
    CNN only learns the non-linear correction.
    """

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        conv = _conv(cfg.dims)
        self.linear: ConvNd = conv(cfg.decoder_inputs, cfg.wavelet_channels, 1)
        self.head = conv(cfg.decoder_inputs, cfg.decoder_channels, 3, padding=1)
        self.blocks = nn.Sequential(*[ResidualBlock(cfg.dims, cfg.decoder_channels) for _ in range(cfg.decoder_blocks)])
        self.act = nn.LeakyReLU(0.1, inplace=True)
        self.tail: ConvNd = conv(cfg.decoder_channels, cfg.wavelet_channels, 3, padding=1)
        nn.init.zeros_(self.tail.weight)  # start as the linear decoder; the CNN adds detail
        assert self.tail.bias is not None
        nn.init.zeros_(self.tail.bias)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.linear(y) + self.tail(self.act(self.blocks(self.head(y))))


class LogisticMixtureDensity(nn.Module):
    """Per-channel mixture of logistics: a factorised density of the companded latents.

    Used only in the training loss as a differentiable rate proxy (bits of the latents under a
    zeroth-order model). The payload itself is coded losslessly by WebP/PNG, so this density is
    never needed to decode and its float rounding can never desynchronise a decoder.
    """

    def __init__(self, channels: int, components: int = 4) -> None:
        super().__init__()
        spread = torch.linspace(-2.0, 2.0, components)
        self.means = nn.Parameter(spread.repeat(channels, 1))
        self.log_scales = nn.Parameter(torch.full((channels, components), math.log(2.0)))
        self.logits = nn.Parameter(torch.zeros(channels, components))

    def bits(self, u: torch.Tensor, step: float | torch.Tensor = 1.0) -> torch.Tensor:
        """Bits of each sample of ``u`` ``(N, C, *S)`` quantised with bin width ``step``: ``(N,)``.

        ``step`` is a number or a tensor broadcastable to ``u`` (one step per sample).
        """
        shape = (1, u.shape[1]) + (1,) * (u.dim() - 2)
        total = u.new_zeros(u.shape)
        weights = torch.softmax(self.logits, dim=-1)
        for k in range(self.means.shape[1]):
            mean = self.means[:, k].view(shape)
            inv_scale = torch.exp(-self.log_scales[:, k]).view(shape)
            upper = torch.sigmoid((u + step / 2 - mean) * inv_scale)
            lower = torch.sigmoid((u - step / 2 - mean) * inv_scale)
            total = total + weights[:, k].view(shape) * (upper - lower)
        return -torch.log2(total.clamp_min(1e-9)).flatten(1).sum(1)


class WallocCodec(nn.Module):
    """WaLLoC codec for signals ``(N, channels, *S)`` with ``len(S) == dims``."""

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        self.cfg = cfg
        conv = _conv(cfg.dims)
        self.encoder: ConvNd = conv(cfg.wavelet_channels, cfg.latent_dim, 1)
        self.decoder: Decoder = Decoder(cfg)
        self.density = LogisticMixtureDensity(cfg.latent_dim)
        # Companding: u = lmax * erf(z / (s*sqrt 2)) = lmax * (2*Phi(z/s) - 1). The scale s makes
        # the slope at 0 exactly 1, so one integer step equals one unit of z near zero. The
        # arithmetic lives in walloc_cli.model.config, shared with the torch-free latent reader.
        self.lmax = compand_lmax(cfg.bits)
        self.qmax = compand_qmax(cfg.bits)
        self.compand_scale = compand_scale(cfg.bits)

    # --- analysis -----------------------------------------------------------------------
    def analysis(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        """``(N, C, *S)`` signal to companded latent ``u`` ``(N, latent_dim, *ceil(S/2**J))``."""
        padded, shape = pad_to_multiple(x, self.cfg.levels)
        z = self.encoder(wpt(padded, self.cfg.levels, self.cfg.boundary))
        return self.compand(z), shape

    def compand(self, z: torch.Tensor) -> torch.Tensor:
        """``u = lmax * erf(z / (s*sqrt 2))``: bounded to ``(-lmax, lmax)``, slope 1 at 0."""
        return self.lmax * torch.erf(z / (self.compand_scale * math.sqrt(2.0)))

    def index_max(self, step: float = 1.0) -> int:
        """Largest magnitude of a latent index at quantisation step ``step`` (``qmax`` at 1)."""
        return index_max(self.cfg.bits, step)

    def index_bits(self, step: float = 1.0) -> int:
        """Bits of a signed latent index at ``step``: ``cfg.bits`` at 1, one more per halving of it."""
        return index_bits(self.cfg.bits, step)

    def quantize(self, u: torch.Tensor, step: float = 1.0) -> torch.Tensor:
        """Indices ``round(u / step)`` clamped to ``±index_max(step)``; int32.

        The payload stores these indices, not the values ``index * step``: a coarse step then
        leaves a dense alphabet of small integers, which the lossless coder codes compactly.
        """
        limit = self.index_max(step)
        return torch.round(u / step).clamp(-limit, limit).to(torch.int32)

    def synthesis(self, uq: torch.Tensor, shape: tuple[int, ...], step: float | torch.Tensor = 1.0) -> torch.Tensor:
        """Dequantised latent ``(N, latent_dim, *S')`` (index x step) to signal cropped to ``shape``.

        ``step`` (a number or a per-sample tensor ``(N, 1, ..., 1)``) reaches the decoder only
        when ``cfg.step_input``.
        """
        y = uq / self.lmax
        if self.cfg.step_input:
            plane = torch.log2(torch.as_tensor(step, dtype=y.dtype, device=y.device))
            y = torch.cat([y, plane.expand((y.shape[0], 1) + y.shape[2:]) if plane.dim() else plane.expand_as(y[:, :1])], dim=1)
        coeffs = self.decoder(y)
        return crop_to(iwpt(coeffs, self.cfg.levels, self.cfg.boundary), shape)

    # --- inference API --------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, x: torch.Tensor, step: float = 1.0) -> torch.Tensor:
        """Signal ``(N, C, *S)`` to integer latents ``(N, latent_dim, *ceil(S/2**J))`` (int32)."""
        return self.quantize(self.companded(x), step)

    @torch.no_grad()
    def companded(self, x: torch.Tensor) -> torch.Tensor:
        """Signal ``(N, C, *S)`` to the companded latent ``u`` before quantisation: the whole
        encoder cost, shared by every step (:meth:`quantize` makes the indices of any step).

        Uses the fused transform+projection (:func:`walloc_cli.model.wpt.wpt_project`); equal to
        ``analysis`` up to float rounding.
        """
        padded, _ = pad_to_multiple(x, self.cfg.levels)
        z = wpt_project(padded, self.cfg.levels, self.encoder.weight, self.encoder.bias, self.cfg.boundary)
        return self.compand(z)

    @torch.no_grad()
    def decode(self, q: torch.Tensor, shape: tuple[int, ...], step: float = 1.0, condition: float | None = None) -> torch.Tensor:
        """Integer latent indices (coded at ``step``) to signal ``(N, C, *shape)``.

        ``condition`` is the step value shown to a ``step_input`` decoder (default: ``step``).
        An encoder may pick another one and signal it (volumes' ``latent.condition``): on data
        unlike its training set a step-aware decoder can do better believing another step.
        """
        return self.synthesis(q.to(torch.float32) * step, shape, step if condition is None else condition)

    # --- training -------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, step: float | torch.Tensor = 1.0) -> dict[str, torch.Tensor]:
        """Training pass: additive uniform noise of width ``step`` stands in for rounding.

        ``step`` is a number or a per-sample tensor ``(N, 1, ..., 1)`` (variable-rate training).
        Returns ``x_hat`` (same shape as ``x``), ``bits`` (rate proxy per sample, ``(N,)``) and ``u``.
        """
        u, shape = self.analysis(x)
        noisy = u + (torch.rand_like(u) - 0.5) * step
        noisy = noisy.clamp(-self.qmax, self.qmax)
        x_hat = self.synthesis(noisy, shape, step)
        return {"x_hat": x_hat, "bits": self.density.bits(noisy, step), "u": u}

    def inference_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights needed to encode/decode (the training-only density is left out)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("density.")}
