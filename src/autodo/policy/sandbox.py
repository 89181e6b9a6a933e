"""The OS sandbox around every program an agent runs.

Threat model: the command line comes from a model that read untrusted text (the task, web
pages, tool output), so it may be hostile. It must not read what the worker can (its
environment, ``$AUTODO_HOME`` with the database, API token and profiles, the user's home,
other tasks' workspaces, other processes), must not write outside its own workspace (and not
to ``.git`` in it, whose hooks and config the person's own git would run), must not reach the
network, and must not take the worker down with it (fork bombs, memory, endless output,
processes left behind). The worker often runs as root, so none of this may rest on file
permissions.

Tiers, best first (``probe()`` says which work here and why the others do not):

* ``bwrap``: bubblewrap with every namespace unshared. The command sees a new root holding the
  system directories read-only, ``/etc`` without its secrets, a private ``/proc``, ``/dev``,
  ``/tmp`` and ``$HOME``, its workspace read-write and ``.git`` in it read-only; nothing else
  exists. Own network namespace (loopback only), own pid namespace (everything dies with it),
  no capabilities, a cleared environment.
* ``landlock``: for hosts where bubblewrap cannot run. Landlock lets the command read the same
  system paths and write only its workspace and a private temporary directory; ``.git`` is
  bound read-only in a private mount namespace; seccomp refuses IP sockets; capabilities are
  dropped even for root. Other processes are not hidden, but Landlock refuses to let the
  command trace or signal them, which covers ``/proc/PID/environ``. Their command lines in
  ``/proc`` stay visible, and programs must honour ``$TMPDIR`` (``/tmp`` itself is closed).
* ``none``: no sandbox, only ever chosen by a profile saying ``sandbox = "none"``.

Both confined tiers add rlimits (CPU, address space, processes, file size, open files), a pids
cgroup when the worker is root (``RLIMIT_NPROC`` does not bind uid 0), and the caller's
wall-clock timeout, which kills the whole process group. ``auto`` takes the best tier that
works and refuses to run anything if none does.

File tools do not start a process; they are confined in the worker instead (see
``autodo.policy.confined``): paths are resolved and checked as before, then opened one
component at a time with ``O_NOFOLLOW`` from a descriptor on the workspace root, so a symlink
swapped in after the check cannot lead outside.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from autodo.errors import AutodoError
from autodo.policy import _bwrap, _cgroup, _landlock, _seccomp, _system
from autodo.policy._child import ChildSetup, ReadOnlyBind, mount_flags_to_keep

SandboxMode = Literal["auto", "bwrap", "landlock", "none"]
Tier = Literal["bwrap", "landlock", "none"]

DEFAULT_ENV_ALLOW = ("TZ",)
_GIB = 1024**3
_PROBE_TIMEOUT_SECONDS = 20.0
log = logging.getLogger("autodo.sandbox")


class SandboxUnavailable(AutodoError):
    """No sandbox tier the profile accepts works on this machine, so tools are not run."""

    code = "sandbox_unavailable"
    status = 503


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed command (each process, except ``processes``)."""

    cpu_seconds: int = 600
    memory_bytes: int = 8 * _GIB  # address space; JIT runtimes reserve far more than they use
    processes: int = 256
    file_bytes: int = 4 * _GIB  # the largest file the command may write
    open_files: int = 1024
    tmp_bytes: int = 1 * _GIB  # the private /tmp of the bwrap tier lives in memory


@dataclass(frozen=True)
class Launch:
    """What ``subprocess.Popen`` needs to start one sandboxed command."""

    argv: list[str]
    env: dict[str, str]
    pass_fds: tuple[int, ...] = ()
    preexec_fn: Callable[[], None] | None = None


# --- the probe ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TierStatus:
    """Whether one tier works here, and why (or why not)."""

    tier: Tier
    available: bool
    reason: str


@dataclass(frozen=True)
class Probe:
    """What this machine offers, measured once per process by ``probe()``."""

    bwrap: TierStatus
    landlock: TierStatus
    bwrap_path: str | None
    bwrap_version: str | None
    user_namespaces: str
    landlock_abi: int
    seccomp: str
    git_read_only_without_bwrap: bool
    process_cap: str
    running_as: str

    def choose(self, mode: SandboxMode) -> Tier:
        """The tier to use for a profile's ``sandbox`` setting; raises when it cannot be honoured."""
        if mode == "none":
            return "none"
        candidates = [self.bwrap, self.landlock] if mode == "auto" else [self.status(mode)]
        for status in candidates:
            if status.available:
                return status.tier
        raise SandboxUnavailable(self._refusal(mode, candidates))

    def status(self, tier: Literal["bwrap", "landlock"]) -> TierStatus:
        return self.bwrap if tier == "bwrap" else self.landlock

    def explain(self, mode: SandboxMode) -> str:
        """One line: which tier a profile with this setting gets, and why."""
        try:
            tier = self.choose(mode)
        except SandboxUnavailable as error:
            return f"refused: {error.message}"
        if tier == "none":
            return 'none: the profile says sandbox = "none"; tools run UNCONFINED with the worker\'s rights'
        status = self.status(tier)
        skipped = "" if tier == "bwrap" or mode != "auto" else f" (bwrap skipped: {self.bwrap.reason})"
        return f"{tier}: {status.reason}{skipped}"

    @staticmethod
    def _refusal(mode: SandboxMode, tried: list[TierStatus]) -> str:
        reasons = "; ".join(f"{status.tier}: {status.reason}" for status in tried)
        return (
            f'no sandbox for sandbox = "{mode}" on this machine ({reasons}), so tools that execute are refused. '
            'Install bubblewrap (scripts/sandbox), or set sandbox = "none" in the profile to run them '
            "unconfined (not recommended); `autodo doctor` shows the details"
        )


@functools.cache
def probe() -> Probe:
    """Measure which tiers work here: each confined tier must run ``true`` with its full setup."""
    bwrap_path = _bwrap.find_bwrap()
    abi = _landlock.abi_version()
    landlock, git_read_only = _probe_landlock(abi)
    return Probe(
        bwrap=_probe_bwrap(bwrap_path),
        landlock=landlock,
        bwrap_path=bwrap_path,
        bwrap_version=_bwrap.bwrap_version(bwrap_path) if bwrap_path else None,
        user_namespaces=_describe_user_namespaces(),
        landlock_abi=abi,
        seccomp=_describe_seccomp(),
        git_read_only_without_bwrap=git_read_only,
        process_cap=_describe_process_cap(),
        running_as=f"uid {os.geteuid()}" + (" (root)" if os.geteuid() == 0 else ""),
    )


def _probe_bwrap(path: str | None) -> TierStatus:
    if path is None:
        return TierStatus("bwrap", False, "bwrap is not installed (Debian package bubblewrap; run scripts/sandbox)")
    failure = _trial_run(Sandbox("bwrap"))
    if failure:
        return TierStatus("bwrap", False, f"{path} cannot start a sandbox here: {failure}")
    return TierStatus("bwrap", True, f"{path} confined a test command with every namespace unshared")


def _probe_landlock(abi: int) -> tuple[TierStatus, bool]:
    """The Landlock tier's status, and whether it can make ``.git`` read-only (a mount namespace)."""
    if abi < 1:
        return TierStatus("landlock", False, "the kernel has no Landlock (needs Linux 5.13+ with lsm=landlock)"), False
    if _seccomp.library_version() is None or not _seccomp.kernel_supports_filters():
        return TierStatus("landlock", False, f"Landlock ABI {abi}, but no seccomp: {_describe_seccomp()}"), False
    failure = _trial_run(Sandbox("landlock", git_read_only=True))
    if not failure:
        return TierStatus("landlock", True, f"Landlock ABI {abi} and seccomp confined a test command"), True
    degraded = _trial_run(Sandbox("landlock", git_read_only=False))
    if degraded:
        return TierStatus(
            "landlock", False, f"Landlock ABI {abi} is present but a test command failed: {degraded}"
        ), False
    reason = (
        f"Landlock ABI {abi} and seccomp confined a test command, BUT .git stays writable to commands: "
        f"no mount namespace here ({failure}); prefer bwrap"
    )
    return TierStatus("landlock", True, reason), False


def _trial_run(sandbox: Sandbox) -> str:
    """Empty when a command in a throwaway workspace can write it but not its ``.git``; else why not.

    Checking a write that must fail, not only that something runs, catches a sandbox that
    starts but does not confine.
    """
    script = "touch written" + (" && ! touch .git/written 2>/dev/null" if sandbox.git_read_only else "")
    with tempfile.TemporaryDirectory(prefix="autodo-probe-") as scratch:
        workspace = Path(scratch)
        (workspace / ".git").mkdir()
        try:
            with sandbox.launch(workspace, ["sh", "-c", script]) as launch:
                done = subprocess.run(
                    launch.argv, cwd=workspace, env=launch.env, pass_fds=launch.pass_fds, preexec_fn=launch.preexec_fn,
                    stdin=subprocess.DEVNULL, capture_output=True, timeout=_PROBE_TIMEOUT_SECONDS, check=False,
                )  # fmt: skip
        except (OSError, subprocess.SubprocessError) as error:
            return str(error)
        if (workspace / ".git" / "written").exists():
            return "the test command could write .git"
    if done.returncode == 0:
        return ""
    said = done.stderr.decode(errors="replace").strip().splitlines()
    return f"exit {done.returncode}" + (f": {said[0]}" if said else "")


def _describe_user_namespaces() -> str:
    facts = []
    for name in (
        "user/max_user_namespaces",
        "kernel/unprivileged_userns_clone",
        "kernel/apparmor_restrict_unprivileged_userns",
    ):
        with contextlib.suppress(OSError):
            facts.append(f"{name.split('/')[-1]}={Path('/proc/sys', name).read_text().strip()}")
    return ", ".join(facts) or "unknown (no /proc/sys/user)"


def _describe_seccomp() -> str:
    version = _seccomp.library_version()
    kernel = "kernel filters available" if _seccomp.kernel_supports_filters() else "kernel has no seccomp filters"
    library = f"libseccomp {version}" if version else "libseccomp not installed (Debian package libseccomp2)"
    return f"{kernel}; {library}"


def _describe_process_cap() -> str:
    hierarchy = _cgroup.pids_hierarchy()
    if hierarchy is not None:
        return f"pids cgroup (v{hierarchy.version}, {hierarchy.root})"
    if os.geteuid() == 0:
        return "RLIMIT_NPROC only, which does NOT bind root: no pids cgroup controller is mounted"
    return (
        "RLIMIT_NPROC (counted over all processes of this user); without a cgroup a daemon that calls setsid "
        "can outlive its command under the Landlock tier (bwrap's pid namespace always kills it)"
    )


# --- the sandbox ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sandbox:
    """How to confine commands: a tier, limits, and which of the worker's variables may pass in."""

    tier: Tier
    limits: Limits = field(default_factory=Limits)
    env_allow: tuple[str, ...] = DEFAULT_ENV_ALLOW
    git_read_only: bool = True  # the Landlock tier needs a mount namespace for this; the probe decides

    @contextlib.contextmanager
    def launch(self, workspace: Path, argv: list[str], env: Mapping[str, str] | None = None) -> Iterator[Launch]:
        """The process to spawn for ``argv`` in ``workspace``; leaving the block releases what it held.

        Leave it only after the process has been waited for: leaving kills whatever the command
        left in its cgroup and removes its private temporary directory.
        """
        root = workspace.resolve()
        if self.tier == "none":
            yield Launch(list(argv), self._environment(str(root), str(root), env))
            return
        with contextlib.ExitStack() as stack:
            setup = ChildSetup(rlimits=_rlimits(self.limits), cgroup_procs_fd=self._join_cgroup(stack))
            confine = self._bwrap if self.tier == "bwrap" else self._landlock
            yield confine(_Command(root, list(argv), env), setup, stack)

    def _join_cgroup(self, stack: contextlib.ExitStack) -> int | None:
        hierarchy = _cgroup.pids_hierarchy()
        if hierarchy is None:
            return None
        try:
            cgroup = _cgroup.create(hierarchy, self.limits.processes)
        except OSError as error:
            # The cgroup caps processes; the confinement itself does not depend on it.
            _warn_no_cgroup(str(error))
            return None
        stack.callback(cgroup.close)
        fd = cgroup.open_procs()
        stack.callback(os.close, fd)
        return fd

    def _bwrap(self, command: _Command, setup: ChildSetup, stack: contextlib.ExitStack) -> Launch:
        bwrap = _bwrap.find_bwrap()
        if bwrap is None:
            raise SandboxUnavailable("bwrap is not installed (Debian package bubblewrap; run scripts/sandbox)")
        environment = self._environment(_bwrap.SANDBOX_HOME, "/tmp", command.env)
        root = command.root
        options = _bwrap.options(root, _git_dir(root), environment, _system.etc_view(), self.limits.tmp_bytes)
        args_fd = _bwrap.write_args(options)
        stack.callback(os.close, args_fd)
        argv = [bwrap, "--args", str(args_fd), "--", *command.argv]
        return Launch(argv, {"PATH": _system.SAFE_PATH}, (args_fd,), setup)

    def _landlock(self, command: _Command, setup: ChildSetup, stack: contextlib.ExitStack) -> Launch:
        private = Path(tempfile.mkdtemp(prefix="autodo-sandbox-"))
        stack.callback(shutil.rmtree, private, ignore_errors=True)
        (private / "home").mkdir()
        abi = _landlock.abi_version()
        setup.ruleset_fd = _landlock.build_ruleset(_landlock_rules(command.root, private, abi), abi)
        stack.callback(os.close, setup.ruleset_fd)
        git_dir = _git_dir(command.root) if self.git_read_only else None
        setup.read_only_bind = _read_only_bind(git_dir) if git_dir is not None else None
        setup.seccomp = _seccomp.no_network_program()
        setup.drop_capabilities = os.geteuid() == 0 or git_dir is not None
        setup.last_capability = _last_capability()
        environment = self._environment(str(private / "home"), str(private), command.env)
        return Launch(command.argv, environment, (), setup)

    def _environment(self, home: str, tmp: str, extra: Mapping[str, str] | None) -> dict[str, str]:
        """A fresh environment: fixed basics, the allow-listed variables of the worker, then ``extra``."""
        if self.tier == "none":
            base = {"PATH": os.environ.get("PATH", os.defpath), "HOME": home, "LANG": "C.UTF-8", "TERM": "dumb"}
        else:
            base = {"PATH": _system.SAFE_PATH, "HOME": home, "TMPDIR": tmp, "LANG": "C.UTF-8", "TERM": "dumb"}
        allowed = {name: os.environ[name] for name in self.env_allow if name in os.environ}
        return {**base, **allowed, **(extra or {})}


@dataclass(frozen=True)
class _Command:
    root: Path  # the workspace, resolved
    argv: list[str]
    env: Mapping[str, str] | None


def sandbox_for(mode: SandboxMode, limits: Limits | None = None) -> Sandbox:
    """The sandbox for a profile's ``sandbox`` setting; raises ``SandboxUnavailable`` rather than run unconfined."""
    tier = probe().choose(mode)
    if tier == "none":
        _warn_unconfined()
    elif tier == "landlock":
        _warn_weaker_tier(mode)
    return Sandbox(tier, limits or Limits(), git_read_only=tier != "landlock" or probe().git_read_only_without_bwrap)


@functools.cache
def _warn_no_cgroup(why: str) -> None:
    log.warning("cannot create a pids cgroup (%s): sandboxed commands are capped by rlimits only", why)


@functools.cache
def _warn_unconfined() -> None:
    log.warning(
        'a profile says sandbox = "none": agent commands run WITHOUT any sandbox, with every right this '
        "worker has (its files, its environment, the network); remove that line to confine them"
    )


@functools.cache
def _warn_weaker_tier(mode: SandboxMode) -> None:
    found = probe()
    if mode == "auto":
        log.warning("bubblewrap cannot run here (%s); agent commands use the Landlock tier", found.bwrap.reason)
    if not found.git_read_only_without_bwrap:
        log.warning("the Landlock tier cannot protect .git here: %s", found.landlock.reason)


def _landlock_rules(root: Path, private: Path, abi: int) -> list[_landlock.PathRule]:
    """Read the system, write the workspace and the private directory, nothing else."""
    everything = _landlock.all_rights(abi)
    device = _landlock.READ_FILE | _landlock.WRITE_FILE | _landlock.IOCTL_DEV
    etc = _system.etc_view()
    return [
        *(_landlock.PathRule(path, _landlock.READ) for path in (*_system.SYSTEM_DIRS, *etc.readable)),
        *(_landlock.PathRule(path, _landlock.READ_DIR) for path in etc.listable),
        _landlock.PathRule(Path("/proc"), _landlock.READ_FILE | _landlock.READ_DIR),
        *(_landlock.PathRule(path, device) for path in _system.DEVICES),
        _landlock.PathRule(root, everything),
        _landlock.PathRule(private, everything),
    ]


def _git_dir(root: Path) -> Path | None:
    """``root/.git`` when it is a real directory or file; a symlink there is never bound (it could point anywhere)."""
    git = root / ".git"
    return git if git.exists() and not git.is_symlink() else None


def _read_only_bind(git_dir: Path) -> ReadOnlyBind:
    root = os.geteuid() == 0
    return ReadOnlyBind(bytes(git_dir), mount_flags_to_keep(git_dir), not root, os.getuid(), os.getgid())


def _rlimits(limits: Limits) -> list[tuple[int, int, int]]:
    """(resource, soft, hard) for the child, never above the worker's own hard limits."""
    wanted = [
        (resource.RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + 1),  # SIGXCPU first, SIGKILL a second later
        (resource.RLIMIT_AS, limits.memory_bytes, limits.memory_bytes),
        (resource.RLIMIT_NPROC, _process_limit(limits.processes), _process_limit(limits.processes)),
        (resource.RLIMIT_FSIZE, limits.file_bytes, limits.file_bytes),
        (resource.RLIMIT_NOFILE, limits.open_files, limits.open_files),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    return [(which, *_within_hard_limit(which, soft, hard)) for which, soft, hard in wanted]


def _within_hard_limit(which: int, soft: int, hard: int) -> tuple[int, int]:
    current = resource.getrlimit(which)[1]
    if current == resource.RLIM_INFINITY:
        return soft, hard
    return min(soft, current), min(hard, current)


def _process_limit(allowed: int) -> int:
    """RLIMIT_NPROC counts every process of the user, so a non-root worker adds what it already has."""
    if os.geteuid() == 0:
        return allowed  # the kernel ignores it for root; the pids cgroup does the work
    return _tasks_of(os.getuid()) + allowed


def _tasks_of(uid: int) -> int:
    """How many threads the user runs now (what RLIMIT_NPROC counts)."""
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                count += _threads_if_owned(Path(entry.path, "status").read_text(), uid)
    return count


def _threads_if_owned(status: str, uid: int) -> int:
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    if int(fields.get("Uid", "-1").split()[0]) != uid:
        return 0
    return int(fields.get("Threads", "1").strip())


@functools.cache
def _last_capability() -> int:
    try:
        return int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    except (OSError, ValueError):
        return 40
