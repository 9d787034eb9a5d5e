"""Batch conversion: many inputs (files, globs, directories), mirrored outputs, parallel jobs.

The CLI's ``compress`` and ``decompress`` are thin loops over this module; it is modality-
agnostic: each item goes to :func:`walloc_cli.api.files.compress_file` / ``decompress_file``, which
dispatch on content (images, audio, volumes when installed).

Pieces (each also used alone by tests):

* :func:`expand_inputs` turns command-line arguments into :class:`Item` s. An argument is
  ``-`` (standard input), a file (taken as given: a file that is not a supported input fails
  with its own error), a glob (expanded here, so a quoted glob works; ``**`` recurses), or a
  directory: an error without ``recursive``; with it, every file below it whose *content* is a
  supported input (by :func:`walloc_cli.files.sniff.detect`, as every command decides, see
  :func:`is_supported`), in sorted order. Unsupported files found
  in a directory are skipped with a note, not a failure. Names starting with ``.`` (hidden
  files, walloc's own ``.NAME.XXXX.part`` temporaries) are left out of directory walks, and
  symbolic links to directories are not followed (no loops).
* :func:`plan` maps items to :class:`Task` s: with ``output_dir`` each output goes to
  ``output_dir / item.rel`` (the item's path below the directory or glob base it came from; a
  file named alone keeps only its name), so the input tree is mirrored. Output names are
  :func:`walloc_cli.api.paths.default_output`'s (``head.nii.gz`` -> ``head.wlc``: a two-part extension
  goes as one). Two items that would write the same output are refused (the later one fails), so
  ``a.png`` and ``a.jpg``, or ``x.nii.gz`` and ``x.npy``, never overwrite each other's ``.wlc``,
  even with ``-f``.
* :func:`convert_one` runs one task and returns an :class:`Outcome` (picklable; errors become
  one line). ``delete_input`` deletes the input only after the output is written *and*
  verified (:mod:`walloc_cli.api.verify`).
* :func:`run_tasks` runs tasks in this process, or with ``jobs > 1`` in a pool of *spawned*
  processes (forking a process that has loaded torch can deadlock on its thread pools). Each
  worker gets ``cores // jobs`` threads (OpenMP/BLAS, torch's when it is installed and used). Ctrl-C reaches the workers (same process
  group): a worker aborts its current item (``atomic_output`` removes the temporary file) and
  the rest are cancelled, so no partial output is left.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from walloc_cli.api.paths import default_output, output_stem
from walloc_cli.errors import InputError, OutputError, WallocError, internal_error
from walloc_cli.files.safe_io import STDIO
from walloc_cli.files.sniff import Kind as FileKind
from walloc_cli.files.sniff import detect

Kind = Literal["compress", "decompress"]
@dataclasses.dataclass(frozen=True)
class Item:
    """One input. ``rel`` is its path below the root it was found under (what ``-O`` mirrors)."""

    src: Path
    rel: Path


@dataclasses.dataclass
class Expansion:
    """What the arguments expand to: ``items`` to convert, ``problems`` (argument, message)
    that count as failures, and ``skipped`` files found in directories that are not inputs."""

    items: list[Item] = dataclasses.field(default_factory=list)
    problems: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    skipped: list[Path] = dataclasses.field(default_factory=list)


def is_supported(path: Path, kind: Kind) -> bool:
    """Whether a file found in a directory is an input of ``kind``, by content, never by name
    (:func:`walloc_cli.files.sniff.detect`, the order every command uses): ``.wlc`` for decompress;
    an image, volume or audio file for compress."""
    from walloc_cli.format.header import MODALITIES  # here: a worker must start without numpy (see _worker_init)

    found = detect(path)
    if kind == "decompress":
        return found is FileKind.WLC
    return found.value in MODALITIES  # a kind's word is the modality it is coded as


def _glob_base(pattern: str) -> Path:
    """The directory part of ``pattern`` before its first wildcard (what matches are relative to)."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _walk(root: Path, kind: Kind, found: Expansion) -> None:
    """Every supported file below ``root``, sorted; hidden names and linked directories skipped."""
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(folder) / name
            if is_supported(path, kind):
                found.items.append(Item(path, path.relative_to(root)))
            else:
                found.skipped.append(path)


def expand_inputs(arguments: Sequence[Path | str], kind: Kind, recursive: bool = False) -> Expansion:
    """Expand command-line ``arguments`` (see the module docstring) in order."""
    found = Expansion()
    for argument in arguments:
        text = str(argument)
        path = Path(text)
        if text == STDIO:
            found.items.append(Item(path, Path(STDIO)))
        elif path.is_dir():
            if recursive:
                _walk(path, kind, found)
            else:
                found.problems.append((text, "is a directory (use -r to convert the files in it)"))
        elif not path.exists() and glob.has_magic(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                found.problems.append((text, "no files match"))
            base = _glob_base(text)
            for match in matches:
                matched = Path(match)
                if matched.is_dir():
                    if recursive:
                        _walk(matched, kind, found)
                        continue
                    found.problems.append((match, "is a directory (use -r to convert the files in it)"))
                else:
                    found.items.append(Item(matched, matched.relative_to(base)))
        else:  # a file, or a missing one: converting it reports the problem
            found.items.append(Item(path, Path(path.name)))
    return found


@dataclasses.dataclass(frozen=True)
class Task:
    """One conversion. ``dst`` is an explicit output file; ``into`` a folder that receives the
    output under its default name (decompress with ``-O``: the name depends on the content);
    neither: the default output beside the input."""

    kind: Kind
    src: Path
    dst: Path | None = None
    into: Path | None = None
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    delete_input: bool = False
    make_dirs: bool = False  # -O: create the mirrored folders (never for an explicit -o)


@dataclasses.dataclass
class Outcome:
    """The result of one task: the library's report, or one error line (without ``walloc: ``)."""

    src: str
    report: Any = None
    error: str | None = None
    deleted: bool = False


def plan(items: Sequence[Item], kind: Kind, *, output: Path | None = None, output_dir: Path | None = None, options: dict[str, Any] | None = None, delete_input: bool = False) -> tuple[list[Task], list[tuple[str, str]]]:
    """Tasks for ``items``, and (input, message) for items refused because another item of the
    batch already writes the same output (the key for decompress is the output's stem: its
    extension depends on the content)."""
    tasks: list[Task] = []
    refused: list[tuple[str, str]] = []
    claimed: dict[Path, Path] = {}
    for item in items:
        dst = into = None
        if output is not None:
            dst = output
            key = output
        elif output_dir is not None and str(item.src) != STDIO:
            if kind == "compress":  # the name compress_file gives it beside the input
                dst = output_dir / default_output(item.rel, ".wlc")
                key = dst
            else:
                into = output_dir / item.rel.parent
                key = into / output_stem(item.rel).name
        elif str(item.src) != STDIO:
            key = default_output(item.src, ".wlc") if kind == "compress" else output_stem(item.src)
        else:
            key = Path(STDIO)
        resolved = Path(os.path.abspath(key))
        if resolved in claimed and str(key) != STDIO:
            refused.append((str(item.src), f"its output {key}{'.*' if kind == 'decompress' else ''} is also the output of {claimed[resolved]}; rename one, or use -o"))
            continue
        claimed[resolved] = item.src
        tasks.append(Task(kind, item.src, dst, into, dict(options or {}), delete_input, make_dirs=output_dir is not None))
    return tasks, refused


# --- one task ------------------------------------------------------------------------------
def error_line(path: Path | str, error: BaseException) -> str:
    """``FILE: problem`` for a failure (a refused overwrite names the output). An exception that
    is not a walloc error nor an OS error is a bug in walloc: its line says so, with its type,
    and still stays one line, so one file's bug never takes the batch down with a traceback."""
    if isinstance(error, OSError) and error.strerror and not isinstance(error, FileExistsError):
        message = error.strerror.lower()
    elif not isinstance(error, (WallocError, OSError)):
        message = internal_error(error)
    else:
        message = str(error) or type(error).__name__
    if isinstance(error, (FileExistsError, OutputError)) or message.startswith(f"{path}: "):
        return message
    return f"{path}: {message}"


def _same_file(src: Path, dst: Path) -> bool:
    """True when ``dst`` is ``src`` itself (also through a hard or symbolic link)."""
    with contextlib.suppress(OSError):
        return os.path.samefile(src, dst)
    return False


def _decompress_into(task: Task, options: dict[str, Any], overwrite: bool) -> Any:
    """Decompress into ``task.into`` under the name ``decompress_file`` would pick beside the
    input: decoded in a hidden staging folder there (same file system), then moved into place
    without clobbering (``os.link`` fails on an existing name) unless ``overwrite``."""
    from walloc_cli.api.files import decompress_file

    folder = task.into
    assert folder is not None
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".walloc-") as stage:
        link = Path(stage) / task.src.name
        link.symlink_to(task.src.resolve())
        report = decompress_file(link, None, overwrite=False, **options)
        produced = Path(report.output)
        final = folder / produced.name
        if _same_file(task.src, final):
            raise InputError("output would overwrite the input")
        if overwrite:
            os.replace(produced, final)
        else:
            try:
                os.link(produced, final)
            except FileExistsError:
                raise FileExistsError(f"{final}: already exists (use -f to overwrite)") from None
    report.input, report.output = str(task.src), str(final)
    return report


def _convert(task: Task) -> Any:
    from walloc_cli.api.files import compress_file, decompress_file

    options = dict(task.options)
    overwrite = bool(options.pop("overwrite", False))
    if task.dst is not None and str(task.dst) != STDIO:
        if str(task.src) != STDIO and _same_file(task.src, task.dst):
            raise InputError("output would overwrite the input")
        if task.make_dirs:
            task.dst.parent.mkdir(parents=True, exist_ok=True)
    if task.kind == "compress":
        return compress_file(task.src, task.dst, overwrite=overwrite, **options)
    if task.into is not None:
        return _decompress_into(task, options, overwrite)
    return decompress_file(task.src, task.dst, overwrite=overwrite, **options)


def _delete_verified(task: Task, report: Any) -> None:
    """Delete the input once its output is on disk and checked; raise if the check fails."""
    from walloc_cli.api.verify import check_decoded_output, verify_file

    output = Path(report.output)
    if report.partial:  # --start/--duration: the rest of the input is nowhere else
        raise WallocError(f"input kept: {output} holds only part of it")
    if task.kind == "compress":
        limits = {key: task.options[key] for key in ("max_pixels", "max_voxels") if key in task.options}
        result = verify_file(output, model=task.options.get("model"), **limits)
        if not result.ok:
            raise WallocError(f"input kept: the written {output} does not verify ({result.problem})")
    else:
        try:
            check_decoded_output(report)
        except WallocError as error:
            raise WallocError(f"input kept: {error}") from None
    task.src.unlink()


def convert_one(task: Task) -> Outcome:
    """Run ``task``; every failure becomes :attr:`Outcome.error`, one line, and the batch goes
    on with the next file. Expected failures (walloc and OS errors) say what is wrong; any other
    exception is a bug in walloc and is reported as an internal error with its type (see
    :func:`error_line`). ``KeyboardInterrupt`` (and ``SystemExit``) propagate, after the library
    removed any partial file (``atomic_output``)."""
    outcome = Outcome(str(task.src))
    try:
        outcome.report = _convert(task)
        if task.delete_input and not outcome.report.problems:
            _delete_verified(task, outcome.report)
            outcome.deleted = True
    except Exception as error:  # noqa: BLE001 - one file's failure, whatever its type, never stops the batch
        outcome.error = error_line(task.src, error)
    return outcome


# --- many tasks ----------------------------------------------------------------------------
_stop: Any = None  # in a worker: the pool's "stop" event (set by the parent on Ctrl-C)
_interrupted = False  # in a worker: a SIGINT arrived while it was idle


def _remember_interrupt(signum: int, frame: Any) -> None:
    global _interrupted
    _interrupted = True


def _terminate(signum: int, frame: Any) -> None:
    # SIGTERM (``kill``, or the pool stopping a broken worker) unwinds like Ctrl-C, so
    # ``atomic_output`` still removes the temporary file.
    raise KeyboardInterrupt


def _worker_init(threads: int, stop: Any) -> None:
    """Spawned worker: ``threads`` compute threads; a SIGINT while idle is remembered, not fatal
    (an idle worker dying would break the pool, and the pool then kills the busy ones).

    The threads are set through the environment: OpenMP (torch) and OpenBLAS (numpy) read it when
    they load, which in a fresh worker is after this (this module imports neither). Importing
    torch here just to set them would cost every worker its import (over a second), and torch is
    an optional extra that the codecs may not use at all."""
    global _stop
    _stop = stop
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(threads)
    signal.signal(signal.SIGINT, _remember_interrupt)
    signal.signal(signal.SIGTERM, _terminate)
    from walloc_cli.model.runtime import set_threads  # the lean runtime's workers (and torch's pool if loaded)

    set_threads(threads)


def _worker_task(task: Task) -> Outcome:
    if _interrupted or (_stop is not None and _stop.is_set()):
        raise KeyboardInterrupt  # queued before the Ctrl-C: do not start it
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return convert_one(task)
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _signals_for_children() -> Iterator[None]:
    """While workers are started: SIGINT ignored, so they are born ignoring it (an ignored
    signal stays ignored across exec) and a Ctrl-C during their start-up cannot kill them."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """In this process, SIGTERM raises KeyboardInterrupt while a batch runs (same cleanup)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_tasks(tasks: Sequence[Task], jobs: int = 1, on_done: Callable[[Outcome], None] = lambda outcome: None) -> list[Outcome]:
    """Run ``tasks`` (``jobs`` at a time), calling ``on_done`` as each finishes; return the
    outcomes in completion order. Standard input/output items always run in this process.

    Ctrl-C (KeyboardInterrupt) propagates once nothing is writing any more: running items are
    interrupted by the same SIGINT (a terminal signals the whole process group), items not yet
    started are dropped, and an item whose worker missed the signal runs to its end (its output
    is complete, never partial)."""
    outcomes: list[Outcome] = []

    def done(outcome: Outcome) -> None:
        outcomes.append(outcome)
        on_done(outcome)

    with _terminate_as_interrupt():
        if jobs <= 1 or len(tasks) <= 1 or any(STDIO in (str(t.src), str(t.dst)) for t in tasks):
            for task in tasks:
                done(convert_one(task))
            return outcomes
        _run_pool(tasks, jobs, done)
    return outcomes


def _run_pool(tasks: Sequence[Task], jobs: int, done: Callable[[Outcome], None]) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context("spawn")
    workers = min(jobs, len(tasks))
    threads = max(1, (os.cpu_count() or 1) // workers)
    stop = context.Event()
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init, initargs=(threads, stop))
    try:
        with _signals_for_children():  # spawned workers start as tasks are submitted
            futures = {pool.submit(_worker_task, task): task for task in tasks}
        for future in as_completed(futures):
            try:
                done(future.result())
            except BrokenProcessPool:
                done(Outcome(str(futures[future].src), error=f"{futures[future].src}: a worker process died (out of memory?)"))
            except Exception as error:  # noqa: BLE001 - e.g. a report that cannot be pickled back: still one line
                done(Outcome(str(futures[future].src), error=error_line(futures[future].src, error)))
    except KeyboardInterrupt:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


@contextlib.contextmanager
def progress_bar(total: int, console: Any, enabled: bool) -> Iterator[Callable[[Outcome], None]]:
    """A Rich progress bar of ``total`` items on ``console`` (standard error) when ``enabled``;
    yields the function that advances it by one finished item."""
    if not enabled:
        yield lambda outcome: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    # Report lines printed meanwhile appear above the bar; standard output is only rerouted when
    # it is the terminal too, so a redirected stdout (data, --json) never receives the bar.
    with Progress(*columns, console=console, transient=True, redirect_stdout=sys.stdout.isatty(), redirect_stderr=True) as progress:
        bar = progress.add_task("walloc", total=total)
        yield lambda outcome: progress.advance(bar)
