"""Training loop for WaLLoC image models: CPU by default, CUDA when present; resumable.

Loss (rate-distortion, CompressAI convention): ``bpp_proxy + lam * 255**2 * MSE`` where
``bpp_proxy`` is the bits of the noisy companded latents under a per-channel logistic-mixture
density (:class:`walloc_cli.model.network.LogisticMixtureDensity`) divided by the pixel count. MSE alone
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
from typing import Any, Callable, Protocol

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from walloc_cli.model.config import CodecConfig
from walloc_cli.model.network import WallocCodec
from walloc_cli.errors import InputError
from walloc_cli.files.safe_io import atomic_write_bytes
from walloc_cli.model.wpt import pad_to_multiple, wpt


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
    # Variable rate: each sample draws its quantisation step from log-uniform [step_min, step_max]
    # and its distortion weight becomes lam / step**2 (the high-rate slope of a uniform quantiser),
    # so one model learns a whole stretch of its rate-distortion curve. 1, 1 = fixed-rate model.
    step_min: float = 1.0
    step_max: float = 1.0
    rate: str = "mixture"  # rate proxy: "mixture" (learned density), "gaussian" (log sigma), "none" (MSE only)
    init: str = ""  # start from this model (name or card path) instead of the PCA initialisation
    # False: keep the encoder (and so every rate) fixed and train only the decoder, e.g. to teach
    # an --init model's decoder to dequantise at other steps without moving its rates.
    train_encoder: bool = True
    # Scale of the PCA start (one latent integer = 1/init_gain wavelet units at step 1). Adam
    # grows the encoder only slowly, so a loss that wants much finer quantisation than the
    # default (a large lam) should start near it: the optimal step shrinks about as 1/sqrt(lam).
    init_gain: float = 4.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        return cls(**{k: v for k, v in data.items() if k in {f.name for f in dataclasses.fields(cls)}})

    def __post_init__(self) -> None:
        if not 0 < self.step_min <= self.step_max:
            raise ValueError(f"need 0 < step_min <= step_max, got {self.step_min}, {self.step_max}")
        if self.rate not in RATE_PROXIES:
            raise ValueError(f"rate must be one of {', '.join(RATE_PROXIES)}, got {self.rate!r}")


RATE_PROXIES = ("mixture", "gaussian", "none")


def sample_steps(batch: int, cfg: TrainConfig) -> torch.Tensor:
    """Per-sample quantisation steps ``(batch,)``, log-uniform in ``[step_min, step_max]``."""
    lo, hi = math.log(cfg.step_min), math.log(cfg.step_max)
    return torch.exp(lo + (hi - lo) * torch.rand(batch))


def gaussian_bits(u: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """Rate proxy ``(N,)``: entropy of a Gaussian with each channel's batch sigma, at bin ``step``.

    ``log2(sigma * sqrt(2 pi e) / step)`` bits per latent value (floored at 0): the "log sigma"
    penalty of the WaLLoC authors' extension, in bits so it sits on the same scale as bpp.
    """
    sigma = u.transpose(0, 1).flatten(1).std(dim=1).clamp_min(1e-6)  # (C,)
    shape = (1, u.shape[1]) + (1,) * (u.dim() - 2)
    per_value = torch.log2(sigma.view(shape) * math.sqrt(2 * math.pi * math.e) / step).clamp_min(0)
    return per_value.expand_as(u).flatten(1).sum(1)


def rd_loss(model: WallocCodec, x: torch.Tensor, cfg: TrainConfig, steps: torch.Tensor) -> dict[str, torch.Tensor]:
    """Rate-distortion loss of one batch ``x`` ``(N, C, *S)`` at per-sample ``steps`` ``(N,)``.

    ``loss = mean_i(bits_i / pixels + lam / step_i**2 * 255**2 * MSE_i)``; returns ``loss``,
    ``bpp`` (the proxy, mean) and ``mse`` (mean), all scalars.
    """
    step = steps.view((-1,) + (1,) * (x.dim() - 1))
    out = model(x, step)
    pixels = math.prod(x.shape[2:])
    mse_i = (out["x_hat"] - x).pow(2).flatten(1).mean(1)
    if cfg.rate == "mixture":
        bits = out["bits"]
    elif cfg.rate == "gaussian":
        bits = gaussian_bits(out["u"], step)
    else:
        bits = torch.zeros_like(mse_i)
    bpp = bits / pixels
    loss = (bpp + cfg.lam / steps**2 * 255**2 * mse_i).mean()
    return {"loss": loss, "bpp": bpp.mean(), "mse": mse_i.mean()}


def load_photos(folder: Path, channels: int = 3) -> list[torch.Tensor]:
    """All images of ``folder`` as uint8 tensors ``(channels, H, W)`` (3: RGB, 1: gray)."""
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder of images")
    photos = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}:
            with Image.open(path) as image:
                array = np.asarray(image.convert("RGB" if channels == 3 else "L")).copy()
                photos.append(torch.from_numpy(array.reshape(array.shape[0], array.shape[1], -1)).permute(2, 0, 1))
    if not photos:
        raise InputError(f"no images in {folder}")
    return photos


def sample_batch(photos: list[torch.Tensor], batch: int, crop: int, rng: random.Random) -> torch.Tensor:
    """Random crops ``(batch, C, crop, crop)`` in ``[-0.5, 0.5]``, photos weighted by area, with flips."""
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


class PhotoSet:
    """The photos of a folder as training data (uint8 ``(C, H, W)``, cropped on demand)."""

    def __init__(self, folder: Path, channels: int) -> None:
        self.photos = load_photos(folder, channels)

    def batch(self, size: int, crop: int, rng: random.Random) -> torch.Tensor:
        return sample_batch(self.photos, size, crop, rng)

    def validate(self, model: WallocCodec, step: float = 1.0) -> dict[str, float]:
        return validate(model, self.photos, step)


class TrainingSet(Protocol):
    """What the training loop needs of a modality's data: crops ``(N, C, *S)`` and a validation
    returning ``{"bpp": bits per sample position, "psnr": dB}`` measured through the real payload."""

    def batch(self, size: int, crop: int, rng: random.Random) -> torch.Tensor: ...

    def validate(self, model: WallocCodec, step: float = 1.0) -> dict[str, float]: ...


def training_set(folder: Path, cfg: CodecConfig) -> TrainingSet:
    """Photos for 2-D models, audio streams for 1-D ones, ``.npy`` volumes for 3-D ones."""
    if cfg.dims == 1:
        from walloc_cli.train.audio import AudioSet

        if cfg.channels != 1:
            raise InputError("audio models code one stream at a time: use channels = 1")
        return AudioSet(folder)
    if cfg.dims == 2:
        return PhotoSet(folder, cfg.channels)
    from walloc_cli.train.volume import VolumeSet

    if cfg.channels != 1:
        raise InputError("volume models code one scalar field (bands are an axis): use channels = 1")
    return VolumeSet(folder)


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
    linear.weight.zero_()  # the step channel (if any) starts unused
    latent = model.cfg.latent_dim
    linear.weight[:, :latent].copy_((top.T * model.lmax / gain).reshape(linear.weight[:, :latent].shape).float())
    linear.bias.copy_(mean.float())


def init_from(model: WallocCodec, source: str) -> None:
    """Copy a shipped or exported model's weights (name or card path) into ``model`` (fine-tuning).

    The training-only density starts fresh: exported models do not carry it.
    """
    from walloc_cli.model.zoo import load_network

    base, card = load_network(source)
    if dataclasses.replace(base.cfg, step_input=model.cfg.step_input) != model.cfg:
        raise InputError(f"--init model {card.name!r} has config {base.cfg.to_dict()}, not {model.cfg.to_dict()}")
    state = base.inference_state_dict()
    if model.cfg.step_input and not base.cfg.step_input:
        # Widen the decoder's input by the step channel with zero weights: training starts
        # from exactly the base model's output and learns how to use the step.
        for key in ("decoder.linear.weight", "decoder.head.weight"):
            old = state[key]
            state[key] = torch.cat([old, torch.zeros_like(old[:, :1])], dim=1)
    model.load_state_dict(state, strict=False)


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


def checkpoint_step(path: Path) -> int | None:
    """The step checkpoint ``path`` holds (from its JSON sidecar); None when none was saved yet."""
    sidecar = path.with_name(path.name + ".json")
    return int(json.loads(sidecar.read_text())["step"]) if sidecar.exists() else None


def load_checkpoint(path: Path, model: WallocCodec, optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
    tensors = load_file(str(path))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if optimizer is not None:
        _restore_optimizer(optimizer, tensors)
    return json.loads(path.with_name(path.name + ".json").read_text())


def validation_steps(cfg: TrainConfig) -> list[float]:
    """Steps a variable-rate model is validated at: both ends and the geometric middle."""
    return sorted({cfg.step_min, round(math.sqrt(cfg.step_min * cfg.step_max), 4), cfg.step_max})


def validate(model: WallocCodec, photos: list[torch.Tensor], step: float = 1.0) -> dict[str, float]:
    """Real rate (payload bytes) and PSNR (peak 255) at ``step`` over ``photos`` (uint8
    ``(C, H, W)``), pixel-weighted; the payload coded as ``walloc compress`` writes it (the
    format's default coder, :data:`walloc_cli.format.payload.DEFAULT_PAYLOAD`, and its layout),
    so models are judged on the bytes they ship."""
    from walloc_cli.format.container import default_major
    from walloc_cli.format.payload import chooses_split, encode_planes, resolve_payload

    payload = resolve_payload(None, default_major())

    model.eval()
    bits = pixels = 0.0
    squared = 0.0
    with torch.no_grad():
        for photo in photos:
            x = photo[None].float().to(next(model.parameters()).device) / 255.0 - 0.5
            q = model.encode(x, step)
            indices = q[0].cpu().numpy()
            chunks = encode_planes(indices, model.index_bits(step), payload, split=chooses_split(indices.shape, payload, default_major()))  # type: ignore[arg-type]
            x_hat = model.decode(q, tuple(x.shape[2:]), step)
            rounded = ((x_hat + 0.5) * 255).round().clamp(0, 255)
            squared += float(((rounded - photo.float().to(rounded.device)) ** 2).sum())
            bits += 8 * sum(len(c) for c in chunks)
            pixels += photo.shape[1] * photo.shape[2]
    model.train()
    mse = squared / (pixels * model.cfg.channels)
    return {"bpp": bits / pixels, "psnr": 10 * math.log10(255**2 / max(mse, 1e-12))}


@dataclasses.dataclass(frozen=True)
class Distributed:
    """Where this process sits in a ``torchrun`` job (rank 0 of 1 when run alone)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @classmethod
    def from_env(cls) -> "Distributed":
        """Read ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` as ``torchrun`` sets them."""
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0)))


def parameter_digest(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter's bytes, in state-dict order: equal digests = identical weights."""
    import hashlib

    digest = hashlib.sha256()
    for name, value in model.state_dict().items():
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def train(
    codec_cfg: CodecConfig,
    train_cfg: TrainConfig,
    train_dir: Path,
    val_dir: Path | None,
    checkpoint: Path,
    device: str = "auto",
    log: Callable[[dict[str, Any]], None] | None = None,
    run_meta: dict[str, Any] | None = None,
) -> WallocCodec:
    """Train (or resume) a model; returns it. ``checkpoint`` is resumed from when it exists.

    ``run_meta`` (the whole run config, JSON-able) is stored in the checkpoint's sidecar.

    Under ``torchrun --nproc_per_node N`` the same call trains with DistributedDataParallel
    (gloo on CPU, nccl on CUDA): every rank draws its own crops (``batch`` per rank), gradients
    are averaged, and rank 0 alone validates, logs and writes checkpoints. At the end the ranks
    compare parameter digests (recorded in the checkpoint sidecar as ``rank_digests``) and fail
    loudly if they ever diverged.
    """
    dist = Distributed.from_env()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dist.active:
        import torch.distributed as tdist

        if device.startswith("cuda"):
            device = f"cuda:{dist.local_rank}"
            torch.cuda.set_device(device)
        tdist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    try:
        return _train(codec_cfg, train_cfg, train_dir, val_dir, checkpoint, device, log, dist, run_meta or {})
    finally:
        if dist.active:
            import torch.distributed as tdist

            tdist.destroy_process_group()


def _train(
    codec_cfg: CodecConfig,
    train_cfg: TrainConfig,
    train_dir: Path,
    val_dir: Path | None,
    checkpoint: Path,
    device: str,
    log: Callable[[dict[str, Any]], None] | None,
    dist: Distributed,
    run_meta: dict[str, Any],
) -> WallocCodec:
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
    data = training_set(train_dir, codec_cfg)
    val_data = training_set(val_dir, codec_cfg) if val_dir and dist.rank == 0 else None
    if step == 0 and train_cfg.init:
        init_from(model, train_cfg.init)
    elif step == 0:
        # Same seed on every rank, and DDP broadcasts rank 0's weights anyway.
        pca_init(model, data.batch(64, train_cfg.crop, random.Random(train_cfg.seed)).to(device), train_cfg.init_gain)
    model.encoder.requires_grad_(train_cfg.train_encoder)
    net: torch.nn.Module = model
    if dist.active:
        from torch.nn.parallel import DistributedDataParallel

        # The density gets no gradient when another rate proxy is used.
        net = DistributedDataParallel(model, find_unused_parameters=train_cfg.rate != "mixture" or not train_cfg.train_encoder)
    stop = {"now": False}
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, lambda *_: stop.__setitem__("now", True))  # finish the step, save
    started, seen = time.time(), 0

    def save() -> None:
        if dist.rank == 0:
            save_checkpoint(checkpoint, model, optimizer, step, train_cfg, {"history": history, "world_size": dist.world, "run": run_meta})

    try:
        while step < train_cfg.steps and not _any_rank(stop["now"], dist, device):
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(step, train_cfg)
            # Every random draw of a step is seeded by (seed, rank, step): a run resumed from a
            # checkpoint takes exactly the steps the uninterrupted run would have taken.
            rng = random.Random(f"{train_cfg.seed}:{dist.rank}:{step}")
            torch.manual_seed(train_cfg.seed * 1_000_003 + dist.rank * 7_919 + step)
            x = data.batch(train_cfg.batch, train_cfg.crop, rng).to(device)
            terms = rd_loss(net, x, train_cfg, sample_steps(x.shape[0], train_cfg).to(device))  # type: ignore[arg-type]
            loss, bpp, mse = terms["loss"], terms["bpp"], terms["mse"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            step += 1
            seen += x.shape[0] * dist.world
            if dist.rank != 0:
                continue
            record: dict[str, Any] = {"step": step, "steps": train_cfg.steps, "loss": loss.item(), "bpp_proxy": bpp.item(), "psnr_train": 10 * math.log10(1 / max(mse.item(), 1e-12)), "samples_per_s": seen / (time.time() - started)}
            if val_data is not None and (step % train_cfg.validate_every == 0 or step == train_cfg.steps):
                points = [{"step": s, **val_data.validate(model, s)} for s in validation_steps(train_cfg)]
                middle = points[len(points) // 2]
                record.update({"val_bpp": middle["bpp"], "val_psnr": middle["psnr"], "val_points": points})
                history.append(record)
            if log:
                log(record)
            if step % train_cfg.checkpoint_every == 0:
                save()
    finally:
        signal.signal(signal.SIGINT, previous)
        save()
    if dist.active:
        _check_ranks_agree(model, checkpoint, dist)
    return model


def _any_rank(flag: bool, dist: Distributed, device: str) -> bool:
    """True when ``flag`` is set on any rank, so every rank stops at the same step (no hang)."""
    if not dist.active:
        return flag
    import torch.distributed as tdist

    value = torch.tensor([1.0 if flag else 0.0], device=device)
    tdist.all_reduce(value, op=tdist.ReduceOp.MAX)
    return bool(value.item())


def _check_ranks_agree(model: WallocCodec, checkpoint: Path, dist: Distributed) -> None:
    """Gather every rank's parameter digest; rank 0 records them; all ranks fail if they differ."""
    import torch.distributed as tdist

    digests: list[str | None] = [None] * dist.world
    tdist.all_gather_object(digests, parameter_digest(model))
    if dist.rank == 0:
        sidecar = checkpoint.with_name(checkpoint.name + ".json")
        meta = json.loads(sidecar.read_text())
        meta["rank_digests"] = digests
        atomic_write_bytes(sidecar, (json.dumps(meta, indent=2) + "\n").encode())
    if len(set(digests)) != 1:
        raise RuntimeError(f"ranks ended with different weights: {digests}")


def hardware_description(device: str, threads: int, world: int = 1) -> str:
    """One line for a model card: what trained it (CPU model and threads, or the GPU's name)."""
    import platform

    if device.startswith("cuda") and torch.cuda.is_available():
        what = torch.cuda.get_device_name(0)
    else:
        cpu = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        what = f"{cpu} CPU, {threads or torch.get_num_threads()} thread(s) per process"
    return f"{what}{f' x {world} processes (DDP)' if world > 1 else ''}"

