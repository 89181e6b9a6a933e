"""The OS sandbox around agent commands: every adversarial case from issue 5, for both tiers.

Both confined tiers work on the project's machines (scripts/sandbox installs bubblewrap), so a
tier that does not work here fails these tests with the probe's reason instead of skipping.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from autodo.cli.app import cli
from autodo.errors import InvalidInput, PathOutsideWorkspace
from autodo.policy import _landlock
from autodo.policy.sandbox import Limits, Probe, Sandbox, SandboxUnavailable, Tier, TierStatus, probe, sandbox_for
from autodo.tools import files
from autodo.tools.files import read_file, write_file
from autodo.tools.shell import CommandResult, run_command
from autodo.workspaces import paths

CANARY = "autodo-canary-7f3a9c"
_MIB = 1024**2


@dataclasses.dataclass
class Layout:
    """A worker's world in miniature: its home with the store, two task workspaces, a user's home."""

    autodo_home: Path
    workspace: Path
    other_workspace: Path
    user_home: Path
    outside: Path


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Layout:
    autodo_home = tmp_path / "autodo"
    workspace = autodo_home / "workspaces" / "task-a"
    other = autodo_home / "workspaces" / "task-b"
    for directory in (workspace / ".git" / "hooks", other, tmp_path / "home" / ".ssh", tmp_path / "outside"):
        directory.mkdir(parents=True)
    (workspace / ".git" / "config").write_text("[core]\n")
    for secret in ("autodo.db", "api-token", "profiles.toml"):
        (autodo_home / secret).write_text(f"{secret} {CANARY}\n")
    (other / "notes.txt").write_text(f"task b {CANARY}\n")
    (tmp_path / "home" / ".ssh" / "id_ed25519").write_text(f"key {CANARY}\n")
    (tmp_path / "outside" / "secret.txt").write_text(f"outside {CANARY}\n")
    monkeypatch.setenv("AUTODO_HOME", str(autodo_home))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return Layout(autodo_home, workspace, other, tmp_path / "home", tmp_path / "outside")


@pytest.fixture(params=["bwrap", "landlock"])
def sandbox(request: pytest.FixtureRequest) -> Sandbox:
    tier = request.param
    status = probe().status(tier)
    if not status.available:
        pytest.fail(f"the {tier} tier must work on this machine (scripts/sandbox installs bubblewrap): {status.reason}")
    return sandbox_for(tier)


def _sh(layout: Layout, sandbox: Sandbox, script: str, timeout: float = 20, output_cap: int = 32_000) -> CommandResult:
    return run_command(layout.workspace, ["sh", "-c", script], timeout=timeout, output_cap=output_cap, sandbox=sandbox)


def _output(result: CommandResult) -> str:
    return result.stdout + result.stderr


def _processes_with(marker: str) -> list[int]:
    """Live processes whose command line contains ``marker`` (zombies have none)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if marker.encode() in Path(entry.path, "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _gone_within(marker: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _processes_with(marker)


# --- the probe ------------------------------------------------------------------------------


def test_both_confined_tiers_work_on_this_machine() -> None:
    found = probe()
    assert found.bwrap.available, found.bwrap.reason
    assert found.landlock.available, found.landlock.reason
    assert found.git_read_only_without_bwrap, found.landlock.reason
    assert found.choose("auto") == "bwrap"


def _probe_without_tiers() -> Probe:
    return dataclasses.replace(
        probe(),
        bwrap=TierStatus("bwrap", False, "bwrap is not installed"),
        landlock=TierStatus("landlock", False, "the kernel has no Landlock"),
    )


def test_no_working_tier_refuses_to_run_tools_and_says_how_to_loosen() -> None:
    with pytest.raises(SandboxUnavailable, match='sandbox = "none"') as refused:
        _probe_without_tiers().choose("auto")
    assert "bwrap is not installed" in refused.value.message
    assert "the kernel has no Landlock" in refused.value.message


def test_only_an_explicit_none_runs_unconfined() -> None:
    assert _probe_without_tiers().choose("none") == "none"
    with pytest.raises(SandboxUnavailable):
        _probe_without_tiers().choose("landlock")


def test_a_sandbox_that_cannot_be_set_up_runs_nothing(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(ruleset_fd: int) -> None:
        raise OSError(1, "refused for the test")

    monkeypatch.setattr(_landlock, "restrict_self", broken)
    result = _sh(layout, Sandbox("landlock"), "touch ran.txt")
    assert result.exit_code == 126
    assert "could not confine the command" in result.stderr
    assert not (layout.workspace / "ran.txt").exists()


@pytest.fixture
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "private-home"
    home.mkdir(mode=0o700)
    (home / "profiles.toml").write_text('[profile.loose]\nsandbox = "none"\n')
    monkeypatch.setenv("AUTODO_HOME", str(home))
    return home


def test_doctor_reports_the_tier_in_use_and_why(private_home: Path) -> None:
    outcome = CliRunner().invoke(cli, ["doctor", "--json"])
    assert outcome.exit_code == 0, outcome.output
    report = json.loads(outcome.output)
    assert report["sandbox_auto"].startswith("bwrap: ")
    assert {t["tier"]: t["available"] for t in report["tiers"]} == {"bwrap": True, "landlock": True}
    assert report["landlock_abi"] >= 1
    assert {p["profile"]: p["sandbox"] for p in report["profiles"]} == {"loose": "none", "default": "auto"}
    assert report["home"] == {
        "path": str(private_home),
        "exists": True,
        "mode": "0700",
        "owner_uid": os.getuid(),
        "private": True,
    }


def test_doctor_says_loudly_when_a_profile_runs_unconfined(private_home: Path) -> None:
    outcome = CliRunner().invoke(cli, ["doctor"])
    assert 'loose: sandbox = "none" -> none: ' in outcome.output
    assert "UNCONFINED" in outcome.output


def test_doctor_fails_when_others_can_enter_the_home(private_home: Path) -> None:
    private_home.chmod(0o755)
    outcome = CliRunner().invoke(cli, ["doctor"])
    assert outcome.exit_code == 1
    assert f"chmod 700 {private_home}" in outcome.output


# --- secrets of the host are not visible ---------------------------------------------------


def test_other_processes_environment_is_not_visible(
    layout: Layout, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTODO_TEST_SECRET", CANARY)
    helper = subprocess.Popen(["sleep", "60"], env={"AUTODO_TEST_SECRET": CANARY})
    try:
        script = f"cat /proc/{helper.pid}/environ /proc/{os.getpid()}/environ; env; cat /proc/*/environ"
        result = _sh(layout, sandbox, script, output_cap=16 * _MIB)
    finally:
        helper.kill()
        helper.wait()
    assert CANARY not in _output(result)


def test_the_users_ssh_keys_and_root_home_are_not_visible(layout: Layout, sandbox: Sandbox) -> None:
    key = layout.user_home / ".ssh" / "id_ed25519"
    result = _sh(layout, sandbox, f"cat {key}; ls -a {layout.user_home}/.ssh; cat ~/.ssh/id_ed25519; ls -a /root")
    assert CANARY not in _output(result)
    assert "id_ed25519" not in result.stdout
    assert run_command(layout.workspace, ["ls", "/root"], sandbox=sandbox).exit_code != 0


def test_the_autodo_database_token_and_profiles_are_not_visible(layout: Layout, sandbox: Sandbox) -> None:
    home = layout.autodo_home
    script = f"cat {home}/autodo.db {home}/api-token {home}/profiles.toml ../../autodo.db; ls -a {home}"
    result = _sh(layout, sandbox, script)
    assert CANARY not in _output(result)
    assert "autodo.db" not in result.stdout


def test_secrets_in_etc_are_hidden(layout: Layout, sandbox: Sandbox) -> None:
    result = _sh(layout, sandbox, "cat /etc/shadow /etc/gshadow")
    assert result.exit_code != 0
    assert result.stdout == ""


# --- writes outside the workspace are denied -----------------------------------------------


def test_git_hooks_and_config_cannot_be_written(layout: Layout, sandbox: Sandbox) -> None:
    git = layout.workspace / ".git"
    script = "echo evil > .git/hooks/pre-commit; echo evil >> .git/config; rm -rf .git; mv .git moved; echo ok > a.txt"
    result = _sh(layout, sandbox, script)
    assert not (git / "hooks" / "pre-commit").exists()
    assert (git / "config").read_text() == "[core]\n"
    assert not (layout.workspace / "moved").exists()
    assert (layout.workspace / "a.txt").read_text() == "ok\n", result.render()  # the workspace itself is writable


def test_autodo_config_cannot_be_written(layout: Layout, sandbox: Sandbox) -> None:
    profiles = layout.autodo_home / "profiles.toml"
    _sh(layout, sandbox, f"echo evil >> {profiles}; echo evil >> ../../profiles.toml; rm -f {profiles}")
    assert profiles.read_text() == f"profiles.toml {CANARY}\n"


# --- no injection: argv is not a shell line ------------------------------------------------

_INJECTIONS = ["; touch p1 | sh", "$(touch p2)", "`touch p3`", "a\ntouch p4", "&& touch p5", "| touch p6"]


@pytest.mark.parametrize("tier", ["bwrap", "landlock", "none"])
def test_shell_metacharacters_in_arguments_run_nothing(layout: Layout, tier: Tier) -> None:
    confinement = None if tier == "none" else sandbox_for(tier)
    result = run_command(layout.workspace, ["echo", *_INJECTIONS], sandbox=confinement)
    assert result.stdout == " ".join(_INJECTIONS) + "\n"
    assert not [p for p in layout.workspace.iterdir() if p.name.startswith("p")]


# --- no network ----------------------------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A server on the host's loopback: the only address these tests ever send anything to."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


_CLIENTS = {
    "curl": ["curl", "-sS", "--max-time", "5", "http://127.0.0.1:{port}/"],
    "wget": ["wget", "-q", "-T", "5", "-t", "1", "-O", "-", "http://127.0.0.1:{port}/"],
    "nc": ["nc", "-z", "-w", "5", "127.0.0.1", "{port}"],
    "python": ["python3", "-c", "import socket; socket.create_connection(('127.0.0.1', {port}), 5)"],
    "bash-dev-tcp": ["bash", "-c", "echo hi > /dev/tcp/127.0.0.1/{port}"],
}


@pytest.mark.parametrize("client", sorted(_CLIENTS))
def test_network_is_unreachable(layout: Layout, sandbox: Sandbox, listener: socket.socket, client: str) -> None:
    argv = [part.format(port=listener.getsockname()[1]) for part in _CLIENTS[client]]
    if shutil.which(argv[0]) is None:
        pytest.skip(f"{argv[0]} is not installed on this machine, so this client cannot be tried")
    result = run_command(layout.workspace, argv, timeout=20, sandbox=sandbox)
    assert result.exit_code != 0, result.render()
    with pytest.raises(BlockingIOError):
        listener.accept()  # nothing reached the host


# --- bounded and cleaned up ------------------------------------------------------------------


class _Heartbeat:
    """Ticks in a worker thread; the longest gap between ticks shows whether the worker stayed responsive."""

    def __init__(self) -> None:
        self.longest_gap = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(0.02):
            now = time.monotonic()
            self.longest_gap = max(self.longest_gap, now - last)
            last = now


def test_a_fork_bomb_is_bounded_and_cleaned_up(layout: Layout, sandbox: Sandbox) -> None:
    bounded = dataclasses.replace(sandbox, limits=Limits(processes=64))
    marker = f"forkbomb-{os.getpid()}-{sandbox.tier}"
    started = time.monotonic()
    with _Heartbeat() as heartbeat:
        result = run_command(layout.workspace, ["bash", "-c", ":(){ :|:& };:", marker], timeout=2, sandbox=bounded)
    assert time.monotonic() - started < 15, result.render()
    assert heartbeat.longest_gap < 1.0
    assert _gone_within(marker, seconds=5)
    assert run_command(layout.workspace, ["true"], timeout=10, sandbox=sandbox).exit_code == 0


def test_endless_output_is_capped_with_a_marker(layout: Layout, sandbox: Sandbox) -> None:
    result = run_command(layout.workspace, ["yes"], timeout=1, output_cap=10_000, sandbox=sandbox)
    assert result.truncated and result.timed_out
    assert result.stdout.endswith("[... output truncated at 10000 bytes]")


def test_endless_output_to_a_file_stops_at_the_file_size_limit(layout: Layout, sandbox: Sandbox) -> None:
    bounded = dataclasses.replace(sandbox, limits=Limits(file_bytes=_MIB))
    result = _sh(layout, bounded, "yes > big.txt")
    assert result.exit_code != 0 and not result.timed_out, result.render()
    assert (layout.workspace / "big.txt").stat().st_size <= _MIB


def test_a_memory_hog_fails_at_the_limit(layout: Layout, sandbox: Sandbox) -> None:
    bounded = dataclasses.replace(sandbox, limits=Limits(memory_bytes=512 * _MIB))
    with _Heartbeat() as heartbeat:
        result = run_command(
            layout.workspace, ["python3", "-c", "b = bytearray(4 * 1024**3)"], timeout=20, sandbox=bounded
        )
    assert result.exit_code != 0
    assert "MemoryError" in result.stderr
    assert heartbeat.longest_gap < 1.0


def test_sleep_forever_is_killed_at_the_timeout(layout: Layout, sandbox: Sandbox) -> None:
    marker = f"98{os.getpid()}1"
    started = time.monotonic()
    result = run_command(layout.workspace, ["sleep", marker], timeout=1, sandbox=sandbox)
    assert result.timed_out
    assert time.monotonic() - started < 10
    assert _gone_within(marker, seconds=5)


def test_a_daemon_left_behind_is_killed(layout: Layout, sandbox: Sandbox) -> None:
    marker = f"97{os.getpid()}2"
    daemon = f"setsid sh -c 'echo $$ > daemon.pid; exec sleep {marker}' > /dev/null 2>&1 < /dev/null &"
    # Waiting for the pid file makes sure the daemon left the process group before the command ends.
    result = _sh(layout, sandbox, f"{daemon} while [ ! -s daemon.pid ]; do sleep 0.05; done", timeout=10)
    assert (result.exit_code, result.timed_out) == (0, False)
    assert _gone_within(marker, seconds=5)


# --- symlinks lead nowhere -------------------------------------------------------------------


def test_a_symlink_pointing_outside_gives_no_access(layout: Layout, sandbox: Sandbox) -> None:
    (layout.workspace / "link.txt").symlink_to(layout.outside / "secret.txt")
    (layout.workspace / "linkdir").symlink_to(layout.outside, target_is_directory=True)
    result = _sh(layout, sandbox, "cat link.txt linkdir/secret.txt; ls linkdir; echo x > linkdir/new.txt")
    assert CANARY not in _output(result)
    assert "secret.txt" not in result.stdout
    assert not (layout.outside / "new.txt").exists()


def test_a_symlink_into_another_tasks_workspace_gives_no_access(layout: Layout, sandbox: Sandbox) -> None:
    (layout.workspace / "b").symlink_to(layout.other_workspace, target_is_directory=True)
    result = _sh(layout, sandbox, "cat b/notes.txt; echo x > b/new.txt; echo x >> b/notes.txt; rm -f b/notes.txt")
    assert CANARY not in _output(result)
    assert sorted(p.name for p in layout.other_workspace.iterdir()) == ["notes.txt"]
    assert (layout.other_workspace / "notes.txt").read_text() == f"task b {CANARY}\n"


def test_file_tools_refuse_a_symlink_into_another_tasks_workspace(layout: Layout) -> None:
    (layout.workspace / "b").symlink_to(layout.other_workspace, target_is_directory=True)
    with pytest.raises(PathOutsideWorkspace):
        read_file(layout.workspace, "b/notes.txt")
    with pytest.raises(PathOutsideWorkspace):
        write_file(layout.workspace, "b/new.txt", "x")
    assert sorted(p.name for p in layout.other_workspace.iterdir()) == ["notes.txt"]


@pytest.fixture
def swapped_after_check(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> Layout:
    """``sub`` is a real directory when the path is checked, then becomes a symlink to task b."""
    real_resolve = paths.resolve_inside
    (layout.workspace / "sub").mkdir()
    (layout.workspace / "sub" / "notes.txt").write_text("mine\n")

    def resolve_then_swap(workspace: Path, relative: str) -> Path:
        resolved = real_resolve(workspace, relative)
        shutil.rmtree(layout.workspace / "sub")
        (layout.workspace / "sub").symlink_to(layout.other_workspace, target_is_directory=True)
        return resolved

    monkeypatch.setattr(files, "resolve_inside", resolve_then_swap)
    return layout


def test_file_tools_do_not_write_through_a_symlink_swapped_in_after_the_check(swapped_after_check: Layout) -> None:
    with pytest.raises(PathOutsideWorkspace, match="became a symlink"):
        write_file(swapped_after_check.workspace, "sub/notes.txt", "overwritten")
    assert (swapped_after_check.other_workspace / "notes.txt").read_text() == f"task b {CANARY}\n"


def test_file_tools_do_not_read_through_a_symlink_swapped_in_after_the_check(swapped_after_check: Layout) -> None:
    with pytest.raises(PathOutsideWorkspace, match="became a symlink"):
        read_file(swapped_after_check.workspace, "sub/notes.txt")


def test_read_file_refuses_a_fifo_instead_of_hanging(layout: Layout) -> None:
    os.mkfifo(layout.workspace / "pipe")
    with pytest.raises(InvalidInput, match="not a regular file"):
        read_file(layout.workspace, "pipe")


# --- the environment -------------------------------------------------------------------------


def test_the_environment_is_cleared_to_an_allow_list(
    layout: Layout, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTODO_TEST_SECRET", CANARY)
    monkeypatch.setenv("TZ", "UTC")
    lines = run_command(layout.workspace, ["env"], env={"EXTRA": "1"}, sandbox=sandbox).stdout.splitlines()
    names = {line.split("=", 1)[0] for line in lines}
    assert names <= {"PATH", "HOME", "TMPDIR", "LANG", "TERM", "TZ", "EXTRA", "PWD"}
    assert "TZ=UTC" in lines and "EXTRA=1" in lines
    home = next(line.split("=", 1)[1] for line in lines if line.startswith("HOME="))
    assert home not in (str(layout.user_home), str(layout.workspace))
    assert run_command(layout.workspace, ["sh", "-c", "echo x > ~/f && cat ~/f"], sandbox=sandbox).stdout == "x\n"
