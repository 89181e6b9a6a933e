"""Tests for the file tools agents use inside a task workspace."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from autodo.errors import InvalidInput, NotFound, PathOutsideWorkspace
from autodo.tools.files import edit_file, list_dir, read_file, search_files, write_file

pytestmark = pytest.mark.storeless  # never opens the store: runs once, in the SQLite pass


def _numbered(count: int) -> str:
    return "".join(f"line {n}\n" for n in range(count))


# --- read_file -----------------------------------------------------------------------------


def test_read_file_returns_the_plain_text(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("one\ntwo\n")
    assert read_file(tmp_path, "a.txt") == "one\ntwo\n"


def test_read_file_marks_truncation_with_the_next_offset(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(_numbered(10))
    result = read_file(tmp_path, "a.txt", limit=3)
    assert result == "line 0\nline 1\nline 2\n[... 7 more lines; call read_file with offset=3]"


def test_read_file_starts_at_the_offset(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(_numbered(10))
    assert read_file(tmp_path, "a.txt", offset=8) == "line 8\nline 9\n"


def test_read_file_offset_past_the_end_says_how_many_lines_exist(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(_numbered(4))
    with pytest.raises(InvalidInput, match="has 4 lines"):
        read_file(tmp_path, "a.txt", offset=10)


def test_read_file_refuses_binary_files(tmp_path: Path) -> None:
    (tmp_path / "blob.bin").write_bytes(b"\x89PNG\x00\x01\x02")
    with pytest.raises(InvalidInput, match="binary"):
        read_file(tmp_path, "blob.bin")


def test_read_file_refuses_files_over_two_megabytes(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_bytes(b"x" * (2 * 1024 * 1024 + 1))
    with pytest.raises(InvalidInput, match="2 MB"):
        read_file(tmp_path, "big.txt")


def test_read_file_missing_file_suggests_list_dir(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="list_dir"):
        read_file(tmp_path, "nope.txt")


def test_read_file_on_a_directory_suggests_list_dir(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    with pytest.raises(InvalidInput, match="list_dir"):
        read_file(tmp_path, "sub")


def test_read_file_refuses_escape_from_the_workspace(tmp_path: Path) -> None:
    with pytest.raises(PathOutsideWorkspace):
        read_file(tmp_path, "../etc/passwd")


# --- write_file ----------------------------------------------------------------------------


def test_write_file_creates_parent_directories(tmp_path: Path) -> None:
    result = write_file(tmp_path, "a/b/poem.txt", "roses\n")
    assert (tmp_path / "a" / "b" / "poem.txt").read_text() == "roses\n"
    assert result == "wrote 6 bytes to a/b/poem.txt"


def test_write_file_replaces_content_and_leaves_no_temp_files(tmp_path: Path) -> None:
    (tmp_path / "poem.txt").write_text("old")
    write_file(tmp_path, "poem.txt", "new")
    assert (tmp_path / "poem.txt").read_text() == "new"
    assert os.listdir(tmp_path) == ["poem.txt"]


def test_write_file_keeps_the_mode_of_an_existing_file(tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_text("echo hi\n")
    script.chmod(0o755)
    write_file(tmp_path, "run.sh", "echo bye\n")
    assert script.stat().st_mode & 0o777 == 0o755


def test_write_file_refuses_content_over_one_megabyte(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="1 MB"):
        write_file(tmp_path, "big.txt", "x" * (1024 * 1024 + 1))


def test_write_file_refuses_the_git_directory(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    with pytest.raises(InvalidInput, match=r"\.git directory is read-only"):
        write_file(tmp_path, ".git/config", "x")


def test_write_file_refuses_a_directory_path(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    with pytest.raises(InvalidInput, match="is a directory"):
        write_file(tmp_path, "sub", "x")


def test_write_file_refuses_symlinked_dir_pointing_outside(tmp_path: Path) -> None:
    workspace, outside = tmp_path / "ws", tmp_path / "outside"
    workspace.mkdir()
    outside.mkdir()
    (workspace / "out").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PathOutsideWorkspace):
        write_file(workspace, "out/new.txt", "x")
    assert not (outside / "new.txt").exists()


# --- edit_file -----------------------------------------------------------------------------


def test_edit_file_replaces_a_unique_occurrence(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\ny = 2\n")
    assert edit_file(tmp_path, "a.py", "y = 2", "y = 3") == "replaced 1 occurrence in a.py"
    assert (tmp_path / "a.py").read_text() == "x = 1\ny = 3\n"


def test_edit_file_replaces_all_occurrences_when_count_matches(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a a a")
    edit_file(tmp_path, "a.txt", "a", "b", count=3)
    assert (tmp_path / "a.txt").read_text() == "b b b"


def test_edit_file_missing_text_suggests_read_file(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello")
    with pytest.raises(InvalidInput, match=r"not found.*read_file"):
        edit_file(tmp_path, "a.txt", "bye", "x")


def test_edit_file_count_mismatch_says_how_often_the_text_occurs(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a a a")
    with pytest.raises(InvalidInput, match=r"occurs 3 times.*count=1"):
        edit_file(tmp_path, "a.txt", "a", "b")
    assert (tmp_path / "a.txt").read_text() == "a a a"


def test_edit_file_keeps_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"caf\xe9 ok\n")
    edit_file(tmp_path, "a.txt", "ok", "fine")
    assert (tmp_path / "a.txt").read_bytes() == b"caf\xe9 fine\n"


def test_edit_file_refuses_the_git_directory(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    with pytest.raises(InvalidInput, match="read-only"):
        edit_file(tmp_path, ".git/HEAD", "main", "evil")


def test_edit_file_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        edit_file(tmp_path, "nope.txt", "a", "b")


# --- list_dir ------------------------------------------------------------------------------


def test_list_dir_marks_dirs_and_skips_git_contents(tmp_path: Path) -> None:
    (tmp_path / ".git" / "objects").mkdir(parents=True)
    (tmp_path / ".git" / "HEAD").write_text("x")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.py").write_text("")
    (tmp_path / "README.md").write_text("")
    assert list_dir(tmp_path).splitlines() == [".git/", "README.md", "src/", "src/main.py"]


def test_list_dir_stops_at_the_depth(tmp_path: Path) -> None:
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    assert list_dir(tmp_path, depth=2).splitlines() == ["a/", "a/b/"]


def test_list_dir_of_a_subdirectory_shows_workspace_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "mod.py").write_text("")
    assert list_dir(tmp_path, "src").splitlines() == ["src/pkg/", "src/pkg/mod.py"]


def test_list_dir_caps_entries_with_a_marker(tmp_path: Path) -> None:
    for n in range(510):
        (tmp_path / f"f{n:03}.txt").write_text("")
    lines = list_dir(tmp_path).splitlines()
    assert len(lines) == 501
    assert lines[-1].startswith("[... listing stopped at 500 entries")


def test_list_dir_on_a_file_suggests_read_file(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("")
    with pytest.raises(InvalidInput, match="read_file"):
        list_dir(tmp_path, "a.txt")


# --- search_files --------------------------------------------------------------------------


def test_search_files_reports_path_line_and_text(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("alpha\nbeta\ngamma\n")
    assert search_files(tmp_path, "^b") == "a.txt:2: beta"


def test_search_files_filters_by_glob(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("TODO: py\n")
    (tmp_path / "notes.md").write_text("TODO: md\n")
    assert search_files(tmp_path, "TODO", glob="*.py") == "src/a.py:1: TODO: py"


def test_search_files_bad_regex_reports_the_re_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"invalid regular expression.*missing \)"):
        search_files(tmp_path, "foo(")


def test_search_files_skips_git_and_binary_files(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("needle\n")
    (tmp_path / "blob.bin").write_bytes(b"needle\x00")
    (tmp_path / "a.txt").write_text("needle\n")
    assert search_files(tmp_path, "needle") == "a.txt:1: needle"


def test_search_files_trims_long_lines(tmp_path: Path) -> None:
    (tmp_path / "min.js").write_text("needle" + "x" * 1000 + "\n")
    line = search_files(tmp_path, "needle")
    assert len(line.removeprefix("min.js:1: ")) == 300


def test_search_files_caps_results_with_a_marker(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hit\n" * 10)
    lines = search_files(tmp_path, "hit", max_results=3).splitlines()
    assert lines[:3] == ["a.txt:1: hit", "a.txt:2: hit", "a.txt:3: hit"]
    assert lines[3].startswith("[... stopped after 3 matches")


def test_search_files_without_matches_says_so(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello\n")
    assert search_files(tmp_path, "absent").startswith("no matches")
