"""Training runs: config files (TOML or JSON) and the train-then-export pipeline of ``walloc train``.

A run config names the model, its modality and data folders, and holds two tables, ``[codec]``
(:class:`~walloc_cli.model.config.CodecConfig`) and ``[train]`` (:class:`~walloc_cli.train.loop.TrainConfig`).
Every field has a default; unknown keys are errors so a typo never trains the wrong model. The
configs that produced the shipped models live in ``configs/``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable

import torch

from walloc_cli.model.config import CodecConfig
from walloc_cli.errors import InputError
from walloc_cli.model.zoo import ModelCard, export_model
from walloc_cli.train.loop import (
    Distributed,
    TrainConfig,
    hardware_description,
    train,
    training_set,
    validation_steps,
)


@dataclasses.dataclass
class RunConfig:
    """One training run as a config file describes it (TOML or JSON); every field has a default.

    ``train_data``/``val_data`` are folders; relative paths resolve against the config file's folder.
    """

    name: str = "model"
    modality: str = "image"
    train_data: str = "data/photos/train"
    val_data: str = ""
    codec: CodecConfig = dataclasses.field(default_factory=CodecConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "modality": self.modality, "train_data": self.train_data, "val_data": self.val_data, "codec": self.codec.to_dict(), "train": dataclasses.asdict(self.train)}


def read_run_config(path: Path) -> RunConfig:
    """Parse a TOML (``.toml``) or JSON run config; unknown keys are errors, not silently ignored."""
    import tomllib

    try:
        text = path.read_text()
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read config: {error}") from None
    if not isinstance(data, dict):
        raise InputError("config must be a table/object")
    known = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = set(data) - known
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown |= {f"train.{k}" for k in data.get("train", {}) if k not in train_fields}
    if unknown:
        raise InputError(f"unknown config keys: {', '.join(sorted(unknown))}")
    try:
        codec = CodecConfig.from_dict(data.get("codec", {}))
        train_cfg = TrainConfig(**data.get("train", {}))
    except (TypeError, ValueError) as error:
        raise InputError(f"bad config value: {error}") from None
    base = path.parent

    def resolve(folders: str) -> str:
        # several folders may be listed, comma-separated (volume models train on CT and MRI)
        return ",".join(str(base / f) if f and not Path(f).is_absolute() else f for f in folders.split(","))

    fields = {k: data[k] for k in ("name", "modality") if k in data}
    return RunConfig(**fields, train_data=resolve(data.get("train_data", RunConfig.train_data)), val_data=resolve(data.get("val_data", "")), codec=codec, train=train_cfg)


def configure_run(config: Path | None, codec: dict[str, Any], train: dict[str, Any], fields: dict[str, Any]) -> RunConfig:
    """The run ``walloc train`` asks for: ``config``'s (:func:`read_run_config`; the defaults
    without a file), where every value given (not None) overrides it: ``codec`` and ``train`` by
    field of :class:`CodecConfig` and :class:`TrainConfig`, ``fields`` by field of
    :class:`RunConfig` (name, modality, train_data, val_data). :class:`InputError` names a bad
    value."""
    run = read_run_config(config) if config else RunConfig()
    try:
        codec_cfg = dataclasses.replace(run.codec, **{k: v for k, v in codec.items() if v is not None})
        train_cfg = dataclasses.replace(run.train, **{k: v for k, v in train.items() if v is not None})
    except (TypeError, ValueError) as error:
        raise InputError(str(error)) from None
    run = dataclasses.replace(run, codec=codec_cfg, train=train_cfg)
    return dataclasses.replace(run, **{k: v for k, v in fields.items() if v is not None})


def train_and_export(run: RunConfig, out_dir: Path, checkpoint: Path, device: str = "auto", log: Callable[[dict[str, Any]], None] | None = None, overwrite: bool = False) -> ModelCard | None:
    """The whole ``walloc train`` pipeline: train or resume ``run``, then (rank 0) export
    ``out_dir/NAME.safetensors`` + ``NAME.json`` with the full run config, data provenance, steps,
    hardware, validation history and the final rate/PSNR on the validation photos.

    Returns the exported :class:`~walloc_cli.model.zoo.ModelCard` (``None`` on ranks other than 0,
    and when training was interrupted before its last step: the checkpoint holds the progress).
    """
    targets = (out_dir / f"{run.name}.safetensors", out_dir / f"{run.name}.json")
    for target in targets:
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target}: already exists (use -f to overwrite)")
    expected = {"audio": 1, "image": 2, "volume": 3}.get(run.modality)
    if expected is None:
        raise InputError(f"modality {run.modality!r}: choose image, audio or volume")
    if run.codec.dims != expected:
        raise InputError(f"a {run.modality} model needs codec dims = {expected}, not {run.codec.dims}")
    train_dir = Path(run.train_data)
    val_dir = Path(run.val_data) if run.val_data else None
    dist = Distributed.from_env()
    resolved = device if device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    model = train(run.codec, run.train, train_dir, val_dir, checkpoint, device=device, log=log, run_meta=run.to_dict())
    meta = json.loads(checkpoint.with_name(checkpoint.name + ".json").read_text())
    if dist.rank != 0 or meta["step"] < run.train.steps:
        return None
    model = model.cpu()
    extras = card_extras(run, meta, hardware_description(resolved, run.train.threads, dist.world))
    extras["training"]["checkpoint"] = str(checkpoint)
    if val_dir and not extras["results"]:  # a checkpoint from before validations kept their points
        val_data = training_set(val_dir, run.codec)
        extras["results"] = _results(run, [{"step": s, **val_data.validate(model, s)} for s in validation_steps(run.train)])
    return export_model(model, out_dir, run.name, run.modality, extras)


def _results(run: RunConfig, points: list[dict[str, Any]]) -> dict[str, Any]:
    """A card's ``results`` from validation points (one per step of :func:`validation_steps`)."""
    if not points:
        return {}
    if run.modality == "audio":
        units = {"rate": "payload bits per sample (the default payload coder)", "distortion": "PSNR against each file's peak"}
    elif run.modality == "volume":
        units = {"rate": "payload bits per voxel (the default payload coder)", "distortion": "PSNR against each volume's data range (max - min)"}
    else:
        units = {"rate": "payload bits per pixel (the default payload coder)", "distortion": "PSNR, peak 255"}
    return {"set": f"validation files in {run.val_data}", **units, "points": points}


def data_files(spec: str) -> list[str]:
    """The files a data spec names, relative to their folder: comma-separated folders (searched
    recursively) or globs such as ``speech/train/*.8k.flac``."""
    names = []
    for part in map(Path, spec.split(",")):
        if any(c in part.name for c in "*?["):
            names += [p.name for p in part.parent.glob(part.name) if p.is_file()]
        else:
            names += [str(p.relative_to(part)) for p in part.rglob("*") if p.is_file()]
    return sorted(names)


def card_extras(run: RunConfig, meta: dict[str, Any], hardware: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """The card fields a training run contributes (``training``, ``steps``, ``results``), from the
    run config and the checkpoint sidecar ``meta``. The results are the validation of the last
    step, which the training loop already ran and recorded: they are not measured again."""
    train_dir = Path(run.train_data)
    last = meta.get("history", [])[-1:] or [{}]
    points = last[0].get("val_points", []) if last[0].get("step") == meta["step"] else []
    training = {
        "data": data or {"train": str(train_dir), "val": run.val_data or None, "train_files": data_files(run.train_data)},
        "run_config": run.to_dict(),
        "steps": meta["step"],
        "hardware": hardware,
        "loss": f"rate proxy '{run.train.rate}' (bits per sample position) + lambda/step^2 * 255^2 * MSE (walloc_cli/train/loop.py)",
        "validation_history": meta.get("history", []),
    }
    return {"training": training, "steps": {"min": run.train.step_min, "max": run.train.step_max}, "results": _results(run, points)}
