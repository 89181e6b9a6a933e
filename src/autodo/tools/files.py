"""File tools: read, write, edit, list and search files inside a task workspace.

Every function takes the workspace root first and a model-supplied path relative to it;
results and error messages are phrased for the model that called the tool. Paths are checked
with ``resolve_inside`` and then reached through ``autodo.policy.confined``, which never follows
a symlink, so a link swapped in after the check cannot lead outside the workspace.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import posixpath
import re
import secrets
import stat
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from autodo.errors import InvalidInput, NotFound, PathOutsideWorkspace
from autodo.policy import confined
from autodo.workspaces.paths import display_path, is_git_internal, resolve_inside

MAX_READ_BYTES = 2 * 1024 * 1024
MAX_WRITE_BYTES = 1024 * 1024
BINARY_SNIFF_BYTES = 8192
MAX_LIST_ENTRIES = 500
MAX_LINE_CHARS = 300
_TRIM_NOTE = " [...]"


# --- reading -------------------------------------------------------------------------------


def read_file(workspace: Path, path: str, offset: int = 0, limit: int = 2000) -> str:
    """Return lines ``[offset, offset + limit)`` (0-based) of a text file, with a marker if more follow."""
    if offset < 0 or limit < 1:
        raise InvalidInput(f"offset must be >= 0 and limit >= 1 (got offset={offset}, limit={limit})")
    target = resolve_inside(workspace, path)
    lines = _split_lines(_load_text(workspace, target).decode("utf-8", errors="replace"))
    if offset and offset >= len(lines):
        raise InvalidInput(
            f"offset={offset} is past the end of '{path}', which has {len(lines)} lines; use a smaller offset"
        )
    end = offset + limit
    text = "".join(lines[offset:end])
    if end < len(lines):
        text += f"[... {len(lines) - end} more lines; call read_file with offset={end}]"
    return text


def _load_text(workspace: Path, target: Path) -> bytes:
    """The bytes of a readable text file, or an error the model can act on."""
    shown = display_path(workspace, target)
    try:
        fd = confined.open_file(workspace, target)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(f"no file at '{shown}'; call list_dir to see which files exist") from None
    try:
        _check_readable(shown, os.fstat(fd))
        data = _read_at_most(fd, MAX_READ_BYTES + 1)
    finally:
        os.close(fd)
    if b"\x00" in data[:BINARY_SNIFF_BYTES]:
        raise InvalidInput(f"'{shown}' looks like a binary file (it contains NUL bytes); only text files can be read")
    return data


def _check_readable(shown: str, info: os.stat_result) -> None:
    """Refuse directories, FIFOs and devices, and files over the read limit."""
    if stat.S_ISDIR(info.st_mode):
        raise InvalidInput(f"'{shown}' is a directory, not a file; call list_dir to see its contents")
    if not stat.S_ISREG(info.st_mode):
        raise InvalidInput(f"'{shown}' is not a regular file (a FIFO, socket or device); only text files can be read")
    if info.st_size > MAX_READ_BYTES:
        raise InvalidInput(
            f"'{shown}' is {info.st_size} bytes, over the {MAX_READ_BYTES // (1024 * 1024)} MB read limit; "
            "use search_files to find the lines you need"
        )


def _read_at_most(fd: int, limit: int) -> bytes:
    """Up to ``limit`` bytes: a file that grew after its size was checked still cannot flood memory."""
    chunks: list[bytes] = []
    size = 0
    while size < limit and (chunk := os.read(fd, min(limit - size, 1024 * 1024))):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _split_lines(text: str) -> list[str]:
    """Split on newlines only, keeping them; ``str.splitlines`` would also split on form feeds and the like."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


# --- writing -------------------------------------------------------------------------------


def write_file(workspace: Path, path: str, content: str) -> str:
    """Create or overwrite a file atomically, creating parent directories as needed."""
    data = content.encode("utf-8")
    if len(data) > MAX_WRITE_BYTES:
        raise InvalidInput(
            f"content is {len(data)} bytes, over the {MAX_WRITE_BYTES // 1024 // 1024} MB write limit; "
            "split it into several smaller files"
        )
    target = _writable_target(workspace, path)
    try:
        _atomic_write(workspace, target, data)
    except (FileExistsError, NotADirectoryError) as exc:
        raise InvalidInput(f"cannot create the parent directories of '{path}': a file is in the way ({exc})") from exc
    return f"wrote {len(data)} bytes to {display_path(workspace, target)}"


def edit_file(workspace: Path, path: str, old: str, new: str, count: int = 1) -> str:
    """Replace ``old`` with ``new`` in a file; ``old`` must occur exactly ``count`` times."""
    if not old:
        raise InvalidInput("old must not be empty; to create or overwrite a whole file call write_file")
    if count < 1:
        raise InvalidInput(f"count must be >= 1 (got {count})")
    target = _writable_target(workspace, path)
    # surrogateescape round-trips bytes that are not valid UTF-8, so an edit never corrupts them.
    text = _load_text(workspace, target).decode("utf-8", errors="surrogateescape")
    _check_occurrences(text.count(old), count, display_path(workspace, target))
    data = text.replace(old, new).encode("utf-8", errors="surrogateescape")
    if len(data) > MAX_READ_BYTES:
        raise InvalidInput(f"the edited file would be {len(data)} bytes, over the {MAX_READ_BYTES} byte limit")
    _atomic_write(workspace, target, data)
    noun = "occurrence" if count == 1 else "occurrences"
    return f"replaced {count} {noun} in {display_path(workspace, target)}"


def _check_occurrences(found: int, expected: int, shown: str) -> None:
    """Refuse an edit whose ``old`` text does not occur exactly as often as the caller said."""
    if found == expected:
        return
    if found == 0:
        raise InvalidInput(
            f"old text not found in '{shown}'; call read_file to see the current content "
            "and copy the exact text, including whitespace and indentation"
        )
    raise InvalidInput(
        f"old text occurs {found} times in '{shown}', but count={expected}; include more surrounding "
        f"lines in old to pick one place, or pass count={found} to replace every occurrence"
    )


def _writable_target(workspace: Path, path: str) -> Path:
    """Resolve a path the model wants to write, refusing directories and the ``.git`` directory."""
    target = resolve_inside(workspace, path)
    if is_git_internal(workspace, target):
        raise InvalidInput(f"'{path}' is inside .git; the .git directory is read-only for agents")
    if target.is_dir():
        raise InvalidInput(f"'{path}' is a directory; give the path of a file inside it")
    return target


def _atomic_write(workspace: Path, target: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``target``, then rename it over ``target``.

    Missing parent directories are created; every step works relative to the parent's descriptor.
    """
    temp = f".{target.name}.{secrets.token_hex(4)}.tmp"
    with confined.open_dir(workspace, target.parent, create=True) as parent:
        # 0o666 lets the umask decide the mode of a new file, as a plain open() would.
        fd = confined.open_at(parent, temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                mode = _mode_of(parent, target.name)
                if mode is not None:
                    os.fchmod(handle.fileno(), mode)
            os.replace(temp, target.name, src_dir_fd=parent, dst_dir_fd=parent)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp, dir_fd=parent)
            raise


def _mode_of(directory_fd: int, name: str) -> int | None:
    """The permission bits of an existing regular file, to keep them across the rewrite."""
    try:
        info = os.stat(name, dir_fd=directory_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    return stat.S_IMODE(info.st_mode) if stat.S_ISREG(info.st_mode) else None


# --- listing -------------------------------------------------------------------------------


def list_dir(workspace: Path, path: str = ".", depth: int = 2) -> str:
    """List a directory tree as sorted paths relative to the workspace root; directories end in ``/``."""
    if depth < 1:
        raise InvalidInput(f"depth must be >= 1 (got {depth})")
    target = resolve_inside(workspace, path)
    shown = display_path(workspace, target)
    try:
        with confined.open_dir(workspace, target) as directory:
            prefix = "" if shown == "." else shown + "/"
            entries = list(islice(_walk(directory, prefix, depth), MAX_LIST_ENTRIES + 1))
    except NotADirectoryError:
        if target.is_file():
            raise InvalidInput(f"'{shown}' is a file, not a directory; call read_file to read it") from None
        raise NotFound(f"no directory at '{shown}'; call list_dir with path='.' to see the workspace root") from None
    except FileNotFoundError:
        raise NotFound(f"no directory at '{shown}'; call list_dir with path='.' to see the workspace root") from None
    if not entries:
        return f"'{shown}' is empty"
    if len(entries) > MAX_LIST_ENTRIES:
        entries[MAX_LIST_ENTRIES:] = [
            f"[... listing stopped at {MAX_LIST_ENTRIES} entries; "
            "call list_dir on a subdirectory or with a smaller depth]"
        ]
    return "\n".join(entries)


def _walk(directory: int, prefix: str, depth: int) -> Iterator[str]:
    """Depth-first, name-sorted entries; symlinks and ``.git`` directories are shown but not entered."""
    try:
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError:
        return
    for entry in entries:
        is_dir = entry.is_dir(follow_symlinks=False)
        relative = prefix + entry.name
        yield relative + "/" if is_dir else relative
        if is_dir and depth > 1 and entry.name != ".git":
            yield from _walk_into(directory, entry.name, relative + "/", depth - 1)


def _walk_into(directory: int, name: str, prefix: str, depth: int) -> Iterator[str]:
    try:
        child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory)
    except OSError:
        return  # gone, or swapped for a symlink since it was listed
    try:
        yield from _walk(child, prefix, depth)
    finally:
        os.close(child)


# --- searching -----------------------------------------------------------------------------


def search_files(
    workspace: Path, pattern: str, path: str = ".", glob: str | None = None, max_results: int = 100
) -> str:
    """Regex-search text files; output ``relpath:lineno: line`` with 1-based line numbers.

    ``glob`` is matched against the file name and against the path relative to the workspace root.
    """
    if max_results < 1:
        raise InvalidInput(f"max_results must be >= 1 (got {max_results})")
    regex = _compile(pattern)
    target = resolve_inside(workspace, path)
    root = workspace.resolve()
    if not target.exists():
        raise NotFound(f"no file or directory at '{path}'; call list_dir to see what exists")
    files = (f for f in _files_under(root, target) if glob is None or _glob_matches(f[0], glob))
    matches = (hit for shown, directory, name in files for hit in _search_file(shown, directory, name, regex))
    hits = list(islice(matches, max_results + 1))
    if not hits:
        return f"no matches for {pattern!r} in '{display_path(root, target)}'"
    if len(hits) > max_results:
        hits[max_results:] = [f"[... stopped after {max_results} matches; narrow the pattern, path or glob]"]
    return "\n".join(hits)


def _compile(pattern: str) -> re.Pattern[str]:
    """Compile a model-supplied regex, turning a syntax error into advice."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InvalidInput(
            f"invalid regular expression {pattern!r}: {exc}; use Python re syntax and escape "
            "special characters such as ( [ . * with a backslash"
        ) from exc


def _files_under(root: Path, target: Path) -> Iterator[tuple[str, int, str]]:
    """(shown path, directory descriptor, name) of the files under ``target`` in sorted order.

    ``.git`` is skipped and symlinked directories are not entered (``os.fwalk`` checks each one);
    the descriptor is valid until the next item.
    """
    if not target.is_dir():
        with confined.open_dir(root, target.parent) as parent:
            yield display_path(root, target), parent, target.name
        return
    prefix = display_path(root, target)
    with confined.open_dir(root, target) as top:
        for dirpath, dirnames, filenames, directory in os.fwalk(".", dir_fd=top):
            # Pruning dirnames in place is how os.fwalk is told not to descend.
            dirnames[:] = sorted(name for name in dirnames if name != ".git")
            for name in sorted(filenames):
                yield posixpath.normpath(posixpath.join(prefix, dirpath, name)), directory, name


def _glob_matches(relative: str, glob: str) -> bool:
    """Match the name or the relative path; a leading ``**/`` also matches files at the top level."""
    name = relative.rsplit("/", 1)[-1]
    patterns = [glob, glob[3:]] if glob.startswith("**/") else [glob]
    return any(fnmatch.fnmatchcase(relative, p) or fnmatch.fnmatchcase(name, p) for p in patterns)


def _search_file(shown: str, directory: int, name: str, regex: re.Pattern[str]) -> Iterator[str]:
    """Matching lines of one file; symlinks, binary, huge and unreadable files yield nothing."""
    data = _read_searchable(directory, name)
    if data is None:
        return
    for number, line in enumerate(data.decode("utf-8", errors="replace").split("\n"), start=1):
        if regex.search(line):
            yield f"{shown}:{number}: {_trim(line.rstrip())}"


def _read_searchable(directory: int, name: str) -> bytes | None:
    """A regular text file's bytes, or None for anything search should pass over."""
    try:
        fd = confined.open_at(directory, name)
    except (OSError, PathOutsideWorkspace):
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_READ_BYTES:
            return None
        data = _read_at_most(fd, MAX_READ_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(data) > MAX_READ_BYTES or b"\x00" in data[:BINARY_SNIFF_BYTES]:
        return None
    return data


def _trim(line: str) -> str:
    """Cut a line to ``MAX_LINE_CHARS`` so one minified file cannot flood the result."""
    if len(line) <= MAX_LINE_CHARS:
        return line
    return line[: MAX_LINE_CHARS - len(_TRIM_NOTE)] + _TRIM_NOTE
