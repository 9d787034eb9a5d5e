"""The bottleneck arithmetic of walloc_cli.model.config (torch-free) against the network that
uses it and against the torch formula the latent reader used before: index widths, companding
constants and dequantised values are bit-identical, for every shipped model card."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from walloc_cli.model import config
from walloc_cli.model.config import CodecConfig
from walloc_cli.model.network import WallocCodec
from walloc_cli.model.zoo import available_models

# Steps of every kind the encoder picks: a geometric ladder over the shipped range (0.25 .. 4)
# and the odd end points the model cards name.
STEPS = sorted({2 ** (k / 8) for k in range(-20, 21)} | {0.5016, 0.5564, 0.707, 0.909, 2.949, 3.5})


def torch_dequantize(q: np.ndarray, model: WallocCodec, step: float) -> np.ndarray:
    """What ``walloc_cli.api.latents.dequantize`` computed with torch.erfinv, from the network's
    own companding constants."""
    u = np.clip(q.astype(np.float64) * step, -model.qmax, model.qmax)
    z = model.compand_scale * math.sqrt(2.0) * torch.erfinv(torch.from_numpy(u / model.lmax))
    return z.numpy().astype(np.float32)


def networks() -> list[tuple[str, WallocCodec]]:
    """A network (untrained: only its arithmetic is used) for every shipped card, plus other
    companding widths than the cards' 8 bits."""
    cards = [(card.name, card.config) for card in available_models()]
    assert len(cards) >= 10
    extra = [(f"bits={bits}", CodecConfig(bits=bits, decoder_channels=8, decoder_blocks=1)) for bits in (2, 4, 6, 10, 12)]
    return [(name, WallocCodec(cfg)) for name, cfg in cards + extra]


@pytest.mark.parametrize("name, model", networks(), ids=lambda value: value if isinstance(value, str) else "")
def test_config_and_network_agree_bit_for_bit(name: str, model: WallocCodec) -> None:
    bits = model.cfg.bits
    assert (model.lmax, model.qmax, model.compand_scale) == (config.compand_lmax(bits), config.compand_qmax(bits), config.compand_scale(bits))
    for step in STEPS:
        assert model.index_max(step) == config.index_max(bits, step)
        assert model.index_bits(step) == config.index_bits(bits, step)
        reach = config.index_max(bits, step)
        q = np.arange(-reach - 3, reach + 4, dtype=np.int32)  # beyond index_max too: clipped
        z = config.dequantize(q, bits, step)
        assert z.dtype == np.float32 and z.shape == q.shape
        np.testing.assert_array_equal(z, torch_dequantize(q, model, step), err_msg=f"{name} step {step}")
        # and it inverts the network's companding: compand(z) is the index times the step
        u = model.compand(torch.from_numpy(z.astype(np.float64))).numpy()
        np.testing.assert_allclose(u, np.clip(q * step, -model.qmax, model.qmax), atol=2e-3)


def test_dequantize_takes_any_shape_and_number_type() -> None:
    rng = np.random.default_rng(0)
    q = rng.integers(-200, 200, size=(3, 5, 7)).astype(np.int16)
    expected = config.dequantize(q.astype(np.int64), 8, 0.5)
    assert expected.shape == (3, 5, 7)
    for form in (q, q.astype(np.int32), q.astype(np.float64), q.tolist()):
        np.testing.assert_array_equal(config.dequantize(form, 8, 0.5), expected)  # type: ignore[arg-type]
    np.testing.assert_array_equal(config.dequantize(np.array([7, 0], np.uint8), 8, 1.0), config.dequantize(np.array([7, 0]), 8, 1.0))
    halves = np.array([-0.5, 0.25, 1e9, -np.inf])  # not indices, but numbers: the same formula
    model = WallocCodec(CodecConfig(decoder_channels=8, decoder_blocks=1))
    np.testing.assert_array_equal(config.dequantize(halves, 8, 1.0), torch_dequantize(halves, model, 1.0))
    assert config.dequantize(np.zeros((0, 4), np.int32), 8, 1.0).shape == (0, 4)


def test_config_and_dequantize_import_no_torch() -> None:
    code = (
        "import sys, numpy as np\n"
        "from walloc_cli.model.config import CodecConfig, dequantize, index_bits\n"
        "from walloc_cli.api.latents import LatentInfo, codec_config, dequantize as public_dequantize\n"
        "from walloc_cli.model.zoo import available_models\n"
        "cards = available_models()\n"
        "codec = codec_config({'model': {'name': cards[0].name, 'sha256': cards[0].sha256}, 'codec': cards[0].config.to_dict()})\n"
        "info = LatentInfo('image', 'x', '0' * 64, 0.5, index_bits(8, 0.5), codec, {})\n"
        "z = public_dequantize(np.arange(-300, 300).reshape(2, 300), info)\n"
        "assert z.shape == (2, 300) and info.reduction > 0 and info.lmax == 127.5\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_the_card_listing_is_read_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    first = available_models()

    def refuse(*args: object) -> None:
        raise AssertionError("the models folder was listed again")

    monkeypatch.setattr("pathlib.Path.glob", refuse)
    monkeypatch.setattr("pathlib.Path.stat", refuse)
    assert available_models() == first
    assert available_models() is not available_models()  # each caller gets its own list to change
