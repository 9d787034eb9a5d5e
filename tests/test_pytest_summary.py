"""The README's test command ``python -m pytest -q`` ends with pytest's summary line
("N passed in ..."): the project's pytest configuration must not add a second ``-q`` (``-qq``
drops that line, and a new user cannot see that the tests passed)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_test_command_prints_the_summary_line(tmp_path: Path) -> None:
    assert "python -m pytest -q" in (ROOT / "README.md").read_text(encoding="utf-8")
    (tmp_path / "test_tiny.py").write_text("def test_one() -> None:\n    assert True\n\n\ndef test_two() -> None:\n    assert True\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}  # only the project's own configuration
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT), str(tmp_path / "test_tiny.py")],
        capture_output=True, text=True, env=env, timeout=120, cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"2 passed in [\d.]+s( \([\d:]+\))?", last), f"no summary line; output ends with {last!r}"
