"""Latents at scale, end to end: photos -> .wlc on a Dask cluster -> tar shards -> training that
streams the shards (WebDataset layout) with ``WlcShards``.

The task is ``examples/compressed_learning.py``'s ``zoom`` task (3 classes: the same place of a
photo at three scales, chance 33.3%; its patches and its SmallCNN are imported from there), split
by photo. What this example adds is the path a data set takes when it outgrows one folder:

1. the patches are written as PNG files in class folders (``DIR/patches/{train,test}/CLASS/``),
   as a data set arrives;
2. :func:`walloc_cli.api.distributed.convert_dataset` compresses them on a ``LocalCluster`` of
   ``--workers`` processes (point ``--scheduler`` at a real cluster's address instead: the paths
   must then be on a file system every worker sees, or be URIs) into ``DIR/wlc/``;
3. :func:`walloc_cli.api.shards.write_shards` packs the ``.wlc`` files with their class index
   into tar shards of ``--per-shard`` samples (``DIR/shards/{train,test}-NNNN.tar``): copy them
   to object storage and give their URIs (``s3://...``) to ``WlcShards`` unchanged;
4. the classifier trains on ``WlcShards(train shards, dequantize=True, shuffle=True)`` through a
   ``DataLoader(num_workers=2)``, each worker streaming its own shards, and is tested on the
   test shards.

::

    cd examples && OMP_NUM_THREADS=1 python train_on_shards.py /work/data/corpus/photos/val \\
        /work/data/corpus/photos/test --work /tmp/shards-demo --epochs 6

It prints the time of each stage and the test accuracy (``examples/results/train_on_shards.txt``
holds a run). The accuracy is this task's, not a claim about shards: streaming changes where
the bytes come from, not what the network sees (``tests/test_shards.py`` checks the latents are
those of the loose files).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from compressed_learning import MODEL, TASKS, SmallCNN, task_items  # same folder: the zoom task and its network
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader

from walloc_cli.api.dataset import WlcShards
from walloc_cli.api.distributed import convert_dataset
from walloc_cli.api.shards import write_shards

TASK = "zoom"
CLASSES = TASKS[TASK]


def write_patches(photos: list[Path], folder: Path, per_photo: int, seed: int) -> int:
    """The task's 64x64 patches of ``photos`` as PNG files in ``folder/CLASS/``; returns how many."""
    rng = np.random.default_rng(seed)
    count = 0
    for photo in photos:
        for name, patch, _ in task_items(TASK, photo, 64, per_photo, rng):
            target = (folder / name).with_suffix(".png")
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(patch).save(target)
            count += 1
    return count


def pack(folder: Path, pattern: Path, per_shard: int) -> list[Path]:
    """Shards of the ``.wlc`` files below ``folder``, labelled by class folder."""
    files = sorted(folder.rglob("*.wlc"))
    return write_shards(files, pattern, root=folder, labels=[CLASSES.index(p.parent.name) for p in files], max_count=per_shard)


def stats(shards: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of the training latents ``(1, L, 1, 1)`` (one streamed pass)."""
    total, squares, count = 0.0, 0.0, 0
    for x, _ in DataLoader(WlcShards(shards, dequantize=True), batch_size=256, num_workers=2):
        total = total + x.sum(dim=(0, 2, 3))
        squares = squares + (x**2).sum(dim=(0, 2, 3))
        count += x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    return mean[None, :, None, None], (squares / count - mean**2).clamp_min(1e-12).sqrt()[None, :, None, None]


def train(train_shards: list[Path], test_shards: list[Path], epochs: int, seed: int) -> tuple[float, float]:
    """Train SmallCNN streaming ``train_shards``; returns (test accuracy, training seconds)."""
    torch.manual_seed(seed)
    mean, std = stats(train_shards)
    dataset = WlcShards(train_shards, dequantize=True, shuffle=True, buffer=512, seed=seed)
    model = SmallCNN(mean.shape[1], len(CLASSES))
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    started = time.perf_counter()
    for epoch in range(epochs):
        dataset.set_epoch(epoch)
        model.train()
        for x, y in DataLoader(dataset, batch_size=128, num_workers=2):
            loss = nn.functional.cross_entropy(model((x - mean) / std), y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        for group in optimiser.param_groups:  # cosine decay, per epoch
            group["lr"] = 1e-3 * (1 + math.cos(math.pi * (epoch + 1) / epochs))
    seconds = time.perf_counter() - started
    model.eval()
    right = seen = 0
    with torch.no_grad():
        for x, y in DataLoader(WlcShards(test_shards, dequantize=True), batch_size=512, num_workers=2):
            right += int((model((x - mean) / std).argmax(1) == y).sum())
            seen += len(y)
    return right / seen, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("train_photos", type=Path)
    parser.add_argument("test_photos", type=Path)
    parser.add_argument("--work", type=Path, required=True, help="a new folder for patches, .wlc files and shards")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scheduler", help="a running Dask scheduler's address (default: a LocalCluster)")
    parser.add_argument("--per-photo", type=int, default=6)
    parser.add_argument("--per-shard", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from dask.distributed import Client, LocalCluster

    started = time.perf_counter()
    counts = {split: write_patches(sorted(folder.glob("*.png")), args.work / "patches" / split, args.per_photo, args.seed) for split, folder in (("train", args.train_photos), ("test", args.test_photos))}
    print(f"patches: {counts['train']} train, {counts['test']} test ({time.perf_counter() - started:.1f} s)", flush=True)

    started = time.perf_counter()
    cluster = None if args.scheduler else LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=":0")
    with Client(args.scheduler or cluster) as client:
        result = convert_dataset([args.work / "patches"], client, output_dir=args.work / "wlc", options={"model": MODEL})  # step 1, as compressed_learning.py
    if cluster is not None:
        cluster.close()
    for failure in result.failures:
        print(failure.error)
    print(f"converted {len(result.converted)} files on {args.workers} workers ({time.perf_counter() - started:.1f} s), {len(result.failures)} failed", flush=True)

    started = time.perf_counter()
    shards = {split: pack(args.work / "wlc" / split, args.work / "shards" / f"{split}-%04d.tar", args.per_shard) for split in ("train", "test")}
    size = sum(p.stat().st_size for group in shards.values() for p in group)
    print(f"shards: {len(shards['train'])} train, {len(shards['test'])} test, {size / 1e6:.1f} MB ({time.perf_counter() - started:.1f} s)", flush=True)

    accuracy, seconds = train(shards["train"], shards["test"], args.epochs, args.seed)
    print(f"zoom task (chance 33.3%): test accuracy {100 * accuracy:.1f}% after {args.epochs} epochs streamed from shards ({seconds:.1f} s training)")


if __name__ == "__main__":
    main()
