"""``--refine``: encoder-side search through the fixed decoder (walloc_cli.codecs.image_refine).

Real photo (samples/photo.png, a crop for speed): the refined indices have a lower
rate-distortion objective (the search's own: Laplace bits per pixel + lam / step^2 * MSE) than
the plain encoder's, measured on what the standard decoder gives back; the file decodes with
the unchanged decoder; tiled search lowers it too; the CLI option round-trips (fast path and
Typer), and without torch ``--refine`` is one line naming the extra, exit 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from walloc_cli.codecs.image import decode_image, encode_image_coded  # noqa: E402
from walloc_cli.codecs.image_refine import refined_indices, training_lam  # noqa: E402
from walloc_cli.codecs.image_tiles import image_indices  # noqa: E402
from walloc_cli.errors import InputError  # noqa: E402
from walloc_cli.files.images import ImageData, read_image, write_image  # noqa: E402
from walloc_cli.model.refine import RefineSettings, laplace_bits, laplace_fit  # noqa: E402
from walloc_cli.model.zoo import load_model  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "samples" / "photo.png"
WITHOUT_TORCH = "import runpy, sys; sys.modules['torch'] = None; sys.argv = ['walloc', *sys.argv[1:]]; runpy.run_module('walloc_cli', run_name='__main__', alter_sys=True)"


def crop(height: int = 128, width: int = 160) -> ImageData:
    """A crop of the sample photo (the cat's face and fur: texture and edges)."""
    image = read_image(PHOTO)
    return ImageData(pixels=np.ascontiguousarray(image.pixels[:, 60 : 60 + height, 140 : 140 + width]), alpha=None, bit_depth=8, mode="RGB")


def objective(image: ImageData, q: np.ndarray, plain: np.ndarray, step: float, lam: float, decoded: ImageData) -> float:
    """The search's objective of indices ``q`` measured on the decoder's integer output: bits
    per pixel under the Laplace fit of the plain indices, plus lam / step^2 * MSE (peak 255)."""
    loc, scale = laplace_fit(plain)
    bits = float(laplace_bits(torch.from_numpy(q.astype(np.float32))[None], torch.from_numpy(loc), torch.from_numpy(scale)).sum())
    mse = float(np.mean((decoded.pixels.astype(np.float64) - image.pixels) ** 2))
    return bits / (image.width * image.height) + lam / step**2 * mse


@pytest.mark.parametrize(("model", "step"), [("rgb-16x-v", 2.0), ("rgb-4x-v", 1.0)])
def test_refined_encode_lowers_the_objective_and_decodes_with_the_standard_decoder(model: str, step: float) -> None:
    image = crop()
    plain = encode_image_coded(image, model, step=step)
    refined = encode_image_coded(image, model, step=step, refine=12)
    assert refined.header == plain.header | {"latent": refined.header["latent"]}  # same format, model, step
    assert (refined.q != plain.q).sum() > 10  # the search moved indices
    decoded = decode_image(refined.data)  # the unchanged decoder reads it
    assert decoded.pixels.shape == image.pixels.shape
    _, card = load_model(model)
    lam = training_lam(card)
    before = objective(image, plain.q, plain.q, step, lam, decode_image(plain.data))
    after = objective(image, refined.q, plain.q, step, lam, decoded)
    assert after < before * 0.998, (before, after)


def test_tiled_search_lowers_the_objective_of_the_whole_image() -> None:
    image = crop(128, 192)  # 16 x 24 latents: six tiles of 8 latents with the tile size below
    codec, card = load_model("rgb-16x-v")
    cache: dict = {}
    plain = image_indices(codec, image, 2.0, cache, "u")
    tiled = refined_indices(codec, "rgb-16x-v", card, image, plain, 2.0, RefineSettings(8), cache, "u", tile=8)
    assert (tiled != plain).sum() > 10

    def measured(q: np.ndarray) -> float:
        decoded = ImageData(pixels=_decoded(codec, q, image), alpha=None, bit_depth=8, mode="RGB")
        return objective(image, q, plain, 2.0, training_lam(card), decoded)

    assert measured(tiled) < measured(plain) * 0.995


def _decoded(codec, q: np.ndarray, image: ImageData) -> np.ndarray:  # type: ignore[no-untyped-def]
    from walloc_cli.codecs.image_tiles import synthesize_samples

    return np.ascontiguousarray(synthesize_samples(codec, q, image.height, image.width, 3, 8, 2.0))


def test_refine_outside_its_range_is_refused() -> None:
    with pytest.raises(InputError, match="refine must be a whole number of steps 0..1000"):
        encode_image_coded(crop(), "rgb-16x-v", step=2.0, refine=-1)
    with pytest.raises(InputError, match="refine must be"):
        encode_image_coded(crop(), "rgb-16x-v", step=2.0, refine=1001)


def _walloc(*args: str, cwd: Path, torch_importable: bool = True) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "walloc_cli"] if torch_importable else [sys.executable, "-c", WITHOUT_TORCH]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_cli_refine_round_trip_and_quality(tmp_path: Path) -> None:
    write_image(tmp_path / "cat.png", crop())
    done = _walloc("compress", "cat.png", "-q", "30", "--refine", "6", "-o", "refined.wlc", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    plain = _walloc("compress", "cat.png", "-q", "30", "-o", "plain.wlc", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert (tmp_path / "refined.wlc").read_bytes() != (tmp_path / "plain.wlc").read_bytes()
    back = _walloc("decompress", "refined.wlc", "-o", "back.png", cwd=tmp_path, torch_importable=False)  # no torch needed to decode
    assert back.returncode == 0, back.stderr
    decoded, original = read_image(tmp_path / "back.png"), crop()
    psnr = 10 * np.log10(255**2 / np.mean((decoded.pixels.astype(float) - original.pixels) ** 2))
    assert psnr > 27  # q 30 of this crop decodes near 30 dB


def test_refine_without_torch_is_one_line_and_exit_2(tmp_path: Path) -> None:
    write_image(tmp_path / "cat.png", crop())
    done = _walloc("compress", "cat.png", "--refine", "5", cwd=tmp_path, torch_importable=False)
    assert done.returncode == 2
    assert done.stderr.strip() == "walloc: compress --refine needs PyTorch: pip install 'walloc[train]'"
    assert not (tmp_path / "cat.wlc").exists()
    plain = _walloc("compress", "cat.png", "--refine", "0", cwd=tmp_path, torch_importable=False)
    assert plain.returncode == 0, plain.stderr


def test_refine_is_refused_for_audio_and_volumes_in_one_line(tmp_path: Path) -> None:
    import walloc_cli as walloc
    from walloc_cli.api.files import compress_file

    music = ROOT / "formats" / "reference" / "audio" / "stereo-44k-70000.src.wav"
    volume = np.load(ROOT / "formats" / "reference" / "volume" / "ct-int16-20x136x40.src.npy")
    with pytest.raises(InputError, match=r"^refine is for images, not volumes$"):
        walloc.compress(volume, axes="ZYX", refine=5)
    with pytest.raises(InputError, match=r"^refine is for images, not audio$"):
        walloc.compress(music, refine=5)
    with pytest.raises(InputError, match=r"^--refine is for images in this version, not audio$"):
        compress_file(music, tmp_path / "x.wlc", refine=5)
    assert not (tmp_path / "x.wlc").exists()
