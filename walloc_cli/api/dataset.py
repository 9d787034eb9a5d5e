"""A ``torch.utils.data.Dataset`` of ``.wlc`` latents: train on the compressed files directly.

Each item is read with :func:`walloc_cli.api.latents.read_latents` (container + lossless payload,
never the decoder), so an epoch costs a WebP decode of the small latent planes per file, not a
CNN pass: images give ``(L, ceil(H/2**J), ceil(W/2**J))`` (``(12, H/8, W/8)`` for the 16x RGB
models), audio ``(streams, L, ceil(frames/2**J))`` (:func:`walloc_cli.api.latents.audio_timeline`).

Labels come from folders, as torchvision's ``ImageFolder`` does: for ``WlcDataset("root")`` the
class of ``root/cat/x.wlc`` (or ``root/cat/more/x.wlc``) is ``cat``; ``classes`` is the sorted
list of class names and a label is its index. A root with no sub-folders gives an unlabelled set
(items are tensors alone); a root mixing both is refused. For a list of files, the class is each
file's parent folder name (``labels=False`` drops labels).

Batching: the default collate stacks items, which needs equal shapes (e.g. patches of one size).
For files of different sizes use ``collate_fn=pad_collate``: latents are zero-padded at the end
of each axis after the first to the largest in the batch (index 0 is the latent value 0, also
after dequantisation) and the original shapes come back beside them.

Works with ``DataLoader(num_workers > 0)``: the dataset holds only paths and flags (picklable),
and each worker reads its files independently.

Needs PyTorch, which is an optional extra (``pip install 'walloc[train]'``): without it, importing
this module (``from walloc_cli import WlcDataset``) raises an :class:`ImportError` that says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

try:
    import torch
    from torch.utils.data import Dataset, IterableDataset, get_worker_info
except ImportError as error:  # the default install has no torch: say which extra brings it
    raise ImportError("WlcDataset needs PyTorch: pip install 'walloc[train]'", name="torch") from error

from walloc_cli.errors import FormatError, InputError, WallocError
from walloc_cli.api.latents import learning_array, read_latents
from walloc_cli.api.shards import iter_samples

Item = torch.Tensor | tuple[torch.Tensor, int]


def latent_tensor(source: str | Path | bytes, name: str, dequantize: bool, transform: Callable[[torch.Tensor], torch.Tensor] | None) -> torch.Tensor:
    """The learning tensor of one ``.wlc`` (a path or its bytes): int64 indices, or float32 ``z``
    when ``dequantize``, then ``transform``. A walloc error names ``name`` (inside a DataLoader
    worker an index alone says nothing)."""
    try:
        latents, info = read_latents(source)
        array = learning_array(latents, info, dequantize)
    except WallocError as error:
        raise type(error)(f"{name}: {error}") from None
    tensor = torch.from_numpy(array) if dequantize else torch.from_numpy(array.astype(np.int64))
    return transform(tensor) if transform is not None else tensor


class WlcDataset(Dataset):  # type: ignore[type-arg]
    """Latents of ``.wlc`` files as tensors: int64 indices, or float32 ``z`` with ``dequantize``.

    Args:
        source: a folder (searched recursively for ``*.wlc``) or a list of ``.wlc`` paths.
        dequantize: yield the encoder's output ``z`` through the companding inverse
            (:func:`walloc_cli.api.latents.dequantize`) instead of the integer indices.
        labels: ``None`` (default) labels by sub-folder as the module docstring says;
            ``False`` never labels.
        transform: applied to each latent tensor (e.g. a random crop).
    """

    def __init__(self, source: str | Path | Iterable[str | Path], *, dequantize: bool = False, labels: bool | None = None, transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.dequantize = dequantize
        self.transform = transform
        if isinstance(source, (str, Path)):
            root = Path(source)
            if not root.is_dir():
                raise InputError(f"{root}: not a folder of .wlc files")
            self.files = sorted(root.rglob("*.wlc"))
            groups = [p.relative_to(root).parts[0] if len(p.relative_to(root).parts) > 1 else None for p in self.files]
            if any(g is None for g in groups) and any(g is not None for g in groups) and labels is not False:
                raise InputError(f"{root}: .wlc files both in the folder and in sub-folders; put every file in a class folder, or pass labels=False")
            labelled = labels is not False and all(g is not None for g in groups)
        else:
            self.files = [Path(p) for p in source]
            groups = [p.parent.name for p in self.files]
            labelled = labels is not False
        if not self.files:
            raise InputError(f"{source}: no .wlc files")
        self.classes: list[str] = sorted({g for g in groups if g is not None}) if labelled else []
        index = {name: i for i, name in enumerate(self.classes)}
        self.targets: list[int] = [index[g] for g in groups if g is not None] if labelled else []

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> Item:
        path = self.files[i]
        tensor = latent_tensor(path, str(path), self.dequantize, self.transform)
        return (tensor, self.targets[i]) if self.classes else tensor

    def latent_shape(self, i: int = 0) -> tuple[int, ...]:
        """Shape of item ``i``'s latents (reads that file)."""
        item = self[i]
        return tuple((item[0] if isinstance(item, tuple) else item).shape)


class WlcShards(IterableDataset):  # type: ignore[type-arg]
    """Latents streamed from tar shards of ``.wlc`` files (:mod:`walloc_cli.api.shards`): one
    sequential read per shard, local or from object storage (any URI fsspec opens), instead of
    one file per sample. Items are as :class:`WlcDataset` gives them: the latent tensor, with
    its label when the shards hold ``.cls`` members (``labels=False`` drops them).

    Each ``DataLoader`` worker, and each rank of a ``torch.distributed`` job when one is
    initialised, reads its own shards (shard ``i`` goes to reader ``i % readers``), so give at
    least as many shards as readers; ``shuffle`` reorders the shards each epoch (call
    :meth:`set_epoch`), and a ``buffer`` of samples within them.

    Args:
        shards: shard paths or URIs, in order.
        dequantize, transform: as :class:`WlcDataset`.
        labels: ``None`` labels by ``.cls`` members when a sample has one; ``False`` never.
        shuffle: shuffle shards and samples (seeded by ``seed`` and the epoch).
        buffer: samples held for the within-shard shuffle.
    """

    def __init__(self, shards: Sequence[str | Path], *, dequantize: bool = False, labels: bool | None = None, transform: Callable[[torch.Tensor], torch.Tensor] | None = None, shuffle: bool = False, buffer: int = 256, seed: int = 0) -> None:
        self.shards = [str(s) for s in shards]
        if not self.shards:
            raise InputError("no shards given")
        self.dequantize, self.labels, self.transform = dequantize, labels, transform
        self.shuffle, self.buffer, self.seed, self.epoch = shuffle, max(1, buffer), seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s shuffle (every reader must agree on it: call it before each epoch)."""
        self.epoch = epoch

    def my_shards(self) -> list[str]:
        """The shards this reader (DataLoader worker, distributed rank) reads this epoch."""
        import random

        order = list(self.shards)
        if self.shuffle:
            random.Random(self.seed * 1_000_003 + self.epoch).shuffle(order)
        info = get_worker_info()
        workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
        ranks, rank = 1, 0
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            ranks, rank = torch.distributed.get_world_size(), torch.distributed.get_rank()
        return order[rank * workers + worker :: ranks * workers]

    def _item(self, key: str, parts: dict[str, bytes], shard: str) -> Item:
        if "wlc" not in parts:
            raise FormatError(f"{shard}: sample {key!r} has no .wlc member")
        tensor = latent_tensor(parts["wlc"], f"{shard}: {key}.wlc", self.dequantize, self.transform)
        if self.labels is False or "cls" not in parts:
            return tensor
        return tensor, int(parts["cls"].decode())

    def __iter__(self) -> Iterator[Item]:
        import random

        rng = random.Random(self.seed * 7919 + self.epoch)
        held: list[Item] = []
        for shard in self.my_shards():
            for key, parts in iter_samples(shard):
                item = self._item(key, parts, shard)
                if not self.shuffle:
                    yield item
                    continue
                held.append(item)
                if len(held) >= self.buffer:  # give back a random one of the held items
                    yield held.pop(rng.randrange(len(held)))
        rng.shuffle(held)
        yield from held


def pad_collate(batch: Sequence[Item]) -> tuple[torch.Tensor, ...]:
    """Collate latents of different sizes: ``(x, shapes)`` or ``(x, labels, shapes)``.

    ``x`` is ``(N, C, *S_max)``: each item zero-padded at the end of every axis after the first
    to the batch's largest (images ``(L, h, w)`` pad ``h`` and ``w``; audio ``(streams, L, T)``
    pads ``T``, ``L`` being equal); the first axis must agree. ``shapes`` ``(N, ndim - 1)`` int64
    holds each item's own size on those axes, for masking; ``labels`` ``(N,)`` int64.
    """
    labelled = isinstance(batch[0], tuple)
    tensors = [item[0] if isinstance(item, tuple) else item for item in batch]
    if len({(t.dim(), t.shape[0]) for t in tensors}) != 1:
        raise InputError(f"cannot batch latents of shapes {sorted({tuple(t.shape) for t in tensors})}: the first axis (channels or streams) differs")
    shapes = torch.tensor([list(t.shape[1:]) for t in tensors], dtype=torch.int64)
    size = shapes.max(dim=0).values.tolist()
    out = tensors[0].new_zeros((len(tensors), tensors[0].shape[0], *size))
    for k, t in enumerate(tensors):
        out[(k, slice(None)) + tuple(slice(0, n) for n in t.shape[1:])] = t
    if labelled:
        labels = torch.tensor([item[1] for item in batch], dtype=torch.int64)  # type: ignore[index]
        return out, labels, shapes
    return out, shapes


__all__ = ["WlcDataset", "WlcShards", "latent_tensor", "pad_collate"]
