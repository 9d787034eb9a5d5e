"""Tests of the wavelet packet transform (``walloc_cli/model/wpt.py``).

The lifting code is checked against PyWavelets (one level, both boundary rules), and the fast
polyphase path against an nD reference built here from ``packet_lifting`` one axis at a time.
Sizes are chosen on both sides of the fast-path threshold (``blocks > 4 * (2J + 4)``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import pywt
import torch

from walloc_cli.model import wpt as W

BOUNDARIES = ("symmetric", "periodic")


def _fast_threshold(levels: int) -> int:
    """Smallest block count along an axis that takes the polyphase path (``blocks > 4 * edge``)."""
    return 4 * W._boundary_blocks(levels) + 1


# Block counts that take the fast path whatever the boundary margin (the old, generous margin
# was 2J + 4 blocks; the current one is smaller): used for the "large" cases below.
def _surely_fast(levels: int) -> int:
    return max(_fast_threshold(levels), 4 * (2 * levels + 4) + 1)


def _randn(*shape: int, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=dtype)


def reference_wpt(x: torch.Tensor, levels: int, boundary: str) -> torch.Tensor:
    """nD packet transform from the 1D lifting reference, with explicit band-fastest channels.

    After transforming axes 0..a, the channel index is ``((c*B + b0)*B + b1)...``.
    """
    n, c, *spatial = x.shape
    dims = len(spatial)
    step = 2**levels
    out = x.unsqueeze(2)  # (N, C, K=1, *S): K collects band indices, most significant first
    for axis in range(dims):
        pos = 3 + axis
        moved = out.movedim(pos, -1)  # (N, C, K, ..., n_axis)
        bands = W.packet_lifting(moved, levels, boundary)  # (N, C, K, ..., B, m)
        bands = bands.movedim(-2, 3)  # (N, C, K, B, ..., m)
        bands = bands.movedim(-1, 4 + axis)  # put the axis back in place
        out = bands.flatten(2, 3)  # K <- K*B + b
    return out.reshape(n, c * step**dims, *(s // step for s in spatial))


def reference_iwpt(coeffs: torch.Tensor, levels: int, boundary: str, channels: int) -> torch.Tensor:
    n, _, *spatial = coeffs.shape
    dims = len(spatial)
    step = 2**levels
    out = coeffs.reshape(n, channels, step**dims, *spatial)
    for axis in reversed(range(dims)):
        k = out.shape[2] // step
        out = out.unflatten(2, (k, step))  # (N, C, K, B, *S)
        pos = 4 + axis
        moved = out.movedim(3, -1).movedim(pos - 1, -1)  # (N, C, K, ..., B, m)
        signal = W.packet_lifting_inverse(moved, levels, boundary)  # (N, C, K, ..., m*B)
        out = signal.movedim(-1, 3 + axis)
    return out.squeeze(2)


# --- perfect reconstruction ----------------------------------------------------------------------

SMALL_CASES = [
    # (spatial shape, levels): lifting path everywhere
    ((16,), 1), ((32,), 2), ((64,), 3), ((64,), 4),
    ((16, 24), 1), ((32, 48), 2), ((32, 48), 3), ((32, 48), 4),
    ((8, 16, 24), 1), ((8, 16, 8), 2), ((8, 8, 16), 3), ((16, 16, 32), 4),
]

LARGE_CASES = [
    # fast polyphase path on at least one axis (symmetric boundary)
    ((2 * 60,), 1),
    ((4 * 40,), 2),
    ((8 * 200,), 3),
    ((16 * 60,), 4),
    ((512, 520), 3),
    ((2 * 26, 2 * 4), 1),  # axis 0 fast, axis 1 lifting
    ((2 * 25, 2 * 26, 2 * 27), 1),
    ((8, 4 * 34, 8), 2),
]


# The periodic boundary always takes the lifting path; its large cases are kept to 1D (cheap).
CASES = [(s, j, b) for b in BOUNDARIES for s, j in SMALL_CASES]
CASES += [(s, j, "symmetric") for s, j in LARGE_CASES]
CASES += [(s, j, "periodic") for s, j in LARGE_CASES if len(s) == 1]


@pytest.mark.parametrize("shape,levels,boundary", CASES)
def test_wpt_shape_formula_and_iwpt_reconstructs_random_input(shape, levels, boundary):
    x = _randn(1, 2, *shape, seed=levels)
    coeffs = W.wpt(x, levels, boundary)
    step = 2**levels
    assert coeffs.shape == (1, 2 * step ** len(shape), *(s // step for s in shape))
    back = W.iwpt(coeffs, levels, boundary)
    assert back.shape == x.shape
    assert back.dtype == x.dtype
    assert (back - x).abs().max().item() < 1e-4


def test_large_cases_take_the_fast_path_and_some_small_ones_only_lifting():
    for shape, levels in LARGE_CASES:
        assert max(s // 2**levels for s in shape) >= _surely_fast(levels), (shape, levels)
    for dims in (1, 2, 3):
        assert any(
            len(shape) == dims and max(s // 2**levels for s in shape) < _fast_threshold(levels) for shape, levels in SMALL_CASES
        ), dims


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("levels", [1, 2, 3])
def test_packet_lifting_inverse_reconstructs_1d(levels, boundary):
    x = _randn(4, 16 * 8, seed=3, dtype=torch.float64)
    bands = W.packet_lifting(x, levels, boundary)
    assert bands.shape == (4, 2**levels, 16 * 8 // 2**levels)
    assert torch.allclose(W.packet_lifting_inverse(bands, levels, boundary), x, atol=1e-12)


# --- fast path equals the lifting definition -------------------------------------------------------


@pytest.mark.parametrize("shape,levels,boundary", CASES)
def test_wpt_equals_per_axis_lifting_reference(shape, levels, boundary):
    x = _randn(1, 2 if len(shape) == 1 else 1, *shape, seed=7)
    fast = W.wpt(x, levels, boundary)
    ref = reference_wpt(x, levels, boundary)
    assert fast.shape == ref.shape
    assert (fast - ref).abs().max().item() < 1e-5


@pytest.mark.parametrize(
    "shape,levels,boundary",
    [((8 * 200,), 3, "symmetric"), ((8 * 200,), 3, "periodic"), ((512, 520), 3, "symmetric"), ((2 * 25, 2 * 26, 2 * 27), 1, "symmetric"),
     ((16 * 60,), 4, "symmetric"), ((8, 12, 16), 2, "periodic"), ((32, 48), 3, "symmetric")],
)
def test_iwpt_equals_per_axis_lifting_reference_on_random_coefficients(shape, levels, boundary):
    step = 2**levels
    coeffs = _randn(1, step ** len(shape), *(s // step for s in shape), seed=11)
    fast = W.iwpt(coeffs, levels, boundary)
    ref = reference_iwpt(coeffs, levels, boundary, channels=1)
    assert fast.shape == (1, 1, *shape)
    assert (fast - ref).abs().max().item() < 1e-5


@pytest.mark.parametrize("levels", [1, 2, 3, 4])
def test_analysis_axis_fast_path_equals_lifting_along_each_axis_of_a_2d_signal(levels):
    blocks = _fast_threshold(levels) + 3
    n = blocks * 2**levels
    x = _randn(1, 1, n, 2**levels * 2, seed=levels)
    for axis, signal in ((0, x), (1, x.transpose(2, 3).contiguous())):
        out = W.analysis_axis(signal, axis, levels, "symmetric")
        ref = W.packet_lifting(signal.movedim(2 + axis, -1), levels, "symmetric")  # (1, 1, other, B, m)
        ref = ref.movedim(-2, 2).movedim(-1, 3 + axis).flatten(1, 2)
        assert out.shape == ref.shape
        assert (out - ref).abs().max().item() < 1e-5
        # boundary blocks especially (where the polyphase convolution alone would be wrong)
        edge = W._boundary_blocks(levels)
        head = out.narrow(2 + axis, 0, edge) - ref.narrow(2 + axis, 0, edge)
        tail = out.narrow(2 + axis, blocks - edge, edge) - ref.narrow(2 + axis, blocks - edge, edge)
        assert head.abs().max().item() < 1e-5 and tail.abs().max().item() < 1e-5


@pytest.mark.parametrize("levels", [1, 2, 3, 4])
def test_fast_path_equals_lifting_at_the_smallest_fast_sizes(levels):
    # Just above the threshold the recomputed head and tail spans overlap most: the riskiest sizes.
    step = 2**levels
    for blocks in (_fast_threshold(levels) - 1, _fast_threshold(levels), _fast_threshold(levels) + 1):
        x = _randn(1, 2, blocks * step, seed=blocks)
        coeffs = W.wpt(x, levels, "symmetric")
        assert (coeffs - reference_wpt(x, levels, "symmetric")).abs().max().item() < 1e-5
        assert (W.iwpt(coeffs, levels, "symmetric") - x).abs().max().item() < 1e-4
        x2 = _randn(1, 1, blocks * step, 2 * step, seed=blocks + 1)
        assert (W.wpt(x2, levels) - reference_wpt(x2, levels, "symmetric")).abs().max().item() < 1e-5


def test_channel_order_is_band_fastest_with_first_axis_most_significant():
    levels, step = 1, 2
    x = _randn(1, 2, 8, 12, seed=5, dtype=torch.float64)
    coeffs = W.wpt(x, levels, "symmetric")
    for c in range(2):
        rows = W.packet_lifting(x[0, c].T, levels, "symmetric")  # along axis 0: (12, B, 4)
        for b0 in range(step):
            plane = rows[:, b0, :].T  # (4, 12)
            cols = W.packet_lifting(plane, levels, "symmetric")  # (4, B, 6)
            for b1 in range(step):
                channel = (c * step + b0) * step + b1
                assert torch.allclose(coeffs[0, channel], cols[:, b1, :], atol=1e-12)


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize(
    "shape,levels",
    [((64,), 3), ((8 * 60,), 3), ((16, 24), 2), ((4 * 40, 12), 2), ((2 * 30, 2 * 30), 1), ((8, 4, 6), 1), ((2 * 30, 4, 6), 1)],
)
@pytest.mark.parametrize("with_bias", [True, False])
def test_wpt_project_equals_1x1_conv_of_wpt(shape, levels, boundary, with_bias):
    if not hasattr(W, "wpt_project"):
        pytest.skip("no fused projection in this version")
    channels, latent = 3, 5
    dims = len(shape)
    wide = channels * 2 ** (levels * dims)
    x = _randn(2, channels, *shape, seed=21)
    weight = _randn(latent, wide, *([1] * dims), seed=22) / math.sqrt(wide)
    bias = _randn(latent, seed=23) if with_bias else None
    conv = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d, 3: torch.nn.functional.conv3d}[dims]
    expected = conv(reference_wpt(x, levels, boundary), weight, bias)
    fused = W.wpt_project(x, levels, weight, bias, boundary)
    assert fused.shape == expected.shape == (2, latent, *(s // 2**levels for s in shape))
    assert (fused - expected).abs().max().item() < 1e-4


def test_analysis_axis_rejects_length_not_multiple_of_block():
    with pytest.raises(ValueError):
        W.analysis_axis(torch.zeros(1, 1, 12), 0, 3)


# --- agreement with PyWavelets ---------------------------------------------------------------------


@pytest.mark.parametrize("n", [8, 16, 64, 130])
def test_one_periodic_level_equals_pywt_periodization(n):
    x = _randn(5, n, seed=n, dtype=torch.float64)
    bands = W.packet_lifting(x, 1, "periodic")
    ca, cd = pywt.dwt(x.numpy(), "bior4.4", mode="periodization")
    np.testing.assert_allclose(bands[:, 0].numpy(), ca, atol=1e-6, rtol=0)
    np.testing.assert_allclose(bands[:, 1].numpy(), cd, atol=1e-6, rtol=0)


@pytest.mark.parametrize("n", [8, 16, 64, 130])
def test_one_symmetric_level_equals_pywt_on_whole_sample_mirrored_signal(n):
    # Whole-sample symmetric extension of x is periodic with period 2n-2: [x0..x(n-1), x(n-2)..x1].
    # Its periodised DWT, restricted to the first n/2 coefficients, is the symmetric-boundary DWT.
    x = _randn(5, n, seed=n + 1, dtype=torch.float64)
    mirrored = np.concatenate([x.numpy(), x.numpy()[:, -2:0:-1]], axis=-1)
    ca, cd = pywt.dwt(mirrored, "bior4.4", mode="periodization")
    bands = W.packet_lifting(x, 1, "symmetric")
    np.testing.assert_allclose(bands[:, 0].numpy(), ca[:, : n // 2], atol=1e-6, rtol=0)
    np.testing.assert_allclose(bands[:, 1].numpy(), cd[:, : n // 2], atol=1e-6, rtol=0)


def test_fast_path_symmetric_boundary_equals_pywt_mirrored_signal_one_level():
    n = 2 * (_fast_threshold(1) + 5)
    x = _randn(1, 1, n, seed=2, dtype=torch.float32)
    coeffs = W.wpt(x, 1, "symmetric")[0]  # (2, n/2), fast path
    xd = x[0, 0].double().numpy()
    ca, cd = pywt.dwt(np.concatenate([xd, xd[-2:0:-1]]), "bior4.4", mode="periodization")
    np.testing.assert_allclose(coeffs[0].numpy(), ca[: n // 2], atol=1e-5, rtol=0)
    np.testing.assert_allclose(coeffs[1].numpy(), cd[: n // 2], atol=1e-5, rtol=0)


# --- energy ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("shape,levels", [((256,), 3), ((64, 64), 2), ((128, 136), 2), ((32, 32, 32), 1)])
def test_transform_is_near_orthonormal_on_random_input(shape, levels, boundary):
    # CDF 9/7 is biorthogonal: white-noise energy grows ~1-4% per axis (J=1..3), a little more
    # with symmetric extension on short axes (mirrored samples count twice), so 10% holds only
    # while dims*levels is small and axes are long enough.
    x = _randn(1, 2, *shape, seed=17)
    ratio = (W.wpt(x, levels, boundary).double().pow(2).sum() / x.double().pow(2).sum()).item()
    assert 0.9 < ratio < 1.1


def test_dc_goes_to_the_lowpass_band_only():
    x = torch.full((1, 1, 32, 32), 0.25)
    coeffs = W.wpt(x, 2, "symmetric")
    assert coeffs[:, 1:].abs().max().item() < 1e-5
    # DC gain sqrt(2) per level and axis: 2 levels x 2 axes -> 4
    assert torch.allclose(coeffs[:, 0], torch.full_like(coeffs[:, 0], 0.25 * 4.0), atol=1e-5)


def _smooth_image(h: int, w: int) -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    img = 0.6 * x - 0.4 * y + 0.1 * torch.sin(2 * math.pi * 1.3 * x) * torch.cos(2 * math.pi * 0.7 * y)
    return img[None, None].float()


def test_symmetric_extension_puts_less_highpass_energy_in_border_blocks_than_periodic():
    levels = 2
    img = _smooth_image(64, 96)
    coeffs = {b: W.wpt(img, levels, b)[0] for b in BOUNDARIES}  # (16 bands, 16, 24) each
    border = torch.ones(16, 24, dtype=torch.bool)
    border[2:-2, 2:-2] = False
    energy = {b: c[1:, border].pow(2).sum().item() for b, c in coeffs.items()}  # all but low-low
    assert energy["symmetric"] < 0.1 * energy["periodic"]
    # blocks away from the edges do not see the boundary rule at all
    inner = (slice(None), slice(4, -4), slice(4, -4))
    assert torch.allclose(coeffs["symmetric"][inner], coeffs["periodic"][inner], atol=1e-5)


# --- gradients -------------------------------------------------------------------------------------


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("shape,levels", [((8, 8), 1), ((16,), 2), ((2 * _fast_threshold(1),), 1)])
def test_wpt_and_iwpt_pass_gradcheck(shape, levels, boundary):
    x = _randn(1, 1, *shape, seed=1, dtype=torch.float64).requires_grad_(True)
    fast = max(shape) >= 2**levels * _fast_threshold(levels)  # big Jacobian: random projections
    assert torch.autograd.gradcheck(lambda t: W.wpt(t, levels, boundary), (x,), eps=1e-6, atol=1e-4, fast_mode=fast)
    step = 2**levels
    c = _randn(1, step ** len(shape), *(s // step for s in shape), seed=2, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: W.iwpt(t, levels, boundary), (c,), eps=1e-6, atol=1e-4, fast_mode=fast)


def test_backward_through_fast_path_gives_nonzero_gradients():
    x = _randn(1, 3, 8 * 48, 16, seed=4).requires_grad_(True)
    loss = W.iwpt(W.wpt(x, 3), 3).pow(2).sum()
    loss.backward()
    # d/dx ||iwpt(wpt(x))||^2 = 2x because the pair is the identity
    assert torch.allclose(x.grad, 2 * x.detach(), atol=1e-3)


# --- padding ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape,levels",
    [((1, 1), 3), ((1, 13), 3), ((13, 1), 2), ((37, 29), 3), ((5, 7), 1), ((3,), 2), ((1,), 4), ((7, 3, 9), 2), ((16, 8), 3)],
)
def test_pad_to_multiple_then_crop_to_round_trips(shape, levels):
    x = _randn(2, 3, *shape, seed=9)
    padded, original = W.pad_to_multiple(x, levels)
    step = 2**levels
    assert original == shape
    assert padded.shape[:2] == x.shape[:2]
    for got, n in zip(padded.shape[2:], shape):
        assert got % step == 0 and n <= got < n + step
    assert torch.equal(W.crop_to(padded, original), x)
    # and the padded signal survives the transform with the crop
    back = W.crop_to(W.iwpt(W.wpt(padded, levels), levels), original)
    assert (back - x).abs().max().item() < 1e-4


def test_pad_to_multiple_reflects_without_repeating_the_edge_sample():
    x = torch.arange(5, dtype=torch.float32).view(1, 1, 5)
    padded, _ = W.pad_to_multiple(x, 3)
    assert padded.flatten().tolist() == [0, 1, 2, 3, 4, 3, 2, 1]


def test_pad_to_multiple_leaves_aligned_input_untouched():
    x = _randn(1, 1, 16, 24)
    padded, shape = W.pad_to_multiple(x, 3)
    assert padded is x and shape == (16, 24)
