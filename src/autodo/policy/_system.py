"""Which host paths a sandboxed command may read: the system's programs and libraries, and ``/etc``
without its secrets.

Both tiers show the same view. ``/etc`` holds secrets beside what programs need (``shadow``,
TLS private keys, database passwords), and a worker running as root still owns those files
inside the sandbox, so permissions alone do not hide them. The rule used here: a file in
``/etc`` that the world may not read, or a directory the world may not enter, is a secret.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

SYSTEM_DIRS = tuple(Path(p) for p in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"))
ETC = Path("/etc")
# Device files every program may use; the rest of /dev stays out of reach.
DEVICES = tuple(Path("/dev", name) for name in ("null", "zero", "full", "random", "urandom"))
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class EtcView:
    """``/etc`` split into what may be read whole, what only listed, and the secrets."""

    readable: list[Path] = field(default_factory=list)  # files, and directories with nothing secret beneath
    listable: list[Path] = field(default_factory=list)  # directories that hold a secret somewhere beneath
    secret_files: list[Path] = field(default_factory=list)
    secret_dirs: list[Path] = field(default_factory=list)


def scan_etc(root: Path = ETC) -> EtcView:
    """Walk ``/etc`` once; symlinks are left alone (their targets are judged where they live)."""
    view = EtcView()
    if _scan_dir(root, view):
        view.readable.append(root)
    else:
        view.listable.append(root)
    return view


def _scan_dir(directory: Path, view: EtcView) -> bool:
    """Sort the entries of one directory into ``view``; True when nothing beneath it is secret."""
    clean_entries: list[Path] = []
    clean = True
    try:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except OSError:
        return False
    for entry in entries:
        path = Path(entry.path)
        verdict = _judge(entry, path, view)
        if verdict is None:
            continue
        if verdict:
            clean_entries.append(path)
        else:
            clean = False
    if not clean:
        view.readable.extend(clean_entries)
    return clean


def _judge(entry: os.DirEntry[str], path: Path, view: EtcView) -> bool | None:
    """True for an entry free of secrets, False for one that is or holds one, None for a symlink."""
    try:
        info = entry.stat(follow_symlinks=False)
    except OSError:
        return None
    if stat.S_ISLNK(info.st_mode):
        return None
    if stat.S_ISDIR(info.st_mode):
        if info.st_mode & (stat.S_IROTH | stat.S_IXOTH) != (stat.S_IROTH | stat.S_IXOTH):
            view.secret_dirs.append(path)
            return False
        if _scan_dir(path, view):
            return True
        view.listable.append(path)
        return False
    if not info.st_mode & stat.S_IROTH:
        view.secret_files.append(path)
        return False
    return True


_ETC_TTL_SECONDS = 60.0
_etc_cache: tuple[float, EtcView] | None = None


def etc_view() -> EtcView:
    """``scan_etc()``, reused for a minute: /etc rarely changes and the walk costs tens of milliseconds."""
    global _etc_cache
    now = time.monotonic()
    if _etc_cache is None or now - _etc_cache[0] > _ETC_TTL_SECONDS:
        _etc_cache = (now, scan_etc())
    return _etc_cache[1]
