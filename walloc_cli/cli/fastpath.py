"""The plain forms of ``walloc compress`` / ``walloc decompress``, parsed without Typer.

A shell loop (``for f in *.png; do walloc compress "$f"; done``) pays a command's start-up on
every file, and Typer 0.25 and later builds a pydantic ``TypeAdapter`` per option on every run
(measured: ``import typer, typer._adapters`` costs ~0.12 s over ``import typer``, with pydantic,
asyncio and ``importlib.metadata``), a fifth of a 640x400 photo's whole compress. So
:func:`main` (called by :func:`walloc_cli.cli.app.main` first) parses the command lines that
such loops run with a small table-driven parser and calls the command's body
(:mod:`walloc_cli.cli.convert_run`) directly, and hands everything else to Typer unchanged.

It takes a command line only when every word is recognised and every value is plainly valid:
inputs that do not start with ``-`` (or are ``-``), long options with their value as the next
word or after ``=``, two-letter short options with their value as the next word, flags, each at
most once, numbers as plain decimals within the option's range. Anything else -- ``--help``,
an unknown or repeated option, bundled short flags, ``--``, a value that needs converting or is
out of range, a usage error that the body's own checks find
(:class:`~walloc_cli.cli.convert_run.Usage`, raised before any input is touched) -- goes to
Typer, which then parses, reports and exits as it always has. The parsed values are those
Typer gives (``pathlib.Path`` for paths, ``int``/``float`` numbers, defaults):
``tests/test_fastpath.py`` compares the table with the Typer commands' options and both parsers'
results on many command lines.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, Optional

from walloc_cli.format.limits import DEFAULT_MAX_PIXELS, DEFAULT_MAX_VOXELS

_INT = re.compile(r"0|[1-9][0-9]{0,17}")
_FLOAT = re.compile(r"(0|[1-9][0-9]{0,17})(\.[0-9]{1,17})?")


@dataclasses.dataclass(frozen=True)
class Value:
    """An option that takes a value: its parameter, the value's type (``path``, ``str``,
    ``int``, ``float``) and, for numbers, the range Typer checks (``None``: open)."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None

    def parse(self, word: str) -> Any:
        """The value of ``word``, or ``None`` where Typer should judge it (a number that is not
        a plain decimal, one out of range, an empty word)."""
        if not word or (word.startswith("-") and word != "-"):
            return None  # Typer's parser decides what an option-like value means
        if self.kind == "path":
            return Path(word)
        if self.kind == "str":
            return word
        if not (_INT if self.kind == "int" else _FLOAT).fullmatch(word):
            return None
        number = int(word) if self.kind == "int" else float(word)
        if (self.low is not None and number < self.low) or (self.high is not None and number > self.high):
            return None
        return number


@dataclasses.dataclass(frozen=True)
class Command:
    """One command's options as its Typer command declares them (:mod:`walloc_cli.cli.convert`):
    flags (option -> parameter), options with a value, and every parameter's default."""

    flags: dict[str, str]
    values: dict[str, Value]
    defaults: dict[str, Any]
    body: Callable[[], Callable[..., int]]  # the body, imported when it runs


def _compress_body() -> Callable[..., int]:
    from walloc_cli.cli.convert_run import compress_files

    return compress_files


def _decompress_body() -> Callable[..., int]:
    from walloc_cli.cli.convert_run import decompress_files

    return decompress_files


def _aliases(table: dict[tuple[str, ...], Any]) -> dict[str, Any]:
    return {option: target for options, target in table.items() for option in options}


_SHARED_FLAGS = {("-f", "--force"): "force", ("-r", "--recursive"): "recursive", ("--delete-input",): "delete_input", ("--json",): "json_out", ("--quiet",): "quiet", ("-v", "--verbose"): "verbose"}
_SHARED_VALUES = {
    ("-o", "--output"): Value("output", "path"),
    ("-O", "--output-dir"): Value("output_dir", "path"),
    ("-j", "--jobs"): Value("jobs", "int", 1),
    ("-m", "--model"): Value("model", "str"),
    ("--max-pixels",): Value("max_pixels", "int", 1),
    ("--max-voxels",): Value("max_voxels", "int", 1),
}
_SHARED_DEFAULTS: dict[str, Any] = {"output": None, "output_dir": None, "recursive": False, "jobs": 1, "force": False, "model": None, "max_pixels": DEFAULT_MAX_PIXELS, "max_voxels": DEFAULT_MAX_VOXELS, "delete_input": False, "json_out": False, "quiet": False, "verbose": False}

COMMANDS: dict[str, Command] = {
    "compress": Command(
        flags=_aliases({**_SHARED_FLAGS, ("--no-psnr",): "no_psnr"}),
        values=_aliases({
            **_SHARED_VALUES,
            ("-q", "--quality"): Value("quality", "float"),
            ("--target-psnr",): Value("target_psnr", "float"),
            ("--target-size",): Value("target_size", "int"),
            ("--payload",): Value("payload", "str"),
            ("-e", "--effort"): Value("effort", "int", 0, 6),
            ("--axes",): Value("axes", "str"),
            ("--metadata",): Value("metadata", "str"),
            ("--wlc-version",): Value("wlc_version", "int", 1, 2),
            ("--refine",): Value("refine", "int", 0, 1000),
        }),
        defaults={**_SHARED_DEFAULTS, "quality": None, "target_psnr": None, "target_size": None, "payload": None, "effort": None, "no_psnr": False, "axes": None, "metadata": "icc", "wlc_version": 2, "refine": 0},
        body=_compress_body,
    ),
    "decompress": Command(
        flags=_aliases({**_SHARED_FLAGS, ("-F", "--keep-going"): "keep_going"}),
        values=_aliases({**_SHARED_VALUES, ("--start",): Value("start", "float"), ("--duration",): Value("duration", "float")}),
        defaults={**_SHARED_DEFAULTS, "keep_going": False, "start": None, "duration": None},
        body=_decompress_body,
    ),
}


def parse(argv: list[str]) -> Optional[tuple[str, dict[str, Any]]]:
    """``(command, parameters)`` for a plain ``compress``/``decompress`` command line (``argv``
    without the program name), the parameters as Typer would pass them; ``None`` for anything
    this parser leaves to Typer (module docstring)."""
    if not argv or argv[0] not in COMMANDS:
        return None
    command = COMMANDS[argv[0]]
    params: dict[str, Any] = {}
    inputs: list[Path] = []
    words = iter(argv[1:])
    for word in words:
        if word == "-" or not word.startswith("-"):
            if not word:
                return None
            inputs.append(Path(word))
            continue
        option, equals, attached = word.partition("=")
        if not option.startswith("--"):
            if equals or len(word) != 2:  # -q75, -rf, -q=75: Typer's
                return None
        if option in command.flags:
            if equals or command.flags[option] in params:
                return None
            params[command.flags[option]] = True
            continue
        spec = command.values.get(option)
        if spec is None or spec.name in params:
            return None
        value = spec.parse(attached if equals else next(words, ""))
        if value is None:
            return None
        params[spec.name] = value
    if not inputs:
        return None
    return argv[0], {**command.defaults, **params, "inputs": inputs}


def main(argv: list[str]) -> Optional[int]:
    """Run a plain ``compress``/``decompress`` command line without Typer: its exit status, or
    ``None`` when Typer has to run it (nothing was done then)."""
    parsed = parse(argv)
    if parsed is None:
        return None
    from walloc_cli.cli.convert_run import Usage

    name, params = parsed
    try:
        return COMMANDS[name].body()(**params)
    except Usage:  # raised before any input is touched: Typer reports it in its own words
        return None
    except BrokenPipeError:  # as Click does: a reader that went away is exit 1, not a traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nothing more to flush into the closed pipe at exit
        return 1
