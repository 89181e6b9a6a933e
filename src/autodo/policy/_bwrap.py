"""The bubblewrap command line for one sandboxed command.

The options reach bwrap through ``--args FD`` (a memfd) rather than its argv: environment
values set with ``--setenv`` may be credentials, and any local user can read a process's
argv in ``/proc``. Only the command itself stays on the command line (bwrap wants it there).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from autodo.policy._system import SYSTEM_DIRS, EtcView

SANDBOX_HOME = "/tmp/home"
_HOSTNAME = "autodo-sandbox"


def find_bwrap() -> str | None:
    """The bwrap executable: on PATH, else Debian's location."""
    found = shutil.which("bwrap")
    if found:
        return found
    return "/usr/bin/bwrap" if os.access("/usr/bin/bwrap", os.X_OK) else None


def bwrap_version(path: str) -> str:
    """``bubblewrap 0.8.0``, or why the version could not be read."""
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unknown ({error})"
    return done.stdout.strip() or done.stderr.strip() or f"unknown (exit {done.returncode})"


def options(workspace: Path, git_dir: Path | None, env: Mapping[str, str], etc: EtcView, tmp_bytes: int) -> list[str]:
    """Every bwrap option for running a command in ``workspace``."""
    return [
        *_isolation(),
        *_environment(env),
        *_system_mounts(etc),
        *["--proc", "/proc", "--dev", "/dev", "--size", str(tmp_bytes), "--tmpfs", "/tmp", "--dir", SANDBOX_HOME],
        *["--bind", str(workspace), str(workspace)],
        *(["--ro-bind", str(git_dir), str(git_dir)] if git_dir is not None else []),
        *["--chdir", str(workspace)],
    ]


def _isolation() -> list[str]:
    # --unshare-user on its own as well: --unshare-all only *tries* a user namespace, and
    # without one a root worker's command would run as real root.
    return [
        "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session",
        "--cap-drop", "ALL", "--hostname", _HOSTNAME,
    ]  # fmt: skip


def _environment(env: Mapping[str, str]) -> list[str]:
    args = ["--clearenv"]
    for name, value in env.items():
        args += ["--setenv", name, value]
    return args


def _system_mounts(etc: EtcView) -> list[str]:
    args: list[str] = []
    for directory in SYSTEM_DIRS:
        if directory.is_symlink():
            args += ["--symlink", os.readlink(directory), str(directory)]  # merged /usr: /bin -> usr/bin
        elif directory.is_dir():
            args += ["--ro-bind", str(directory), str(directory)]
    args += ["--ro-bind", "/etc", "/etc"]
    for secret in etc.secret_files:
        args += ["--ro-bind", "/dev/null", str(secret)]
    for secret in etc.secret_dirs:
        args += ["--tmpfs", str(secret), "--remount-ro", str(secret)]
    return args


def write_args(arguments: list[str]) -> int:
    """A memfd holding ``arguments`` NUL-separated, rewound for bwrap to read; the caller closes it."""
    fd = os.memfd_create("autodo-bwrap-args", os.MFD_CLOEXEC)
    data = memoryview(b"".join(arg.encode("utf-8", errors="surrogateescape") + b"\0" for arg in arguments))
    while data:
        data = data[os.write(fd, data) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
