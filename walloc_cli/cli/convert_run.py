"""The body of ``walloc compress`` and ``walloc decompress``, without Typer: their own option
checks, the batch loop both share over :mod:`walloc_cli.api.batch` (expand the inputs, plan the
outputs, run them with ``--jobs``) and the exit status.

Two front ends call :func:`compress_files` / :func:`decompress_files`: the Typer commands of
:mod:`walloc_cli.cli.convert` (every form of the command line, ``--help``, usage errors) and
:mod:`walloc_cli.cli.fastpath` (the plain forms a shell loop runs, parsed without loading Typer
and pydantic, which cost a photo's compress ~0.15 s of its start-up). So nothing here imports
Typer: a usage error the checks find is raised as :class:`Usage`, which the Typer commands turn
into ``typer.BadParameter`` (the usual ``Usage: ... Error`` box, exit 2) and on which the fast
path hands the whole command line to Typer, so that every error looks the same whichever front
end met it. :class:`Usage` is always raised before any input is converted.

Exit codes: 0 all inputs done, 1 at least one failed, 2 usage, 130 interrupted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from walloc_cli.cli.render import err, out, show_compressed, show_decompressed


class Usage(Exception):
    """A usage error that a command's own checks found: ``message`` and the option it names
    (``param_hint``, as ``typer.BadParameter`` takes them)."""

    def __init__(self, message: str, param_hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.param_hint = param_hint


def compress_files(
    inputs: list[Path],
    output: Optional[Path],
    output_dir: Optional[Path],
    recursive: bool,
    jobs: int,
    force: bool,
    quality: Optional[float],
    target_psnr: Optional[float],
    target_size: Optional[int],
    model: Optional[str],
    payload: Optional[str],
    effort: Optional[int],
    no_psnr: bool,
    axes: Optional[str],
    max_pixels: int,
    max_voxels: int,
    delete_input: bool,
    json_out: bool,
    quiet: bool,
    verbose: bool,
    metadata: str,
    wlc_version: int = 2,
    refine: int = 0,
) -> int:
    """``walloc compress`` with its options parsed (the parameters are the command's, see
    :func:`walloc_cli.cli.convert.compress`): returns the exit status, raises :class:`Usage`."""
    if sum(v is not None for v in (quality, target_psnr, target_size)) > 1:
        raise Usage("give one of -q/--quality, --target-psnr and --target-size", "-q")
    if quality is not None and not 0 <= quality <= 100:
        raise Usage(f"{quality:g} is not in 0..100", "-q")
    from walloc_cli.errors import InputError
    from walloc_cli.files.image_meta import parse_metadata

    if refine:
        from walloc_cli.cli.render import missing_torch

        if missing_torch("compress --refine"):  # exit 2, as walloc train without torch
            return 2

    try:
        kept = parse_metadata(metadata, name="")
    except InputError as error:
        raise Usage(str(error), "--metadata") from None
    options = {"model": model, "payload": payload, "overwrite": force, "measure": not no_psnr, "effort": effort, "quality": quality, "target_psnr": target_psnr, "target_size": target_size, "axes": axes, "max_pixels": max_pixels, "max_voxels": max_voxels, "metadata": sorted(kept), "wlc_version": wlc_version, "refine": refine}
    batch = _Batch("compress", json_out=json_out, quiet=quiet, verbose=verbose, show=show_compressed)
    return batch.run(inputs, options, output=output, output_dir=output_dir, recursive=recursive, jobs=jobs, delete_input=delete_input)


def decompress_files(
    inputs: list[Path],
    output: Optional[Path],
    force: bool,
    output_dir: Optional[Path],
    recursive: bool,
    jobs: int,
    delete_input: bool,
    json_out: bool,
    quiet: bool,
    verbose: bool,
    model: Optional[str],
    keep_going: bool,
    start: Optional[float],
    duration: Optional[float],
    max_pixels: int,
    max_voxels: int,
) -> int:
    """``walloc decompress`` with its options parsed (see :func:`walloc_cli.cli.convert.decompress`):
    returns the exit status, raises :class:`Usage`."""
    if delete_input and (start is not None or duration is not None):
        # The output then holds only part of the input: deleting the .wlc would lose the rest.
        raise Usage("--delete-input cannot be combined with --start/--duration (the output is only part of the input)", "--delete-input")
    options = {"overwrite": force, "model": model, "keep_going": keep_going, "start": start, "duration": duration, "max_pixels": max_pixels, "max_voxels": max_voxels}
    batch = _Batch("decompress", json_out=json_out, quiet=quiet, verbose=verbose, show=show_decompressed)
    return batch.run(inputs, options, output=output, output_dir=output_dir, recursive=recursive, jobs=jobs, delete_input=delete_input)


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

    def run(self, inputs: list[Path], options: dict[str, Any], *, output: Optional[Path], output_dir: Optional[Path], recursive: bool, jobs: int, delete_input: bool) -> int:
        """Convert the inputs; returns the exit status (0 all done, 1 some failed, 130
        interrupted). Raises :class:`Usage` before converting anything."""
        import time

        from walloc_cli.api.batch import expand_inputs, plan, progress_bar, run_tasks

        if self.quiet and self.verbose:
            raise Usage("give --quiet or --verbose, not both", "--quiet")
        if output is not None and output_dir is not None:
            raise Usage("give -o/--output or -O/--output-dir, not both", "-o")
        if output is not None and len(inputs) > 1:
            raise Usage("-o/--output takes one input; drop it to write beside each input, or use -O", "-o")
        if delete_input and "-" in {str(p) for p in inputs} | {str(output)}:
            raise Usage("standard input cannot be deleted, nor standard output verified", "--delete-input")
        started = time.perf_counter()
        self.stdout_data = str(output) == "-" or (output is None and [str(p) for p in inputs] == ["-"])
        found = expand_inputs(inputs, self.kind, recursive)  # type: ignore[arg-type]
        if output is not None and len(found.items) > 1:
            raise Usage(f"-o/--output takes one input; {inputs[0]} gives {len(found.items)}", "-o")
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
            return 130
        if self.verbose:
            err.print(f"walloc: {done} of {len(tasks)} converted, {self.failed} failed, {len(found.skipped)} skipped, {time.perf_counter() - started:.1f} s", markup=False, soft_wrap=True)
        return 1 if self.failed else 0


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

