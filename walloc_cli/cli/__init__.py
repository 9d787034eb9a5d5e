"""Layer 6, the top: the ``walloc`` command line (Typer + Rich).

* :mod:`~walloc_cli.cli.app`: :func:`~walloc_cli.cli.app.main` (the ``walloc`` console script
  and ``python -m walloc_cli``; it answers ``--version`` itself) and the Typer app, built on first
  use, the one place every command is registered;
* :mod:`~walloc_cli.cli.convert`: ``compress`` / ``decompress`` (Typer commands); their body and batch
  loop :mod:`~walloc_cli.cli.convert_run`, and :mod:`~walloc_cli.cli.fastpath`, which runs their plain
  forms without Typer;
* :mod:`~walloc_cli.cli.inspect`: ``info`` / ``verify`` / ``models`` / ``latents``;
* :mod:`~walloc_cli.cli.train`: ``train`` and ``data photos|music|speech|volumes``;
* :mod:`~walloc_cli.cli.eval`: ``eval`` / ``bench``;
* :mod:`~walloc_cli.cli.render`: the consoles and every line, report and table printed;
* :mod:`~walloc_cli.cli.help`: plain ``--help`` screens on every Typer version.

A command parses its arguments, calls one library function and renders its report; it holds
no codec logic. May import every layer below (``eval``, ``api``, ``train``, ``data``,
``codecs``, ``model``, ``files``, ``format``, ``errors``, ``metrics``, ``_version``), never the
package root. A command's start-up is part of its cost (shell loops run one process per file),
so modules import their library (the codecs, numpy, torch, Pillow, Rich's tables and progress
bars) only inside the commands that need them, and ``walloc --version`` loads neither Typer nor
Rich; ``tests/test_startup.py`` checks what a command imports. Torch is an optional extra: a
command that needs it says which extra to install (:func:`~walloc_cli.cli.render.require_torch`).
Nothing here changes global state on import (``OMP_WAIT_POLICY`` is set by ``main()``).
"""
