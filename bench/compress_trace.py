"""What one photo's ``walloc compress`` walks through: modules, input opens, readers, card listings.

Runs ``walloc compress samples/photo.png -o OUT -f`` once, in this process, through the console
script's entry point (read from the tree's ``pyproject.toml``, so it works on any commit whatever
the module names), and counts:

- the distinct ``walloc_cli`` modules whose functions run (a ``sys.setprofile`` hook; module-level
  code run by an import is not counted), and per module how many times execution *enters* it from
  another module (a call or generator resume whose caller's code lives in a different file:
  another ``walloc_cli`` module, or a library calling back, such as typer, contextlib or torch's
  ``Module.__call__``), and how many of those entries come from another ``walloc_cli`` module;
- how many times the input file is opened (audit event ``open``);
- how many times the output file is opened for reading after it was written (audit events
  ``open``, ``os.rename``/``os.replace``), and how many ``WlcReader`` objects are built (calls of
  any code object named ``WlcReader.__init__`` under ``walloc_cli/``);
- how many times the model cards folder is listed (audit events ``os.listdir``/``os.scandir`` on
  a folder holding ``*.safetensors`` files; ``glob`` and ``Path.glob`` list through these).

The run is cold (a fresh process: imports, card parsing and model loading included), as a user's
``walloc compress`` is. Measure another checkout with ``--root``::

    OMP_NUM_THREADS=1 python bench/compress_trace.py                 # this checkout
    OMP_NUM_THREADS=1 python bench/compress_trace.py --root /tmp/wt-base

Prints a Markdown section (a summary table, then the modules entered).
"""

from __future__ import annotations

import argparse
import collections
import importlib
import os
import subprocess
import sys
import tempfile
import threading
import tomllib
import types
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent.parent


class Trace:
    """Profile-hook and audit-hook counters for one run over ``package`` (the ``walloc_cli`` folder)."""

    def __init__(self, package: Path, source: Path, output: Path) -> None:
        self.package = str(package) + os.sep
        self.source = os.path.realpath(source)
        self.output = os.path.realpath(output)
        self.entries: collections.Counter[str] = collections.Counter()  # module -> entries from elsewhere
        self.inner: collections.Counter[str] = collections.Counter()  # ... of which from another walloc_cli module
        self.readers: collections.Counter[str] = collections.Counter()  # builder (module:function) -> builds
        self.input_opens: collections.Counter[str] = collections.Counter()  # opener -> opens
        self.output_reads = 0
        self.output_written = False
        self.listings: collections.Counter[str] = collections.Counter()  # lister -> listings of the models folder
        self.active = False
        self._module_of: dict[str, str | None] = {}
        self._holds_models: dict[str, bool] = {}

    def module(self, filename: str) -> str | None:
        """``walloc_cli/x/y.py`` for a file under the package, else None (memoised: hot path)."""
        if filename not in self._module_of:
            resolved = os.path.realpath(filename) if filename.startswith(os.sep) else filename
            self._module_of[filename] = "walloc_cli/" + resolved[len(self.package) :] if resolved.startswith(self.package) else None
        return self._module_of[filename]

    def where(self, frame: types.FrameType | None) -> str:
        """``module:function`` of the innermost ``walloc_cli`` frame at or above ``frame``."""
        while frame is not None:
            module = self.module(frame.f_code.co_filename)
            if module is not None:
                return f"{module}:{frame.f_code.co_qualname}"
            frame = frame.f_back
        return "outside walloc_cli"

    def profile(self, frame: types.FrameType, event: str, arg: Any) -> None:
        if event != "call" or not self.active:
            return
        code = frame.f_code
        callee = self.module(code.co_filename)
        if callee is None or code.co_name == "<module>":  # import-time code is not the pipeline
            return
        if code.co_qualname == "WlcReader.__init__":
            self.readers[self.where(frame.f_back)] += 1
        caller = frame.f_back
        origin = None if caller is None else self.module(caller.f_code.co_filename)
        if origin != callee:
            self.entries[callee] += 1
            if origin is not None:
                self.inner[callee] += 1

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active:
            return
        if event == "open":
            path, mode, flags = args
            if isinstance(path, int) or path is None:
                return
            real = os.path.realpath(os.fsdecode(path))
            if real == self.source:
                self.input_opens[self.where(sys._getframe(1))] += 1
            elif real == self.output:
                reading = ("r" in mode and "+" not in mode) if isinstance(mode, str) else (flags & os.O_ACCMODE) == os.O_RDONLY
                if not reading:
                    self.output_written = True
                elif self.output_written:
                    self.output_reads += 1
        elif event in ("os.rename", "os.replace") and os.path.realpath(os.fsdecode(args[1])) == self.output:
            self.output_written = True  # atomic_output renames its .part into place
        elif event in ("os.listdir", "os.scandir") and args and args[0] is not None and not isinstance(args[0], int):
            folder = os.path.realpath(os.fsdecode(args[0]) or ".")
            if folder not in self._holds_models:
                self.active = False  # looking lists the folder too: not a listing of the run's
                try:
                    self._holds_models[folder] = any(name.endswith(".safetensors") for name in os.listdir(folder))
                except OSError:
                    self._holds_models[folder] = False
                finally:
                    self.active = True
            if self._holds_models[folder]:
                self.listings[self.where(sys._getframe(1))] += 1


def entry_point(root: Path) -> Callable[[], Any]:
    """The ``walloc`` console script's function, as the tree's pyproject.toml names it."""
    with open(root / "pyproject.toml", "rb") as handle:
        target = tomllib.load(handle)["project"]["scripts"]["walloc"]
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def measure(root: Path, source: Path, output: Path) -> Trace:
    """Run ``walloc compress SOURCE -o OUTPUT -f`` in-process with the tree at ``root`` first on sys.path."""
    sys.path.insert(0, str(root))
    import walloc_cli

    package = Path(walloc_cli.__file__).resolve().parent
    if package != (root / "walloc_cli").resolve():
        raise SystemExit(f"walloc_cli came from {package}, not {root}: run with PYTHONPATH unset")
    main = entry_point(root)
    trace = Trace(package, source, output)
    sys.addaudithook(trace.audit)  # for good: audit hooks cannot be removed, hence `active`
    sys.argv = ["walloc", "compress", str(source), "-o", str(output), "-f"]
    threading.setprofile(trace.profile)
    sys.setprofile(trace.profile)
    trace.active = True
    try:
        main()
    except SystemExit as done:
        if done.code not in (0, None):
            raise SystemExit(f"walloc compress exited {done.code}") from None
    finally:
        trace.active = False
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
    return trace


def tally(counts: collections.Counter[str]) -> str:
    """``N (where: n, ...)``: a total and who contributed it."""
    total = sum(counts.values())
    return f"{total} ({', '.join(f'`{k}` {v}' for k, v in counts.most_common())})" if total else "0"


def report(trace: Trace, root: Path) -> str:
    """The Markdown section for one tree."""
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False).stdout.strip() or "?"
    lines = [
        f"### {root} (commit {commit})",
        "",
        "| measure | count |",
        "|---|---:|",
        f"| `walloc_cli` modules whose code runs | {len(trace.entries)} |",
        f"| entries into a module from another module (all modules) | {sum(trace.entries.values())} |",
        f"| ... of which from another `walloc_cli` module | {sum(trace.inner.values())} |",
        f"| input file opened | {tally(trace.input_opens)} |",
        f"| output file opened for reading after it was written | {trace.output_reads} |",
        f"| `WlcReader` objects built | {tally(trace.readers)} |",
        f"| model cards folder listed | {tally(trace.listings)} |",
        "",
        "| module | entries from another module | from another `walloc_cli` module |",
        "|---|---:|---:|",
    ]
    lines += [f"| `{module}` | {count} | {trace.inner[module]} |" for module, count in sorted(trace.entries.items(), key=lambda item: (-item[1], item[0]))]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=HERE, help="checkout to measure (default: this one)")
    parser.add_argument("--input", type=Path, default=None, help="photo to compress (default: ROOT/samples/photo.png)")
    options = parser.parse_args()
    root = options.root.resolve()
    source = (options.input or root / "samples" / "photo.png").resolve()
    with tempfile.TemporaryDirectory() as folder:
        trace = measure(root, source, Path(folder) / "photo.wlc")
    sys.stdout.write(report(trace, root))


if __name__ == "__main__":
    main()
