"""The shipped model cards: one shape for the ``quality`` field, read by one checked reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from walloc_cli.errors import ModelError
from walloc_cli.model.quality import ladder, stanzas
from walloc_cli.model.zoo import available_models, models_dir, read_card

CARDS = sorted(models_dir().glob("*.json"))


@pytest.mark.parametrize("path", CARDS, ids=lambda p: p.stem)
def test_quality_field_is_a_list_in_every_card(path: Path) -> None:
    raw = json.loads(path.read_text())
    if "quality" in raw:  # fixed-rate models (rgb-4x, rgb-16x) have none
        assert isinstance(raw["quality"], list) and raw["quality"], f"{path.name}: quality is {type(raw['quality']).__name__}"
        assert all(set(entry) == {"family", "q", "step"} for entry in raw["quality"])
    assert stanzas(read_card(path)) == raw.get("quality", [])


@pytest.mark.parametrize(
    ("quality", "problem"),
    [
        ({"family": "rgb", "q": [0, 36], "step": [4.0, 1.0]}, "quality must be a list of {family, q, step} entries, not dict"),
        ([{"family": "rgb", "q": [0], "step": [4.0, 1.0]}], "is not {\"family\": name"),
        ([{"family": "rgb", "q": [36, 0], "step": [4.0, 1.0]}], "q must rise within 0..100"),
        ([{"family": "rgb", "q": [0, 36], "step": [4.0, 0]}], "steps be positive"),
        (["rgb"], "is not {\"family\": name"),
    ],
)
def test_a_card_with_another_quality_shape_is_refused(tmp_path: Path, quality: object, problem: str) -> None:
    source = models_dir() / "rgb-16x-v.json"
    card = json.loads(source.read_text())
    card["quality"] = quality
    card["weights"] = str(source.with_suffix(".safetensors"))
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(card))
    with pytest.raises(ModelError) as caught:
        read_card(path)
    assert str(caught.value).startswith(f"model card {path} is unreadable: ") and problem in str(caught.value)


def test_every_family_ladder_tiles_0_to_100() -> None:
    families = {entry["family"] for card in available_models() for entry in stanzas(card)}
    assert {"rgb", "gray", "audio", "speech", "speech8k", "volume", "multispectral"} <= families
    for family in families:
        stretches = ladder(family)
        assert stretches[0].q_lo == 0 and stretches[-1].q_hi == 100
