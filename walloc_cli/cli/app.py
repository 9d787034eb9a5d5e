"""The ``walloc`` command: the Typer app, its global options and the one place every command is
registered (fastapi-cli style: each command parses its arguments, calls one library function
and prints its report).

The commands live by what they do: :mod:`walloc_cli.cli.convert` (compress, decompress),
:mod:`walloc_cli.cli.inspect` (info, verify, models, latents), :mod:`walloc_cli.cli.train`
(train, data), :mod:`walloc_cli.cli.eval` (eval, bench); what they print is
:mod:`walloc_cli.cli.render`'s. Importing this module loads Typer and Rich only (no torch, no
Pillow beyond the package's plugin): ``walloc --help`` and ``--version`` stay fast.

Every command turns domain errors into one line ``walloc: FILE: problem`` on stderr. Exit codes:
0 all inputs done, 1 at least one input failed (the others were still processed), 2 usage error,
130 interrupted.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer

from walloc_cli._version import __version__
from walloc_cli.cli.convert import compress, decompress
from walloc_cli.cli.eval import bench_command, eval_command
from walloc_cli.cli.help import plain_help
from walloc_cli.cli.inspect import info, latents, models, verify
from walloc_cli.cli.render import err, out
from walloc_cli.cli.train import data_corpus, data_music, data_photos, data_speech, data_volumes, train


class _Commands(typer.core.TyperGroup):
    """The command group: Ctrl-C in any command prints ``walloc: interrupted`` and exits 130.

    Typer turns KeyboardInterrupt into a silent exit 130 before :func:`main` could see it; the
    batch commands print the line themselves (their outputs are cleaned up first)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        plain_help(self)  # --help without <bool> and <list[Path]> (walloc_cli/cli/help.py)

    def format_help(self, ctx: Any, formatter: Any) -> None:
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


def _print_version(value: bool) -> None:
    if value:
        out.print(f"walloc {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """walloc: wavelet learned lossy compression."""


# Every command, registered here and only here, in the order ``walloc --help`` lists them (Typer
# lists the ``data`` group after the plain commands).
app.command()(compress)
app.command()(decompress)
app.command()(info)
app.command()(verify)
app.command()(models)
app.command()(train)
data_app = typer.Typer(help="Build the training/validation/test sets from Debian and PyPI packages (corpus downloads them; the others read installed ones).", no_args_is_help=True)
data_app.command("photos")(data_photos)
data_app.command("music")(data_music)
data_app.command("speech")(data_speech)
data_app.command("volumes")(data_volumes)
data_app.command("corpus")(data_corpus)
app.add_typer(data_app, name="data")
app.command()(latents)
app.command("eval")(eval_command)
app.command("bench")(bench_command)


def main() -> None:
    """Console-script entry point (``walloc``, ``python -m walloc_cli``)."""
    # OpenMP threads that spin while waiting make torch 5-10x slower whenever another process
    # shares the cores (measured: 4.4 s vs 0.6 s to decode a 512x512 photo beside a busy job).
    # A CLI often runs beside other jobs (batch scripts, --jobs), so wait passively unless told.
    # Set here, before any command imports torch (OpenMP reads it once, when torch loads), and
    # not on import: a host program importing this module keeps its own setting.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        app()
    except KeyboardInterrupt:  # outside any command (while starting up)
        err.print("walloc: interrupted", markup=False)
        sys.exit(130)
