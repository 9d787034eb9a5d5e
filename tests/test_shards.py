"""Tar shards of ``.wlc`` files (:mod:`walloc_cli.api.shards`) and :class:`WlcShards`, the
streaming dataset over them: the same latents and labels as :class:`WlcDataset` reads from the
loose files, each sample once across DataLoader workers, from a path or a URI."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

import walloc_cli as walloc
from walloc_cli.api.dataset import WlcDataset, WlcShards
from walloc_cli.api.shards import iter_samples, sample_key, write_shards
from walloc_cli.errors import FormatError, InputError

PHOTO = Path(__file__).resolve().parents[1] / "samples" / "photo.png"
CLASSES = ("cats", "dogs")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """7 real .wlc files (64x64 crops of the sample photo) in two class folders."""
    root = tmp_path_factory.mktemp("latents")
    photo = np.asarray(Image.open(PHOTO).convert("RGB"))
    for k in range(7):
        folder = root / CLASSES[k % 2]
        folder.mkdir(exist_ok=True)
        crop = np.ascontiguousarray(photo[k * 30 : k * 30 + 64, k * 50 : k * 50 + 64])
        walloc.compress(crop, folder / f"p{k}.wlc", quality=40)
    return root


def files_and_labels(root: Path) -> tuple[list[Path], list[int]]:
    files = sorted(root.rglob("*.wlc"))
    return files, [CLASSES.index(p.parent.name) for p in files]


def test_keys_follow_the_webdataset_rule() -> None:
    assert sample_key("cats/p1.wlc") == ("cats/p1", "wlc")
    assert sample_key("x.seg.png") == ("x", "seg.png")
    with pytest.raises(FormatError, match="no key.extension name"):
        sample_key("README")


def test_shards_hold_every_file_once_with_its_label(corpus: Path, tmp_path: Path) -> None:
    files, labels = files_and_labels(corpus)
    shards = write_shards(files, tmp_path / "train-%03d.tar", root=corpus, labels=labels, max_count=3)
    assert [p.name for p in shards] == ["train-000.tar", "train-001.tar", "train-002.tar"]
    samples = [sample for shard in shards for sample in iter_samples(shard)]
    assert [key for key, _ in samples] == [str(p.relative_to(corpus).with_suffix("")) for p in files]
    for (key, parts), path, label in zip(samples, files, labels):
        assert parts == {"wlc": path.read_bytes(), "cls": str(label).encode()}
    with tarfile.open(shards[0]) as archive:  # a plain tar: tar tf lists it
        assert archive.getnames() == ["cats/p0.wlc", "cats/p0.cls", "cats/p2.wlc", "cats/p2.cls", "cats/p4.wlc", "cats/p4.cls"]


def test_dots_in_file_names_do_not_split_keys(corpus: Path, tmp_path: Path) -> None:
    dotted = tmp_path / "cats" / "wallpapers-16.04_a.wlc"
    dotted.parent.mkdir()
    dotted.write_bytes(sorted(corpus.rglob("*.wlc"))[0].read_bytes())
    (shard,) = write_shards([dotted], tmp_path / "d-%d.tar", root=tmp_path, labels=[0])
    assert [(key, sorted(parts)) for key, parts in iter_samples(shard)] == [("cats/wallpapers-16_04_a", ["cls", "wlc"])]


def test_the_streamed_latents_are_those_of_the_loose_files(corpus: Path, tmp_path: Path) -> None:
    files, labels = files_and_labels(corpus)
    shards = write_shards(files, tmp_path / "s-%02d.tar", root=corpus, labels=labels, max_count=2)
    loose = WlcDataset(corpus, dequantize=True)
    expected = {str(p): loose[i] for i, p in enumerate(loose.files)}
    streamed = list(WlcShards(shards, dequantize=True))
    assert len(streamed) == len(files)
    for (tensor, label), path in zip(streamed, files):
        want_tensor, want_label = expected[str(path)]
        assert torch.equal(tensor, want_tensor) and label == want_label == labels[files.index(path)]


def test_dataloader_workers_read_disjoint_shards_and_see_every_sample_once(corpus: Path, tmp_path: Path) -> None:
    files, labels = files_and_labels(corpus)
    shards = write_shards(files, tmp_path / "s-%02d.tar", root=corpus, labels=labels, max_count=2)  # 4 shards
    dataset = WlcShards(shards, shuffle=True, buffer=3, seed=1)
    seen = [int(t.sum()) * 10 + int(label) for batch in DataLoader(dataset, batch_size=1, num_workers=2) for t, label in zip(*batch)]
    reference = [int(t.sum()) * 10 + int(label) for t, label in WlcShards(shards)]
    assert sorted(seen) == sorted(reference)  # each sample exactly once, from two workers


def test_shuffle_changes_the_order_by_epoch_not_the_samples(corpus: Path, tmp_path: Path) -> None:
    files, _ = files_and_labels(corpus)
    shards = write_shards(files, tmp_path / "s-%02d.tar", root=corpus, max_count=1)  # 7 shards, no labels
    dataset = WlcShards(shards, shuffle=True, buffer=4, seed=3)
    orders = []
    for epoch in range(3):
        dataset.set_epoch(epoch)
        orders.append([int(t.sum()) for t in dataset])
    assert sorted(orders[0]) == sorted(orders[1]) == sorted(orders[2])
    assert len({tuple(o) for o in orders}) > 1
    dataset.set_epoch(1)
    assert [int(t.sum()) for t in dataset] == orders[1]  # an epoch's order is reproducible


def test_a_shard_is_streamed_from_a_uri(corpus: Path, tmp_path: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    files, labels = files_and_labels(corpus)
    (shard,) = write_shards(files, tmp_path / "all-%d.tar", root=corpus, labels=labels)
    memory = fsspec.filesystem("memory")
    memory.pipe("/store/all-0.tar", shard.read_bytes())
    try:
        assert [label for _, label in WlcShards(["memory://store/all-0.tar"])] == labels
    finally:
        memory.rm("/store", recursive=True)


def test_bad_requests_and_damaged_shards_are_refused_naming_the_file(corpus: Path, tmp_path: Path) -> None:
    files, _ = files_and_labels(corpus)
    with pytest.raises(InputError, match="needs a %d-style index"):
        write_shards(files, tmp_path / "train.tar")
    same_name = tmp_path / "dogs" / files[0].name  # another folder, the same file name
    same_name.parent.mkdir()
    same_name.write_bytes(files[1].read_bytes())
    with pytest.raises(InputError, match=f"{same_name}: its key '{files[0].stem}' is also {files[0]}'s"):
        write_shards([files[0], same_name], tmp_path / "d-%d.tar")  # keys without root= are file names
    text = tmp_path / "notes.wlc"
    text.write_text("not a wlc\n")
    with pytest.raises(InputError, match=f"{text}: not a .wlc file"):
        write_shards([text], tmp_path / "t-%d.tar")
    assert not list(tmp_path.glob("t-*"))
    (shard,) = write_shards(files, tmp_path / "ok-%d.tar", root=corpus)
    with pytest.raises(FileExistsError, match="already exists"):
        write_shards(files, tmp_path / "ok-%d.tar", root=corpus)
    whole = shard.read_bytes()
    with tarfile.open(shard) as archive:
        members = archive.getmembers()
    cuts = {"inside a member": members[1].offset_data + 100, "where a header starts": members[2].offset}
    for where, cut in cuts.items():
        broken = tmp_path / f"cut {where}.tar"
        broken.write_bytes(whole[:cut])
        with pytest.raises(FormatError, match=f"^{broken}: "):
            list(WlcShards([broken]))
