"""Tests for running commands inside a task workspace."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from autodo.errors import InvalidInput
from autodo.tools.shell import CommandResult, run_command


def _process_gone(pid: int) -> bool:
    """True once ``pid`` no longer runs; a zombie nobody reaped yet counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_command_output_and_exit_code_are_captured(tmp_path: Path) -> None:
    result = run_command(tmp_path, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert not result.timed_out
    assert not result.truncated


def test_command_runs_in_the_workspace(tmp_path: Path) -> None:
    assert run_command(tmp_path, ["pwd"]).stdout.strip() == str(tmp_path.resolve())


def test_big_output_is_capped_with_a_marker(tmp_path: Path) -> None:
    result = run_command(tmp_path, [sys.executable, "-c", "print('x' * 1_000_000)"], output_cap=1000)
    assert result.truncated
    assert result.exit_code == 0
    assert result.stdout == "x" * 1000 + "\n[... output truncated at 1000 bytes]"


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    script = "sleep 30 & echo $! > bg.pid; sleep 30"
    started = time.monotonic()
    result = run_command(tmp_path, ["sh", "-c", script], timeout=1)
    assert time.monotonic() - started < 10
    assert result.timed_out
    assert result.exit_code is None
    assert _gone_within(int((tmp_path / "bg.pid").read_text()), seconds=5)


def test_background_child_holding_the_pipes_does_not_outlive_the_timeout(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_command(tmp_path, ["sh", "-c", "sleep 30 & echo started"], timeout=1)
    assert time.monotonic() - started < 10
    assert result.timed_out
    assert result.exit_code == 0
    assert result.stdout == "started\n"


def test_a_daemon_left_behind_by_a_finished_command_is_killed(tmp_path: Path) -> None:
    result = run_command(tmp_path, ["sh", "-c", "sleep 30 > /dev/null 2>&1 & echo $! > bg.pid"], timeout=10)
    assert (result.exit_code, result.timed_out) == (0, False)
    assert _gone_within(int((tmp_path / "bg.pid").read_text()), seconds=5)


def test_missing_program_returns_127(tmp_path: Path) -> None:
    result = run_command(tmp_path, ["autodo-no-such-program-xyz"])
    assert result.exit_code == 127
    assert "command not found" in result.stderr


def test_parent_environment_does_not_leak(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTODO_TEST_SECRET", "hunter2")
    result = run_command(tmp_path, ["env"])
    assert "AUTODO_TEST_SECRET" not in result.stdout
    assert "hunter2" not in result.stdout


def test_environment_has_home_in_workspace_and_extra_variables(tmp_path: Path) -> None:
    lines = run_command(tmp_path, ["env"], env={"EXTRA": "1"}).stdout.splitlines()
    assert f"HOME={tmp_path.resolve()}" in lines
    assert "EXTRA=1" in lines
    assert "TERM=dumb" in lines


def test_stdin_is_closed(tmp_path: Path) -> None:
    result = run_command(tmp_path, ["cat"], timeout=5)
    assert (result.exit_code, result.stdout, result.timed_out) == (0, "", False)


def test_empty_argv_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="non-empty list"):
        run_command(tmp_path, [])


def test_non_string_argv_item_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="must be a string"):
        run_command(tmp_path, ["echo", 3])  # type: ignore[list-item]


def test_render_shows_command_exit_code_and_streams() -> None:
    result = CommandResult(["ls", "-a b"], 1, "out\n", "err\n", timed_out=False, truncated=False)
    assert result.render() == "$ ls '-a b'\nexit code: 1\n--- stdout ---\nout\n--- stderr ---\nerr"


def test_render_notes_a_timeout() -> None:
    result = CommandResult(["sleep", "9"], None, "", "", timed_out=True, truncated=False)
    assert "timed out" in result.render()
    assert "(no output)" in result.render()


def _gone_within(pid: int, seconds: float) -> bool:
    """Whether the process is gone (or a zombie) within ``seconds``; killing is asynchronous."""
    deadline = time.monotonic() + seconds
    while not _process_gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _process_gone(pid)
