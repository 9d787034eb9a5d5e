"""The Pillow plugin: Image.open of a .wlc (sniffed by content) decodes, img.save(x.wlc) encodes,
and importing walloc_cli registers it without importing torch."""

from __future__ import annotations

import io
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image, UnidentifiedImageError

import walloc_cli  # noqa: F401  (registers the plugin)
from walloc_cli.api import arrays as library
from walloc_cli.format.container import MAGIC


def photo(height: int, width: int, samples: int = 3) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width] / 10.0
    planes = [0.5 + 0.3 * np.sin(x + 1.2 * y + k) + 0.1 * np.cos(x * y / 7 + k) for k in range(samples)]
    return np.rint(np.clip(np.stack(planes, -1), 0, 1) * 255).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255) -> float:
    return 10 * math.log10(peak**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def test_save_and_open_round_trip(tmp_path: Path) -> None:
    array = photo(50, 70)
    Image.fromarray(array).save(tmp_path / "x.wlc", quality=70)
    assert (tmp_path / "x.wlc").read_bytes()[:8] == MAGIC
    with Image.open(tmp_path / "x.wlc") as image:
        assert image.format == "WLC" and image.mode == "RGB" and image.size == (70, 50)
        pixels = np.asarray(image)
    assert psnr(array, pixels) > 32
    np.testing.assert_array_equal(pixels, library.decompress(tmp_path / "x.wlc")[0])  # the same decoder


def test_sniffed_by_content_not_extension(tmp_path: Path) -> None:
    data = library.compress(photo(24, 32), quality=50)
    (tmp_path / "misnamed.png").write_bytes(data)
    with Image.open(tmp_path / "misnamed.png") as image:
        assert image.format == "WLC"
        image.load()
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (32, 24)


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16", "1"])
def test_modes(tmp_path: Path, mode: str) -> None:
    array = photo(30, 40, 4)
    if mode == "L":
        source = Image.fromarray(array[..., 0])
    elif mode == "RGBA":
        source = Image.fromarray(array)
    elif mode == "I;16":
        source = Image.fromarray(array[..., 0].astype("<u2") * 257)
    else:
        source = Image.fromarray(array[..., 0] > 128)
    assert source.mode == mode
    source.save(tmp_path / "m.wlc", quality=90)
    with Image.open(tmp_path / "m.wlc") as image:
        assert image.mode == mode
        back = np.asarray(image)
    original = np.asarray(source)
    if mode == "1":
        assert (back == original).mean() > 0.97
    else:
        assert psnr(original, back, 65535 if mode == "I;16" else 255) > 30
    if mode == "RGBA":
        np.testing.assert_array_equal(back[..., 3], original[..., 3])


def test_quality_option_sets_the_rate(tmp_path: Path) -> None:
    image = Image.fromarray(photo(48, 48))
    image.save(tmp_path / "lo.wlc", quality=5)
    image.save(tmp_path / "hi.wlc", quality=95)
    assert (tmp_path / "lo.wlc").stat().st_size < (tmp_path / "hi.wlc").stat().st_size
    buffer = io.BytesIO()
    image.save(buffer, format="WLC", model="rgb-16x-v")
    assert library.read_latents(buffer.getvalue())[1].model == "rgb-16x-v"


def test_audio_wlc_is_not_an_image(tmp_path: Path) -> None:
    wav = tmp_path / "a.wav"
    sf.write(wav, 0.3 * np.sin(np.arange(4000) / 5.0), 16000, subtype="PCM_16")
    (tmp_path / "a.wlc").write_bytes(library.compress(wav, quality=50))
    with pytest.raises(UnidentifiedImageError):
        Image.open(tmp_path / "a.wlc")


def test_neither_registration_nor_decoding_imports_torch(tmp_path: Path) -> None:
    library.compress(photo(16, 16), tmp_path / "x.wlc", quality=50)
    code = (
        "import sys, walloc_cli\n"
        "from PIL import Image\n"
        f"image = Image.open({str(tmp_path / 'x.wlc')!r})\n"
        "print(image.format, image.size, 'torch' in sys.modules)\n"
        "image.load()\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert result.stdout.split("\n")[:2] == ["WLC (16, 16) False", "False"], result.stderr  # the lean runtime decodes
