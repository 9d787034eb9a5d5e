"""The manual page ``man/walloc.1`` documents the live CLI, and renders without warnings.

The option lists come from the Typer app itself, so adding an option to a command in ``walloc_cli/cli/``
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

import walloc_cli.cli.app

PAGE = Path(__file__).resolve().parent.parent / "man" / "walloc.1"
ROOT = typer.main.get_command(walloc_cli.cli.app.app)


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


# --- drift: the page, the README, the cards and --help tell the same story --------------------
README = PAGE.parent.parent / "README.md"
HELP_WIDTH = "80"  # a common terminal: nothing may be cut ("…") at this width


def _help(*words: str) -> str:
    """``walloc WORDS --help`` as a user at an 80-column terminal sees it."""
    from typer.testing import CliRunner

    result = CliRunner().invoke(walloc_cli.cli.app.app, [*words, "--help"], env={"COLUMNS": HELP_WIDTH, "TERMINAL_WIDTH": HELP_WIDTH})
    assert result.exit_code == 0, result.output
    return result.output


GROUPS = ["", *sorted({name.rsplit(" ", 1)[0] for name in COMMANDS if " " in name})]


def _shipped_models() -> list[dict[str, Any]]:
    """``walloc models --json``: the cards of every shipped model."""
    import json

    from typer.testing import CliRunner

    result = CliRunner().invoke(walloc_cli.cli.app.app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


MODELS = _shipped_models()


def _ranges(text: str) -> set[tuple[str, int, int]]:
    """``{(family, lo, hi)}`` of every ``FAMILY q LO–HI`` in ``text`` (en dash, or roff's ``\\(en``)."""
    text = text.replace("\\(en", "–")
    return {(f, int(lo), int(hi)) for f, lo, hi in re.findall(r"\b([a-z][a-z0-9]*) q (\d+)–(\d+)", text)}


def _card_ranges(card: dict[str, Any]) -> set[tuple[str, int, int]]:
    return {(q["family"], int(q["q"][0]), int(q["q"][1])) for q in card.get("quality", [])}


def test_name_line_names_every_modality(source: str) -> None:
    name = _sections(source, ".SH")["NAME"]
    for word in ("photos", "audio", "volumes"):
        assert word in name, f"NAME omits {word}: {name.strip()!r}"
    assert {card["modality"] for card in MODELS} == {"image", "audio", "volume"}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_a_synopsis(source: str, name: str) -> None:
    synopsis = _sections(source, ".SH")["SYNOPSIS"]
    first, *rest = name.split()
    assert re.search(rf"^\.B {re.escape(first)}$", synopsis, re.MULTILINE), f"SYNOPSIS has no line for {name!r}"
    for word in rest:  # "data photos": the subcommand's word appears among the alternatives
        assert re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", synopsis), f"SYNOPSIS has no {name!r}"


@pytest.mark.parametrize("model", [m["name"] for m in MODELS])
def test_every_shipped_model_is_in_the_man_page_and_readme(source: str, model: str) -> None:
    section = _command_section(source, "models")
    tags = [tag for tag, _ in _tagged_entries(section)]
    assert any(re.search(rf"(?<![\w-]){re.escape(model)}(?![\w-])", tag) for tag in tags), f"{model} is not listed in the models section of {PAGE}"
    assert f"`{model}`" in README.read_text(encoding="utf-8"), f"{model} is not in the README"


@pytest.mark.parametrize("model", [m["name"] for m in MODELS if m.get("quality")])
def test_quality_ranges_match_the_cards(source: str, model: str) -> None:
    card = next(m for m in MODELS if m["name"] == model)
    expected = _card_ranges(card)
    rows = [line for line in README.read_text(encoding="utf-8").splitlines() if line.startswith(f"| `{model}` |")]
    assert rows, f"the README's model tables have no row for {model}"
    for row in rows:
        found = _ranges(row)
        assert found in (set(), expected), f"README row of {model} says {sorted(found)}, the card {sorted(expected)}"
    assert any(_ranges(row) == expected for row in rows), f"no README row gives {model}'s quality range {sorted(expected)}"
    entries = [body for tag, body in _tagged_entries(_command_section(source, "models")) if re.search(rf"(?<![\w-]){re.escape(model)}(?![\w-])", tag)]
    assert entries and _ranges(entries[0]) == expected, f"man page: {model} has {sorted(_ranges(entries[0]) if entries else [])}, the card {sorted(expected)}"


def test_the_drift_checks_catch_a_wrong_range() -> None:
    """The range checks are not vacuous: the old README's CT range would fail them."""
    card = next(m for m in MODELS if m["name"] == "ct-3d-8x-v")
    assert _ranges("| `ct-3d-8x-v` | CT/MRI | 8× | 0.23 M | volume q 0–24 |") != _card_ranges(card)
    assert _ranges("gray q 24\\(en84 and rgb q 36–84") == {("gray", 24, 84), ("rgb", 36, 84)}


@pytest.mark.parametrize("screen", sorted(set(GROUPS) | set(COMMANDS)))
def test_help_reads_like_a_normal_tools(screen: str) -> None:
    """No Python types (``<bool>``, ``<list[Path]>``, ``<str>``), no raw reStructuredText, no
    line cut at 80 columns, in ``walloc --help``, ``walloc data --help`` and every command's."""
    words = screen.split()
    text = _help(*words)
    assert not re.search(r"<(bool|str|int|float|path|list\[|int range|float range)", text, re.IGNORECASE), f"Python types in `walloc {' '.join(words)} --help`:\n{text}"
    assert "``" not in text, f"raw markup in `walloc {' '.join(words)} --help`:\n{text}"
    assert "…" not in text, f"a line of `walloc {' '.join(words)} --help` is cut at {HELP_WIDTH} columns:\n{text}"
    assert not re.search(r"\{\w+\}", text.split("\n", 3)[1] if text.count("\n") > 1 else text), "usage line shows {argument}"


def _help_options(text: str) -> list[str]:
    """Option strings in the first column of a Rich help screen's panels."""
    found = []
    for line in text.splitlines():
        # "│ --force  -f  ...", or "│ *  --out-dir  -O  OUT_DIR ..." for a required option;
        # help text continues far to the right, so an indented "-" is no option
        row = re.match(r"│ (?:\*\s{1,5}|\s{0,5})(--?[A-Za-z].*)", line)
        if row is None:
            continue
        for cell in re.split(r"\s{2,}", row.group(1).strip()):
            if not cell.startswith("-"):
                break
            found += cell.split(",")
    return found


@pytest.mark.parametrize("name", ["", *sorted(COMMANDS)])
def test_every_option_of_help_is_in_the_man_page(source: str, name: str) -> None:
    options = _help_options(_help(*name.split()))
    assert options, "no options parsed from the help screen: the check would prove nothing"
    if not name:
        section = next(body for heading, body in _sections(source, ".SH").items() if heading == "OPTIONS")
        missing = [o for o in options if not _has_option(section, o)]
    else:
        section = _command_section(source, name)
        missing = [o for o in options if o != "--help" and not _has_option(section, o)]
    assert not missing, f"`walloc {name} --help` shows {missing}, which the man page's section does not document"


def test_eval_help_lists_every_codec() -> None:
    from walloc_cli.eval.codecs import codec_names

    text = _help("eval")
    for codec in codec_names():
        assert re.search(rf"(?<![\w-]){re.escape(codec)}(?![\w-])", text), f"eval --help does not name codec {codec}"


def test_decompress_output_default_is_stated_per_kind(source: str) -> None:
    """Not ".png for every kind": help and page name the audio and volume defaults too."""
    help_text = " ".join(_help("decompress").split())
    entry = next(body for tag, body in _tagged_entries(_command_section(source, "decompress")) if _has_option(tag, "--output"))
    for text in (help_text, " ".join(entry.split())):
        default = text[text.index("Default:"):]
        for suffix in (".png", ".wav", ".flac", ".npy", ".nii.gz"):
            assert suffix in default, f"the decompress -o default does not mention {suffix}: {default[:300]!r}"
