"""The manual page ``man/walloc.1`` documents the live CLI, and renders without warnings.

The option lists come from the Typer app itself, so adding an option to ``walloc_cli/cli.py``
without documenting it (or documenting one that does not exist) fails here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer.main

import walloc_cli.cli

PAGE = Path(__file__).resolve().parent.parent / "man" / "walloc.1"
ROOT = typer.main.get_command(walloc_cli.cli.app)


def _flatten(group: Any, prefix: str = "") -> dict[str, Any]:
    """``{"compress": cmd, ..., "data photos": cmd}``: sub-commands of groups by their full name."""
    found: dict[str, Any] = {}
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            found.update(_flatten(command, f"{prefix}{name} "))
        else:
            found[f"{prefix}{name}"] = command
    return found


COMMANDS: dict[str, Any] = _flatten(ROOT)


def _normalise(text: str) -> str:
    """roff source -> plain-ish text: ``\\-`` -> ``-``, font escapes and ``\\&``/``\\c`` removed."""
    text = text.replace("\\-", "-")
    text = re.sub(r"\\f(\[[^\]]*\]|\(..|.)", "", text)
    return text.replace("\\&", "").replace("\\c", "")


def _is_option(param: Any) -> bool:
    # Typer >= 0.25 vendors Click (typer._click), so isinstance(param, click.Option) is unreliable.
    return getattr(param, "param_type_name", None) == "option"


def _options(command: Any) -> list[str]:
    """Every option string of ``command`` (short and long, on and off forms), ``--help`` skipped."""
    found = []
    for param in command.params:
        if _is_option(param):
            found += [o for o in [*param.opts, *param.secondary_opts] if o != "--help"]
    return found


def _has_option(text: str, option: str) -> bool:
    """``option`` as a whole token (``-o`` does not match inside ``--output`` or ``-O``)."""
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text) is not None


@pytest.fixture(scope="module")
def source() -> str:
    return PAGE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def text(source: str) -> str:
    return _normalise(source)


def _sections(source: str, macro: str) -> dict[str, str]:
    """Heading -> body for each ``.SH``/``.SS`` (``macro``) of the page, normalised."""
    parts: dict[str, str] = {}
    current, body = None, []  # type: ignore[var-annotated]
    for line in source.splitlines():
        if line.startswith((".SH", ".SS")):
            if current is not None:
                parts[current] = _normalise("\n".join(body))
            current, body = (line[4:].strip().strip('"') if line.startswith(macro) else None), []
            continue
        body.append(line)
    if current is not None:
        parts[current] = _normalise("\n".join(body))
    return parts


def _command_section(source: str, name: str) -> str:
    sections = _sections(source, ".SS")
    matches = [body for heading, body in sections.items() if heading == name or (" " not in name and heading.split()[-1] == name)]
    assert matches, f"no .SS section for command {name!r} in {PAGE}"
    return matches[0]


def _tagged_entries(section: str) -> list[tuple[str, str]]:
    """``(tag line, body)`` for each ``.TP`` paragraph of a normalised section."""
    entries = []
    for chunk in section.split("\n.TP")[1:]:
        lines = chunk.strip("\n").splitlines()
        if lines:
            entries.append((lines[0], "\n".join(lines[1:])))
    return entries


def test_app_has_the_expected_commands() -> None:
    # Guards the test itself: if the app cannot be introspected, the checks below prove nothing.
    assert {"compress", "decompress", "info", "models", "train", "data photos"} <= set(COMMANDS)
    assert all(_options(command) for command in COMMANDS.values())


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_is_a_heading_or_bold(source: str, name: str) -> None:
    pattern = rf"^\.(SH|SS|B|BR|SY)\b.*(?<![\w-]){re.escape(name)}(?![\w-])"
    assert re.search(pattern, _normalise(source), re.MULTILINE), f"command {name!r} has no heading or .B line"


@pytest.mark.parametrize(
    ("name", "option"),
    [(name, option) for name, command in sorted(COMMANDS.items()) for option in _options(command)],
)
def test_every_option_is_documented(source: str, text: str, name: str, option: str) -> None:
    assert _has_option(text, option), f"{name} option {option} is missing from {PAGE}"
    section = _command_section(source, name)
    assert _has_option(section, option), f"{option} is not in the {name} section"
    tags = [tag for tag, _ in _tagged_entries(section)]
    assert any(_has_option(tag, option) for tag in tags), f"{name} {option} has no .TP entry of its own"


@pytest.mark.parametrize("option", _options(ROOT))
def test_every_global_option_is_documented(source: str, option: str) -> None:
    options = next(body for heading, body in _sections(source, ".SH").items() if heading == "OPTIONS")
    assert _has_option(options, option), f"global option {option} is missing from the OPTIONS section"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_defaults_are_documented(source: str, name: str) -> None:
    entries = _tagged_entries(_command_section(source, name))
    for param in COMMANDS[name].params:
        if not _is_option(param) or param.is_flag or param.default is None or param.required:
            continue
        entry = [body for tag, body in entries if any(_has_option(tag, o) for o in param.opts)]
        assert entry, f"{name} {param.opts[-1]} has no .TP entry"
        default = str(param.default)
        assert re.search(rf"Default:.*?(?<![\w.]){re.escape(default)}(?![\w])", entry[0], re.DOTALL), (
            f"{name} {param.opts[-1]}: default {default!r} not stated"
        )


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_no_invented_options(source: str, name: str) -> None:
    """Every option named in a ``.TP`` tag of a command's section exists in that command."""
    real = set(_options(COMMANDS[name])) | {"--help"}
    for tag, _ in _tagged_entries(_command_section(source, name)):
        for option in re.findall(r"(?<![\w-])--?[A-Za-z][\w-]*", tag):
            assert option in real, f"{name} section documents {option}, which {name} does not have"


def test_required_sections(text: str) -> None:
    for heading in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "OPTIONS", "EXIT STATUS", "FILES", "EXAMPLES", "SEE ALSO"):
        assert re.search(rf'^\.SH "?{heading}"?$', text, re.MULTILINE), f"section {heading} missing"
    assert re.search(r"^\.TH WALLOC 1 ", text, re.MULTILINE)


def test_mutation_is_caught(source: str) -> None:
    """Deleting one documented option makes the check fail (the check is not vacuous)."""
    mutated = _normalise(source.replace("\\-\\-no\\-psnr", "\\-\\-no\\-quality"))
    assert not _has_option(mutated, "--no-psnr")
    assert not _has_option(_normalise(source.replace("\\-O", "")), "-O")


# --- rendering -------------------------------------------------------------------------------
def test_groff_has_no_warnings() -> None:
    groff = shutil.which("groff")
    if groff is None:
        pytest.skip("groff is not installed")
    result = subprocess.run(
        [groff, "-man", "-Tutf8", "-ww", "-z", str(PAGE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", f"groff warnings:\n{result.stderr}"


def test_man_renders() -> None:
    man = shutil.which("man")
    if man is None:
        pytest.skip("man is not installed")
    env = {**os.environ, "MANPAGER": "cat", "PAGER": "cat", "MANWIDTH": "80", "MAN_DISABLE_SECCOMP": "1"}
    env.pop("MAN_KEEP_FORMATTING", None)
    result = subprocess.run([man, "-l", str(PAGE)], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    rendered = re.sub(r".\x08", "", result.stdout)  # strip overstrike bold/underline if any
    assert "walloc" in rendered
    assert "EXIT STATUS" in rendered
    assert "COMMANDS" in rendered
    assert "\\-" not in rendered and "\\f" not in rendered, "unrendered roff escapes in the output"
