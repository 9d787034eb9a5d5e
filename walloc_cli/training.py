"""Training loop for WaLLoC image models: CPU by default, CUDA when present; resumable.

Loss (rate-distortion, CompressAI convention): ``bpp_proxy + lam * 255**2 * MSE`` where
``bpp_proxy`` is the bits of the noisy companded latents under a per-channel logistic-mixture
density (:class:`walloc_cli.codec.LogisticMixtureDensity`) divided by the pixel count. MSE alone
lets the encoder's scale, hence the rate, drift upwards; the rate term holds it to the operating
point ``lam`` selects.

Checkpoints are safetensors (model, density and Adam state as flat tensors) plus a JSON sidecar
(step, configs, RNG seed); no pickle. A checkpoint is written every ``checkpoint_every`` steps and
on Ctrl-C, atomically, so a killed run resumes from the last one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import signal
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from walloc_cli.codec import CodecConfig, WallocCodec
from walloc_cli.errors import InputError
from walloc_cli.io_util import atomic_write_bytes
from walloc_cli.wpt import pad_to_multiple, wpt


@dataclasses.dataclass
class TrainConfig:
    """Training hyper-parameters; saved in every checkpoint and model card."""

    lam: float = 0.01  # rate-distortion trade-off (see module docstring)
    steps: int = 20000
    batch: int = 8
    crop: int = 256
    lr: float = 1e-3
    lr_min: float = 2e-5
    warmup: int = 200
    seed: int = 0
    validate_every: int = 500
    checkpoint_every: int = 250
    threads: int = 0  # 0: torch default

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        return cls(**{k: v for k, v in data.items() if k in {f.name for f in dataclasses.fields(cls)}})


def load_photos(folder: Path) -> list[torch.Tensor]:
    """All images of ``folder`` as uint8 tensors ``(3, H, W)``."""
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder of images")
    photos = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}:
            with Image.open(path) as image:
                photos.append(torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1))
    if not photos:
        raise InputError(f"no images in {folder}")
    return photos


def sample_batch(photos: list[torch.Tensor], batch: int, crop: int, rng: random.Random) -> torch.Tensor:
    """Random crops ``(batch, 3, crop, crop)`` in ``[-0.5, 0.5]``, photos weighted by area, with flips."""
    weights = [p.shape[1] * p.shape[2] for p in photos]
    crops = []
    for photo in rng.choices(photos, weights=weights, k=batch):
        _, height, width = photo.shape
        size_h, size_w = min(crop, height), min(crop, width)
        top, left = rng.randint(0, height - size_h), rng.randint(0, width - size_w)
        patch = photo[:, top : top + size_h, left : left + size_w]
        if (size_h, size_w) != (crop, crop):
            patch = torch.nn.functional.pad(patch[None].float(), (0, crop - size_w, 0, crop - size_h), mode="replicate")[0]
        if rng.random() < 0.5:
            patch = patch.flip(-1)
        if rng.random() < 0.5:
            patch = patch.transpose(-1, -2)
        crops.append(patch.float())
    return torch.stack(crops) / 255.0 - 0.5


@torch.no_grad()
def pca_init(model: WallocCodec, x: torch.Tensor, gain: float = 4.0) -> None:
    """Start from linear transform coding: encoder = ``gain`` x top principal components.

    The default (tiny) random init puts every latent well inside one rounding bin, where the
    rate term keeps it; starting from the KLT of the wavelet coefficients gives a working codec
    at step 0. ``gain`` sets the initial quantisation step (one integer = 1/gain in wavelet units).
    Args:
        x: a batch of training signals ``(N, C, *S)`` in the model's normalisation.
    """
    coeffs = wpt(pad_to_multiple(x, model.cfg.levels)[0], model.cfg.levels, model.cfg.boundary)
    flat = coeffs.movedim(1, -1).reshape(-1, coeffs.shape[1]).double()
    mean = flat.mean(0)
    _, vectors = torch.linalg.eigh(torch.cov(flat.T))
    top = vectors[:, -model.cfg.latent_dim :].flip(-1).T  # (latent, wavelet), largest first
    encoder, linear = model.encoder, model.decoder.linear
    assert encoder.bias is not None and linear.bias is not None  # both convs are built with bias
    encoder.weight.copy_((gain * top).reshape(encoder.weight.shape).float())
    encoder.bias.copy_((-gain * top @ mean).float())
    linear.weight.copy_((top.T * model.lmax / gain).reshape(linear.weight.shape).float())
    linear.bias.copy_(mean.float())


def _lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * min(1.0, progress)))


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    tensors = {}
    for index, state in optimizer.state_dict()["state"].items():
        for name, value in state.items():
            tensors[f"optim.{index}.{name}"] = torch.as_tensor(value).detach().clone().cpu()
    return tensors


def _restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    state_dict = optimizer.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    state_dict["state"] = state
    optimizer.load_state_dict(state_dict)


def save_checkpoint(path: Path, model: WallocCodec, optimizer: torch.optim.Optimizer, step: int, train_cfg: TrainConfig, extra: dict[str, Any]) -> None:
    """Write ``path`` (safetensors) and ``path.json`` atomically."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update(_optimizer_tensors(optimizer))
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp))
    os.replace(tmp, path)
    meta = {"step": step, "codec": model.cfg.to_dict(), "train": dataclasses.asdict(train_cfg), **extra}
    atomic_write_bytes(path.with_name(path.name + ".json"), (json.dumps(meta, indent=2) + "\n").encode())


def load_checkpoint(path: Path, model: WallocCodec, optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
    tensors = load_file(str(path))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if optimizer is not None:
        _restore_optimizer(optimizer, tensors)
    return json.loads(path.with_name(path.name + ".json").read_text())


def validate(model: WallocCodec, photos: list[torch.Tensor]) -> dict[str, float]:
    """Real rate (lossless-WebP payload bytes) and PSNR (peak 255) over ``photos``, pixel-weighted."""
    from walloc_cli.payload import encode_planes

    model.eval()
    bits = pixels = 0.0
    squared = 0.0
    with torch.no_grad():
        for photo in photos:
            x = photo[None].float().to(next(model.parameters()).device) / 255.0 - 0.5
            q = model.encode(x)
            chunks = encode_planes(q[0].cpu().numpy(), model.cfg.bits, "webp")
            x_hat = model.decode(q, tuple(x.shape[2:]))
            rounded = ((x_hat + 0.5) * 255).round().clamp(0, 255)
            squared += float(((rounded - photo.float().to(rounded.device)) ** 2).sum())
            bits += 8 * sum(len(c) for c in chunks)
            pixels += photo.shape[1] * photo.shape[2]
    model.train()
    mse = squared / (pixels * 3)
    return {"bpp": bits / pixels, "psnr": 10 * math.log10(255**2 / max(mse, 1e-12))}


def train(
    codec_cfg: CodecConfig,
    train_cfg: TrainConfig,
    train_dir: Path,
    val_dir: Path | None,
    checkpoint: Path,
    device: str = "auto",
    log: Callable[[dict[str, Any]], None] | None = None,
) -> WallocCodec:
    """Train (or resume) a model; returns it. ``checkpoint`` is resumed from when it exists."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if train_cfg.threads:
        torch.set_num_threads(train_cfg.threads)
    torch.manual_seed(train_cfg.seed)
    model = WallocCodec(codec_cfg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=train_cfg.lr)
    step = 0
    history: list[dict[str, Any]] = []
    if checkpoint.exists():
        meta = load_checkpoint(checkpoint, model, optimizer)
        step, history = meta["step"], meta.get("history", [])
    photos = load_photos(train_dir)
    val_photos = load_photos(val_dir) if val_dir else []
    rng = random.Random(train_cfg.seed * 1_000_003 + step)  # resumed runs continue the stream
    if step == 0:
        pca_init(model, sample_batch(photos, 64, train_cfg.crop, rng).to(device))
    stop = {"now": False}
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, lambda *_: stop.__setitem__("now", True))  # finish the step, save
    started, seen = time.time(), 0
    try:
        while step < train_cfg.steps and not stop["now"]:
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(step, train_cfg)
            x = sample_batch(photos, train_cfg.batch, train_cfg.crop, rng).to(device)
            out = model(x)
            mse = torch.mean((out["x_hat"] - x) ** 2)
            bpp = out["bits"] / (x.shape[0] * x.shape[2] * x.shape[3])
            loss = bpp + train_cfg.lam * 255**2 * mse
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            step += 1
            seen += x.shape[0]
            record: dict[str, Any] = {"step": step, "loss": loss.item(), "bpp_proxy": bpp.item(), "psnr_train": 10 * math.log10(1 / max(mse.item(), 1e-12)), "samples_per_s": seen / (time.time() - started)}
            if val_photos and (step % train_cfg.validate_every == 0 or step == train_cfg.steps):
                record.update({f"val_{k}": v for k, v in validate(model, val_photos).items()})
                history.append(record)
            if log:
                log(record)
            if step % train_cfg.checkpoint_every == 0:
                save_checkpoint(checkpoint, model, optimizer, step, train_cfg, {"history": history})
    finally:
        signal.signal(signal.SIGINT, previous)
        save_checkpoint(checkpoint, model, optimizer, step, train_cfg, {"history": history})
    return model
