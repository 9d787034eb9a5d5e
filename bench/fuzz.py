"""A fuzz campaign over the ``walloc`` command line: mutated ``.wlc`` files through decompress,
info, verify and latents, in-process, in several worker processes.

    OMP_NUM_THREADS=1 nice -n 19 python bench/fuzz.py --inputs 100000 --workers 2 --seed 0

Each input is one of the reference files of ``formats/reference/`` (images, ``audio/``,
``volume/``; with ``--volume-meta`` also TIFF, OME-TIFF and NIfTI volumes made at start, whose
headers carry the metadata those writers restore) mutated by one strategy, written to a temporary file and given to one command of
the ``walloc`` CLI (:data:`walloc_cli.cli.app.app`, run through Typer's ``CliRunner``: the same code as
the console script, without a process per input). The only acceptable outcomes are exit 0 (the
file was valid) or exit 1 with exactly one line ``walloc: FILE: problem`` on standard error.
Anything else is a finding: an exception escaping the command (a traceback for a user), an
``internal error`` line (the CLI's last-resort report of an unexpected exception), another exit
code, several lines, or a line not naming the file; an input that runs longer than
``--timeout`` seconds is a hang. Findings are printed with the input's description and saved
under ``--crashes``.

Strategies (the raw ones break a CRC, so they exercise the framing checks; the others re-frame
the file with every CRC right, so the mutation reaches the header validation, the payload
decoder and the model):

- ``truncate``, ``bitflip``, ``bytes``, ``splice``: raw damage;
- ``field``: 1..3 header fields (any depth, list items included) set to an absurd value: 0, -1,
  2**31, 2**63, -2**63, 10**400, NaN (as the JSON-invalid token and as a string), Infinity,
  1e308, -1e308, 5e-324, strings, booleans, null, lists, objects, or deleted;
- ``header``: one header value scaled (x2, +1, -1, negated, x1000, /2) or replaced;
- ``chunk``: a chunk's payload bit-flipped, truncated, emptied or swapped with another file's,
  chunks dropped, duplicated, reordered, or a chunk of another type inserted;
- ``mixed``: the header of one reference file with the chunks of another.

The summary (inputs per strategy, command and outcome; distinct problems; findings; the
slowest input; the largest resident memory and the input that reached it) goes to standard
output and to ``--out`` (default ``bench/results/fuzz.txt``).
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import multiprocessing
import os
import random
import re
import resource
import shutil
import signal
import struct
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from walloc_cli.format.container import MAGIC, Chunk, dumps, loads  # noqa: E402

REFERENCE = REPO / "formats" / "reference"
COMMANDS = ("decompress", "info", "verify", "latents")
NAN_TOKEN = "__walloc_fuzz_nan__"  # replaced by the bare token NaN in the JSON text (not valid JSON)
INF_TOKEN = "__walloc_fuzz_inf__"  # replaced by Infinity
ABSURD: list[Any] = [
    0, -1, 1, 2, 3, 255, 65536, 1 << 31, (1 << 31) - 1, 1 << 32, 1 << 53, 1 << 63, -(1 << 63), 10**400,
    0.0, -0.5, 0.5, 1e-300, 5e-324, 1e308, -1e308, NAN_TOKEN, INF_TOKEN, "NaN", "Infinity",
    "", "x", "image", "audio", "volume", "png", "webp", "ZYX", "float64", "\u00e9\u0000", "a" * 300,
    None, True, False, [], [0], [1, 2, 3], [[1]], [-1, -1, -1], [1 << 40, 1, 1], {}, {"a": 1}, {"constant": 0},
]
MISSING = object()
STRATEGIES = ["truncate", "bitflip", "bytes", "splice", "field", "field", "field", "header", "chunk", "mixed"]


def reference_files() -> list[Path]:
    return sorted(REFERENCE.glob("*.wlc")) + sorted((REFERENCE / "audio").glob("*.wlc")) + sorted((REFERENCE / "volume").glob("*.wlc"))


def volume_meta_sources() -> dict[str, bytes]:
    """Small volumes from a TIFF (with resolution, description and a Copyright tag), an OME-TIFF
    and a NIfTI-1 and NIfTI-2 file, compressed here: the reference volumes are ``.npy`` files,
    whose headers carry no metadata for the TIFF and NIfTI writers to restore. ``(6, 20, 24)``
    int16, the same bytes on every run on one machine."""
    import nibabel as nib
    import numpy as np
    import tifffile

    from walloc_cli.api.files import compress_file

    z, y, x = np.mgrid[0:6, 0:20, 0:24]
    volume = (1000 * np.sin(x / 5 + y / 7 + z / 3)).astype(np.int16)
    found: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="walloc-fuzz-sources-") as folder:
        root = Path(folder)
        tifffile.imwrite(root / "meta.tif", volume, photometric="minisblack", compression="zlib", resolution=(10.0, 10.0), resolutionunit=3, description="fuzz", extratags=[(33432, "s", 0, "(c) walloc", True)])
        tifffile.imwrite(root / "meta.ome.tif", volume, ome=True, metadata={"axes": "ZYX", "PhysicalSizeX": 0.5})
        nib.save(nib.Nifti1Image(volume.T, np.diag([0.5, 0.5, 2.0, 1.0])), str(root / "meta1.nii.gz"))
        nib.save(nib.Nifti2Image(volume.T, np.diag([0.5, 0.5, 2.0, 1.0])), str(root / "meta2.nii"))
        for name in ("meta.tif", "meta.ome.tif", "meta1.nii.gz", "meta2.nii"):
            compress_file(root / name, root / f"{name}.wlc", quality=50, measure=False)
            found[f"{name}.wlc"] = (root / f"{name}.wlc").read_bytes()
    return found


def all_sources(with_meta: bool) -> dict[str, bytes]:
    sources = {path.name: path.read_bytes() for path in reference_files()}
    return {**sources, **volume_meta_sources()} if with_meta else sources


def key_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in a JSON tree (list items by index)."""
    found = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        found.append(prefix + (key,))
        found += key_paths(value, prefix + (key,))
    return found


def frame(header: dict[str, Any], chunks: list[Chunk]) -> bytes:
    """A ``.wlc`` file with every CRC right, whose header JSON may hold the bare tokens NaN and
    Infinity (which ``container.dumps`` cannot write: they are not JSON)."""
    text = json.dumps(header, sort_keys=True, separators=(",", ":"))
    raw = text.replace(f'"{NAN_TOKEN}"', "NaN").replace(f'"{INF_TOKEN}"', "Infinity").encode("utf-8")
    head = MAGIC + struct.pack("<BBI", 1, 0, len(raw)) + raw
    out = [head, struct.pack("<I", zlib.crc32(head))]
    for chunk in chunks:
        kind = chunk.type.encode("ascii")
        out += [kind, struct.pack("<I", len(chunk.data)), chunk.data, struct.pack("<I", zlib.crc32(chunk.data, zlib.crc32(kind)))]
    out.append(b"END \x00\x00\x00\x00" + struct.pack("<I", zlib.crc32(b"END ")))
    return b"".join(out)


def set_field(header: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """A copy of ``header`` with the field at ``path`` set to ``value`` (``MISSING``: deleted)."""
    header = copy.deepcopy(header)
    parent = header
    for key in path[:-1]:
        parent = parent[key]
    if value is MISSING:
        if isinstance(parent, dict):
            del parent[path[-1]]
        else:
            del parent[path[-1]]  # a list item removed: the list gets shorter
    else:
        parent[path[-1]] = copy.deepcopy(value)
    return header


def mutate_fields(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    header, chunks = loads(data)
    notes = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        paths = key_paths(header) + [("modality",)]
        path = rng.choice(paths)
        try:
            value = MISSING if rng.random() < 0.12 else rng.choice(ABSURD)
            header = set_field(header, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed the path's parent
        notes.append(f"{'.'.join(map(str, path))}={'<missing>' if value is MISSING else _short(value)}")
    return frame(header, chunks), ", ".join(notes)


def _short(value: Any) -> str:
    text = {NAN_TOKEN: "NaN", INF_TOKEN: "Infinity"}.get(value, None) if isinstance(value, str) else None
    text = text or json.dumps(value)
    return text if len(text) < 40 else text[:37] + "..."


def mutate_header(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    header, chunks = loads(data)
    path = rng.choice(key_paths(header))
    parent: Any = header
    for key in path[:-1]:
        parent = parent[key]
    value = parent[path[-1]]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        new = rng.choice([value * 2, value + 1, value - 1, -value, value * 1000, value // 2 if isinstance(value, int) else value / 2])
    else:
        new = rng.choice(ABSURD)
    return frame(set_field(header, path, new), chunks), f"{'.'.join(map(str, path))}={_short(new)}"


def mutate_chunks(rng: random.Random, data: bytes, other: bytes) -> tuple[bytes, str]:
    header, chunks = loads(data)
    if not chunks:
        return dumps(header, chunks), "no chunks"
    action = rng.choice(["flip", "truncate", "empty", "swap", "drop", "duplicate", "reorder", "foreign"])
    index = rng.randrange(len(chunks))
    chunk = chunks[index]
    if action == "flip" and chunk.data:
        body = bytearray(chunk.data)
        for _ in range(rng.randint(1, 4)):
            body[rng.randrange(len(body))] ^= 1 << rng.randrange(8)
        chunks[index] = Chunk(chunk.type, bytes(body))
    elif action == "truncate":
        chunks[index] = Chunk(chunk.type, chunk.data[: rng.randrange(len(chunk.data) + 1)])
    elif action == "empty":
        chunks[index] = Chunk(chunk.type, b"")
    elif action == "swap":
        _, others = loads(other)
        if others:
            chunks[index] = Chunk(chunk.type, rng.choice(others).data)
    elif action == "drop":
        del chunks[index]
    elif action == "duplicate":
        chunks.insert(index, chunk)
    elif action == "foreign":
        _, others = loads(other)
        donor = rng.choice(others) if others else chunk
        chunks.insert(index, Chunk(rng.choice(["LATN", "ALPH", "ICCP", "AUDB", "VOLT", donor.type]), donor.data))
    else:
        rng.shuffle(chunks)
    return dumps(header, chunks), f"{action} chunk {index}"


def mutate(rng: random.Random, strategy: str, data: bytes, other: bytes) -> tuple[bytes, str]:
    """One mutated input and a short description of the mutation."""
    if strategy == "truncate":
        end = rng.randrange(len(data))
        return data[:end], f"cut at {end}"
    body = bytearray(data)
    if strategy == "bitflip":
        for _ in range(rng.randint(1, 8)):
            body[rng.randrange(len(body))] ^= 1 << rng.randrange(8)
        return bytes(body), "bits flipped"
    if strategy == "bytes":
        for _ in range(rng.randint(1, 8)):
            body[rng.randrange(len(body))] = rng.choice([0, 0xFF, 0x7F, 0x80, rng.randrange(256)])
        return bytes(body), "bytes set"
    if strategy == "splice":
        start = rng.randrange(len(body))
        stop = min(len(body), start + rng.randint(1, 64))
        return (bytes(body[:start] + body[stop:]), f"deleted {start}..{stop}") if rng.random() < 0.5 else (bytes(body[:stop] + body[start:]), f"repeated {start}..{stop}")
    if strategy == "field":
        return mutate_fields(rng, data)
    if strategy == "header":
        return mutate_header(rng, data)
    if strategy == "chunk":
        return mutate_chunks(rng, data, other)
    header, _ = loads(data)
    _, chunks = loads(other)
    return dumps(header, chunks), "header of one file, chunks of another"


def make_input(seed: int, number: int, sources: dict[str, bytes]) -> tuple[bytes, str, str]:
    """Input ``number`` of campaign ``seed`` (the same on every run): bytes, command, description."""
    rng = random.Random(f"{seed}:{number}")
    names = sorted(sources)
    name, other = rng.choice(names), rng.choice(names)
    strategy = rng.choice(STRATEGIES)
    command = rng.choice(COMMANDS)
    data, what = mutate(rng, strategy, sources[name], sources[other])
    return data, command, f"{strategy} on {name} ({what})"


# --- one input through the CLI -----------------------------------------------------------------
class Hang(Exception):
    """Raised by the per-input alarm."""


def _alarm(signum: int, frame: Any) -> None:
    raise Hang


def run_cli(command: str, target: Path, scratch: Path, timeout: float) -> tuple[str, str, float]:
    """Run ``walloc COMMAND target`` in this process; return (verdict, detail, seconds).

    verdict: ``ok`` (exit 0), ``error`` (exit 1, one line naming the file), ``FINDING`` (anything
    else: an escaped exception, other exit code or output) or ``HANG`` (past ``timeout``).
    """
    from typer.testing import CliRunner

    from walloc_cli.cli.app import app

    out = scratch / "out"
    shutil.rmtree(out, ignore_errors=True)
    args = {
        "decompress": ["decompress", str(target), "-O", str(out), "-f"],
        "info": ["info", str(target)],
        "verify": ["verify", str(target)],
        "latents": ["latents", str(target), "-O", str(out), "-f"],
    }[command]
    started = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        result = CliRunner().invoke(app, args)
    except Hang:
        return "HANG", f"no answer after {timeout:g} s", time.perf_counter() - started
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    seconds = time.perf_counter() - started
    if isinstance(result.exception, Hang):
        return "HANG", f"no answer after {timeout:g} s", seconds
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        error = result.exception
        where = ""
        tb = error.__traceback__
        while tb is not None:
            if "walloc_cli" in tb.tb_frame.f_code.co_filename:
                where = f" at {Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno}"
            tb = tb.tb_next
        return "FINDING", f"{type(error).__name__}: {str(error)[:200]}{where}", seconds
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if result.exit_code == 0:
        return "ok", "", seconds
    if result.exit_code != 1:
        return "FINDING", f"exit code {result.exit_code}: {result.stderr[:200]!r}", seconds
    if len(lines) != 1 or not lines[0].startswith(f"walloc: {target}: ") or "Traceback" in result.stderr:
        return "FINDING", f"not one line naming the file: {result.stderr[:300]!r}", seconds
    problem = lines[0][len(f"walloc: {target}: "):]
    if problem.startswith("internal error ("):  # one line for the user, but a bug all the same
        return "FINDING", problem, seconds
    return "error", problem, seconds


# --- workers -----------------------------------------------------------------------------------
_state: dict[str, Any] = {}


def _worker_init(seed: int, timeout: float, crashes: str | None, sources: dict[str, bytes]) -> None:
    import torch

    torch.set_num_threads(1)
    signal.signal(signal.SIGALRM, _alarm)
    scratch = Path(tempfile.mkdtemp(prefix="walloc-fuzz-"))
    _state.update(seed=seed, timeout=timeout, crashes=crashes, scratch=scratch, sources=sources)
    for name, data in sources.items():  # load every model once: timings are of the inputs, not of loading
        target = scratch / name
        target.write_bytes(data)
        verdict, detail, _ = run_cli("verify", target, scratch, 600)
        assert verdict == "ok", (name, detail)


def _worker_batch(numbers: list[int]) -> dict[str, Any]:
    """Run inputs ``numbers``; return their tallies (small, picklable)."""
    scratch: Path = _state["scratch"]
    target = scratch / "input.wlc"
    counts: dict[str, int] = collections.Counter()
    problems: dict[str, int] = collections.Counter()
    findings: list[str] = []
    slowest = (0.0, "")
    rss_max, rss_input = 0.0, ""
    for number in numbers:
        data, command, what = make_input(_state["seed"], number, _state["sources"])
        target.write_bytes(data)
        verdict, detail, seconds = run_cli(command, target, scratch, _state["timeout"])
        strategy = what.split()[0]
        counts[f"{strategy} {command} {verdict}"] += 1
        label = f"input {number}: walloc {command} on {what}"
        if verdict == "error":
            problems[problem_class(detail)] += 1
        if verdict in ("FINDING", "HANG"):
            findings.append(f"{verdict} {label}: {detail}")
            if _state["crashes"]:
                folder = Path(_state["crashes"])
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{verdict.lower()}-{number}-{command}.wlc").write_bytes(data)
        if seconds > slowest[0]:
            slowest = (seconds, f"{label} -> {verdict}{': ' + detail if detail else ''}")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if rss > rss_max:
            rss_max, rss_input = rss, label
    return {"counts": counts, "problems": problems, "findings": findings, "slowest": slowest, "rss": (rss_max, rss_input), "pid": os.getpid()}


def problem_class(problem: str) -> str:
    """A problem without its numbers and quoted values: what kinds of error were reported."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"|b'[^']*'|\[[^\]]*\]|\{[^}]*\}", "…", problem)
    text = re.sub(r"\d+(\.\d+)?(e[+-]?\d+)?", "N", text)
    return text[:90]


def campaign(inputs: int, seed: int, workers: int, timeout: float, crashes: Path | None, batch: int = 50, progress: bool = True, sources: dict[str, bytes] | None = None) -> dict[str, Any]:
    """Run inputs ``0 .. inputs-1`` of campaign ``seed`` in ``workers`` processes, mutating
    ``sources`` (name -> ``.wlc`` bytes; default: the reference files)."""
    sources = sources if sources is not None else all_sources(False)
    counts: dict[str, int] = collections.Counter()
    problems: dict[str, int] = collections.Counter()
    findings: list[str] = []
    slowest = (0.0, "")
    rss_by_worker: dict[int, tuple[float, str]] = {}
    batches = [list(range(start, min(inputs, start + batch))) for start in range(0, inputs, batch)]
    context = multiprocessing.get_context("spawn")
    started = time.perf_counter()
    done = 0
    with context.Pool(workers, initializer=_worker_init, initargs=(seed, timeout, str(crashes) if crashes else None, sources), maxtasksperchild=None) as pool:
        results = pool.imap_unordered(_worker_batch, batches)
        for _ in batches:
            # A batch that does not come back in time means a worker is stuck past its alarm
            # (in C code that ignores signals): a hang the per-input timer could not report.
            try:
                result = results.next(timeout=timeout * batch + 600)
            except multiprocessing.TimeoutError:
                findings.append(f"HANG a batch of {batch} inputs did not finish in {timeout * batch + 600:g} s")
                pool.terminate()
                break
            counts.update(result["counts"])
            problems.update(result["problems"])
            findings += result["findings"]
            if result["slowest"][0] > slowest[0]:
                slowest = result["slowest"]
            if result["rss"][0] > rss_by_worker.get(result["pid"], (0.0, ""))[0]:
                rss_by_worker[result["pid"]] = result["rss"]
            done += sum(result["counts"].values())
            if progress and (done // batch) % 20 == 0:
                elapsed = time.perf_counter() - started
                print(f"... {done} inputs in {elapsed:.0f} s ({done / elapsed:.1f}/s), {len(findings)} findings", flush=True)
    largest = max(rss_by_worker.values(), default=(0.0, ""))
    return {
        "inputs": done, "seed": seed, "workers": workers, "timeout": timeout, "seconds": time.perf_counter() - started, "sources": sorted(sources),
        "counts": dict(sorted(counts.items())), "problems": dict(problems.most_common()), "findings": findings,
        "slowest_seconds": slowest[0], "slowest": slowest[1], "max_rss_mib": largest[0], "max_rss_input": largest[1],
    }


def summary_text(summary: dict[str, Any]) -> str:
    by_verdict: dict[str, int] = collections.Counter()
    by_command: dict[str, int] = collections.Counter()
    by_strategy: dict[str, int] = collections.Counter()
    for key, n in summary["counts"].items():
        strategy, command, verdict = key.split()
        by_verdict[verdict] += n
        by_command[command] += n
        by_strategy[strategy] += n
    rate = summary["inputs"] / max(summary["seconds"], 1e-9)
    lines = [
        f"walloc fuzz (CLI, in-process): {summary['inputs']} inputs (seed {summary['seed']}) from {len(summary['sources'])} source files, "
        f"{summary['workers']} worker processes, {summary['seconds']:.0f} s ({rate:.1f} inputs/s), per-input timeout {summary['timeout']:g} s",
        f"outcomes: {by_verdict.get('ok', 0)} exit 0, {by_verdict.get('error', 0)} exit 1 with one line 'walloc: FILE: ...', "
        f"{by_verdict.get('FINDING', 0)} findings (traceback / other exit / not one line), {by_verdict.get('HANG', 0)} hangs",
        "per command: " + ", ".join(f"{k} {v}" for k, v in sorted(by_command.items())),
        "per strategy: " + ", ".join(f"{k} {v}" for k, v in sorted(by_strategy.items())),
        f"slowest input: {summary['slowest_seconds'] * 1000:.0f} ms, {summary['slowest']}",
        f"largest resident memory of a worker: {summary['max_rss_mib']:.0f} MiB (first reached at {summary['max_rss_input']})",
        "problems reported (numbers and quoted values elided):",
    ]
    lines += [f"  {n:7d}  {problem}" for problem, n in summary["problems"].items()]
    lines += summary["findings"] or ["no findings"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=30.0, help="Seconds one input may take before it counts as a hang.")
    parser.add_argument("--crashes", type=Path, default=None, help="Save inputs with findings here.")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "fuzz.txt", help="Summary file.")
    parser.add_argument("--json", type=Path, default=None, help="Also write the summary as JSON.")
    parser.add_argument("--show", type=int, default=None, metavar="N", help="Print input N (command, mutation) and run it here, then exit.")
    parser.add_argument("--only", metavar="GLOB", help="Mutate only the reference files whose name matches GLOB (e.g. 'wlc22-*': the format 2.2 files).")
    parser.add_argument("--volume-meta", action="store_true", help="Also mutate TIFF, OME-TIFF and NIfTI volumes made at start (their headers carry the metadata the writers restore).")
    args = parser.parse_args()
    sources = all_sources(args.volume_meta)
    if args.only:
        import fnmatch

        sources = {name: data for name, data in sources.items() if fnmatch.fnmatch(name, args.only)}
    if args.show is not None:
        data, command, what = make_input(args.seed, args.show, sources)
        folder = Path(tempfile.mkdtemp(prefix="walloc-fuzz-"))
        (folder / "input.wlc").write_bytes(data)
        print(f"input {args.show}: walloc {command} on {what}; saved as {folder / 'input.wlc'}")
        signal.signal(signal.SIGALRM, _alarm)
        print(run_cli(command, folder / "input.wlc", folder, args.timeout))
        return
    summary = campaign(args.inputs, args.seed, args.workers, args.timeout, args.crashes, sources=sources)
    text = summary_text(summary)
    print(text, end="")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    sys.exit(1 if summary["findings"] else 0)


if __name__ == "__main__":
    main()
