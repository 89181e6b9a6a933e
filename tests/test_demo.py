"""`autodo demo` works with no API key and shows all three lanes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import AUTODO, environment

pytestmark = pytest.mark.slow


def test_the_demo_runs_all_three_lanes_without_a_key(home: Path) -> None:
    env = environment(home) | {"COLUMNS": "140"}
    result = subprocess.run([*AUTODO, "demo"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "asked: Where is the offsite, and for how many days?  answered: Lisbon, two days." in out  # agent asks
    assert "asked: Which brand colour should the landing page use?" in out  # the ask lane
    assert "yours     Sign the vendor contract with ACME" in out  # only you can do this
    assert out.count("done      ") == 5
    assert "Document fib.py in NOTES.md\n          Documented fib.py" in out  # the blocked task ran after its blocker
    assert "The model was scripted" in out
    home_line = next(line for line in out.splitlines() if line.startswith("Workspaces: "))
    workspaces = Path(home_line.removeprefix("Workspaces: "))
    written = sorted(path.name for path in workspaces.glob("*/*"))
    assert written == ["NOTES.md", "agenda.md", "fib.py", "haiku.txt", "styles.css"]
