"""SSIM (``walloc_cli.eval.measures.ssim``) against scikit-image's reference implementation and
exact cases."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("pytorch_msssim")

from walloc_cli.eval.measures import ssim

PHOTO = Path(__file__).resolve().parent.parent / "samples" / "photo.png"


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    with Image.open(PHOTO) as image:
        return np.asarray(image.convert("RGB"))[:72, :96].copy()


def _noisy(array: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(array + rng.normal(0, sigma, array.shape), 0, 255).astype(np.uint8)


def test_identical_is_one(photo: np.ndarray) -> None:
    assert ssim(photo, photo) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("gray", [False, True])
def test_matches_scikit_image(photo: np.ndarray, gray: bool) -> None:
    metrics = pytest.importorskip("skimage.metrics")
    reference = photo[..., 1] if gray else photo
    test = _noisy(reference, 12.0)
    # Wang et al.'s settings: Gaussian weights sigma 1.5 (11x11), population covariance
    expected = metrics.structural_similarity(
        reference, test, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        data_range=255, channel_axis=None if gray else 2,
    )
    assert ssim(reference, test) == pytest.approx(expected, abs=2e-5)
    assert 0.2 < expected < 0.9  # a real distortion, not a trivial case


def test_more_noise_is_lower(photo: np.ndarray) -> None:
    assert ssim(photo, _noisy(photo, 4.0)) > ssim(photo, _noisy(photo, 16.0)) > ssim(photo, _noisy(photo, 48.0))


def test_too_small_is_nan_and_shapes_must_match(photo: np.ndarray) -> None:
    assert math.isnan(ssim(photo[:10, :40], photo[:10, :40]))
    with pytest.raises(ValueError, match="shape mismatch"):
        ssim(photo, photo[:-1])
