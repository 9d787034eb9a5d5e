"""The one-shot Python API (walloc_cli.api.arrays): compress, decompress, read_latents, decode_latents.

Every function is exercised with bytes, path and file-object sources; decoding latents read
without the decoder must give exactly what decompression gives; outputs are never clobbered.
"""

from __future__ import annotations

import io
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

import walloc_cli
from walloc_cli.api import arrays as library
from walloc_cli.format.container import MAGIC
from walloc_cli.errors import FormatError, InputError


def photo(height: int, width: int, samples: int = 3, depth: int = 8) -> np.ndarray:
    """(H, W, S) smooth photo-like samples, uint8 or uint16."""
    y, x = np.mgrid[0:height, 0:width] / 12.0
    planes = [0.5 + 0.3 * np.sin(x + 1.3 * y + k) + 0.1 * np.cos(2 * x * y / 5 + k) for k in range(samples)]
    peak = 255 if depth == 8 else 65535
    return np.rint(np.clip(np.stack(planes, -1), 0, 1) * peak).astype(np.uint8 if depth == 8 else np.uint16)


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(peak**2 / mse)


def test_array_round_trip_with_every_source_kind(tmp_path: Path) -> None:
    array = photo(45, 61)
    data = library.compress(array, quality=75)
    assert data[:8] == MAGIC
    pixels, meta = library.decompress(data)
    assert pixels.shape == array.shape and pixels.dtype == np.uint8
    assert meta["modality"] == "image" and meta["mode"] == "RGB" and meta["bit_depth"] == 8
    assert psnr(array, pixels) > 32
    (tmp_path / "a.wlc").write_bytes(data)
    for source in (tmp_path / "a.wlc", str(tmp_path / "a.wlc"), io.BytesIO(data), bytearray(data)):
        again, _ = library.decompress(source)
        np.testing.assert_array_equal(again, pixels)


def test_compress_paths_file_objects_and_quality(tmp_path: Path) -> None:
    array = photo(40, 40)
    png = tmp_path / "in.png"
    Image.fromarray(array).save(png)
    expected, _ = library.read_latents(library.compress(array, quality=50))
    for source in (png, str(png), io.BytesIO(png.read_bytes())):
        data = library.compress(source, quality=50)
        np.testing.assert_array_equal(library.read_latents(data)[0], expected)
        assert library.read_latents(data)[1].header["image"]["source_format"] == "PNG"  # header differs from the array's
    assert len(library.compress(array, quality=5)) < len(library.compress(array, quality=95))
    with pytest.raises(InputError, match="unsupported input format"):
        library.compress(io.BytesIO(b"plain text, not an image"))


def test_compress_to_a_path_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out.wlc"
    data = library.compress(photo(24, 24), out, quality=40)
    assert out.read_bytes() == data
    out.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        library.compress(photo(24, 24), out)
    assert out.read_bytes() == b"precious"
    library.compress(photo(24, 24), out, overwrite=True, quality=40)
    assert out.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wlc"]  # no temporary left


@pytest.mark.parametrize(
    "array",
    [photo(33, 47), photo(30, 20, 1)[..., 0], photo(21, 35, 4), photo(26, 18, 3, depth=16)],
    ids=["rgb", "gray", "rgba", "rgb16"],
)
def test_decode_latents_equals_decompress_exactly(array: np.ndarray) -> None:
    data = library.compress(array, quality=60)
    pixels, _meta = library.decompress(data)
    latents, info = library.read_latents(data)
    again = library.decode_latents(latents, info)
    assert again.dtype == pixels.dtype and again.shape == array.shape
    np.testing.assert_array_equal(again, pixels)
    if array.ndim == 3 and array.shape[-1] == 4:
        np.testing.assert_array_equal(pixels[..., 3], array[..., 3])  # alpha is lossless
    peak = 65535 if array.dtype == np.uint16 else 255
    assert psnr(array, pixels, peak) > 28
    # the latents drive the output: other latents give another image
    assert not np.array_equal(library.decode_latents(np.zeros_like(latents), info), pixels)


def test_read_latents_sources_agree(tmp_path: Path) -> None:
    data = library.compress(photo(32, 32), model="rgb-16x-v")
    (tmp_path / "x.wlc").write_bytes(data)
    expected, info = library.read_latents(data)
    assert expected.shape == (12, 4, 4) and info.reduction == 16
    for source in (tmp_path / "x.wlc", str(tmp_path / "x.wlc"), io.BytesIO(data)):
        np.testing.assert_array_equal(library.read_latents(source)[0], expected)


def test_decode_latents_refuses_wrong_shapes_and_floats() -> None:
    latents, info = library.read_latents(library.compress(photo(32, 32), model="rgb-16x-v"))
    with pytest.raises(InputError, match="latents are"):
        library.decode_latents(latents[:, :2], info)
    with pytest.raises(InputError, match="integer indices"):
        library.decode_latents(latents.astype(np.float32), info)


def test_audio_round_trip_and_decode_latents(tmp_path: Path) -> None:
    frames = 67000  # two blocks
    t = np.arange(frames) / 22050
    signal = np.stack([0.5 * np.sin(2 * np.pi * 330 * t), 0.4 * np.sin(2 * np.pi * 550 * t + 0.5)], 1)
    wav = tmp_path / "a.wav"
    sf.write(wav, signal, 22050, subtype="PCM_16")
    data = library.compress(wav, quality=75)
    samples, meta = library.decompress(data)
    assert samples.shape == (frames, 2) and samples.dtype == np.float32
    assert meta["samplerate"] == 22050 and meta["subtype"] == "PCM_16" and meta["channels"] == 2
    snr = 10 * math.log10(np.sum(signal**2) / np.sum((samples - signal) ** 2))
    assert snr > 10
    latents, info = library.read_latents(data)
    np.testing.assert_array_equal(library.decode_latents(latents, info), samples)
    with pytest.raises(InputError, match="target_psnr"):
        library.compress(wav, target_psnr=30)


def test_bad_inputs_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="not a .wlc file"):
        library.decompress(b"GIF89a and so on")
    with pytest.raises(InputError, match="no such file"):
        library.decompress(tmp_path / "missing.wlc")
    with pytest.raises(FormatError, match="empty file"):
        library.read_latents(b"")


def test_package_exports_the_api_lazily() -> None:
    assert walloc_cli.compress is library.compress and walloc_cli.read_latents is library.read_latents
    code = "import sys, walloc_cli; assert 'torch' not in sys.modules, 'torch imported'; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "ok", result.stderr


def test_decompress_returns_the_exif_and_xmp_the_file_keeps() -> None:
    """The Python API hands back every metadata block the CLI writes back, not only ICC."""
    reference = Path(__file__).resolve().parent.parent / "formats" / "reference" / "rgb-16x-v-exif-xmp-orient6-20x12.wlc"
    array, meta = library.decompress(reference.read_bytes())
    assert array.shape == (20, 12, 3)  # stored upright: the source was 12 x 20 with orientation 6
    assert meta["exif"] is not None and meta["exif"].startswith((b"Exif", b"II", b"MM"))
    assert meta["xmp"] is not None and b"x:xmpmeta" in meta["xmp"]
