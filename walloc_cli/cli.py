"""The ``walloc`` command: thin Typer commands over :mod:`walloc_cli.api` (fastapi-cli style).

Every command turns domain errors into one line ``walloc: FILE: problem`` on stderr. Exit codes:
0 all inputs done, 1 at least one input failed (the others were still processed), 2 usage error.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from walloc_cli import __version__

# OpenMP threads that spin while waiting make torch 5-10x slower whenever another process
# shares the cores (measured: 4.4 s vs 0.6 s to decode a 512x512 photo beside a busy job).
# A CLI often runs beside other jobs (batch scripts, --jobs), so wait passively unless told.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

app = typer.Typer(
    name="walloc",
    help="Learned lossy compression (WaLLoC) for photos: compress to .wlc, decompress, inspect.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
T = TypeVar("T")


def _fail(path: Path | str, error: BaseException) -> None:
    message = str(error) if str(error) else type(error).__name__
    # A refused overwrite names the *output* file; everything else is about the input.
    prefix = "" if isinstance(error, FileExistsError) or message.startswith(f"{path}: ") else f"{path}: "
    err.print(f"walloc: {prefix}{message}", markup=False, soft_wrap=True)


def _guard(path: Path | str, action: Callable[[], T]) -> T | None:
    """Run ``action``; turn expected failures into one line. Returns None on failure."""
    from walloc_cli.errors import WallocError

    try:
        return action()
    except (WallocError, FileExistsError, FileNotFoundError, IsADirectoryError, PermissionError) as error:
        _fail(path, error if not isinstance(error, OSError) or not error.strerror else Exception(error.strerror.lower()))
    except OSError as error:
        _fail(path, Exception(error.strerror or str(error)))
    except KeyboardInterrupt:
        raise
    return None


def _human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def _version(value: bool) -> None:
    if value:
        out.print(f"walloc {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """walloc: wavelet learned lossy compression."""


@app.command()
def compress(
    inputs: list[Path] = typer.Argument(..., help="Images to compress (PNG, JPEG, TIFF, WebP, BMP); - reads standard input."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output file (one input only); - writes standard output. Default: input name with .wlc (standard output for standard input)."),
    force: bool = typer.Option(False, "-f", "--force", help="Overwrite existing outputs."),
    model: Optional[str] = typer.Option(None, "-m", "--model", help="Shipped model name (see `walloc models`) or path to a model card .json."),
    payload: str = typer.Option("webp", "--payload", help="Lossless coder of the latents: webp or png."),
    effort: Optional[int] = typer.Option(None, "-e", "--effort", min=0, max=6, help="Lossless WebP effort for the latents, 0 (fastest) to 6 (smallest); decoded pixels are the same. Default: the model's (see `walloc models --json`)."),
    no_psnr: bool = typer.Option(False, "--no-psnr", help="Skip the decode that measures PSNR."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON record per file instead of the table line."),
) -> None:
    """Compress images to .wlc and report size, bpp, compression ratio, PSNR, DR and time."""
    from walloc_cli.api import compress_file

    if output is not None and len(inputs) > 1:
        raise typer.BadParameter("-o/--output takes one input; drop it to write beside each input", param_hint="-o")
    failed = 0
    for src in inputs:
        report = _guard(src, lambda: compress_file(src, output, model=model, payload=payload, overwrite=force, measure=not no_psnr, effort=effort))
        if report is None:
            failed += 1
            continue
        console = err if report.output == "-" else out  # stdout carries the data
        if json_out:
            console.print(json.dumps(report.to_dict()), markup=False, soft_wrap=True)
            continue
        quality = f"PSNR {report.psnr:.2f} dB" if report.psnr is not None else "PSNR skipped"
        console.print(
            f"{src} -> {report.output}  {_human_bytes(report.n_bytes)}  {report.bpp:.3f} bpp  "
            f"{report.ratio:.1f}:1  {quality}  DR {report.reduction:g}x  {report.seconds:.2f} s",
            markup=False, soft_wrap=True,
        )
    raise typer.Exit(1 if failed else 0)


@app.command()
def decompress(
    inputs: list[Path] = typer.Argument(..., help=".wlc files to decode; - reads standard input."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output file (one input only); its extension picks the format (.png .tif .webp .bmp .jpg); - writes PNG to standard output. Default: input name with .png (standard output for standard input)."),
    force: bool = typer.Option(False, "-f", "--force", help="Overwrite existing outputs."),
    model: Optional[str] = typer.Option(None, "-m", "--model", help="Model card .json to use besides the shipped models (for files made with your own model; its SHA-256 must match the file's)."),
) -> None:
    """Decode .wlc files back to images (same size, mode, bit depth, alpha and ICC profile)."""
    from walloc_cli.api import decompress_file

    if output is not None and len(inputs) > 1:
        raise typer.BadParameter("-o/--output takes one input", param_hint="-o")
    failed = 0
    for src in inputs:
        report = _guard(src, lambda: decompress_file(src, output, overwrite=force, model=model))
        if report is None:
            failed += 1
            continue
        console = err if report.output == "-" else out  # stdout carries the data
        console.print(f"{src} -> {report.output}  {report.width}x{report.height} {report.mode}  {report.seconds:.2f} s", markup=False, soft_wrap=True)
    raise typer.Exit(1 if failed else 0)


@app.command()
def info(
    inputs: list[Path] = typer.Argument(..., help=".wlc files to describe."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Explain a .wlc file: what it holds, which model made it, its rate. Verifies every CRC."""
    from walloc_cli.api import describe

    failed = 0
    for src in inputs:
        data = _guard(src, lambda: describe(src))
        if data is None:
            failed += 1
            continue
        if json_out:
            out.print(json.dumps(data, indent=2), markup=False, soft_wrap=True)
            continue
        out.print(_format_info(data), markup=False, soft_wrap=True)
    raise typer.Exit(1 if failed else 0)


def _format_info(data: dict[str, Any]) -> str:
    header = data["header"]
    lines = [f"{data['file']}: walloc .wlc v{data['format_version']}, {_human_bytes(data['bytes'])}"]
    image = header.get("image")
    if isinstance(image, dict):
        lines.append(f"  image     {image.get('width')}x{image.get('height')} {image.get('mode')}, {image.get('bit_depth')}-bit, from {image.get('source_format')}")
    if "bpp" in data:
        lines.append(f"  rate      {data['bpp']:.4f} bpp, {data['ratio']:.1f}:1 compression, DR {data.get('reduction', 0):g}x")
    model = header.get("model", {})
    lines.append(f"  model     {model.get('name')} (sha256 {str(model.get('sha256'))[:16]}…)")
    codec = header.get("codec", {})
    if codec:
        lines.append(f"  codec     WPT {codec.get('levels')} levels ({codec.get('boundary')}), {codec.get('latent_dim')} latent channels, {codec.get('bits')}-bit")
    latent = header.get("latent", {})
    if latent:
        lines.append(f"  payload   {latent.get('payload')} lossless, latent {'x'.join(map(str, latent.get('shape', [])))}, step {latent.get('step')}")
    alpha = header.get("alpha")
    if alpha:
        lines.append(f"  alpha     {'constant ' + str(alpha['constant']) if 'constant' in alpha else alpha.get('codec') + ' lossless'}")
    for kind, entry in data["chunks"].items():
        lines.append(f"  chunk     {kind}  x{entry['count']}  {_human_bytes(entry['bytes'])}")
    lines.append(f"  encoder   {header.get('encoder', 'unknown')}")
    return "\n".join(lines)


@app.command()
def models(json_out: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List the shipped models with their measured rate and PSNR."""
    from walloc_cli.registry import available_models

    cards = available_models()
    if json_out:
        out.print(json.dumps([c.card for c in cards], indent=2), markup=False, soft_wrap=True)
        return
    table = Table(title="walloc models")
    for column in ("name", "modality", "DR", "params", "test bpp", "test PSNR", "decoder"):
        table.add_column(column)
    for card in cards:
        results = card.card.get("results", {})
        table.add_row(
            card.name,
            card.modality,
            f"{card.config.reduction:g}x",
            f"{card.parameters / 1e6:.2f}M",
            f"{results['bpp']:.3f}" if "bpp" in results else "-",
            f"{results['psnr']:.2f} dB" if "psnr" in results else "-",
            f"{card.config.decoder_channels}ch x {card.config.decoder_blocks} blocks",
        )
    out.print(table)


@app.command()
def train(
    train_dir: Path = typer.Argument(..., help="Folder of training photos."),
    name: str = typer.Option(..., "--name", help="Model name; writes NAME.safetensors and NAME.json."),
    out_dir: Path = typer.Option(Path("."), "-O", "--out-dir", help="Where the exported model goes."),
    val_dir: Optional[Path] = typer.Option(None, "--val", help="Folder of validation photos (real rate/PSNR every --validate-every steps)."),
    latent_dim: int = typer.Option(12, "--latent-dim", help="Latent channels (RGB, J=3: 12 = 16x DR, 48 = 4x)."),
    levels: int = typer.Option(3, "--levels", help="WPT levels J."),
    decoder_channels: int = typer.Option(128, "--decoder-channels"),
    decoder_blocks: int = typer.Option(4, "--decoder-blocks"),
    lam: float = typer.Option(0.01, "--lambda", help="Rate-distortion trade-off: loss = bpp + lambda*255^2*MSE."),
    steps: int = typer.Option(20000, "--steps"),
    batch: int = typer.Option(8, "--batch"),
    crop: int = typer.Option(128, "--crop"),
    lr: float = typer.Option(1e-3, "--lr"),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    validate_every: int = typer.Option(500, "--validate-every", help="Steps between validations on --val."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Checkpoint to write and resume from. Default: OUT_DIR/NAME.ckpt.safetensors."),
    force: bool = typer.Option(False, "-f", "--force", help="Overwrite an existing exported model of the same name."),
) -> None:
    """Train an RGB image model (resumes from --checkpoint; Ctrl-C saves and stops)."""
    from walloc_cli.codec import CodecConfig
    from walloc_cli.registry import export_model
    from walloc_cli.training import TrainConfig, train as run_training, validate, load_photos

    codec_cfg = CodecConfig(latent_dim=latent_dim, levels=levels, decoder_channels=decoder_channels, decoder_blocks=decoder_blocks)
    train_cfg = TrainConfig(lam=lam, steps=steps, batch=batch, crop=crop, lr=lr, seed=seed, validate_every=validate_every)
    ckpt = checkpoint or out_dir / f"{name}.ckpt.safetensors"
    out_dir.mkdir(parents=True, exist_ok=True)

    def log(record: dict[str, Any]) -> None:
        if record["step"] % 100 == 0 or "val_psnr" in record:
            extra = f"  val {record['val_bpp']:.3f} bpp {record['val_psnr']:.2f} dB" if "val_psnr" in record else ""
            out.print(f"step {record['step']:>7}  loss {record['loss']:.3f}  bpp~{record['bpp_proxy']:.3f}  {record['samples_per_s']:.1f} samples/s{extra}", markup=False)

    def run() -> Any:
        for target in (out_dir / f"{name}.safetensors", out_dir / f"{name}.json"):
            if target.exists() and not force:
                raise FileExistsError(f"{target}: already exists (use -f to overwrite)")
        model = run_training(codec_cfg, train_cfg, train_dir, val_dir, ckpt, device=device, log=log)
        results = validate(model.cpu(), load_photos(val_dir)) if val_dir else {}
        provenance = {"data": str(train_dir), "train_config": dataclasses.asdict(train_cfg), "checkpoint": str(ckpt)}
        return export_model(model.cpu(), out_dir, name, "image", {"training": provenance, "results": results})

    card = _guard(train_dir, run)
    if card is None:
        raise typer.Exit(1)
    out.print(f"wrote {card.weights} and {card.weights.with_suffix('.json')}", markup=False)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("walloc: interrupted")
        sys.exit(130)
