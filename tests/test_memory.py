"""Bounded memory: images coded and decoded in tiles that meet exactly, and small files that
declare huge images or volumes refused from their header (issue 14, item 2).

``bench/memory.py`` measures the peak RSS these bounds give on 67 MP and 150 MP photos.
"""

from __future__ import annotations

import copy
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from walloc_cli.codecs import image_tiles as image_codec

from walloc_cli.codecs import tiles
from walloc_cli.api.files import decompress_file
from walloc_cli.codecs.image import compress_image, decode_image, decoded_psnr, encode_image
from walloc_cli.cli.app import app
from walloc_cli.format.container import dumps, loads
from walloc_cli.errors import InputError
from walloc_cli.files.images import image_from_array, read_image
from walloc_cli.model.zoo import load_model

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "samples" / "photo.png"
REFERENCE = ROOT / "formats" / "reference"
VOLUME = REFERENCE / "volume" / "ct-2x-int16-12x40x72.wlc"
runner = CliRunner()


@pytest.fixture(scope="module")
def photo() -> Any:
    return read_image(PHOTO)


@pytest.mark.parametrize("model", ["rgb-16x-v", "rgb-4x-v"])
def test_tiled_encode_equals_untiled_indices(photo: Any, model: str) -> None:
    """A real photo (451x300) coded in 16x16-latent tiles (128-pixel tiles, 12 of them) gives
    the indices of the whole-image pass: each tile sees the transform's full context."""
    codec, _ = load_model(model)
    whole = image_codec.image_indices(codec, photo, 0.5, {}, "u", tile=1 << 20)
    tiled = image_codec.image_indices(codec, photo, 0.5, {}, "u", tile=16)
    assert tiles.tile_count(whole.shape[1:], (16, 16)) == 12
    assert whole.dtype == np.int16 and tiled.dtype == np.int16  # 9-bit indices at step 0.5: compact, not int32
    np.testing.assert_array_equal(tiled, whole)


def test_tiled_encode_without_context_would_differ(photo: Any) -> None:
    """The context is what makes tiles agree: without it, tile edges change the indices (so the
    equality above is not vacuous)."""
    codec, _ = load_model("rgb-16x-v")
    read = image_codec.signal_reader(photo, 3)
    shape = (photo.height, photo.width)
    grid = tiles.latent_grid(shape, codec.cfg.block)
    whole = tiles.encode_tile(codec, read, shape, tiles.Tile((0, 0), grid), 1.0, 0)
    part = tiles.Tile((16, 16), (16, 16))
    alone = tiles.encode_tile(codec, read, shape, part, 1.0, 0)
    within = tiles.encode_tile(codec, read, shape, part, 1.0, tiles.encode_margin(codec.cfg.levels))
    np.testing.assert_array_equal(within, whole[(slice(None), *part.slices())])
    assert not np.array_equal(alone, whole[(slice(None), *part.slices())])


def test_tiled_decode_equals_untiled(photo: Any) -> None:
    """Tiles of 8x8 latents decoded with their neighbours' latents as context match a
    whole-image decode to float rounding, and the integer samples agree."""
    codec, _ = load_model("rgb-16x-v")
    q = image_codec.image_indices(codec, photo, 1.0, {}, "u")
    shape = (photo.height, photo.width)
    grid = q.shape[1:]
    whole = tiles.decode_tile(codec, q, shape, tiles.Tile((0, 0), grid), 1.0, 0)
    margin = tiles.decode_margin(codec.cfg)
    worst = 0.0
    for part in tiles.tiles(grid, (8, 8)):
        decoded = tiles.decode_tile(codec, q, shape, part, 1.0, margin)
        worst = max(worst, float(np.abs(decoded - whole[(slice(None), *tiles.tile_samples(part, shape, 8))]).max()))
    assert worst < 1e-4
    untiled = image_codec.synthesize_samples(codec, q, photo.height, photo.width, 3, 8, 1.0, tile=1 << 20)
    tiled = image_codec.synthesize_samples(codec, q, photo.height, photo.width, 3, 8, 1.0, tile=8)
    difference = np.abs(tiled.astype(np.int32) - untiled)
    assert difference.max() <= 1 and (difference == 0).mean() > 0.9999  # a sample at x.5 may round either way


@pytest.mark.parametrize("grid", [(50, 80), (189, 284), (256, 256), (257, 256), (378, 567), (1, 70000), (100, 1000), (1250, 837)])
def test_decoder_tiles_are_few_and_within_the_budget(grid: tuple[int, int]) -> None:
    """The decoder's tiles: one piece up to the budget (a 3.4 MP photo's 189x284 latents);
    beyond it, each tile within the budget, together covering the grid once, and no fewer
    tiles possible."""
    budget = image_codec.DECODE_POSITIONS
    parts = image_codec.decode_tiles(grid)
    cover = np.zeros(grid, np.int32)
    for part in parts:
        assert part.extent[0] * part.extent[1] <= budget
        cover[part.slices()] += 1
    assert (cover == 1).all()
    assert len(parts) >= -(-grid[0] * grid[1] // budget)
    if grid[0] * grid[1] <= budget:
        assert len(parts) == 1
    if grid == (100, 1000):  # 100k latents: two halves, not four strips of 256 columns
        assert len(parts) == 2


def test_default_decode_tiles_match_a_whole_image_decode(photo: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A budget that forces cuts still decodes what one piece decodes (within rounding)."""
    codec, _ = load_model("rgb-16x-v")
    q = image_codec.image_indices(codec, photo, 1.0, {}, "u")
    whole = image_codec.synthesize_samples(codec, q, photo.height, photo.width, 3, 8, 1.0)
    parts = image_codec.decode_tiles(q.shape[1:], 300)
    assert len(parts) > 4
    monkeypatch.setattr(image_codec, "decode_tiles", lambda grid: parts)
    cut = image_codec.synthesize_samples(codec, q, photo.height, photo.width, 3, 8, 1.0)
    difference = np.abs(cut.astype(np.int32) - whole)
    assert difference.max() <= 1 and (difference == 0).mean() > 0.9999


def test_image_samples_stay_integers_through_the_codec(photo: Any) -> None:
    """The image is held as uint8 samples from reading to writing (a 150 MP photo: 450 MB, not
    the 1.8 GB of float32), and PSNR is measured without float copies of it."""
    assert photo.pixels.dtype == np.uint8
    decoded = decode_image(encode_image(photo, "rgb-16x-v"))
    assert decoded.pixels.dtype == np.uint8 and decoded.pixels.shape == photo.pixels.shape
    reference = 10 * np.log10(255**2 / np.mean((photo.pixels.astype(np.float64) - decoded.pixels) ** 2))
    assert image_codec.sample_psnr(photo, decoded) == pytest.approx(reference, abs=1e-9)
    # and the compressor's own measurement, which never holds the decoded image whole
    assert decoded_psnr(encode_image(photo, "rgb-16x-v"), photo) == pytest.approx(reference, abs=1e-9)


# --- limits ------------------------------------------------------------------------------------
def _declare_image(height: int, width: int) -> bytes:
    """A CRC-valid 600-byte file (the 48x40 reference) declaring ``height x width`` pixels."""
    header, chunks = loads((REFERENCE / "rgb-16x-48x40.wlc").read_bytes())
    header = copy.deepcopy(header)
    header["image"].update(height=height, width=width)
    header["latent"]["shape"] = [header["latent"]["shape"][0], -(-height // 8), -(-width // 8)]
    return dumps(header, chunks)


def _declare_volume(shape: list[int], tile: list[int] | None = None, dtype: str = "float64") -> bytes:
    """A CRC-valid 3.7 KB volume file (a reference) declaring ``shape`` (and ``tile``)."""
    header, chunks = loads(VOLUME.read_bytes())
    header = copy.deepcopy(header)
    header["volume"].update(shape=shape, dtype=dtype)
    header["volume"]["meta"]["shape"] = shape
    if tile is not None:
        header["latent"]["tile"] = tile
    return dumps(header, chunks)


def _run_limited(args: list[str], cwd: Path, gib: float = 1.5) -> subprocess.CompletedProcess[bytes]:
    """``walloc ARGS`` in a child whose data segment is capped (as a machine without the memory
    would be): a refusal must not need it."""

    def limit() -> None:
        cap = int(gib * (1 << 30))
        resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))

    return subprocess.run([sys.executable, "-m", "walloc_cli", *args], cwd=cwd, capture_output=True, preexec_fn=limit, timeout=120, check=False, env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)})


def test_small_file_declaring_16384_squared_pixels_is_refused_quickly(tmp_path: Path) -> None:
    """616 bytes declaring 16384 x 16384 pixels went past 8 GB; now one line from the header."""
    (tmp_path / "bomb.wlc").write_bytes(_declare_image(16384, 16384))
    started = time.perf_counter()
    done = _run_limited(["decompress", "bomb.wlc"], tmp_path)
    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == ["walloc: bomb.wlc: image too large: 16384x16384 = 268435456 pixels, more than the limit of 80000000 (raise it with --max-pixels)"]
    assert time.perf_counter() - started < 30  # the interpreter and torch start; the refusal itself is immediate
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.wlc"]


def test_small_file_declaring_1024_cubed_float64_is_refused_quickly(tmp_path: Path) -> None:
    """1.3 KB declaring 1024**3 float64 voxels as one tile took 3 GB and crashed, and 4.7 GB with
    the default tiles; now both are refused from the header."""
    (tmp_path / "tiles.wlc").write_bytes(_declare_volume([1024, 1024, 1024]))
    done = _run_limited(["decompress", "tiles.wlc"], tmp_path)
    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == ["walloc: tiles.wlc: volume too large: 1024x1024x1024 = 1073741824 voxels, more than the limit of 268435456 (raise it with --max-voxels)"]
    # a single tile of the whole volume is refused whatever the limit: its decoder context alone
    # would be gigabytes (the tile bound of formats/wlc.md)
    (tmp_path / "one.wlc").write_bytes(_declare_volume([1024, 1024, 1024], [256, 256, 256]))
    result = runner.invoke(app, ["decompress", "--max-voxels", str(1 << 31), str(tmp_path / "one.wlc")])
    assert result.exit_code == 1
    assert result.output.splitlines() == [f"walloc: {tmp_path / 'one.wlc'}: invalid header: tile=[256, 256, 256] with decode_margin=8 needs 20123648 latents of decoder context, more than 131072"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.wlc", "tiles.wlc"]


def test_huge_declarations_are_refused_in_milliseconds(tmp_path: Path) -> None:
    """In the library the refusals cost nothing: no payload is read, nothing is allocated (the
    command line's seconds above are the interpreter and torch starting)."""
    image = _declare_image(16384, 16384)
    started = time.perf_counter()
    with pytest.raises(InputError, match="more than the limit of 80000000"):
        decode_image(image)
    assert time.perf_counter() - started < 0.5
    (tmp_path / "v.wlc").write_bytes(_declare_volume([1024, 1024, 1024]))
    started = time.perf_counter()
    with pytest.raises(InputError, match="1073741824 voxels, more than the limit of 268435456"):
        decompress_file(tmp_path / "v.wlc")
    assert time.perf_counter() - started < 0.5


def test_volume_with_default_tiles_above_the_limit_decodes_when_raised(tmp_path: Path) -> None:
    """Raising --max-voxels lets a file past the default through to its tiles (here: the
    reference's one tile for a declared 12x40x72 volume, so the next check speaks)."""
    (tmp_path / "v.wlc").write_bytes(VOLUME.read_bytes())
    result = runner.invoke(app, ["decompress", "--max-voxels", "1000", str(tmp_path / "v.wlc")])
    assert result.exit_code == 1 and "34560 voxels, more than the limit of 1000 (raise it with --max-voxels)" in result.output
    result = runner.invoke(app, ["decompress", "--max-voxels", "34560", str(tmp_path / "v.wlc")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "v.npy").exists()


def test_max_pixels_option_refuses_and_raises(tmp_path: Path) -> None:
    """compress, decompress and verify refuse images above --max-pixels in one line naming the
    count, the limit and the option; a limit at the image's size lets it through."""
    from PIL import Image

    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    result = runner.invoke(app, ["compress", "--max-pixels", "1199", str(tmp_path / "a.png")])
    assert result.exit_code == 1
    assert f"walloc: {tmp_path / 'a.png'}: image too large: 40x30 = 1200 pixels, more than the limit of 1199 (raise it with --max-pixels)" in result.output
    assert not (tmp_path / "a.wlc").exists()
    result = runner.invoke(app, ["compress", "--max-pixels", "1200", str(tmp_path / "a.png")])
    assert result.exit_code == 0, result.output
    for command in (["decompress", "-o", str(tmp_path / "b.png")], ["verify"]):
        result = runner.invoke(app, [*command, "--max-pixels", "1000", str(tmp_path / "a.wlc")])
        assert result.exit_code == 1 and "1200 pixels, more than the limit of 1000 (raise it with --max-pixels)" in result.output, result.output
    assert not (tmp_path / "b.png").exists() and runner.invoke(app, ["verify", str(tmp_path / "a.wlc")]).exit_code == 0


def test_max_pixels_keyword_in_the_library() -> None:
    image = image_from_array(np.zeros((30, 40, 3), np.uint8))
    with pytest.raises(InputError, match="1200 pixels, more than the limit of 1000"):
        compress_image(image, max_pixels=1000)
    data = compress_image(image, max_pixels=1200).data
    with pytest.raises(InputError, match="1200 pixels, more than the limit of 1199"):
        decode_image(data, max_pixels=1199)
    assert decode_image(data, max_pixels=1200).pixels.shape == (3, 30, 40)


def test_max_pixels_keyword_in_the_package_api(tmp_path: Path) -> None:
    import walloc_cli as walloc

    array = np.zeros((30, 40, 3), np.uint8)
    with pytest.raises(InputError, match="1200 pixels, more than the limit of 1000"):
        walloc.compress(array, max_pixels=1000)
    data = walloc.compress(array)
    with pytest.raises(InputError, match="1200 pixels, more than the limit of 1000"):
        walloc.decompress(data, max_pixels=1000)
    with pytest.raises(InputError, match="34560 voxels, more than the limit of 1000"):
        walloc.decompress(VOLUME.read_bytes(), max_voxels=1000)


def test_reading_an_image_does_not_change_pillows_global_limit(tmp_path: Path) -> None:
    """Importing walloc (a library) used to raise Pillow's MAX_IMAGE_PIXELS for the whole host
    program; now the limit is lifted for one read at a time and put back."""
    from PIL import Image

    code = "import PIL.Image as I; before = I.MAX_IMAGE_PIXELS; import walloc_cli.codecs.image, walloc_cli.files.images; print(before == I.MAX_IMAGE_PIXELS)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout.decode().strip() == "True"
    saved = Image.MAX_IMAGE_PIXELS
    read_image(PHOTO, max_pixels=10**9)
    assert Image.MAX_IMAGE_PIXELS == saved
