"""WlcDataset: latents of a folder (or list) of .wlc files as tensors, with folder labels,
through a DataLoader with worker processes, and pad_collate for mixed sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from walloc_cli.api import arrays as library
from walloc_cli.errors import FormatError, InputError
from walloc_cli.api.latents import dequantize, read_latents
from walloc_cli.api.dataset import WlcDataset, pad_collate


def patch(size: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : size[0], 0 : size[1]] / 9.0
    planes = [0.5 + 0.3 * np.sin(x * rng.uniform(0.5, 2) + y + k) for k in range(3)]
    return np.rint(np.clip(np.stack(planes, -1), 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """root/cats/*.wlc (3 files), root/dogs/*.wlc (2 files, one in a nested folder), all 32x32."""
    root = tmp_path_factory.mktemp("set")
    names = ["cats/a.wlc", "cats/b.wlc", "cats/c.wlc", "dogs/d.wlc", "dogs/more/e.wlc"]
    for seed, name in enumerate(names):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        library.compress(patch((32, 32), seed), root / name, model="rgb-16x-v")
    return root


def test_folder_labels_and_items(folder: Path) -> None:
    dataset = WlcDataset(folder)
    assert len(dataset) == 5 and dataset.classes == ["cats", "dogs"]
    assert dataset.targets == [0, 0, 0, 1, 1]
    x, label = dataset[4]
    assert label == 1 and x.dtype == torch.int64 and tuple(x.shape) == (12, 4, 4)
    np.testing.assert_array_equal(x.numpy(), read_latents(folder / "dogs/more/e.wlc")[0])


def test_dataloader_with_two_workers(folder: Path) -> None:
    dataset = WlcDataset(folder, dequantize=True)
    batches = list(DataLoader(dataset, batch_size=2, num_workers=2))
    x = torch.cat([b[0] for b in batches])
    labels = torch.cat([b[1] for b in batches])
    assert x.shape == (5, 12, 4, 4) and x.dtype == torch.float32
    assert labels.tolist() == [0, 0, 0, 1, 1]
    for k, path in enumerate(dataset.files):
        q, info = read_latents(path)
        np.testing.assert_array_equal(x[k].numpy(), dequantize(q, info))


def test_list_of_files_unlabelled_root_and_refusals(folder: Path, tmp_path: Path) -> None:
    files = sorted(folder.rglob("*.wlc"))
    listed = WlcDataset(files)
    assert listed.classes == ["cats", "dogs", "more"]  # parent folder names
    assert isinstance(WlcDataset(files, labels=False)[0], torch.Tensor)
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "x.wlc").write_bytes((folder / "cats/a.wlc").read_bytes())
    assert isinstance(WlcDataset(flat)[0], torch.Tensor) and WlcDataset(flat).classes == []
    (flat / "sub").mkdir()
    (flat / "sub/y.wlc").write_bytes((folder / "cats/a.wlc").read_bytes()[:-30])
    with pytest.raises(InputError, match="both in the folder and in sub-folders"):
        WlcDataset(flat)
    unlabelled = WlcDataset(flat, labels=False)
    with pytest.raises(FormatError, match=r"sub/y\.wlc: truncated"):  # the file is named
        unlabelled[unlabelled.files.index(flat / "sub" / "y.wlc")]
    with pytest.raises(InputError, match="no .wlc files"):
        WlcDataset([])


def test_pad_collate_mixes_sizes(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    for k, size in enumerate([(16, 40), (33, 24)]):
        library.compress(patch(size, k), tmp_path / "c" / f"{k}.wlc", model="rgb-16x-v")
    dataset = WlcDataset(tmp_path)
    x, labels, shapes = next(iter(DataLoader(dataset, batch_size=2, collate_fn=pad_collate)))
    assert x.shape == (2, 12, 5, 5) and labels.tolist() == [0, 0]
    assert shapes.tolist() == [[2, 5], [5, 3]]
    np.testing.assert_array_equal(x[0, :, :2, :5].numpy(), read_latents(tmp_path / "c/0.wlc")[0])
    assert (x[0, :, 2:] == 0).all() and (x[1, :, :, 3:] == 0).all()
    with pytest.raises(RuntimeError):  # the default collate needs equal shapes, as documented
        next(iter(DataLoader(dataset, batch_size=2)))
