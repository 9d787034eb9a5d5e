"""A fuzz campaign over the ``.wlc`` parser and decoders: mutated and truncated reference files.

    OMP_NUM_THREADS=1 python bench/fuzz.py --inputs 20000 --seed 0

Each input is one of the reference files of ``formats/reference/`` and
``formats/reference/audio/`` and ``formats/reference/volume/`` (images, audio, volumes), mutated by one of the strategies below, written
to a temporary file and checked with :func:`walloc_cli.verify.verify_file` (the container, the
header, the model identity and a full decode through ``decompress_file``, the code path of
``walloc decompress``). The only acceptable outcomes are a decode ("ok") or a clean walloc error
(one line); any other exception is a crash and is printed with the input that caused it (the
input is saved under ``--crashes``).

Strategies (the raw ones break a CRC, so they exercise the framing checks; the structured ones
re-frame the file with every CRC right, so the mutation reaches the header validation, the
payload decoder and the model):

- ``truncate``: the file cut at a random offset;
- ``bitflip``: 1..8 random bits flipped;
- ``bytes``: 1..8 bytes set to interesting values (0, 0xff, 0x7f, 0x80, random);
- ``splice``: a random byte range deleted or duplicated;
- ``header``: one header value replaced by an interesting value (huge, negative, zero, float,
  string, null, list, object) or deleted, CRCs fixed;
- ``chunk``: one chunk's payload bit-flipped, truncated, emptied or swapped with another
  file's, or chunks dropped, duplicated or reordered, CRCs fixed;
- ``mixed``: the header of one reference file with the chunks of another, CRCs fixed.

Prints the number of inputs per strategy and outcome, the distinct problems reported, the
longest time any single bad input took (and which), and the peak resident memory.
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import random
import resource
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from walloc_cli.container import Chunk, dumps, loads  # noqa: E402
from walloc_cli.verify import verify_file  # noqa: E402

REFERENCE = REPO / "formats" / "reference"
INTERESTING_INTS = [0, -1, 1, 2, 3, 7, 8, 255, 256, 65535, 65536, 1 << 31, (1 << 31) - 1, 1 << 32, 1 << 40, 1 << 63, -(1 << 63), 10**30]
INTERESTING = INTERESTING_INTS + [0.0, -0.5, 0.25, 1e-300, 1e300, "", "x", "image", "audio", "volume", "png", "webp", None, True, False, [], [1, 2, 3], {}, {"a": 1}]


def reference_files() -> list[Path]:
    return sorted(REFERENCE.glob("*.wlc")) + sorted((REFERENCE / "audio").glob("*.wlc")) + sorted((REFERENCE / "volume").glob("*.wlc"))


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path in a JSON tree (lists by index)."""
    found = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        found.append(prefix + (key,))
        found += _paths(value, prefix + (key,))
    return found


def mutate_header(rng: random.Random, data: bytes) -> bytes:
    header, chunks = loads(data)
    header = copy.deepcopy(header)
    path = rng.choice(_paths(header))
    parent = header
    for key in path[:-1]:
        parent = parent[key]
    if rng.random() < 0.15 and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        value = parent[path[-1]]
        if isinstance(value, (int, float)) and not isinstance(value, bool) and rng.random() < 0.5:
            parent[path[-1]] = rng.choice([value * 2, value + 1, value - 1, -value, value * 1000, value // 2 if isinstance(value, int) else value / 2])
        else:
            parent[path[-1]] = copy.deepcopy(rng.choice(INTERESTING))
    return dumps(header, chunks)


def mutate_chunks(rng: random.Random, data: bytes, other: bytes) -> bytes:
    header, chunks = loads(data)
    if not chunks:
        return dumps(header, chunks)
    action = rng.choice(["flip", "truncate", "empty", "swap", "drop", "duplicate", "reorder"])
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
    else:
        rng.shuffle(chunks)
    return dumps(header, chunks)


def mutate(rng: random.Random, strategy: str, data: bytes, other: bytes) -> bytes:
    if strategy == "truncate":
        return data[: rng.randrange(len(data))]
    body = bytearray(data)
    if strategy == "bitflip":
        for _ in range(rng.randint(1, 8)):
            body[rng.randrange(len(body))] ^= 1 << rng.randrange(8)
        return bytes(body)
    if strategy == "bytes":
        for _ in range(rng.randint(1, 8)):
            body[rng.randrange(len(body))] = rng.choice([0, 0xFF, 0x7F, 0x80, rng.randrange(256)])
        return bytes(body)
    if strategy == "splice":
        start = rng.randrange(len(body))
        stop = min(len(body), start + rng.randint(1, 64))
        return bytes(body[:start] + body[stop:]) if rng.random() < 0.5 else bytes(body[:stop] + body[start:])
    if strategy == "header":
        return mutate_header(rng, data)
    if strategy == "chunk":
        return mutate_chunks(rng, data, other)
    header, _ = loads(data)
    _, chunks = loads(other)
    return dumps(header, chunks)


STRATEGIES = ["truncate", "bitflip", "bytes", "splice", "header", "chunk", "mixed"]


def campaign(inputs: int, seed: int, crashes: Path | None = None, report: Callable[[str], None] = lambda line: print(line, flush=True), trace: bool = False) -> dict[str, Any]:
    """Run ``inputs`` mutated files; return the counts, problems, slowest bad input, crashes."""
    rng = random.Random(seed)
    sources = {path.name: path.read_bytes() for path in reference_files()}
    names = sorted(sources)
    counts: dict[tuple[str, str], int] = collections.Counter()
    problems: dict[str, int] = collections.Counter()
    slowest = (0.0, "")
    crashed: list[str] = []
    unchanged = 0
    for path in reference_files():  # load every model once: timings are of the inputs, not of loading
        assert verify_file(path).ok, path
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="walloc-fuzz-") as folder:
        target = Path(folder) / "input.wlc"
        for number in range(inputs):
            name, other = rng.choice(names), rng.choice(names)
            strategy = rng.choice(STRATEGIES)
            data = mutate(rng, strategy, sources[name], sources[other])
            if data == sources[name]:
                unchanged += 1  # e.g. a header value replaced by itself: not a bad input
            target.write_bytes(data)
            if trace:
                report(f"input {number}: {strategy} on {name}")
            tick = time.perf_counter()
            try:
                result = verify_file(target)
            except Exception as error:  # a crash: the finding this campaign looks for
                counts[(strategy, "CRASH")] += 1
                line = f"{strategy} on {name} (input {number}): {type(error).__name__}: {error}"
                crashed.append(line)
                report("CRASH " + line + "\n" + traceback.format_exc(limit=3))
                if crashes is not None:
                    crashes.mkdir(parents=True, exist_ok=True)
                    (crashes / f"crash-{number}.wlc").write_bytes(data)
                continue
            elapsed = time.perf_counter() - tick
            if elapsed > 1.0:
                report(f"slow: {elapsed:.1f} s, {strategy} on {name} (input {number}): {'ok' if result.ok else result.problem}")
            if number % 500 == 499:
                report(f"... {number + 1} inputs, {time.perf_counter() - started:.0f} s")
            outcome = "ok" if result.ok else "error"
            counts[(strategy, outcome)] += 1
            if not result.ok:
                problems[_problem_class(result.problem or "")] += 1
                if elapsed > slowest[0]:
                    slowest = (elapsed, f"{strategy} on {name}: {result.problem}")
    return {
        "inputs": inputs,
        "seed": seed,
        "seconds": time.perf_counter() - started,
        "counts": {f"{s} {o}": n for (s, o), n in sorted(counts.items())},
        "problems": dict(problems.most_common()),
        "unchanged": unchanged,
        "slowest_bad_seconds": slowest[0],
        "slowest_bad": slowest[1],
        "crashes": crashed,
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _problem_class(problem: str) -> str:
    """A problem without its numbers and names: what kinds of error were reported."""
    import re

    text = re.sub(r"'[^']*'|\"[^\"]*\"|b'[^']*'", "'…'", problem)
    text = re.sub(r"\d+(\.\d+)?", "N", text)
    return text[:90]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crashes", type=Path, default=None, help="Save crashing inputs here.")
    parser.add_argument("--trace", action="store_true", help="Print each input before checking it (to find a hang).")
    parser.add_argument("--json", type=Path, default=None, help="Also write the summary as JSON.")
    args = parser.parse_args()
    summary = campaign(args.inputs, args.seed, args.crashes, trace=args.trace)
    by_outcome: dict[str, int] = collections.Counter()
    for key, n in summary["counts"].items():
        by_outcome[key.split()[1]] += n
    print(f"walloc fuzz: {summary['inputs']} inputs (seed {summary['seed']}) from {len(reference_files())} reference files in {summary['seconds']:.0f} s")
    print(f"outcomes: {by_outcome.get('ok', 0)} decoded, {by_outcome.get('error', 0)} clean errors, {by_outcome.get('CRASH', 0)} crashes ({summary['unchanged']} inputs equal to their source)")
    print("per strategy: " + ", ".join(f"{k} {v}" for k, v in summary["counts"].items()))
    print(f"longest bad input: {summary['slowest_bad_seconds'] * 1000:.1f} ms ({summary['slowest_bad']})")
    print(f"peak resident memory: {summary['max_rss_mib']:.0f} MiB")
    print("problems reported (numbers and names elided):")
    for problem, n in summary["problems"].items():
        print(f"  {n:6d}  {problem}")
    for line in summary["crashes"]:
        print("CRASH " + line)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    sys.exit(1 if summary["crashes"] else 0)


if __name__ == "__main__":
    main()
