"""Convert a data set on a Dask cluster: ``walloc compress -r`` across machines.

walloc does not schedule work across machines itself; it hands files to the cluster people
already run. :func:`convert_dataset` takes what ``walloc compress`` takes (files, folders, globs)
or URIs (``s3://bucket/photos/*.jpg``, through fsspec), plans the outputs with the CLI's own
batch planner (:func:`walloc_cli.api.batch.plan`: mirrored folders, no two inputs writing one
output) and submits one task per file to a ``dask.distributed.Client``::

    from dask.distributed import Client, LocalCluster
    from walloc_cli.api.distributed import convert_dataset

    with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, Client(cluster) as client:
        result = convert_dataset(["photos/"], client, output_dir="latents/", options={"quality": 75})
    for outcome in result.failures:
        print(outcome.error)                 # "photos/bad.png: not an image ...", one line each

Each task is :func:`walloc_cli.api.batch.convert_one` (the CLI's per-file function): the output is
written through a temporary file and renamed (never a partial file), an existing output is
refused unless ``options={"overwrite": True}``, and a failure is one line in its
:class:`~walloc_cli.api.batch.Outcome`, never an exception that stops the rest. A worker process
loads each model once (:func:`walloc_cli.model.zoo.load_model` caches it for the process), and
its inference threads are set to its share of its machine's cores (:func:`share_cores`).

URIs (``scheme://...``, anything fsspec opens, ``file://`` excepted: those are local paths) are
compressed (decompress takes local paths): each task copies its input to a temporary folder on
the worker, converts it there and uploads the result; an existing output is refused as for
files. Object stores publish an object only when its upload completes, so readers never see a
partial ``.wlc``; on other remote file systems the upload is as atomic as they make it. A URI
ending in ``/`` is a folder: every file below it is an input, its tree mirrored under
``output_dir`` (a URI or a local folder). Files found there are not sniffed first (that would
mean a download), so a file that is not an image, audio or volume fails with its own line.

Why Dask and not Ray (``bench/results/distributed.md``): on this 2-core machine a 2-worker
``LocalCluster`` starts in 2.0 s and Dask + distributed install 33 MB; ``ray.init`` took 8.8 s
and Ray installs 240 MB. Dask also reads the Zarr arrays of :mod:`walloc_cli.api.zarr_codec`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from walloc_cli.api.batch import Outcome, Task, convert_one, error_line, expand_inputs, plan
from walloc_cli.api.paths import default_output
from walloc_cli.errors import InputError, OutputError, WallocError
from walloc_cli.files.safe_io import atomic_output

Kind = Literal["compress", "decompress"]


@dataclasses.dataclass(frozen=True)
class RemoteTask:
    """One compression of a URI input into ``dst``, an output URI or local path."""

    src: str
    dst: str
    options: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Conversion:
    """What :func:`convert_dataset` did: every input's :class:`~walloc_cli.api.batch.Outcome`
    (in completion order; refused inputs included, with their error line) and the files of
    local folders skipped as not being inputs of this kind."""

    outcomes: list[Outcome]
    skipped: list[Path]

    @property
    def failures(self) -> list[Outcome]:
        """The outcomes with an error line."""
        return [outcome for outcome in self.outcomes if outcome.error is not None]

    @property
    def converted(self) -> list[Outcome]:
        """The outcomes with a report (the file was written)."""
        return [outcome for outcome in self.outcomes if outcome.error is None]


def is_uri(text: str) -> bool:
    """A ``scheme://`` address other than ``file://`` (which is a local path)."""
    return "://" in text and not text.startswith("file://")


def local_path(text: str | Path) -> Path:
    """``file:///x/y`` -> ``/x/y``; other text as a path."""
    text = str(text)
    return Path(text[len("file://") :]) if text.startswith("file://") else Path(text)


def _listed(uri: str) -> list[tuple[str, str]]:
    """(input URI, its path below what ``uri`` names) for every file ``uri`` names."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri)
    if uri.endswith("/"):  # a folder: every file below it, the tree kept
        return [(fs.unstrip_protocol(p), str(PurePosixPath(p).relative_to(path))) for p in sorted(fs.find(path))]
    if any(c in path for c in "*?["):
        return [(fs.unstrip_protocol(p), PurePosixPath(p).name) for p in sorted(fs.glob(path))]
    return [(uri, PurePosixPath(path).name)]


def remote_tasks(uris: Sequence[str], output_dir: str | None, options: dict[str, Any]) -> tuple[list[RemoteTask], list[Outcome]]:
    """Compression tasks for URI inputs (files, globs, folders ending in ``/``), and an error
    outcome for each URI that names nothing, cannot be listed, or whose output another input
    already writes."""
    tasks: list[RemoteTask] = []
    problems: list[Outcome] = []
    claimed: dict[str, str] = {}
    for uri in uris:
        try:
            with _store(lambda problem: InputError(f"cannot list it: {problem}")):
                found = _listed(uri)
        except InputError as error:  # a store that cannot be listed (no s3fs, no access) fails that URI alone
            problems.append(Outcome(uri, error=error_line(uri, error)))
            continue
        if not found:
            problems.append(Outcome(uri, error=f"{uri}: no files match"))
        for src, rel in found:
            name = str(default_output(Path(rel), ".wlc"))
            if output_dir is None:
                dst = src.rsplit("/", 1)[0] + "/" + Path(name).name
            else:
                dst = output_dir.rstrip("/") + "/" + name if is_uri(output_dir) else str(local_path(output_dir) / name)
            if dst in claimed:
                problems.append(Outcome(src, error=f"{src}: its output {dst} is also the output of {claimed[dst]}; rename one"))
                continue
            claimed[dst] = src
            tasks.append(RemoteTask(src, dst, dict(options)))
    return tasks, problems


@contextlib.contextmanager
def _store(wrap: Callable[[str], WallocError]) -> Iterator[None]:
    """Errors of a storage library (an unknown scheme, a missing s3fs, a refused request) as
    ``wrap(message)``: a walloc error, reported as one line, not as a bug in walloc."""
    try:
        yield
    except (WallocError, FileExistsError, KeyboardInterrupt):
        raise
    except Exception as error:  # noqa: BLE001 - whatever the store raises, say what and where
        raise wrap(f"{type(error).__name__}: {error}") from None


def convert_remote(task: RemoteTask) -> Outcome:
    """Run one :class:`RemoteTask` on this machine: download to a temporary folder,
    :func:`~walloc_cli.api.batch.convert_one` there, then upload (a local ``dst`` is written
    through :func:`~walloc_cli.files.safe_io.atomic_output`). Every failure is one line naming
    the URI, as :func:`~walloc_cli.api.batch.convert_one` names a file (an upload failure names
    the output)."""
    import shutil

    import fsspec

    outcome = Outcome(task.src)
    overwrite = bool(task.options.get("overwrite", False))
    try:
        with _store(lambda problem: OutputError(f"{task.dst}: cannot write: {problem}")):
            out_fs, out_path = fsspec.core.url_to_fs(task.dst)
            exists = out_fs.exists(out_path)
        if exists and not overwrite:  # before any work, as compress_file checks
            raise FileExistsError(f"{task.dst}: already exists (use overwrite to replace it)")
        with tempfile.TemporaryDirectory(prefix="walloc-") as stage:
            staged = Path(stage) / PurePosixPath(task.src.split("://", 1)[-1]).name
            with _store(lambda problem: InputError(f"cannot read it: {problem}")), fsspec.open(task.src, "rb") as source, open(staged, "wb") as copy:
                shutil.copyfileobj(source, copy, 1 << 20)
            done = convert_one(Task("compress", staged, Path(stage) / "out.wlc", options=dict(task.options)))
            if done.error is not None:
                outcome.error = done.error.replace(str(staged), task.src)
                return outcome
            if is_uri(task.dst):
                with _store(lambda problem: OutputError(f"{task.dst}: cannot write: {problem}")):
                    out_fs.put_file(str(Path(stage) / "out.wlc"), out_path)
            else:
                Path(out_path).parent.mkdir(parents=True, exist_ok=True)
                with open(Path(stage) / "out.wlc", "rb") as produced, atomic_output(Path(out_path), overwrite=overwrite) as handle:
                    shutil.copyfileobj(produced, handle, 1 << 20)
        done.report.input, done.report.output = task.src, task.dst
        outcome.report = done.report
    except Exception as error:  # noqa: BLE001 - one file's failure never stops the data set (as convert_one)
        outcome.error = error_line(task.src, error)
    return outcome


def share_cores(client: Any) -> dict[str, int]:
    """Give each worker's inference threads its share of its machine's cores (the cores divided
    by the task threads of all workers there), as ``walloc compress --jobs`` does for its
    processes: without it every worker's runtime would use every core. Returns worker -> threads."""
    from distributed.comm import get_address_host

    from walloc_cli.model.runtime import set_threads

    cores = client.run(os.cpu_count)
    nthreads = client.nthreads()
    per_host: dict[str, int] = {}
    for address, count in nthreads.items():
        per_host[get_address_host(address)] = per_host.get(get_address_host(address), 0) + int(count)
    shares = {address: max(1, int(cores.get(address) or 1) // per_host[get_address_host(address)]) for address in nthreads}
    for address, threads in shares.items():
        client.run(set_threads, threads, workers=[address])
    return shares


def convert_dataset(
    inputs: Sequence[str | Path],
    client: Any,
    *,
    kind: Kind = "compress",
    output_dir: str | Path | None = None,
    recursive: bool = True,
    options: dict[str, Any] | None = None,
    on_done: Callable[[Outcome], None] = lambda outcome: None,
    balance_threads: bool = True,
) -> Conversion:
    """Convert ``inputs`` (paths, folders, globs, URIs) on the Dask ``client``'s workers.

    ``options`` are :func:`walloc_cli.api.files.compress_file`'s (or ``decompress_file``'s)
    keyword arguments (``quality``, ``model``, ``overwrite`` ...). ``output_dir`` mirrors the
    inputs' tree as ``walloc compress -O`` does; without it outputs go beside their inputs.
    ``on_done`` is called with each outcome as it arrives. Paths must be reachable under the same
    name from every worker (a shared file system), or be URIs. ``balance_threads``: call
    :func:`share_cores` first.
    """
    from dask.distributed import as_completed

    options = dict(options or {})
    local_inputs = [local_path(p) for p in inputs if not is_uri(str(p))]
    uris = [str(p) for p in inputs if is_uri(str(p))]
    if uris and kind != "compress":
        raise ValueError("URIs are compressed only in this version; decompress .wlc files on a shared file system")
    found = expand_inputs(local_inputs, kind, recursive)
    outcomes: list[Outcome] = [Outcome(argument, error=f"{argument}: {problem}") for argument, problem in found.problems]
    local_out = None if output_dir is None or is_uri(str(output_dir)) else local_path(output_dir)
    if local_inputs and output_dir is not None and local_out is None:
        raise ValueError("local inputs need a local output_dir (or none); give URIs to write to a URI")
    tasks, refused = plan(found.items, kind, output_dir=local_out, options=options)
    outcomes += [Outcome(src, error=f"{src}: {problem}") for src, problem in refused]
    remote, problems = remote_tasks(uris, None if output_dir is None else str(output_dir), options)
    outcomes += problems
    for outcome in outcomes:
        on_done(outcome)
    if balance_threads and (tasks or remote):
        share_cores(client)
    # pure=False: two equal tasks (the same file asked twice) are still two runs, and a rerun after
    # a fix is not answered from Dask's cache of the first failure
    futures = client.map(convert_one, tasks, pure=False) + client.map(convert_remote, remote, pure=False)
    for future in as_completed(futures):
        outcome = future.result()
        outcomes.append(outcome)
        on_done(outcome)
    return Conversion(outcomes, found.skipped)


__all__ = ["Conversion", "RemoteTask", "convert_dataset", "convert_remote", "is_uri", "local_path", "remote_tasks", "share_cores"]
