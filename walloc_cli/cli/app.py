"""The ``walloc`` command: thin Typer commands over :mod:`walloc_cli.codecs.image` (fastapi-cli style).

Every command turns domain errors into one line ``walloc: FILE: problem`` on stderr. Exit codes:
0 all inputs done, 1 at least one input failed (the others were still processed), 2 usage error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from walloc_cli._version import __version__
from walloc_cli.format.limits import DEFAULT_MAX_PIXELS, DEFAULT_MAX_VOXELS

if TYPE_CHECKING:  # annotations only: importing the codecs layer is not needed to print
    from walloc_cli.codecs.base import Report

# OpenMP threads that spin while waiting make torch 5-10x slower whenever another process
# shares the cores (measured: 4.4 s vs 0.6 s to decode a 512x512 photo beside a busy job).
# A CLI often runs beside other jobs (batch scripts, --jobs), so wait passively unless told.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

class _Commands(typer.core.TyperGroup):
    """The command group: Ctrl-C in any command prints ``walloc: interrupted`` and exits 130.

    Typer turns KeyboardInterrupt into a silent exit 130 before :func:`main` could see it; the
    batch commands print the line themselves (their outputs are cleaned up first)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from walloc_cli.cli.help import plain_help

        plain_help(self)  # --help without <bool> and <list[Path]> (walloc_cli/cli/help.py)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        from walloc_cli.cli.help import plain_help

        plain_help(self, recursive=False)  # Typer adds --install-completion after __init__
        super().format_help(ctx, formatter)

    def invoke(self, ctx: Any) -> Any:  # a click Context (typer vendors its own click)
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # partial outputs are already gone (atomic_output)
            err.print("walloc: interrupted", markup=False)
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=_Commands,
    name="walloc",
    help="Learned lossy compression (WaLLoC) for photos, audio and volumes (CT/MRI, multispectral): compress to .wlc, decompress, verify, inspect, evaluate, train.",
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
    """Run ``action``; turn failures into one line (any exception that is not a walloc or OS
    error is a bug, said as such). Returns None on failure."""
    from walloc_cli.errors import WallocError, internal_error

    try:
        return action()
    except (WallocError, FileExistsError, FileNotFoundError, IsADirectoryError, PermissionError) as error:
        _fail(path, error if not isinstance(error, OSError) or not error.strerror else Exception(error.strerror.lower()))
    except OSError as error:
        _fail(path, Exception(error.strerror or str(error)))
    except KeyboardInterrupt:
        raise
    except Exception as error:  # noqa: BLE001 - a bug in walloc: still one line for this file, and the next file goes on
        _fail(path, Exception(internal_error(error)))
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
    inputs: list[Path] = typer.Argument(..., help="Images (PNG, JPEG, TIFF, WebP, BMP), audio (WAV, FLAC, OGG, AIFF ...), volumes (multi-page/OME-TIFF, .npy, NIfTI), folders (with -r) or quoted globs to compress; - reads standard input."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output file (one input only); - writes standard output. Default: input name with .wlc (standard output for standard input)."),
    output_dir: Optional[Path] = typer.Option(None, "-O", "--output-dir", metavar="DIR", help="Write the outputs under DIR, mirroring the input tree (folders are created)."),
    recursive: bool = typer.Option(False, "-r", "--recursive", help="Compress the supported files in folders given as inputs, recursively (other files are skipped with a note)."),
    jobs: int = typer.Option(1, "-j", "--jobs", min=1, help="Files converted at once, each in its own process."),
    force: bool = typer.Option(False, "-f", "--force", help="Overwrite existing outputs."),
    quality: Optional[float] = typer.Option(None, "-q", "--quality", help="Quality 0 (smallest) to 100 (best): picks the model and quantisation step. Default: 75, or step 1 of the model given with -m."),
    target_psnr: Optional[float] = typer.Option(None, "--target-psnr", metavar="DB", help="Search for the smallest file whose PSNR reaches DB (like cwebp -psnr)."),
    target_size: Optional[int] = typer.Option(None, "--target-size", metavar="BYTES", help="Search for the best file of at most BYTES bytes (like cwebp -size); never larger."),
    model: Optional[str] = typer.Option(None, "-m", "--model", help="Shipped model name (see `walloc models`) or path to a model card .json; -q then spans this model's own step range."),
    payload: str = typer.Option("webp", "--payload", help="Lossless coder of the latents: webp or png."),
    effort: Optional[int] = typer.Option(None, "-e", "--effort", min=0, max=6, help="Lossless WebP effort for the latents, 0 (fastest) to 6 (smallest); decoded pixels are the same. Default: the model's (see `walloc models --json`)."),
    no_psnr: bool = typer.Option(False, "--no-psnr", help="Skip the decode that measures PSNR."),
    axes: Optional[str] = typer.Option(None, "--axes", help="Read the inputs as volumes with these axes, overriding their metadata: ZYX (slices first), CYX (bands first) or YXC (bands last); also XYZ etc."),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", metavar="N", min=1, help="Refuse images of more than N pixels (width x height); raise it for larger ones (memory grows with it: see the README)."),
    max_voxels: int = typer.Option(DEFAULT_MAX_VOXELS, "--max-voxels", metavar="N", min=1, help="Refuse volumes of more than N voxels; raise it for larger ones."),
    delete_input: bool = typer.Option(False, "--delete-input", help="Delete each input once its output is written and verified (decoded again from disk)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON record per file instead of the table line."),
    quiet: bool = typer.Option(False, "--quiet", help="Print errors only (-q is --quality)."),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Also print what was skipped or deleted and a summary."),
    metadata: str = typer.Option("icc", "--metadata", metavar="LIST", help="Image metadata to keep: all, none, or a comma-separated list of icc, exif, xmp (like cwebp -metadata). The EXIF orientation is always applied to the pixels."),
) -> None:
    """Compress images, audio or volumes to .wlc and report size, rate (bpp, kbit/s or bits/voxel), compression ratio, PSNR (and SNR for audio), DR, the model and step, and time."""
    if sum(v is not None for v in (quality, target_psnr, target_size)) > 1:
        raise typer.BadParameter("give one of -q/--quality, --target-psnr and --target-size", param_hint="-q")
    if quality is not None and not 0 <= quality <= 100:
        raise typer.BadParameter(f"{quality:g} is not in 0..100", param_hint="-q")
    from walloc_cli.errors import InputError
    from walloc_cli.files.image_meta import parse_metadata

    try:
        kept = parse_metadata(metadata, name="")
    except InputError as error:
        raise typer.BadParameter(str(error), param_hint="--metadata") from None
    options = {"model": model, "payload": payload, "overwrite": force, "measure": not no_psnr, "effort": effort, "quality": quality, "target_psnr": target_psnr, "target_size": target_size, "axes": axes, "max_pixels": max_pixels, "max_voxels": max_voxels, "metadata": sorted(kept)}
    batch = _Batch("compress", json_out=json_out, quiet=quiet, verbose=verbose, show=_show_compressed)
    batch.run(inputs, options, output=output, output_dir=output_dir, recursive=recursive, jobs=jobs, delete_input=delete_input)


def _show_compressed(src: str, report: Report, json_out: bool, quiet: bool) -> int:
    """Print one compress report (standard error when standard output carries the data)."""
    return _show(src, report, json_out, quiet)


def _show_decompressed(src: str, report: Report, json_out: bool, quiet: bool) -> int:
    """Print one decompress report; damaged audio blocks are errors (returns 1 for them)."""
    return _show(src, report, json_out, quiet)


def _show(src: str, report: Report, json_out: bool, quiet: bool) -> int:
    """One report: its problems (errors: returns 1), its warnings (unless ``quiet``), then its
    JSON record or summary line, on standard error when standard output carries the data."""
    for problem in report.problems:
        err.print(f"walloc: {src}: {problem}", markup=False, soft_wrap=True)
    console = err if report.output == "-" else out  # stdout carries the data
    if not quiet:
        for warning in report.warnings:
            err.print(f"walloc: {src}: {warning}", markup=False, soft_wrap=True)
    if json_out:
        console.print(json.dumps(report.to_dict()), markup=False, soft_wrap=True)
    elif not quiet:
        console.print(report.summary(), markup=False, soft_wrap=True)
    return int(bool(report.problems))


@dataclasses.dataclass
class _Batch:
    """The loop ``compress`` and ``decompress`` share: expand the inputs (:mod:`walloc_cli.api.batch`),
    run them (``--jobs``), print one line (or JSON record) per file and one error line per
    failure, show a progress bar on a terminal, and exit 0 (all done), 1 (some failed) or 2."""

    kind: str
    json_out: bool
    quiet: bool
    verbose: bool
    show: Callable[[str, Any, bool, bool], int]
    failed: int = 0
    stdout_data: bool = False  # standard output carries the converted file: records go to stderr

    def error(self, src: str, line: str) -> None:
        """One failure: its line on standard error (and with --json a record ``{input, error}``)."""
        self.failed += 1
        err.print(f"walloc: {line}", markup=False, soft_wrap=True)
        if self.json_out:  # scripts reading the records see every input
            (err if self.stdout_data else out).print(json.dumps({"input": src, "error": line}), markup=False, soft_wrap=True)

    def run(self, inputs: list[Path], options: dict[str, Any], *, output: Optional[Path], output_dir: Optional[Path], recursive: bool, jobs: int, delete_input: bool) -> None:
        import time

        from walloc_cli.api.batch import expand_inputs, plan, progress_bar, run_tasks

        if self.quiet and self.verbose:
            raise typer.BadParameter("give --quiet or --verbose, not both", param_hint="--quiet")
        if output is not None and output_dir is not None:
            raise typer.BadParameter("give -o/--output or -O/--output-dir, not both", param_hint="-o")
        if output is not None and len(inputs) > 1:
            raise typer.BadParameter("-o/--output takes one input; drop it to write beside each input, or use -O", param_hint="-o")
        if delete_input and "-" in {str(p) for p in inputs} | {str(output)}:
            raise typer.BadParameter("standard input cannot be deleted, nor standard output verified", param_hint="--delete-input")
        started = time.perf_counter()
        self.stdout_data = str(output) == "-" or (output is None and [str(p) for p in inputs] == ["-"])
        found = expand_inputs(inputs, self.kind, recursive)  # type: ignore[arg-type]
        if output is not None and len(found.items) > 1:
            raise typer.BadParameter(f"-o/--output takes one input; {inputs[0]} gives {len(found.items)}", param_hint="-o")
        for argument, problem in found.problems:
            self.error(argument, f"{argument}: {problem}")
        what = ".wlc file" if self.kind == "decompress" else "image, audio or volume file"
        for path in found.skipped:
            if not self.quiet:
                err.print(f"walloc: {path}: skipped (not a{'n' if what[0] in 'aeiou' else ''} {what})", markup=False, soft_wrap=True)
        tasks, refused = plan(found.items, self.kind, output=output, output_dir=output_dir, options=options, delete_input=delete_input)  # type: ignore[arg-type]
        for src, problem in refused:
            self.error(src, f"{src}: {problem}")
        done = 0

        def finished(outcome: Any) -> None:
            nonlocal done
            advance(outcome)
            if outcome.error is not None:
                self.error(outcome.src, outcome.error)
                return
            done += 1
            self.failed += self.show(outcome.src, outcome.report, self.json_out, self.quiet)
            if outcome.deleted and self.verbose:
                err.print(f"walloc: deleted {outcome.src}", markup=False, soft_wrap=True)

        try:
            with progress_bar(len(tasks), err, enabled=len(tasks) > 1 and err.is_terminal and not self.quiet) as advance, \
                    _single_file_progress(tasks, enabled=len(tasks) == 1 and err.is_terminal and not self.quiet):
                run_tasks(tasks, jobs, finished)
        except KeyboardInterrupt:  # partial outputs are already gone (atomic_output)
            err.print("walloc: interrupted", markup=False)
            raise typer.Exit(130) from None
        if self.verbose:
            err.print(f"walloc: {done} of {len(tasks)} converted, {self.failed} failed, {len(found.skipped)} skipped, {time.perf_counter() - started:.1f} s", markup=False, soft_wrap=True)
        raise typer.Exit(1 if self.failed else 0)


@contextlib.contextmanager
def _single_file_progress(tasks: list[Any], enabled: bool) -> Iterator[None]:
    """A Rich progress bar on standard error for one long file (audio blocks, volume tiles), fed
    by the ``progress(done, total)`` callback of the library functions; nothing when disabled."""
    if not enabled:
        yield
        return
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    with Progress(TextColumn(f"{tasks[0].kind} {tasks[0].src}"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn(), console=err, transient=True) as bar:
        job = bar.add_task("file", total=None)
        tasks[0].options["progress"] = lambda done, total: bar.update(job, completed=done, total=total)
        try:
            yield
        finally:
            tasks[0].options.pop("progress", None)


@app.command()
def decompress(
    inputs: list[Path] = typer.Argument(..., help=".wlc files, folders (with -r) or quoted globs to decode; - reads standard input."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output file (one input only); its extension picks the format: images .png .tif .webp .bmp .jpg, audio .wav .flac .ogg .aiff, volumes .tif .ome.tif .npy .nii .nii.gz; - writes standard output (PNG, WAV or .npy). Default: the input name with .png for images, the source's format for audio (.flac, .aiff, else .wav) and volumes (.tif, .ome.tif, .npy, .nii.gz); standard output for standard input."),
    force: bool = typer.Option(False, "-f", "--force", help="Overwrite existing outputs."),
    output_dir: Optional[Path] = typer.Option(None, "-O", "--output-dir", metavar="DIR", help="Write the outputs under DIR, mirroring the input tree (folders are created)."),
    recursive: bool = typer.Option(False, "-r", "--recursive", help="Decode the .wlc files in folders given as inputs, recursively (other files are skipped with a note)."),
    jobs: int = typer.Option(1, "-j", "--jobs", min=1, help="Files converted at once, each in its own process."),
    delete_input: bool = typer.Option(False, "--delete-input", help="Delete each .wlc once its output is written and checked (it exists with the decoded size)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON record per file instead of the line."),
    quiet: bool = typer.Option(False, "--quiet", help="Print errors only."),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Also print what was skipped or deleted and a summary."),
    model: Optional[str] = typer.Option(None, "-m", "--model", help="Model card .json to use besides the shipped models (for files made with your own model; its SHA-256 must match the file's)."),
    keep_going: bool = typer.Option(False, "-F", "--keep-going", help="Audio: decode past damaged blocks, writing silence for them (named on stderr; exit status 1), like flac -F."),
    start: Optional[float] = typer.Option(None, "--start", metavar="SECONDS", help="Audio: start decoding at this time (blocks before it are skipped unread)."),
    duration: Optional[float] = typer.Option(None, "--duration", metavar="SECONDS", help="Audio: decode only this many seconds (clipped at the end of the file)."),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", metavar="N", min=1, help="Refuse images of more than N pixels (width x height) that a file declares; raise it for larger ones (memory grows with it: see the README)."),
    max_voxels: int = typer.Option(DEFAULT_MAX_VOXELS, "--max-voxels", metavar="N", min=1, help="Refuse volumes of more than N voxels that a file declares; raise it for larger ones."),
) -> None:
    """Decode .wlc files back to images (same size, mode, bit depth, alpha and ICC profile), audio (same rate, channels, frames, sample format) or volumes (same shape, dtype, axes and metadata)."""
    if delete_input and (start is not None or duration is not None):
        # The output then holds only part of the input: deleting the .wlc would lose the rest.
        raise typer.BadParameter("--delete-input cannot be combined with --start/--duration (the output is only part of the input)", param_hint="--delete-input")
    options = {"overwrite": force, "model": model, "keep_going": keep_going, "start": start, "duration": duration, "max_pixels": max_pixels, "max_voxels": max_voxels}
    batch = _Batch("decompress", json_out=json_out, quiet=quiet, verbose=verbose, show=_show_decompressed)
    batch.run(inputs, options, output=output, output_dir=output_dir, recursive=recursive, jobs=jobs, delete_input=delete_input)


@app.command()
def info(
    inputs: list[Path] = typer.Argument(..., help=".wlc files to describe."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Explain a .wlc file: what it holds, which model made it, its rate. Verifies every CRC."""
    from walloc_cli.api.files import describe

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


@app.command()
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


def _format_info(data: dict[str, Any]) -> str:
    header = data["header"]
    lines = [f"{data['file']}: walloc .wlc v{data['format_version']}, {_human_bytes(data['bytes'])}"]
    image = header.get("image")
    if isinstance(image, dict):
        lines.append(f"  image     {image.get('width')}x{image.get('height')} {image.get('mode')}, {image.get('bit_depth')}-bit, from {image.get('source_format')}")
    audio = header.get("audio")
    if isinstance(audio, dict):
        lines.append(f"  audio     {audio.get('samplerate')} Hz, {audio.get('channels')} ch, {audio.get('frames')} frames, {audio.get('subtype')} from {audio.get('format')}")
    if "bpp" in data:
        lines.append(f"  rate      {data['bpp']:.4f} bpp, {data['ratio']:.1f}:1 compression, DR {data.get('reduction', 0):g}x")
    if "kbps" in data:
        lines.append(f"  rate      {data['kbps']:.1f} kbit/s, {data['ratio']:.1f}:1 compression, DR {data.get('reduction', 0):g}x")
    volume = header.get("volume")
    if isinstance(volume, dict):
        shape = "x".join(map(str, volume.get("shape", [])))
        lines.append(f"  volume    {shape} {volume.get('dtype')} ({volume.get('kind')}), axes {volume.get('axes')} from {volume.get('format')}")
    if "bpv" in data:
        lines.append(f"  rate      {data['bpv']:.4f} bits/voxel, {data['ratio']:.1f}:1 compression, DR {data.get('reduction', 0):g}x")
    model = header.get("model", {})
    lines.append(f"  model     {model.get('name')} (sha256 {str(model.get('sha256'))[:16]}…)")
    codec = header.get("codec", {})
    if codec:
        lines.append(f"  codec     WPT {codec.get('levels')} levels ({codec.get('boundary')}), {codec.get('latent_dim')} latent channels, {codec.get('bits')}-bit")
    latent = header.get("latent", {})
    if latent:
        if "shape" in latent:
            layout = f"latent {'x'.join(map(str, latent['shape']))}"
        elif "tile" in latent:
            layout = f"tiles of {'x'.join(map(str, latent['tile']))} latents (+{latent.get('decode_margin')} context)"
        else:
            layout = f"{latent.get('streams')} streams in blocks of {latent.get('block')} frames (+{latent.get('margin')} context)"
        told = f", decoder told step {latent['condition']}" if "condition" in latent and latent["condition"] != latent.get("step") else ""
        lines.append(f"  payload   {latent.get('payload')} lossless, {layout}, step {latent.get('step')} ({latent.get('bits')}-bit indices){told}")
    alpha = header.get("alpha")
    if alpha:
        lines.append(f"  alpha     {'constant ' + str(alpha['constant']) if 'constant' in alpha else alpha.get('codec') + ' lossless'}")
    if "metadata" in data:
        lines.append(f"  metadata  {', '.join(data['metadata']) or 'none'}")
    for kind, entry in data["chunks"].items():
        lines.append(f"  chunk     {kind}  x{entry['count']}  {_human_bytes(entry['bytes'])}")
    lines.append(f"  encoder   {header.get('encoder', 'unknown')}")
    return "\n".join(lines)


@app.command()
def models(json_out: bool = typer.Option(False, "--json", help="Machine-readable output (the full model cards).")) -> None:
    """List the shipped models: modality, channels, DR, parameters, step range, place on the quality scale, and the measured rate/PSNR points of their cards."""
    from walloc_cli.model.quality import stanzas
    from walloc_cli.model.zoo import available_models

    cards = available_models()
    if json_out:
        out.print(json.dumps([c.card for c in cards], indent=2), markup=False, soft_wrap=True)
        return
    table = Table(title="walloc models (images: bits per pixel of the whole .wlc on the card's test photos, PSNR peak 255; audio: payload bits per sample on the validation audio, PSNR against each file's peak)")
    for column in ("name", "modality", "ch", "DR", "params", "steps", "-q", "measured (step: bpp / PSNR)"):
        table.add_column(column)
    for card in cards:
        steps = card.card.get("steps", {"min": 1.0, "max": 1.0})
        families = stanzas(card)
        points = card.card.get("results", {}).get("points", [])
        table.add_row(
            card.name,
            card.modality,
            str(card.config.channels),
            f"{card.config.reduction:g}x",
            f"{card.parameters / 1e6:.2f}M",
            f"{steps['min']:g}" if steps["min"] == steps["max"] else f"{steps['min']:g}-{steps['max']:g}",
            "\n".join(f"{q['family']} {q['q'][0]:g}-{q['q'][1]:g}" for q in families) or "-",
            "\n".join(f"{p['step']:g}: {p['bpp']:.3f} {'b/sample' if card.modality == 'audio' else 'b/voxel' if card.modality == 'volume' else 'bpp'} / {p['psnr']:.2f} dB" for p in points) or "-",
        )
    out.print(table)


@app.command()
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

    Runs unchanged under torchrun --nproc_per_node N (DistributedDataParallel).
    """
    from walloc_cli.train.run import RunConfig, read_run_config, train_and_export
    from walloc_cli.train.loop import Distributed

    if device not in ("auto", "cpu", "cuda"):
        raise typer.BadParameter("choose auto, cpu or cuda", param_hint="--device")

    def setup() -> RunConfig:
        run = read_run_config(config) if config else RunConfig()
        codec_over = {"channels": channels, "latent_dim": latent_dim, "levels": levels, "decoder_channels": decoder_channels, "decoder_blocks": decoder_blocks}
        train_over = {"lam": lam, "rate": rate, "step_min": step_min, "step_max": step_max, "init": init, "steps": steps, "batch": batch, "crop": crop, "lr": lr, "seed": seed, "threads": threads, "validate_every": validate_every, "checkpoint_every": checkpoint_every}
        try:
            codec_cfg = dataclasses.replace(run.codec, **{k: v for k, v in codec_over.items() if v is not None})
            train_cfg = dataclasses.replace(run.train, **{k: v for k, v in train_over.items() if v is not None})
        except (TypeError, ValueError) as error:
            raise InputError(str(error)) from None
        run = dataclasses.replace(run, codec=codec_cfg, train=train_cfg)
        fields = {"name": name, "modality": modality, "train_data": str(train_dir) if train_dir else None, "val_data": str(val_dir) if val_dir else None}
        return dataclasses.replace(run, **{k: v for k, v in fields.items() if v is not None})

    from walloc_cli.errors import InputError

    run = _guard(config or "walloc train", setup)
    if run is None:
        raise typer.Exit(1)
    if config is None and name is None:
        raise typer.BadParameter("give --name or a --config that names the model", param_hint="--name")
    ckpt = checkpoint or out_dir / f"{run.name}.ckpt.safetensors"
    out_dir.mkdir(parents=True, exist_ok=True)
    rank0 = Distributed.from_env().rank == 0
    sidecar = ckpt.with_name(ckpt.name + ".json")
    if rank0 and sidecar.exists():
        out.print(f"resuming from {ckpt} at step {json.loads(sidecar.read_text())['step']}", markup=False, soft_wrap=True)
    with _training_display(run.train.steps, enabled=rank0) as log:
        card = _guard(run.train_data, lambda: train_and_export(run, out_dir, ckpt, device=device, log=log, overwrite=force))
    if not rank0:
        return
    if card is None:
        if sidecar.exists() and json.loads(sidecar.read_text())["step"] < run.train.steps:
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
    progress = Progress(TextColumn("step {task.completed}/{task.total}"), BarColumn(bar_width=16), TimeRemainingColumn(), described, console=out, expand=True)
    with progress:
        task = progress.add_task("starting", total=total)

        def log_bar(record: dict[str, Any]) -> None:
            progress.update(task, completed=record["step"], description=describe(record))

        yield log_bar


data_app = typer.Typer(help="Build the training/validation/test sets from Debian and PyPI packages (no downloads).", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("photos")
def data_photos(
    out_dir: Path = typer.Argument(Path("data/photos"), help="Folder to write train/, val/, test/ and manifest.json into."),
    force: bool = typer.Option(False, "-f", "--force", help="Rebuild over an existing set."),
) -> None:
    """Real photos from lomiri-wallpapers-16.04, mate-backgrounds, opencv-doc and scikit-image, downscaled 2-4x; the split is fixed by name (walloc_cli/data/photos.py)."""
    import collections

    from walloc_cli.data.photos import build_photo_set

    records = _guard(out_dir, lambda: build_photo_set(out_dir, overwrite=force))
    if records is None:
        raise typer.Exit(1)
    counts = collections.Counter(r.split for r in records)
    out.print(f"wrote {len(records)} photos to {out_dir}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), markup=False, soft_wrap=True)


def _build_audio_set(out_dir: Path, build: Callable[[Path, bool], Any], force: bool) -> None:
    """Run one of :mod:`walloc_cli.data.audio`'s builders; print the split it wrote."""
    from walloc_cli.data.audio import split_summary

    records = _guard(out_dir, lambda: build(out_dir, force))
    if records is None:
        raise typer.Exit(1)
    summary = split_summary(records)
    out.print(f"wrote {len(records)} files to {out_dir}: " + ", ".join(f"{k} {v['files']} ({v['seconds'] / 60:.1f} min)" for k, v in sorted(summary.items())), markup=False, soft_wrap=True)


@data_app.command("music")
def data_music(
    out_dir: Path = typer.Argument(Path("data/music"), help="Folder to write train/, val/, test/ and manifest.json into."),
    force: bool = typer.Option(False, "-f", "--force", help="Rebuild over an existing set."),
) -> None:
    """Lossless fluidsynth renders of music21 scores, plus Debian game music; split fixed by name."""
    from walloc_cli.data.audio import build_music_set

    _build_audio_set(out_dir, build_music_set, force)


@data_app.command("speech")
def data_speech(
    out_dir: Path = typer.Argument(Path("data/speech"), help="Folder to write train/, val/, test/ and manifest.json into."),
    force: bool = typer.Option(False, "-f", "--force", help="Rebuild over an existing set."),
) -> None:
    """8 kHz speech of asterisk-core-sounds-en-wav and codec2-examples, at 8 and 16 kHz."""
    from walloc_cli.data.audio import build_speech_set

    _build_audio_set(out_dir, build_speech_set, force)


@data_app.command("volumes")
def data_volumes(
    out_dir: Path = typer.Argument(Path("data/volumes"), help="Folder to write ct/, mri/, ms/, hyper/ (each train/, val/, test/) and manifest.json into."),
    force: bool = typer.Option(False, "-f", "--force", help="Rebuild over an existing set."),
) -> None:
    """A real head CT (invesalius-examples), MRI templates (mricron-data, nilearn), WorldView multispectral scenes (dgsamples) and 128-band cubes assembled from them, as .npy volumes; split fixed by name (walloc_cli/data/volume.py)."""
    from walloc_cli.data.volume import build_volume_set, volume_summary

    records = _guard(out_dir, lambda: build_volume_set(out_dir, overwrite=force))
    if records is None:
        raise typer.Exit(1)
    summary = volume_summary(records)
    parts = [f"{group} " + "/".join(f"{split} {v['files']}" for split, v in sorted(splits.items())) for group, splits in sorted(summary.items())]
    out.print(f"wrote {len(records)} volumes to {out_dir}: " + ", ".join(parts), markup=False, soft_wrap=True)


@app.command()
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

    if _guard(out_dir, make_folder) is None:
        raise typer.Exit(1)
    failed = 0
    written: set[Path] = set()
    for src in inputs:
        dst = out_dir / f"{src.stem}.npy"

        def export() -> Any:
            if dst in written:
                raise InputError(f"{dst} was already written from another input of the same name")
            return export_npy(src, dst, dequantized=dequantize, overwrite=force)

        result = _guard(src, export)
        if result is None:
            failed += 1
            continue
        written.add(dst)
        array, info = result
        out.print(f"{src} -> {dst}  {info.modality}  {'x'.join(map(str, array.shape))} {array.dtype}  DR {info.reduction:g}x  {info.model} step {info.step:g}", markup=False, soft_wrap=True)
    raise typer.Exit(1 if failed else 0)


from walloc_cli.cli.eval import bench_command, eval_command  # noqa: E402 - registered after the core commands

app.command("eval")(eval_command)
app.command("bench")(bench_command)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:  # outside any command (while starting up)
        err.print("walloc: interrupted", markup=False)
        sys.exit(130)
