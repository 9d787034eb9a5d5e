"""Compressed-domain learning on real photos: walloc latents (16x DR) against pixels downsampled 4x.

WaLLoC's claim (Jacobellis & Yadwadkar, DCC 2025) is that its encoder gives a *uniform*
dimensionality reduction that keeps more of what a classifier needs than reducing resolution to
the same number of values. This script measures that on the project's own photos, on this CPU::

    walloc data photos                                                                 # once: data/photos
    OMP_NUM_THREADS=1 python examples/compressed_learning.py --task zoom                 # 5.3 min
    OMP_NUM_THREADS=1 python examples/compressed_learning.py --task rotation --epochs 10 # 12 min

(times measured on this project's 2-core CPU while other jobs shared it; the outputs of those
runs are in ``examples/results/``).

Two tasks, both with exact labels, balanced classes and no hand labelling, on 64x64 patches:

* ``zoom`` (3 classes, chance 33.3%): the same place of a photo seen at three scales. From a
  256x256 window: its central 64x64 crop (zoom1), its central 128x128 crop area-downsampled
  2x (zoom2), the whole window area-downsampled 4x (zoom4). Only the scale tells them apart:
  the density of detail and edges, sharpness, texture statistics. It is a texture task that
  targets what resolution reduction throws away, so it tests the claim directly; it is not
  a semantic benchmark.
* ``rotation`` (4 classes, chance 25%): a patch rotated by 0, 90, 180 or 270 degrees (the
  "rotation prediction" task of Gidaris et al., ICLR 2018). Telling "up" needs content: sky
  above ground, light from above, upright objects.

Data, split by PHOTO so that every test patch comes from a photo never seen in training:

* train: the 31 ``train`` + 2 ``val`` photos of ``data/photos``; test: the 8 ``test`` photos
  (4 scikit-image photos, 4 wallpapers). Up to ``--per-photo`` windows per photo (a fixed
  random choice of grid positions: 64x64 non-overlapping for rotation, each in the 4 rotations;
  256x256 at stride 128 for zoom, each giving the 3 zooms).
* (a) **latents**: each patch is compressed to a real ``.wlc`` file with the shipped
  ``rgb-16x-v`` model at quantisation step 1 (the finest step it was trained for), into
  ``DIR/{train,test}/CLASS/`` (class folders, e.g. ``zoom1``); the latents are read back with
  ``walloc_cli.WlcDataset(..., dequantize=True)`` through a ``DataLoader(num_workers=2)``,
  without running the decoder: 12 x 8 x 8 = 768 values per patch.
* (b) **pixels**: the same patches, area-downsampled 4x (mean of 4x4 blocks, kept as floats:
  no 8-bit rounding, no compression): 3 x 16 x 16 = 768 values per patch.
* The same classifier for both (only the first convolution's input channels differ): three 3x3
  conv + batch norm + ReLU layers (32, 64, 64 channels), adaptive average pooling to 4x4 (so
  both see the same 4x4 layout of features and have the same head), dropout 0.3, linear to the
  classes. Inputs standardised per channel with training-set statistics. AdamW (lr 2e-3,
  weight decay 1e-4), cosine schedule, batch 128, ``--epochs`` epochs, no augmentation, no
  early stopping, no tuning on the test photos: the accuracy reported is the final epoch's.
  The pixel network runs at 16x16, the latent one at 8x8: it costs about 4x the compute.
* ``--seeds`` seeds (network initialisation and batch order); the patches are the same for all.

It prints accuracy mean +- std (sample std over seeds) and the training time of each run, and
writes the numbers as JSON with ``--json``. Whatever comes out is what is reported.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader

import walloc_cli
from walloc_cli.api.dataset import WlcDataset

ROTATIONS = (0, 90, 180, 270)
ZOOMS = (1, 2, 4)
TASKS = {"rotation": [f"rot{d:03d}" for d in ROTATIONS], "zoom": [f"zoom{z}" for z in ZOOMS]}
MODEL, STEP = "rgb-16x-v", 1.0


def area(pixels: np.ndarray, factor: int) -> np.ndarray:
    """``(H, W, C)`` -> ``(H/factor, W/factor, C)`` float64: the mean of each ``factor``-square block."""
    h, w, c = pixels.shape
    return pixels.reshape(h // factor, factor, w // factor, factor, c).mean(axis=(1, 3))


def cells(pixels: np.ndarray, side: int, stride: int, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Up to ``count`` ``(side, side, 3)`` windows at a fixed random choice of grid positions
    (``stride`` apart), in raster order."""
    positions = [(r, c) for r in range(0, pixels.shape[0] - side + 1, stride) for c in range(0, pixels.shape[1] - side + 1, stride)]
    chosen = sorted(rng.permutation(len(positions))[:count])
    return [pixels[positions[k][0] : positions[k][0] + side, positions[k][1] : positions[k][1] + side] for k in chosen]


def task_items(task: str, photo: Path, size: int, per_photo: int, rng: np.random.Generator) -> list[tuple[str, np.ndarray, int]]:
    """``(relative file name, (size, size, 3) uint8 patch, label)`` for one photo.

    rotation: non-overlapping patches, each in the 4 rotations. zoom: windows of ``4*size``
    (stride ``2*size``); from each, the central ``size`` crop (zoom1), the central ``2*size``
    crop area-downsampled 2x (zoom2) and the whole window area-downsampled 4x (zoom4): the
    same place seen at three scales, so only the scale tells the classes apart.
    """
    pixels = np.asarray(Image.open(photo).convert("RGB"))
    items = []
    if task == "rotation":
        for k, patch in enumerate(cells(pixels, size, size, per_photo, rng)):
            for label, degrees in enumerate(ROTATIONS):
                items.append((f"{TASKS[task][label]}/{photo.stem}_{k:03d}.wlc", np.ascontiguousarray(np.rot90(patch, degrees // 90)), label))
        return items
    for k, window in enumerate(cells(pixels, 4 * size, 2 * size, per_photo, rng)):
        for label, zoom in enumerate(ZOOMS):
            margin = (4 * size - zoom * size) // 2
            crop = window[margin : margin + zoom * size, margin : margin + zoom * size].astype(np.float64)
            patch = np.rint(area(crop, zoom)).astype(np.uint8)
            items.append((f"{TASKS[task][label]}/{photo.stem}_{k:03d}.wlc", patch, label))
    return items


def build_split(task: str, photos: list[Path], folder: Path, size: int, per_photo: int, seed: int) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Compress every patch of ``photos`` into ``folder/CLASS/``.

    Returns the area-downsampled pixels ``(N, 3, size/4, size/4)`` float32 in [0, 1], their
    labels ``(N,)`` (in the order the files sort, which :class:`WlcDataset` also uses), and costs.
    """
    rng = np.random.default_rng(seed)
    items = [item for photo in photos for item in task_items(task, photo, size, per_photo, rng)]
    items.sort(key=lambda item: item[0])
    started = time.perf_counter()
    n_bytes = 0
    for name, patch, _ in items:
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        n_bytes += len(walloc_cli.compress(patch, target, model=MODEL))
    encode_s = time.perf_counter() - started
    small = np.stack([area(patch.astype(np.float64), 4) for _, patch, _ in items]) / 255  # (N, size/4, size/4, 3)
    pixels = np.ascontiguousarray(small.transpose(0, 3, 1, 2).astype(np.float32))
    labels = np.array([label for _, _, label in items], dtype=np.int64)
    return pixels, labels, {"encode_s": encode_s, "files": len(items), "mean_bytes": n_bytes / len(items)}


def read_latents(folder: Path, classes: list[str]) -> tuple[torch.Tensor, torch.Tensor, float]:
    """All latents of ``folder`` through WlcDataset + DataLoader(num_workers=2): ``(N, 12, 8, 8)`` float32."""
    started = time.perf_counter()
    dataset = WlcDataset(folder, dequantize=True)
    assert dataset.classes == classes, dataset.classes
    xs, ys = [], []
    for x, y in DataLoader(dataset, batch_size=256, num_workers=2):
        xs.append(x)
        ys.append(y)
    return torch.cat(xs), torch.cat(ys), time.perf_counter() - started


class SmallCNN(nn.Module):
    """``(N, channels, S, S)`` to ``(N, classes)`` logits; the same network for latents and pixels."""

    def __init__(self, channels: int, classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for n_in, n_out in ((channels, 32), (32, 64), (64, 64)):
            layers += [nn.Conv2d(n_in, n_out, 3, padding=1), nn.BatchNorm2d(n_out), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4))
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * 16, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def standardise(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel standardisation with the training set's mean and std."""
    mean = train.mean(dim=(0, 2, 3), keepdim=True)
    std = train.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return (train - mean) / std, (test - mean) / std


def train_and_test(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor, seed: int, epochs: int, classes: int) -> tuple[float, float]:
    """Train a fresh SmallCNN; return (test accuracy after the last epoch, training seconds)."""
    torch.manual_seed(seed)
    model = SmallCNN(x_train.shape[1], classes)
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    batch = 128
    steps = epochs * math.ceil(len(x_train) / batch)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    generator = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x_train), generator=generator)
        for start in range(0, len(order), batch):
            index = order[start : start + batch]
            loss = nn.functional.cross_entropy(model(x_train[index]), y_train[index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    seconds = time.perf_counter() - started
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model(x_test[s : s + 1024]).argmax(1) for s in range(0, len(x_test), 1024)])
    return float((predicted == y_test).float().mean()), seconds


def summary(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/photos"), help="photo set built by `walloc data photos`")
    parser.add_argument("--task", choices=sorted(TASKS), default="zoom")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--patch", type=int, default=64, help="patch side (a multiple of 8)")
    parser.add_argument("--per-photo", type=int, default=32, help="patches per photo, at most")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    if not (args.data / "manifest.json").exists():
        raise SystemExit(f"{args.data}: no photo set (run `walloc data photos` first)")
    train_photos = sorted((args.data / "train").glob("*.png")) + sorted((args.data / "val").glob("*.png"))
    test_photos = sorted((args.data / "test").glob("*.png"))
    total = time.perf_counter()
    classes = TASKS[args.task]
    with tempfile.TemporaryDirectory(prefix="walloc-cl-") as folder:
        root = Path(folder)
        pix_train, y_train_np, cost_train = build_split(args.task, train_photos, root / "train", args.patch, args.per_photo, seed=0)
        pix_test, y_test_np, cost_test = build_split(args.task, test_photos, root / "test", args.patch, args.per_photo, seed=1)
        lat_train, y_train, read_train = read_latents(root / "train", classes)
        lat_test, y_test, read_test = read_latents(root / "test", classes)
    # the Dataset sorts files exactly as build_split did: the labels must agree
    assert torch.equal(y_train, torch.from_numpy(y_train_np)) and torch.equal(y_test, torch.from_numpy(y_test_np))
    print(f"photos: {len(train_photos)} train, {len(test_photos)} test; task {args.task} ({len(classes)} classes), {args.patch}x{args.patch} patches: "
          f"{len(y_train)} train, {len(y_test)} test samples")
    print(f"encode ({MODEL}, step {STEP:g}): {(cost_train['encode_s'] + cost_test['encode_s']) / (len(y_train) + len(y_test)) * 1000:.1f} ms/patch, "
          f"{(cost_train['mean_bytes'] * len(y_train) + cost_test['mean_bytes'] * len(y_test)) / (len(y_train) + len(y_test)):.0f} B/file; "
          f"latents read back without decoding: {(read_train + read_test) / (len(y_train) + len(y_test)) * 1000:.2f} ms/file")
    representations = {
        "latents": (lat_train, lat_test),
        "pixels": (torch.from_numpy(pix_train), torch.from_numpy(pix_test)),
    }
    results: dict[str, dict[str, Any]] = {}
    for name, (train, test) in representations.items():
        train, test = standardise(train, test)
        accuracies, seconds = [], []
        for seed in range(args.seeds):
            accuracy, spent = train_and_test(train, y_train, test, y_test, seed, args.epochs, len(classes))
            accuracies.append(accuracy)
            seconds.append(spent)
            print(f"  {name:8s} seed {seed}: test accuracy {accuracy * 100:.1f}%  ({spent:.1f} s)", flush=True)
        mean, std = summary(accuracies)
        params = sum(p.numel() for p in SmallCNN(train.shape[1], len(classes)).parameters())
        results[name] = {"input": list(train.shape[1:]), "values": int(np.prod(train.shape[1:])), "parameters": params,
                         "accuracy": accuracies, "mean": mean, "std": std, "train_seconds": seconds}
    print(f"\n{'input':8s} {'shape':>10s} {'values':>6s} {'params':>7s}  test accuracy ({args.seeds} seeds)  train time/run")
    for name, r in results.items():
        shape = "x".join(map(str, r["input"]))
        print(f"{name:8s} {shape:>10s} {r['values']:>6d} {r['parameters']:>7d}  {r['mean'] * 100:5.1f} +- {r['std'] * 100:.1f} %"
              f"               {statistics.mean(r['train_seconds']):.1f} s")
    print(f"chance {100 / len(classes):.1f} %; total {time.perf_counter() - total:.0f} s")
    if args.json:
        record = {"task": args.task, "classes": classes, "model": MODEL, "step": STEP, "patch": args.patch, "epochs": args.epochs,
                  "train_samples": len(y_train), "test_samples": len(y_test), "costs": {"train": cost_train, "test": cost_test,
                  "read_seconds": read_train + read_test}, "results": results}
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
