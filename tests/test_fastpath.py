"""The Typer-free parser of ``compress``/``decompress`` (walloc_cli/cli/fastpath.py) against Typer.

A plain ``walloc compress photo.png`` skips Typer (and the pydantic adapters Typer builds per
option): the user-visible command line must stay Typer's. Checked here: the parser's table
holds exactly the Typer commands' options (names, value types, ranges, defaults); on the
command lines it takes it gives the parameters Typer gives; everything else (help, unknown,
repeated or bundled options, values Typer converts or refuses, usage errors the commands' own
checks find) it leaves to Typer, which then answers as it always has; and a plain compress and
decompress run in a fresh process load neither Typer nor pydantic.
"""

from __future__ import annotations

import os
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.testing

from walloc_cli.cli import convert, fastpath
from walloc_cli.cli.app import build_app

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "samples" / "photo.png"


def typer_command(name: str) -> Any:
    return typer.main.get_command(build_app()).commands[name]  # type: ignore[attr-defined]


def typer_params(argv: list[str]) -> dict[str, Any]:
    """The parameters Typer passes to the command for ``argv`` (``[command, *args]``)."""
    return dict(typer_command(argv[0]).make_context(argv[0], argv[1:]).params)


@pytest.mark.parametrize("name", ["compress", "decompress"])
def test_the_table_holds_the_typer_commands_options(name: str) -> None:
    table = fastpath.COMMANDS[name]
    hints = typing.get_type_hints(getattr(convert, name))
    options = [p for p in typer_command(name).params if p.name != "inputs"]
    assert {p.name for p in options} == set(table.defaults)
    for param in options:
        assert table.defaults[param.name] == param.default, param.name
        if param.is_flag:
            assert {o for o, n in table.flags.items() if n == param.name} == set(param.opts), param.name
            continue
        assert {o for o, v in table.values.items() if v.name == param.name} == set(param.opts), param.name
        spec = table.values[param.opts[0]]
        kind = next(t for t in typing.get_args(hints[param.name]) or (hints[param.name],) if t is not type(None))
        assert spec.kind == {Path: "path", str: "str", int: "int", float: "float"}[kind], param.name
        assert (spec.low, spec.high) == (param.min, param.max), param.name


TAKEN = [
    ["compress", "a.png"],
    ["compress", "a.png", "b.png", "-q", "75", "-j", "2", "-O", "out", "--json", "-f"],
    ["compress", "-", "-o", "-", "--quality=40.5", "--no-psnr", "--quiet"],
    ["compress", "a.png", "--target-psnr", "38", "--payload", "jxl", "-e", "6", "--metadata", "all", "-v"],
    ["compress", "--target-size", "20000", "a.png", "-m", "rgb-4x-v", "--max-pixels", "1000", "--max-voxels", "5", "-r", "--delete-input"],
    ["compress", "vol.npy", "--axes", "ZYX", "--output", "v.wlc"],
    ["decompress", "a.wlc", "-o", "a.png", "-f"],
    ["decompress", "a.wlc", "b.wlc", "-O", "d", "-j", "3", "-F", "--start", "1.5", "--duration", "2", "--json"],
    ["decompress", "-", "--output=-", "--model", "card.json", "--keep-going", "-r", "--delete-input", "-v"],
]


@pytest.mark.parametrize("argv", TAKEN, ids=[" ".join(a) for a in TAKEN])
def test_plain_command_lines_parse_as_typer_parses_them(argv: list[str]) -> None:
    parsed = fastpath.parse(argv)
    assert parsed is not None
    assert parsed == (argv[0], typer_params(argv))


LEFT_TO_TYPER = [
    ["compress"], ["decompress"], ["compress", "--help"], ["compress", "a.png", "--help"], ["info", "a.wlc"],
    ["compress", "a.png", "-rf"], ["compress", "a.png", "-q75"], ["compress", "a.png", "-q=75"], ["compress", "a.png", "--"],
    ["compress", "a.png", "-q", "abc"], ["compress", "a.png", "-q", "-5"], ["compress", "a.png", "-q", "1e2"], ["compress", "a.png", "-q"],
    ["compress", "a.png", "-j", "0"], ["compress", "a.png", "-e", "7"], ["compress", "a.png", "-j", "02"], ["compress", "a.png", "--max-pixels", "1_000"],
    ["compress", "a.png", "-f", "-f"], ["compress", "a.png", "-q", "50", "--quality", "60"], ["compress", "a.png", "--force=1"],
    ["compress", "a.png", "--nope"], ["compress", "a.png", "--qual", "50"], ["compress", "a.png", "-o", ""], ["compress", ""],
    ["compress", "a.png", "-o", "-x"], ["decompress", "a.wlc", "--no-psnr"], ["compress", "a.png", "-F"],
]


@pytest.mark.parametrize("argv", LEFT_TO_TYPER, ids=[" ".join(a) or "empty" for a in LEFT_TO_TYPER])
def test_anything_else_is_left_to_typer(argv: list[str]) -> None:
    assert fastpath.parse(argv) is None
    assert fastpath.main(argv) is None


def _walloc(*args: str | Path, cwd: Path, importtime: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "COLUMNS": "80"}
    python = [sys.executable, *(["-X", "importtime"] if importtime else [])]
    return subprocess.run([*python, "-m", "walloc_cli", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_usage_errors_of_the_commands_checks_are_typers(tmp_path: Path) -> None:
    """A command line the parser takes whose values the command refuses (-q 120; -o with two
    inputs) reaches Typer, which prints its usage box and exits 2, with no output written."""
    for args, words in ((("compress", PHOTO, "-q", "120", "-o", tmp_path / "x.wlc"), "120 is not in 0..100"), (("compress", PHOTO, PHOTO, "-o", tmp_path / "x.wlc"), "-o/--output takes one input")):
        assert fastpath.parse([str(a) for a in args]) is not None
        done = _walloc(*args, cwd=tmp_path)
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr.startswith("Usage: ") and words in done.stderr and "Error" in done.stderr
        result = typer.testing.CliRunner().invoke(build_app(), [str(a) for a in args])
        assert result.exit_code == 2 and words in result.output
    assert not (tmp_path / "x.wlc").exists()


def test_a_plain_compress_and_decompress_load_no_typer(tmp_path: Path) -> None:
    for args in (("compress", PHOTO, "-o", tmp_path / "p.wlc"), ("decompress", tmp_path / "p.wlc", "-o", tmp_path / "p.png")):
        done = _walloc(*args, cwd=tmp_path, importtime=True)
        assert done.returncode == 0, done.stderr[-2000:]
        modules = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
        assert not {m.split(".")[0] for m in modules} & {"typer", "click", "pydantic", "rich"}
    # the line Typer's command prints, and the same exit status
    again = typer.testing.CliRunner().invoke(build_app(), ["decompress", str(tmp_path / "p.wlc"), "-o", str(tmp_path / "q.png")])
    assert again.exit_code == 0
    assert done.stdout.split()[3:5] == again.output.split()[3:5]  # size and mode
    assert done.stdout.startswith(f"{tmp_path / 'p.wlc'} -> {tmp_path / 'p.png'}  ")


def test_failures_exit_1_on_both_front_ends(tmp_path: Path) -> None:
    missing = tmp_path / "missing.png"
    done = _walloc("compress", missing, cwd=tmp_path)
    result = typer.testing.CliRunner().invoke(build_app(), ["compress", str(missing)])
    assert done.returncode == result.exit_code == 1
    assert done.stderr.startswith(f"walloc: {missing}") and done.stdout == ""
