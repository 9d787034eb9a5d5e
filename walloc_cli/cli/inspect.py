"""``walloc info``, ``verify``, ``models`` and ``latents``: commands that read ``.wlc`` files
or the model zoo and write nothing but their report (``latents`` also its ``.npy`` files).

Each parses its arguments, calls one library function per input (:func:`describe`,
:func:`walloc_cli.api.verify.verify_file`, :func:`walloc_cli.model.zoo.available_models`,
:func:`walloc_cli.api.latents.export_npy`) and prints through :mod:`walloc_cli.cli.render`.
The library is imported inside each command: ``walloc --help`` must not load torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from walloc_cli.cli.render import err, format_info, guard, out, print_models
from walloc_cli.format.limits import DEFAULT_MAX_PIXELS, DEFAULT_MAX_VOXELS


def info(
    inputs: list[Path] = typer.Argument(..., help=".wlc files to describe."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Explain a .wlc file: what it holds, which model made it, its rate. Verifies every CRC."""
    from walloc_cli.api.files import describe

    failed = 0
    for src in inputs:
        data = guard(src, lambda: describe(src))
        if data is None:
            failed += 1
            continue
        if json_out:
            out.print(json.dumps(data, indent=2), markup=False, soft_wrap=True)
            continue
        out.print(format_info(data), markup=False, soft_wrap=True)
    raise typer.Exit(1 if failed else 0)


def verify(
    inputs: list[Path] = typer.Argument(..., help=".wlc files, folders (with -r) or quoted globs to test."),
    model: Optional[str] = typer.Option(None, "-m", "--model", help="Model card .json to use besides the shipped models (its SHA-256 must match the file's)."),
    recursive: bool = typer.Option(False, "-r", "--recursive", help="Test the .wlc files in folders given as inputs, recursively (other files are skipped with a note)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON record per file."),
    quiet: bool = typer.Option(False, "--quiet", help="Print errors only."),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", metavar="N", min=1, help="Refuse images of more than N pixels (width x height) that a file declares; raise it for larger ones (memory grows with it: see the README)."),
    max_voxels: int = typer.Option(DEFAULT_MAX_VOXELS, "--max-voxels", metavar="N", min=1, help="Refuse volumes of more than N voxels that a file declares; raise it for larger ones."),
) -> None:
    """Test .wlc files like flac -t: signature, version, every CRC, the header, that the model is installed with the same SHA-256, and that the payload decodes. Prints FILE: ok, or the problem; nothing is written."""
    from walloc_cli.api.batch import expand_inputs
    from walloc_cli.api.verify import verify_file

    found = expand_inputs(inputs, "decompress", recursive)
    failed = 0
    for argument, problem in found.problems:
        failed += 1
        err.print(f"walloc: {argument}: {problem}", markup=False, soft_wrap=True)
    for path in found.skipped:
        if not quiet:
            err.print(f"walloc: {path}: skipped (not a .wlc file)", markup=False, soft_wrap=True)
    for item in found.items:
        report = verify_file(item.src, model=model, max_pixels=max_pixels, max_voxels=max_voxels)
        failed += not report.ok
        if json_out:
            out.print(json.dumps(report.to_dict()), markup=False, soft_wrap=True)
        if not report.ok:
            err.print(f"walloc: {item.src}: {report.problem}", markup=False, soft_wrap=True)
        elif not quiet and not json_out:
            out.print(f"{item.src}: ok", markup=False, soft_wrap=True)
    raise typer.Exit(1 if failed else 0)


def models(json_out: bool = typer.Option(False, "--json", help="Machine-readable output (the full model cards).")) -> None:
    """List the shipped models: modality, channels, DR, parameters, step range, place on the quality scale, and the measured rate/PSNR points of their cards."""
    from walloc_cli.model.zoo import available_models

    cards = available_models()
    if json_out:
        out.print(json.dumps([c.card for c in cards], indent=2), markup=False, soft_wrap=True)
        return
    print_models(cards)


def latents(
    inputs: list[Path] = typer.Argument(..., help=".wlc files whose latents to export."),
    out_dir: Path = typer.Option(..., "-O", "--out-dir", help="Folder for the .npy files (created if missing); each input gives NAME.npy."),
    force: bool = typer.Option(False, "-f", "--force", help="Overwrite existing outputs."),
    dequantize: bool = typer.Option(False, "--dequantize", help="Write float32 encoder outputs z (through the companding inverse) instead of the int32 indices."),
) -> None:
    """Export the latents of .wlc files as .npy, without running the decoder: images (L, H/2^J, W/2^J), audio (streams, L, frames/2^J) along time, volumes (L, D/2^J, H/2^J, W/2^J)."""
    from walloc_cli.errors import InputError
    from walloc_cli.api.latents import export_npy

    def make_folder() -> bool:
        if out_dir.exists() and not out_dir.is_dir():
            raise InputError("exists and is not a folder")
        out_dir.mkdir(parents=True, exist_ok=True)
        return True

    if guard(out_dir, make_folder) is None:
        raise typer.Exit(1)
    failed = 0
    written: set[Path] = set()
    for src in inputs:
        dst = out_dir / f"{src.stem}.npy"

        def export() -> Any:
            if dst in written:
                raise InputError(f"{dst} was already written from another input of the same name")
            return export_npy(src, dst, dequantized=dequantize, overwrite=force)

        result = guard(src, export)
        if result is None:
            failed += 1
            continue
        written.add(dst)
        array, info = result
        out.print(f"{src} -> {dst}  {info.modality}  {'x'.join(map(str, array.shape))} {array.dtype}  DR {info.reduction:g}x  {info.model} step {info.step:g}", markup=False, soft_wrap=True)
    raise typer.Exit(1 if failed else 0)

