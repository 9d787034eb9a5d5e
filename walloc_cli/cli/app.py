"""The ``walloc`` command: :func:`main` (the ``walloc`` console script and ``python -m walloc_cli``),
the Typer app, its global options and the one place every command is registered (fastapi-cli
style: each command parses its arguments, calls one library function and prints its report).

The commands live by what they do: :mod:`walloc_cli.cli.convert` (compress, decompress),
:mod:`walloc_cli.cli.inspect` (info, verify, models, latents), :mod:`walloc_cli.cli.train`
(train, data), :mod:`walloc_cli.cli.eval` (eval, bench); what they print is
:mod:`walloc_cli.cli.render`'s.

Start-up is part of the interface: people run ``walloc`` once per file in shell loops. So this
module imports nothing but the version at import time: the Typer app (Typer, Rich and the
command modules) is built by :func:`build_app` when ``app`` is first asked for, and
``walloc --version`` is answered by :func:`main` before it is built (no Typer, Rich or numpy
loaded; the same line Typer's ``--version`` prints), and the plain forms of ``compress`` and
``decompress`` are parsed without Typer (:mod:`walloc_cli.cli.fastpath`). Each command imports its
library when it runs.

Every command turns domain errors into one line ``walloc: FILE: problem`` on stderr. Exit codes:
0 all inputs done, 1 at least one input failed (the others were still processed), 2 usage error
(also: a command whose optional dependency is not installed, e.g. ``train`` without PyTorch),
130 interrupted.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import TYPE_CHECKING, Any

from walloc_cli._version import __version__

if TYPE_CHECKING:  # the app's type only: building it is what imports Typer
    import typer

    app: typer.Typer


@functools.cache
def build_app() -> typer.Typer:
    """The ``walloc`` Typer app with every command registered, in the order ``walloc --help``
    lists them (Typer lists the ``data`` group after the plain commands). Built once."""
    import typer

    from walloc_cli.cli.convert import compress, decompress
    from walloc_cli.cli.eval import bench_command, eval_command
    from walloc_cli.cli.help import plain_help
    from walloc_cli.cli.inspect import info, latents, models, verify
    from walloc_cli.cli.render import err, out
    from walloc_cli.cli.train import data_corpus, data_music, data_photos, data_speech, data_volumes, train

    class Commands(typer.core.TyperGroup):
        """The command group: Ctrl-C in any command prints ``walloc: interrupted`` and exits
        130. Typer turns KeyboardInterrupt into a silent exit 130 before :func:`main` could see
        it; the batch commands print the line themselves (their outputs are cleaned up first)."""

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
        cls=Commands,
        name="walloc",
        help="Learned lossy compression (WaLLoC) for photos, audio and volumes (CT/MRI, multispectral): compress to .wlc, decompress, verify, inspect, evaluate, train.",
        no_args_is_help=True,
        add_completion=True,
        pretty_exceptions_enable=False,
    )

    def print_version(value: bool) -> None:
        if value:
            out.print(version_line(), markup=False)
            raise typer.Exit()

    @app.callback()
    def _root(
        version: bool = typer.Option(False, "--version", callback=print_version, is_eager=True, help="Print the version and exit."),
    ) -> None:
        """walloc: wavelet learned lossy compression."""

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
    return app


def __getattr__(name: str) -> Any:
    """``app``: the Typer app (:func:`build_app`), built when first asked for."""
    if name == "app":
        return build_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def version_line() -> str:
    """What ``walloc --version`` prints."""
    return f"walloc {__version__}"


def main() -> None:
    """Console-script entry point (``walloc``, ``python -m walloc_cli``)."""
    # OpenMP threads that spin while waiting make torch 5-10x slower whenever another process
    # shares the cores (measured: 4.4 s vs 0.6 s to decode a 512x512 photo beside a busy job).
    # A CLI often runs beside other jobs (batch scripts, --jobs), so wait passively unless told.
    # Set here, before any command imports torch (OpenMP reads it once, when torch loads), and
    # not on import: a host program importing this module keeps its own setting.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if sys.argv[1:] == ["--version"]:
        # Scripts ask for the version to check an install: answered without building the app
        # (Typer and Rich are most of the start-up of a command this small).
        sys.stdout.write(version_line() + "\n")
        return
    try:
        if sys.argv[1:2] in (["compress"], ["decompress"]):
            # The plain forms a shell loop runs, without Typer's ~0.15 s of start-up
            # (walloc_cli/cli/fastpath.py); anything else, --help and usage errors go to Typer.
            from walloc_cli.cli.fastpath import main as fast_main

            status = fast_main(sys.argv[1:])
            if status is not None:
                sys.exit(status)
        build_app()()
    except KeyboardInterrupt:  # outside any command (while starting up)
        sys.stderr.write("walloc: interrupted\n")
        sys.exit(130)
