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

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

try:
    import torch
    from torch.utils.data import Dataset
except ImportError as error:  # the default install has no torch: say which extra brings it
    raise ImportError("WlcDataset needs PyTorch: pip install 'walloc[train]'", name="torch") from error

from walloc_cli.errors import InputError, WallocError
from walloc_cli.api.latents import learning_array, read_latents

Item = torch.Tensor | tuple[torch.Tensor, int]


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
        try:
            latents, info = read_latents(path)
            array = learning_array(latents, info, self.dequantize)
        except WallocError as error:
            # name the file: inside a DataLoader worker the index alone says nothing
            raise type(error)(f"{path}: {error}") from None
        tensor = torch.from_numpy(array) if self.dequantize else torch.from_numpy(array.astype(np.int64))
        if self.transform is not None:
            tensor = self.transform(tensor)
        return (tensor, self.targets[i]) if self.classes else tensor

    def latent_shape(self, i: int = 0) -> tuple[int, ...]:
        """Shape of item ``i``'s latents (reads that file)."""
        item = self[i]
        return tuple((item[0] if isinstance(item, tuple) else item).shape)


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


__all__ = ["WlcDataset", "pad_collate"]
