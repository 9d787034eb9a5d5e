"""Layer 6, the top: the ``walloc`` command line (Typer + Rich).

* :mod:`~walloc_cli.cli.app`: the Typer app, ``--version``, the one place every command is
  registered, and :func:`~walloc_cli.cli.app.main` (the ``walloc`` console script and
  ``python -m walloc_cli``);
* :mod:`~walloc_cli.cli.convert`: ``compress`` / ``decompress`` and their batch loop;
* :mod:`~walloc_cli.cli.inspect`: ``info`` / ``verify`` / ``models`` / ``latents``;
* :mod:`~walloc_cli.cli.train`: ``train`` and ``data photos|music|speech|volumes``;
* :mod:`~walloc_cli.cli.eval`: ``eval`` / ``bench``;
* :mod:`~walloc_cli.cli.render`: the consoles and every line, report and table printed;
* :mod:`~walloc_cli.cli.help`: plain ``--help`` screens on every Typer version.

A command parses its arguments, calls one library function and renders its report; it holds
no codec logic. May import every layer below (``eval``, ``api``, ``train``, ``data``,
``codecs``, ``model``, ``files``, ``format``, ``errors``, ``metrics``, ``_version``), never the
package root. Modules import torch, Pillow and Rich's progress bars only inside the commands
that need them, so ``walloc --help`` stays fast; nothing here changes global state on import
(``OMP_WAIT_POLICY`` is set by ``main()``).
"""
