"""``--refine N``: an image's latent indices searched through the fixed decoder, tile by tile.

The search itself is :func:`walloc_cli.model.refine.refine_window` (torch). Here it runs over
an image of any size in bounded memory: the latent grid is cut into :data:`REFINE_TILE` tiles
(:func:`walloc_cli.codecs.tiles.tiles`); each tile's latents move while the latents around it
stay as they are (already refined ones included: one pass of block coordinate descent). A tile
changes the samples within ``r`` latents of it (``r`` = :func:`walloc_cli.codecs.tiles.decode_margin`,
the decoder's and the inverse transform's reach), so its loss is scored on the tile plus ``r``
latents each side, which a window of the tile plus ``2 r`` latents decodes exactly. Every
sample a tile changes is scored, so the whole image's loss never rises from one tile to the next.

A photo up to ``REFINE_TILE * 2**J`` pixels a side is one window, with no overhead; larger
ones decode ``(T + 4r)^2 / T^2`` latents per tile (2.1x at T = 128, r = 14). Memory is one
window's forward and backward pass (about 0.4 GB at T = 128 through the 64-channel decoders),
plus the image and its indices, which the encoder holds anyway.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from walloc_cli.codecs.image_tiles import TILE, signal_reader
from walloc_cli.codecs.tiles import Tile, companded_tile, decode_margin, encode_margin, latent_grid, tile_samples, tiles
from walloc_cli.errors import InputError, ModelError
from walloc_cli.files.images import ImageData
from walloc_cli.model.refine import RefineSettings
from walloc_cli.model.runtime import Runtime
from walloc_cli.model.zoo import ModelCard

REFINE_TILE = TILE  # latents a side: one window up to 1024 x 1024 pixels at J = 3
# --refine's largest N: past 200 steps the search had stopped moving on every validation photo.
MAX_REFINE = 1000


def training_lam(card: ModelCard) -> float:
    """The ``lam`` a model was trained with (its card's run configuration): the rate-distortion
    trade-off the search keeps. :class:`ModelError` when the card does not record one."""
    training = card.card.get("training", {})
    config = training.get("run_config", {}).get("train") or training.get("config") or {}
    lam = config.get("lam")
    if not isinstance(lam, (int, float)) or isinstance(lam, bool) or not lam > 0:
        raise ModelError(f"model {card.name!r} records no training lam: --refine needs it")
    return float(lam)


def refined_indices(codec: Runtime, model: str, card: ModelCard, image: ImageData, q: np.ndarray, step: float, settings: RefineSettings, cache: dict[Any, Any], key: Any, tile: int = REFINE_TILE) -> np.ndarray:
    """Indices ``(L, ceil(H / 2**J), ceil(W / 2**J))`` (``q``'s dtype) of ``image`` at ``step``
    after ``settings.iterations`` steps of search per tile, starting from the plain indices ``q`` of
    :func:`walloc_cli.codecs.image_tiles.image_indices` (not modified). ``cache[key]`` holds the
    companded latents when the encoder kept them; else each tile's are computed again.
    ``model`` names the model as the encoder was given it (name or card path)."""
    try:
        import torch  # noqa: F401  (the search imports it next)

        from walloc_cli.model.refine import Window, laplace_fit, refine_window
    except ImportError as error:
        if error.name != "torch":
            raise
        raise ModelError("refine needs PyTorch: pip install 'walloc[train]'") from None
    from walloc_cli.model.zoo import load_network

    network, _ = load_network(model)
    lam = training_lam(card)
    cfg = codec.cfg
    shape = (image.height, image.width)
    grid = latent_grid(shape, cfg.block)
    read = signal_reader(image, cfg.channels)
    reach = decode_margin(cfg)
    loc, scale = laplace_fit(q)
    out = q.copy()
    companded = cache.get(key)
    for part in tiles(grid, (tile, tile)):
        start = None  # flip starts from the indices; the surrogates from the continuous latents
        if settings.surrogate != "flip":
            start = companded[(slice(None), *part.slices())] if companded is not None else companded_tile(codec, read, shape, part, encode_margin(cfg.levels))
        scored = _window(part, grid, reach)  # every latent whose samples the tile's latents reach
        window = _window(part, grid, 2 * reach)  # and every latent those samples depend on
        region = tile_samples(window, shape, cfg.block)
        inner = tile_samples(scored, shape, cfg.block)
        best, _, _ = refine_window(
            network,
            Window(
                x=read(region),
                q=out[(slice(None), *window.slices())],
                free=tuple(slice(o - w, o - w + e) for o, w, e in zip(part.origin, window.origin, part.extent)),
                start=None if start is None else start / step,
                scored=tuple(slice(i.start - r.start, i.stop - r.start) for i, r in zip(inner, region)),
            ),
            step, lam, loc, scale, settings,
        )
        out[(slice(None), *part.slices())] = best
    return out


def _window(part: Tile, grid: tuple[int, ...], margin: int) -> Tile:
    """``part`` grown by ``margin`` latents each side, clipped to the grid."""
    lo = tuple(max(0, o - margin) for o in part.origin)
    hi = tuple(min(g, o + e + margin) for g, o, e in zip(grid, part.origin, part.extent))
    return Tile(lo, tuple(h - low for h, low in zip(hi, lo)))


def refine_settings(refine: int | RefineSettings) -> RefineSettings:
    """``refine`` as settings: a number of steps takes the tuned defaults. :class:`InputError`
    outside ``0..MAX_REFINE`` steps."""
    steps = refine.iterations if isinstance(refine, RefineSettings) else refine
    if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= MAX_REFINE:
        raise InputError(f"refine must be a whole number of steps 0..{MAX_REFINE}, got {steps}")
    return refine if isinstance(refine, RefineSettings) else RefineSettings(steps)


__all__ = ["MAX_REFINE", "refine_settings", "REFINE_TILE", "refined_indices", "training_lam"]
