"""``walloc compress`` and ``walloc decompress``: the batch loop both share, over
:mod:`walloc_cli.api.batch` (expand the inputs, plan the outputs, run them with ``--jobs``).

Each command checks its options, builds the options of the library call and hands the inputs
to :class:`_Batch`, which prints one line (or JSON record) per file through
:mod:`walloc_cli.cli.render`. Exit codes: 0 all inputs done, 1 at least one failed, 2 usage,
130 interrupted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import typer

from walloc_cli.cli.render import err, out, show_compressed, show_decompressed
from walloc_cli.format.limits import DEFAULT_MAX_PIXELS, DEFAULT_MAX_VOXELS


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
    payload: str = typer.Option("webp", "--payload", help="Lossless coder of the latents: webp, png or jxl (JPEG XL, format 1.3: smaller at --effort 4..6, slower)."),
    effort: Optional[int] = typer.Option(None, "-e", "--effort", min=0, max=6, help="Lossless coder effort for the latents, 0 (fastest) to 6 (smallest; jxl: libjxl effort 2,3,4,5,7,8,9); decoded pixels are the same. Default: the model's (see `walloc models --json`)."),
    no_psnr: bool = typer.Option(False, "--no-psnr", help="Skip the decode that measures PSNR."),
    axes: Optional[str] = typer.Option(None, "--axes", help="Read the inputs as volumes with these axes, overriding their metadata: ZYX (slices first), CYX (bands first) or YXC (bands last); also XYZ etc."),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", metavar="N", min=1, help="Refuse images of more than N pixels (width x height); raise it for larger ones (memory grows with it: see the README)."),
    max_voxels: int = typer.Option(DEFAULT_MAX_VOXELS, "--max-voxels", metavar="N", min=1, help="Refuse volumes of more than N voxels; raise it for larger ones."),
    delete_input: bool = typer.Option(False, "--delete-input", help="Delete each input once its output is written and verified (decoded again from disk)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON record per file instead of the table line."),
    quiet: bool = typer.Option(False, "--quiet", help="Print errors only (-q is --quality)."),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Also print what was skipped or deleted and a summary."),
    wlc_version: int = typer.Option(2, "--wlc-version", metavar="1|2", min=1, max=2, help="The .wlc format to write: 2 (compact header, the default) or 1 (also read by walloc before format 2.0)."),
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
    options = {"model": model, "payload": payload, "overwrite": force, "measure": not no_psnr, "effort": effort, "quality": quality, "target_psnr": target_psnr, "target_size": target_size, "axes": axes, "max_pixels": max_pixels, "max_voxels": max_voxels, "metadata": sorted(kept), "wlc_version": wlc_version}
    batch = _Batch("compress", json_out=json_out, quiet=quiet, verbose=verbose, show=show_compressed)
    batch.run(inputs, options, output=output, output_dir=output_dir, recursive=recursive, jobs=jobs, delete_input=delete_input)


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
    batch = _Batch("decompress", json_out=json_out, quiet=quiet, verbose=verbose, show=show_decompressed)
    batch.run(inputs, options, output=output, output_dir=output_dir, recursive=recursive, jobs=jobs, delete_input=delete_input)


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
            bar = len(tasks) > 1 and err.is_terminal and not self.quiet
            with progress_bar(len(tasks), err.rich if bar else None, enabled=bar) as advance, \
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

    with Progress(TextColumn(f"{tasks[0].kind} {tasks[0].src}"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn(), console=err.rich, transient=True) as bar:
        job = bar.add_task("file", total=None)
        tasks[0].options["progress"] = lambda done, total: bar.update(job, completed=done, total=total)
        try:
            yield
        finally:
            tasks[0].options.pop("progress", None)

