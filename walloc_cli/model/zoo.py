"""Model registry: shipped models are ``models/<name>.safetensors`` plus a JSON card each.

The card (CompressAI's "model zoo" entry, made explicit) holds the codec config, the SHA-256 of
the weights, how the model was trained and what it measured. ``.wlc`` files name the model and
its SHA-256, so a decoder can refuse weights that differ from the encoder's instead of silently
decoding garbage. Weights are safetensors: loading them cannot execute code.

:func:`load_model` gives a model behind the inference protocol of :mod:`walloc_cli.model.runtime`
(numpy by default, torch on request); :func:`load_network` gives the torch network itself, for
training and reference measurements.

The ``models/`` folder is installed as the ``walloc_cli.models`` package data (see
``pyproject.toml``), so an installed wheel and a source checkout find the same files.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from walloc_cli.errors import ModelError
from walloc_cli.format.header import same_model
from walloc_cli.model.config import CodecConfig
from walloc_cli.model.runtime import Runtime, RuntimeName, TorchRuntime, runtime_name

if TYPE_CHECKING:
    from walloc_cli.model.network import WallocCodec

DEFAULT_MODELS = {"image": "rgb-16x"}


@dataclasses.dataclass(frozen=True)
class ModelCard:
    """A model's JSON card, parsed. ``weights`` is the resolved path of its safetensors file."""

    name: str
    modality: str
    config: CodecConfig
    sha256: str
    weights: Path
    card: dict[str, Any]

    @property
    def parameters(self) -> int:
        return int(self.card.get("parameters", {}).get("total", 0))


def models_dir() -> Path:
    """Folder of the shipped models (package data when installed, ``models/`` in a checkout)."""
    try:
        return Path(str(resources.files("walloc_cli.models")))
    except ModuleNotFoundError:  # running from a source tree without installation
        return Path(__file__).resolve().parents[2] / "models"  # walloc_cli/model/zoo.py -> checkout


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_card(path: Path) -> ModelCard:
    """Parse a card JSON file; its ``weights`` field is relative to the card's folder.

    Every encode and decode resolves its model through the cards, so a parsed card is reused
    while the file is unchanged (same size and modification time).
    """
    try:
        stat = Path(path).stat()
    except OSError as error:
        raise ModelError(f"model card {path} is unreadable: {error.strerror or error}") from None
    return _parse_card(Path(path), stat.st_mtime_ns, stat.st_size)


def quality_entries(card: dict[str, Any]) -> list[dict[str, Any]]:
    """A card's ``quality`` field, checked: a list (one entry per family the model serves) of
    ``{"family": str, "q": [lo, hi], "step": [coarsest, finest]}`` with 0 <= lo < hi <= 100 and
    positive steps; ``[]`` when the card has none (a fixed-rate model). One shape only, so every
    reader of the field (the quality ladder, ``walloc models``, the man-page test) sees the same
    thing; :class:`ModelError` for anything else."""
    spec = card.get("quality", [])

    def numbers(value: Any) -> bool:
        return isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)

    if not isinstance(spec, list):
        raise ModelError(f"quality must be a list of {{family, q, step}} entries, not {type(spec).__name__}")
    for entry in spec:
        if not (isinstance(entry, dict) and isinstance(entry.get("family"), str) and numbers(entry.get("q")) and numbers(entry.get("step"))):
            raise ModelError(f"quality entry {entry!r} is not {{\"family\": name, \"q\": [lo, hi], \"step\": [coarsest, finest]}}")
        (q_lo, q_hi), steps = entry["q"], entry["step"]
        if not (0 <= q_lo < q_hi <= 100 and all(0 < s < float("inf") for s in steps)):
            raise ModelError(f"quality entry {entry!r}: q must rise within 0..100 and steps be positive")
    return spec


@functools.lru_cache(maxsize=64)
def _parse_card(path: Path, mtime_ns: int, size: int) -> ModelCard:
    try:
        card = json.loads(path.read_text())
        quality_entries(card)
        return ModelCard(
            name=card["name"],
            modality=card["modality"],
            config=CodecConfig.from_dict(card["config"]),
            sha256=card["sha256"],
            weights=path.parent / card["weights"],
            card=card,
        )
    except (OSError, ValueError, KeyError, TypeError, ModelError) as error:
        raise ModelError(f"model card {path} is unreadable: {error}") from None


def available_models() -> list[ModelCard]:
    """Every shipped model, sorted by name.

    The folder is listed and its cards parsed once per process (a photo's compress asks for
    the list six times); the weights are still verified, by SHA-256, whenever they are loaded.
    """
    return list(_cards_in(models_dir()))


@functools.lru_cache(maxsize=4)
def _cards_in(folder: Path) -> tuple[ModelCard, ...]:
    """The parsed cards of ``folder``, sorted by file name; cached per folder."""
    return tuple(read_card(p) for p in sorted(folder.glob("*.json"))) if folder.is_dir() else ()


def find_card(name_or_path: str) -> ModelCard:
    """Resolve a shipped model name, or a path to a card ``.json`` / weights ``.safetensors``."""
    path = Path(name_or_path)
    if path.suffix in {".json", ".safetensors"} and path.exists():
        return read_card(path.with_suffix(".json"))
    for card in available_models():
        if card.name == name_or_path:
            return card
    names = ", ".join(c.name for c in available_models()) or "none installed"
    raise ModelError(f"unknown model {name_or_path!r} (shipped models: {names}; or give a path to a card .json)")


def _verified(weights: Path, sha256: str) -> None:
    """Refuse a missing weights file, or one whose SHA-256 is not the card's."""
    if not weights.exists():
        raise ModelError(f"weights file {weights} is missing")
    actual = sha256_file(weights)
    if actual != sha256:
        raise ModelError(f"weights {weights.name} have SHA-256 {actual[:12]}…, the card says {sha256[:12]}…")


@functools.lru_cache(maxsize=8)
def _load_network(weights: Path, sha256: str, config: CodecConfig) -> WallocCodec:
    # torch (through the network and safetensors.torch) only here: the codecs run on the lean
    # runtime, and listing and parsing the cards must not import torch either.
    from safetensors.torch import load_file

    from walloc_cli.model.network import WallocCodec

    _verified(weights, sha256)
    model = WallocCodec(config)
    state = load_file(str(weights))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("density.") for k in missing):
        raise ModelError(f"weights {weights.name} do not fit config {config}")
    return model.eval()


@functools.lru_cache(maxsize=8)
def _load(weights: Path, sha256: str, config: CodecConfig, runtime: RuntimeName) -> Runtime:
    if runtime == "torch":
        return TorchRuntime(_load_network(weights, sha256, config))
    from walloc_cli.model.lean import LeanCodec

    _verified(weights, sha256)
    try:
        return LeanCodec.from_file(config, weights)
    except (ValueError, KeyError, OSError) as error:  # safetensors raises these for a malformed file
        raise ModelError(f"weights {weights.name} do not fit config {config}: {error}") from None


def models_loaded() -> int:
    """How many models this process has loaded (read, SHA-256 verified, built) so far: each
    model is loaded once per process and runtime and then served from the cache, which is
    what lets a Dask worker or a DataLoader worker pay for a model once, whatever it converts."""
    return _load.cache_info().misses


def load_model(name_or_path: str, runtime: str | None = None) -> tuple[Runtime, ModelCard]:
    """Model ready for inference (SHA-256 verified) on ``runtime`` (``lean`` unless it or
    ``$WALLOC_RUNTIME`` says ``torch``; :mod:`walloc_cli.model.runtime`), and its card. Cached."""
    card = find_card(name_or_path)
    return _load(card.weights.resolve(), card.sha256, card.config, runtime_name(runtime)), card


def load_network(name_or_path: str) -> tuple[WallocCodec, ModelCard]:
    """The torch network of a model (eval mode, SHA-256 verified), for training, export and
    reference measurements; needs torch. Cached."""
    card = find_card(name_or_path)
    runtime_name("torch")  # one line naming the extra where torch is missing
    return _load_network(card.weights.resolve(), card.sha256, card.config), card


def load_by_identity(name: str, sha256: str, extra: str | None = None, runtime: str | None = None) -> tuple[Runtime, ModelCard]:
    """The model a ``.wlc`` file names, on ``runtime`` (as :func:`load_model`); refuses a
    same-named model with other weights.

    ``extra`` is a card path or name to consider besides the shipped models (a model the user
    trained and passed with ``--model``).
    """
    pool = available_models() + ([find_card(extra)] if extra else [])
    candidates = [c for c in pool if same_model(sha256, c.sha256)]
    if not candidates:
        known = [c for c in pool if c.name == name]
        if known:
            raise ModelError(f"made with model {name!r} sha256 {sha256[:12]}…, but the installed {name!r} is {known[0].sha256[:12]}… (a different version)")
        raise ModelError(f"made with model {name!r} (sha256 {sha256[:12]}…), which is not installed")
    card = next((c for c in candidates if c.name == name), candidates[0])
    return _load(card.weights.resolve(), card.sha256, card.config, runtime_name(runtime)), card


def export_model(model: WallocCodec, out_dir: Path, name: str, modality: str, extra: dict[str, Any]) -> ModelCard:
    """Write ``<name>.safetensors`` (inference weights) and ``<name>.json`` (card) into ``out_dir``."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / f"{name}.safetensors"
    state = {k: v.detach().cpu().contiguous() for k, v in model.inference_state_dict().items()}
    # One metadata key only: safetensors serialises its metadata map in hash order, so two keys
    # can come out in either order and change the file's SHA-256 between identical exports.
    save_file(state, str(weights), metadata={"format": "walloc-weights-1"})
    params = {
        "encoder": sum(p.numel() for p in model.encoder.parameters()),
        "decoder": sum(p.numel() for p in model.decoder.parameters()),
    }
    params["total"] = params["encoder"] + params["decoder"]
    card = {
        "name": name,
        "modality": modality,
        "weights": weights.name,
        "sha256": sha256_file(weights),
        "config": model.cfg.to_dict(),
        "reduction": model.cfg.reduction,
        "parameters": params,
        **extra,
    }
    (out_dir / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    _cards_in.cache_clear()  # out_dir may be a listed folder: the new card must show up
    return read_card(out_dir / f"{name}.json")


def default_model(modality: str) -> str:
    """Name of the shipped model used for ``modality`` when the user names none."""
    try:
        return DEFAULT_MODELS[modality]
    except KeyError:
        raise ModelError(f"no shipped model for {modality} inputs yet") from None


__all__ = ["ModelCard", "available_models", "find_card", "load_model", "models_loaded", "load_network", "load_by_identity", "export_model", "sha256_file", "models_dir", "default_model", "quality_entries"]
