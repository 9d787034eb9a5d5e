"""``--help`` screens that read like a normal command-line tool's, on every Typer walloc supports.

Typer 0.25 and later (seen on 0.29.2) print a Python type beside every parameter of the Rich
help screen: ``<bool>`` beside flags, which take no value at all, ``<list[Path]>`` beside the
input arguments, ``<str>`` and ``<int range>`` beside options; and the usage line shows a
required argument as ``{inputs}...``. :func:`plain_help` rewrites the command tree Typer builds
(once per run, when the root group is made) to the convention of argparse and Click instead:

* a flag shows no value: ``-f, --force``;
* an option shows its own ``metavar`` (``-O DIR``, ``--target-psnr DB``), or else its long name
  in capitals, as argparse does: ``-m, --model MODEL``;
* an argument shows its name in capitals and no type: ``INPUTS...`` (usage and help alike).

Only what the help screen shows changes: parsing, defaults and validation stay Typer's and
Click's. Older Typers, which already print Click's metavars, ignore the overrides.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument


class PlainArgument(TyperArgument):
    """A Typer argument shown by its capitalised name only (``INPUTS...``, ``[OUT_DIR]``)."""

    def display_type_rich(self, ctx: Any) -> str | None:
        """No type column: the name says what to give (Typer would print ``<list[Path]>``)."""
        return None

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        """``INPUTS...`` when required, ``[OUT_DIR]`` when not, as Click writes usage lines."""
        name = self.metavar or self.name or ""
        return [name if self.required else f"[{name}]"]


def argument_metavar(param: Any) -> str:
    """``inputs`` taking many values -> ``INPUTS...``; ``out_dir`` -> ``OUT_DIR``."""
    return str(param.name).upper() + ("..." if param.nargs != 1 else "")


def option_metavar(param: Any) -> str:
    """What follows an option taking a value: its ``metavar`` if it has one, else its long name
    in capitals (``--bd-method`` -> ``BD_METHOD``, argparse's rule); flags take none (``""``)."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    if param.metavar:
        return str(param.metavar)
    longs = [o for o in param.opts if o.startswith("--")]
    return (longs[0][2:] if longs else str(param.name)).replace("-", "_").upper()


def plain_help(command: Any, recursive: bool = True) -> None:
    """Give ``command`` (and with ``recursive`` every sub-command below it) plain help, as the
    module docstring says. Runs on the Click objects Typer has built, before they print; running
    it again changes nothing."""
    for param in command.params:
        if getattr(param, "param_type_name", None) == "argument":
            param.metavar = argument_metavar(param)
            if type(param) is TyperArgument:
                param.__class__ = PlainArgument  # only adds the two display methods above
        elif getattr(param, "param_type_name", None) == "option":
            param.metavar = option_metavar(param)
    # ``--help`` is made on first use and kept (Click >= 8.2); make it now to show it as a flag.
    context = command.context_class(command, **(command.context_settings or {}))
    help_option = command.get_help_option(context)
    if help_option is not None:
        help_option.metavar = ""
    for sub in getattr(command, "commands", {}).values() if recursive else ():
        plain_help(sub)
