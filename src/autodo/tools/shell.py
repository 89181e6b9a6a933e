"""Run a program inside a task workspace: no shell, a timeout, capped output and a clean environment.

With a ``Sandbox`` (``autodo.policy.sandbox``) the program is also confined by the OS; without
one it runs with the worker's own rights, which is what a profile's ``sandbox = "none"`` means.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from autodo.errors import InvalidInput, NotFound
from autodo.policy.sandbox import Launch, Sandbox

_READ_CHUNK = 64 * 1024
_STOP_CHECK_SECONDS = 0.05  # how soon a stop request (the person's interrupt) kills the command


@dataclass(frozen=True)
class CommandResult:
    """How a command ended and what it printed."""

    argv: list[str]
    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool
    truncated: bool
    stopped: bool = False  # the person interrupted it

    def render(self) -> str:
        """A compact text for the model: the command, how it ended, then its output."""
        lines = [f"$ {shlex.join(self.argv)}", self._status()]
        if self.stdout:
            lines += ["--- stdout ---", self.stdout.rstrip("\n")]
        if self.stderr:
            lines += ["--- stderr ---", self.stderr.rstrip("\n")]
        if not (self.stdout or self.stderr):
            lines.append("(no output)")
        return "\n".join(lines)

    def _status(self) -> str:
        if self.stopped:
            return "stopped: the person interrupted the command; it and its child processes were killed"
        if self.timed_out:
            return "timed out: the command and all its child processes were killed"
        if self.exit_code is not None and self.exit_code < 0:
            return f"killed by signal {-self.exit_code}"
        return f"exit code: {self.exit_code}"


class _CappedBuffer:
    """Keeps the first ``cap`` bytes of a stream and only notes that the rest existed."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()
        self.dropped = False

    def feed(self, chunk: bytes) -> None:
        room = self.cap - len(self.data)
        if len(chunk) > room:
            self.dropped = True
        self.data += chunk[: max(room, 0)]

    def text(self) -> str:
        text = self.data.decode("utf-8", errors="replace")
        if not self.dropped:
            return text
        separator = "" if not text or text.endswith("\n") else "\n"
        return f"{text}{separator}[... output truncated at {self.cap} bytes]"


def run_command(
    workspace: Path,
    argv: list[str],
    timeout: float = 60.0,
    output_cap: int = 32_000,
    env: Mapping[str, str] | None = None,
    stop: threading.Event | None = None,
    sandbox: Sandbox | None = None,
) -> CommandResult:
    """Run ``argv`` (no shell) in the workspace; on timeout or ``stop`` kill its whole process group.

    ``sandbox`` confines the program; None runs it unconfined (tier "none").
    """
    _check_arguments(argv, timeout, output_cap)
    if not workspace.is_dir():
        raise NotFound(f"the task workspace {str(workspace)!r} does not exist")
    with _launch(workspace, argv, env, sandbox) as launch:
        try:
            proc = subprocess.Popen(
                launch.argv,
                cwd=workspace,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=launch.env,
                # A session of its own makes the child a process-group leader, so a timeout
                # can kill everything it started, not just the direct child.
                start_new_session=True,
                pass_fds=launch.pass_fds,
                preexec_fn=launch.preexec_fn,
            )
        except FileNotFoundError:
            return _not_started(argv, 127, f"command not found: {argv[0]!r}; check the program name (no shell is used)")
        except OSError as exc:
            return _not_started(argv, 126, f"cannot execute {argv[0]!r}: {exc.strerror or exc}")
        with proc:
            try:
                return _supervise(proc, argv, timeout, output_cap, stop or threading.Event())
            except BaseException:
                _kill_group(proc)
                raise


@contextlib.contextmanager
def _launch(
    workspace: Path, argv: list[str], env: Mapping[str, str] | None, sandbox: Sandbox | None
) -> Iterator[Launch]:
    """The process to start: the sandbox's, or ``argv`` itself with a minimal environment."""
    if sandbox is None:
        yield Launch(list(argv), _child_env(workspace, env))
        return
    with sandbox.launch(workspace, argv, env) as launch:
        yield launch


def _check_arguments(argv: list[str], timeout: float, output_cap: int) -> None:
    """Refuse arguments that cannot describe a command, with a hint at the right shape."""
    if isinstance(argv, str) or not argv:
        raise InvalidInput(
            "argv must be a non-empty list of strings such as ['ls', '-la']; no shell is used, "
            "so for pipes or redirection pass ['sh', '-c', 'your command']"
        )
    for item in argv:
        if not isinstance(item, str):
            raise InvalidInput(f"every argv item must be a string; got {item!r} ({type(item).__name__})")
        if "\x00" in item:
            raise InvalidInput(f"argv item {item!r} contains a NUL byte; remove it")
    if timeout <= 0 or output_cap <= 0:
        raise InvalidInput(f"timeout and output_cap must be positive (got {timeout}, {output_cap})")


def _child_env(workspace: Path, extra: Mapping[str, str] | None) -> dict[str, str]:
    """A minimal environment; the parent's is never inherited so its secrets stay out of the child."""
    base = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(workspace.resolve()),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
    }
    return {**base, **(extra or {})}


def _not_started(argv: list[str], exit_code: int, message: str) -> CommandResult:
    """The result for a program that could not be started, shaped like a shell's answer."""
    return CommandResult(list(argv), exit_code, "", message + "\n", timed_out=False, truncated=False)


def _supervise(
    proc: subprocess.Popen[bytes], argv: list[str], timeout: float, cap: int, stop: threading.Event
) -> CommandResult:
    """Collect capped output until the command ends, the deadline passes or a stop comes, then reap it."""
    deadline = time.monotonic() + timeout
    out, err = _CappedBuffer(cap), _CappedBuffer(cap)
    assert proc.stdout is not None and proc.stderr is not None
    ended = _pump({proc.stdout.fileno(): out, proc.stderr.fileno(): err}, deadline, stop)
    if ended == "eof":
        exit_code = _wait_until(proc, deadline, stop)
        timed_out = exit_code is None and not stop.is_set()
    else:
        # The pipes are still open: either the command runs on, or a background child holds them.
        exit_code = proc.poll()
        timed_out = ended == "deadline"
    # Kill the whole group even after a clean exit: a daemon an agent leaves behind would outlive
    # the run and escape its timeout.
    _kill_group(proc)
    proc.wait()
    truncated = out.dropped or err.dropped
    stopped = stop.is_set() and not timed_out and (ended == "stopped" or exit_code is None)
    return CommandResult(list(argv), exit_code, out.text(), err.text(), timed_out, truncated, stopped)


def _pump(buffers: dict[int, _CappedBuffer], deadline: float, stop: threading.Event) -> str:
    """Read both pipes in chunks until both reach "eof", the "deadline" passes or a "stop" comes."""
    with selectors.DefaultSelector() as selector:
        for fd, buffer in buffers.items():
            selector.register(fd, selectors.EVENT_READ, buffer)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "deadline"
            if stop.is_set():
                return "stopped"
            for key, _ in selector.select(min(remaining, _STOP_CHECK_SECONDS)):
                chunk = os.read(key.fd, _READ_CHUNK)
                if chunk:
                    key.data.feed(chunk)
                else:
                    selector.unregister(key.fd)
    return "eof"


def _wait_until(proc: subprocess.Popen[bytes], deadline: float, stop: threading.Event) -> int | None:
    """The exit code, or None if the process still runs at the deadline or when a stop comes."""
    while not stop.is_set():
        try:
            return proc.wait(timeout=min(max(deadline - time.monotonic(), 0), _STOP_CHECK_SECONDS))
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                return None
    return proc.poll()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the command's whole process group; it may already be gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
