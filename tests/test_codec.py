"""Tests of the WaLLoC model (``walloc_cli/model/network.py``) and the model registry it is loaded from."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil

import pytest
import numpy as np
import torch

from walloc_cli.model.config import CodecConfig
from walloc_cli.model.network import WallocCodec
from walloc_cli.errors import ModelError
from walloc_cli.model.zoo import available_models, load_model, load_network, models_dir

# Small configs: (config, input shape without batch).
SMALL = {
    1: (CodecConfig(dims=1, channels=2, levels=3, latent_dim=4, bits=8, decoder_channels=8, decoder_blocks=1), (2, 101)),
    2: (CodecConfig(dims=2, channels=3, levels=2, latent_dim=6, bits=8, decoder_channels=8, decoder_blocks=1), (3, 37, 29)),
    3: (CodecConfig(dims=3, channels=1, levels=1, latent_dim=3, bits=6, decoder_channels=8, decoder_blocks=1), (1, 9, 6, 5)),
}


def _model(cfg: CodecConfig, seed: int = 0) -> WallocCodec:
    torch.manual_seed(seed)
    return WallocCodec(cfg)


def _signal(shape, seed: int = 0, scale: float = 0.2) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(2, *shape, generator=gen) - 0.5) * 2 * scale


# --- CodecConfig -----------------------------------------------------------------------------------


@pytest.mark.parametrize("cfg", [CodecConfig(), *(c for c, _ in SMALL.values()), CodecConfig(boundary="periodic", bits=12), CodecConfig(step_input=True)])
def test_codec_config_round_trips_through_dict_and_json(cfg):
    data = cfg.to_dict()
    # step_input is written only when set, so older models' headers keep their exact bytes
    assert set(data) == {f.name for f in dataclasses.fields(CodecConfig)} - ({"step_input"} if not cfg.step_input else set())
    assert CodecConfig.from_dict(data) == cfg
    assert CodecConfig.from_dict(json.loads(json.dumps(data))) == cfg


def test_codec_config_from_dict_rejects_unknown_fields():
    data = CodecConfig().to_dict()
    data["colour"] = "blue"
    with pytest.raises(ValueError, match="colour"):
        CodecConfig.from_dict(data)


def test_codec_config_from_dict_fills_defaults_for_missing_fields():
    assert CodecConfig.from_dict({"latent_dim": 48}) == CodecConfig(latent_dim=48)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("levels", 1 << 40, "levels=1099511627776 is not an integer in 1..8"),  # computing 2**(2*levels) would hang
        ("levels", 2000, "levels=2000"),  # reduction would overflow a float
        ("levels", 0, "levels=0"),
        ("dims", 4, "dims=4"),
        ("channels", 0, "channels=0"),
        ("channels", 65, "channels=65"),
        ("latent_dim", 4097, "latent_dim=4097"),
        ("bits", 1, "bits=1"),
        ("bits", 16, "bits=16"),
        ("decoder_channels", 0, "decoder_channels=0"),
        ("decoder_blocks", -1, "decoder_blocks=-1"),
        ("decoder_blocks", 65, "decoder_blocks=65"),
        ("levels", "3", "levels='3'"),
        ("levels", 3.0, "levels=3.0"),
        ("latent_dim", True, "latent_dim=True"),
        ("boundary", "zero", "boundary='zero'"),
        ("step_input", 1, "step_input=1"),
    ],
)
def test_codec_config_refuses_values_out_of_range(field, value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("*", r"\*")):
        CodecConfig.from_dict({field: value})


def test_codec_config_bounds_the_wavelet_channels():
    assert CodecConfig(dims=2, channels=64, levels=5, latent_dim=12).wavelet_channels == 65536  # the largest allowed
    with pytest.raises(ValueError, match="exceeds 65536"):
        CodecConfig(dims=3, channels=1, levels=6)
    for card in available_models():  # every shipped model is within the bounds
        assert CodecConfig.from_dict(card.config.to_dict()) == card.config


def test_codec_config_is_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        CodecConfig().levels = 4  # type: ignore[misc]


@pytest.mark.parametrize("latent_dim,reduction", [(12, 16.0), (48, 4.0), (3, 64.0)])
def test_reduction_for_rgb_three_levels(latent_dim, reduction):
    cfg = CodecConfig(dims=2, channels=3, levels=3, latent_dim=latent_dim)
    assert cfg.wavelet_channels == 192
    assert cfg.reduction == reduction
    assert cfg.block == 8


def test_reduction_and_wavelet_channels_for_audio_and_volumes():
    assert CodecConfig(dims=1, channels=2, levels=4, latent_dim=8).reduction == 4.0
    assert CodecConfig(dims=3, channels=1, levels=2, latent_dim=16).wavelet_channels == 64


# --- WallocCodec -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_forward_returns_x_hat_of_input_shape_and_positive_finite_bits(dims):
    cfg, shape = SMALL[dims]
    model = _model(cfg)
    x = _signal(shape)
    out = model(x)
    assert out["x_hat"].shape == x.shape
    assert torch.isfinite(out["x_hat"]).all()
    bits = out["bits"]
    assert bits.shape == (2,)  # one rate per sample, so variable-rate training can weight them
    assert torch.isfinite(bits).all() and (bits > 0).all()
    latent = tuple(math.ceil(s / cfg.block) for s in shape[1:])
    assert out["u"].shape == (2, cfg.latent_dim, *latent)


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_forward_backpropagates_to_encoder_and_decoder(dims):
    cfg, shape = SMALL[dims]
    model = _model(cfg)
    out = model(_signal(shape))
    loss = (out["x_hat"] - _signal(shape)).pow(2).mean() + 1e-4 * out["bits"].sum()
    loss.backward()
    for module in (model.encoder, model.decoder.linear, model.decoder.tail, model.density):
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_encode_gives_int32_latents_in_range_with_ceil_shape(dims):
    cfg, shape = SMALL[dims]
    model = _model(cfg)
    x = _signal(shape)
    q = model.encode(x)
    assert q.dtype == torch.int32
    assert q.shape == (2, cfg.latent_dim, *(math.ceil(s / 2**cfg.levels) for s in shape[1:]))
    top = 2 ** (cfg.bits - 1) - 1
    assert q.abs().max().item() <= top
    x_hat = model.decode(q, tuple(shape[1:]))
    assert x_hat.shape == x.shape and x_hat.dtype == torch.float32


@pytest.mark.parametrize(
    "dims,shape",
    [(1, (2, 8 * 70 + 3)), (2, (3, 4 * 50 + 1, 30)), (2, (3, 37, 29)), (3, (1, 2 * 30 - 1, 6, 5))],
)
def test_encode_agrees_with_quantised_analysis(dims, shape):
    # encode may take a faster (fused) route than forward's analysis; the integers must agree
    # except, rarely, by one step where float rounding straddles a half-integer.
    cfg = SMALL[dims][0]
    model = _model(cfg)
    with torch.no_grad():
        model.encoder.weight.mul_(30)  # spread latents over many integers
    x = _signal(shape, seed=3)
    q = model.encode(x)
    with torch.no_grad():
        u, _ = model.analysis(x)
    reference = model.quantize(u)
    assert q.shape == reference.shape
    assert (q - reference).abs().max().item() <= 1
    assert (q != reference).float().mean().item() < 0.01
    assert q.unique().numel() > 8  # not a trivial all-zero comparison


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_encode_clamps_saturated_latents_to_the_bit_range(bits):
    cfg = CodecConfig(dims=2, channels=3, levels=2, latent_dim=6, bits=bits, decoder_channels=8, decoder_blocks=1)
    model = _model(cfg)
    x = _signal((3, 16, 16), scale=1e4)  # drives the companding into saturation
    q = model.encode(x)
    top = 2 ** (bits - 1) - 1
    assert q.min().item() == -top and q.max().item() == top


def test_encode_at_a_coarser_step_stores_indices_of_that_step():
    cfg, shape = SMALL[2]
    model = _model(cfg)
    with torch.no_grad():
        model.encoder.weight.mul_(20)  # spread the latents over many integers
    x = _signal(shape)
    u, _ = model.analysis(x)
    fine, coarse = model.encode(x, step=1.0), model.encode(x, step=4.0)
    assert coarse.abs().max() <= model.index_max(4.0) == 32
    unsaturated = coarse.abs() < 32
    # index k reconstructs k * step: within half a step of the companded value
    assert ((coarse[unsaturated] * 4.0 - u[unsaturated]).abs() <= 2.0 + 1e-3).all()
    assert fine.unique().numel() > coarse.unique().numel() > 1


@pytest.mark.parametrize(("step", "bits"), [(1.0, 8), (2.0, 8), (4.0, 7), (8.0, 6), (0.5, 9), (0.25, 10), (1.5, 8)])
def test_index_bits_follow_the_step(step, bits):
    model = _model(SMALL[2][0])
    assert model.index_bits(step) == bits
    assert model.index_max(step) < 2 ** (bits - 1)


def test_decode_of_encode_is_deterministic_and_matches_synthesis():
    cfg, shape = SMALL[2]
    model = _model(cfg).eval()
    x = _signal(shape)
    q = model.encode(x)
    a, b = model.decode(q, shape[1:]), model.decode(q.clone(), shape[1:])
    assert torch.equal(a, b)
    with torch.no_grad():
        assert torch.allclose(a, model.synthesis(q.float(), tuple(shape[1:])))


def test_inference_state_dict_drops_only_the_density():
    cfg, _ = SMALL[2]
    model = _model(cfg)
    full, inference = model.state_dict(), model.inference_state_dict()
    assert set(full) - set(inference) == {k for k in full if k.startswith("density.")}
    assert any(k.startswith("density.") for k in full)
    assert all(not k.startswith("density.") for k in inference)


# --- the shipped model -----------------------------------------------------------------------------


def _smooth_rgb(h: int, w: int) -> torch.Tensor:
    """Gradients plus sinusoids in [-0.5, 0.5], quantised to 8 bits (like a decoded photo)."""
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    planes = []
    for k in range(3):
        v = 0.35 * (x - 0.5) + 0.2 * (y - 0.5) * (k - 1)
        v = v + 0.12 * torch.sin(2 * math.pi * (1.5 + k) * x + k) * torch.cos(2 * math.pi * 1.7 * y)
        planes.append(v)
    img = torch.stack(planes)[None].clamp(-0.5, 0.5)
    return torch.round((img + 0.5) * 255) / 255 - 0.5


def _psnr_8bit(a: torch.Tensor, b: torch.Tensor) -> float:
    a8 = torch.round((a.clamp(-0.5, 0.5) + 0.5) * 255)
    b8 = torch.round((b.clamp(-0.5, 0.5) + 0.5) * 255)
    mse = (a8 - b8).pow(2).mean().item()
    return 10 * math.log10(255**2 / max(mse, 1e-12))


def test_shipped_rgb_16x_round_trips_a_smooth_image_above_25_db():
    model, card = load_network("rgb-16x")
    assert card.name == "rgb-16x" and card.modality == "image"
    assert card.config.channels == 3 and card.config.dims == 2
    assert card.config.reduction == 16.0
    assert not model.training
    x = _smooth_rgb(96, 80)
    q = model.encode(x)
    assert q.dtype == torch.int32
    assert q.shape == (1, card.config.latent_dim, 96 // card.config.block, 80 // card.config.block)
    assert q.abs().max().item() <= 2 ** (card.config.bits - 1) - 1
    x_hat = model.decode(q, (96, 80))
    assert x_hat.shape == x.shape
    psnr = _psnr_8bit(x_hat, x)
    assert psnr > 25.0, psnr
    # and it is no fluke of this image: a flat grey image is reproduced too
    flat = torch.zeros(1, 3, 40, 56)
    assert _psnr_8bit(model.decode(model.encode(flat), (40, 56)), flat) > 25.0


def test_load_model_is_cached_and_listed():
    a, card = load_model("rgb-16x")
    b, _ = load_model("rgb-16x")
    assert a is b
    assert "rgb-16x" in [c.name for c in available_models()]
    assert card.weights.exists()


def test_load_model_of_unknown_name_raises_model_error_listing_shipped_names():
    with pytest.raises(ModelError) as info:
        load_model("rgb-does-not-exist")
    message = str(info.value)
    assert "rgb-does-not-exist" in message
    for card in available_models():
        assert card.name in message


def _copy_shipped(tmp_path):
    card = models_dir() / "rgb-16x.json"
    shutil.copy(card, tmp_path / card.name)
    shutil.copy(models_dir() / json.loads(card.read_text())["weights"], tmp_path)
    return tmp_path / card.name, tmp_path / json.loads(card.read_text())["weights"]


def test_load_model_from_a_copied_card_path_works(tmp_path):
    card_path, _ = _copy_shipped(tmp_path)
    model, card = load_model(str(card_path))
    assert card.name == "rgb-16x"
    x = _smooth_rgb(16, 24)
    shipped, _ = load_model("rgb-16x")
    assert np.array_equal(model.encode(x.numpy()), shipped.encode(x.numpy()))


@pytest.mark.parametrize("position", [0, -1, "middle"])
def test_weights_with_an_altered_byte_raise_model_error_mentioning_sha256(tmp_path, position):
    card_path, weights = _copy_shipped(tmp_path)
    data = bytearray(weights.read_bytes())
    index = len(data) // 2 if position == "middle" else position
    data[index] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="SHA-256"):
        load_model(str(card_path))


def test_missing_weights_file_raises_model_error(tmp_path):
    card_path, weights = _copy_shipped(tmp_path)
    weights.unlink()
    with pytest.raises(ModelError):
        load_model(str(card_path))


def test_a_step_aware_decoder_sees_the_step_and_a_plain_one_does_not():
    cfg, shape = SMALL[2]
    plain = _model(cfg)
    aware = _model(dataclasses.replace(cfg, step_input=True))
    assert aware.decoder.head.in_channels == cfg.latent_dim + 1
    with torch.no_grad():
        aware.decoder.tail.weight.normal_(0, 0.1)  # let the CNN path (and so the step plane) matter
    q = aware.encode(_signal(shape), step=2.0)
    assert not torch.allclose(aware.decode(q, shape[1:], 2.0), aware.synthesis(q.float() * 2.0, tuple(shape[1:]), 1.0))
    q = plain.encode(_signal(shape), step=2.0)
    assert torch.allclose(plain.decode(q, shape[1:], 2.0), plain.synthesis(q.float() * 2.0, tuple(shape[1:]), 1.0))
    # per-sample steps in training
    out = aware(_signal(shape), torch.tensor([1.0, 3.0]).view(2, 1, 1, 1))
    assert out["x_hat"].shape == _signal(shape).shape and out["bits"].shape == (2,)
