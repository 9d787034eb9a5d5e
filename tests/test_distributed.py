"""Data set conversion on a Dask cluster (:mod:`walloc_cli.api.distributed`), on a local cluster
of 2 worker processes: outputs mirrored and written whole, failures one line per file as in the
CLI batch, one model load per worker, existing outputs refused; URIs through fsspec."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

distributed = pytest.importorskip("distributed")
fsspec = pytest.importorskip("fsspec")

import walloc_cli as walloc  # noqa: E402 - after the skips
from walloc_cli.api.batch import Task, convert_one  # noqa: E402
from walloc_cli.api.distributed import convert_dataset  # noqa: E402
from walloc_cli.model.zoo import models_loaded  # noqa: E402

PHOTO = Path(__file__).resolve().parents[1] / "samples" / "photo.png"
OPTIONS = {"model": "rgb-4x-v", "quality": 50}  # one model: each worker must load it once


@pytest.fixture(scope="module")
def client() -> distributed.Client:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, distributed.Client(cluster) as connected:
        yield connected


def crops(folder: Path) -> dict[str, np.ndarray]:
    """Four different real photos (crops of the sample) in two sub-folders, a text file among
    them (skipped: not an image by content). Returns relative path -> pixels."""
    photo = np.asarray(Image.open(PHOTO).convert("RGB"))
    made = {}
    for k, rel in enumerate(["cats/a.png", "cats/b.png", "more/c.png", "more/deep/d.png"]):
        pixels = np.ascontiguousarray(photo[k * 20 : k * 20 + 160, k * 40 : k * 40 + 200])
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / rel)
        made[rel] = pixels
    (folder / "more" / "notes.txt").write_text("not a photo\n")
    return made


def psnr(reference: np.ndarray, decoded: np.ndarray) -> float:
    return 10 * math.log10(255**2 / np.mean((reference.astype(np.float64) - decoded.astype(np.float64)) ** 2))


def test_a_folder_is_converted_on_two_workers_with_one_model_load_each(client: distributed.Client, tmp_path: Path) -> None:
    made = crops(tmp_path / "in")
    broken = tmp_path / "broken.png"
    broken.write_bytes(PHOTO.read_bytes()[:2000])  # a truncated PNG, named explicitly
    before = client.run(models_loaded)
    seen = []
    result = convert_dataset([tmp_path / "in", broken], client, output_dir=tmp_path / "out", options=OPTIONS, on_done=seen.append)
    assert len(seen) == len(result.outcomes) == 5
    assert [p.name for p in result.skipped] == ["notes.txt"]
    # the failure: the line convert_one gives for it, as `walloc compress` would print it
    (failure,) = result.failures
    assert failure.src == str(broken)
    assert failure.error == convert_one(Task("compress", broken, tmp_path / "elsewhere.wlc", options=OPTIONS)).error
    assert failure.error.startswith(f"{broken}: ")
    assert not (tmp_path / "out" / "broken.wlc").exists()
    for rel, pixels in made.items():
        output = tmp_path / "out" / Path(rel).with_suffix(".wlc")
        decoded, _ = walloc.decompress(output)
        assert psnr(pixels, decoded) > 28
    assert sorted(o.report.output for o in result.converted) == sorted(str(tmp_path / "out" / Path(rel).with_suffix(".wlc")) for rel in made)
    assert not [p for p in (tmp_path / "out").rglob("*") if p.name.startswith(".")]  # no temporary left
    loads = {address: count - before[address] for address, count in client.run(models_loaded).items()}
    assert sorted(loads.values()) in ([1, 1], [0, 1])  # each worker that ran a file loaded the model once


def test_existing_outputs_are_refused_per_file_unless_overwrite(client: distributed.Client, tmp_path: Path) -> None:
    crops(tmp_path / "in")
    first = convert_dataset([tmp_path / "in"], client, output_dir=tmp_path / "out", options=OPTIONS)
    assert not first.failures
    again = convert_dataset([tmp_path / "in"], client, output_dir=tmp_path / "out", options=OPTIONS)
    assert len(again.failures) == 4
    assert all(o.error.endswith("already exists (use -f to overwrite)") for o in again.failures)
    forced = convert_dataset([tmp_path / "in"], client, output_dir=tmp_path / "out", options={**OPTIONS, "overwrite": True})
    assert not forced.failures and len(forced.converted) == 4


def test_uris_are_read_and_written_through_fsspec(tmp_path: Path) -> None:
    """memory:// stands for an object store: shared by the workers of an in-process cluster."""
    memory = fsspec.filesystem("memory")
    made = crops(tmp_path / "in")
    for rel in made:
        memory.pipe(f"/bucket/photos/{rel}", (tmp_path / "in" / rel).read_bytes())
    memory.pipe("/bucket/photos/more/notes.txt", b"not a photo\n")
    try:
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, distributed.Client(cluster) as local:
            result = convert_dataset(["memory://bucket/photos/", "memory://bucket/missing/*.png", "nosuchscheme://x/y.png"], local, output_dir="memory://bucket/latents", options=OPTIONS)
        errors = {o.src: o.error for o in result.failures}
        assert errors.pop("memory://bucket/missing/*.png") == "memory://bucket/missing/*.png: no files match"
        assert errors.pop("nosuchscheme://x/y.png") == "nosuchscheme://x/y.png: cannot list it: ValueError: Protocol not known: nosuchscheme"  # that URI alone fails
        (src, error), = errors.items()  # not sniffed before the download: it fails alone, named
        assert error == f"{src}: unsupported input format (not PNG/JPEG/TIFF/WebP/BMP nor audio libsndfile reads nor a multi-page TIFF, .npy or NIfTI volume, by its content)"
        assert src.endswith("/bucket/photos/more/notes.txt")
        assert len(result.converted) == 4
        for rel, pixels in made.items():
            decoded, _ = walloc.decompress(memory.cat(f"/bucket/latents/{Path(rel).with_suffix('.wlc')}"))
            assert psnr(pixels, decoded) > 28
    finally:
        memory.rm("/bucket", recursive=True)
