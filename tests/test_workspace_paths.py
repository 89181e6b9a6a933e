"""Tests for confining model-supplied paths to the task workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from autodo.errors import InvalidInput, PathOutsideWorkspace
from autodo.workspaces.paths import is_git_internal, resolve_inside

pytestmark = pytest.mark.storeless  # never opens the store: runs once, in the SQLite pass


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "secret.txt").write_text("secret")
    return directory


def test_relative_path_resolves_under_the_root(workspace: Path) -> None:
    assert resolve_inside(workspace, "a/b.txt") == workspace.resolve() / "a" / "b.txt"


def test_empty_string_and_dot_mean_the_root(workspace: Path) -> None:
    assert resolve_inside(workspace, "") == workspace.resolve()
    assert resolve_inside(workspace, ".") == workspace.resolve()


def test_dotdot_that_stays_inside_is_allowed(workspace: Path) -> None:
    assert resolve_inside(workspace, "a/../b.txt") == workspace.resolve() / "b.txt"


def test_dotdot_escape_is_refused(workspace: Path) -> None:
    with pytest.raises(PathOutsideWorkspace, match="outside the task workspace"):
        resolve_inside(workspace, "../x")


def test_absolute_path_is_refused_with_a_hint(workspace: Path) -> None:
    with pytest.raises(PathOutsideWorkspace, match="relative to the workspace root"):
        resolve_inside(workspace, "/etc/passwd")


def test_absolute_path_pointing_inside_is_still_refused(workspace: Path) -> None:
    with pytest.raises(PathOutsideWorkspace):
        resolve_inside(workspace, str(workspace / "a.txt"))


def test_nul_byte_is_refused(workspace: Path) -> None:
    with pytest.raises(InvalidInput, match="NUL"):
        resolve_inside(workspace, "a\x00b")


def test_symlink_to_outside_file_is_refused(workspace: Path, outside: Path) -> None:
    (workspace / "link.txt").symlink_to(outside / "secret.txt")
    with pytest.raises(PathOutsideWorkspace):
        resolve_inside(workspace, "link.txt")


def test_symlink_to_outside_dir_is_refused(workspace: Path, outside: Path) -> None:
    (workspace / "linkdir").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PathOutsideWorkspace):
        resolve_inside(workspace, "linkdir/secret.txt")


def test_new_file_under_symlinked_outside_dir_is_refused(workspace: Path, outside: Path) -> None:
    (workspace / "linkdir").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PathOutsideWorkspace):
        resolve_inside(workspace, "linkdir/new/file.txt")


def test_dangling_symlink_pointing_outside_is_refused(workspace: Path, outside: Path) -> None:
    (workspace / "dangling").symlink_to(outside / "not-yet.txt")
    with pytest.raises(PathOutsideWorkspace):
        resolve_inside(workspace, "dangling")


def test_symlink_inside_workspace_is_allowed(workspace: Path) -> None:
    (workspace / "real.txt").write_text("hi")
    (workspace / "alias.txt").symlink_to(workspace / "real.txt")
    assert resolve_inside(workspace, "alias.txt") == workspace.resolve() / "real.txt"


def test_workspace_reached_through_a_symlink_still_works(tmp_path: Path, workspace: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(workspace, target_is_directory=True)
    assert resolve_inside(alias, "a.txt") == workspace.resolve() / "a.txt"


def test_paths_inside_dot_git_are_git_internal(workspace: Path) -> None:
    assert is_git_internal(workspace, workspace / ".git")
    assert is_git_internal(workspace, workspace / ".git" / "config")
    assert is_git_internal(workspace, Path(".git/hooks/pre-commit"))


def test_paths_outside_dot_git_are_not_git_internal(workspace: Path) -> None:
    assert not is_git_internal(workspace, workspace / ".gitignore")
    assert not is_git_internal(workspace, workspace / "src" / ".git-notes")
    assert not is_git_internal(workspace, Path("README.md"))
