"""What a benchmark reports: markdown tables, the machine it ran on, its section of docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
from pathlib import Path

import psycopg

BENCHMARKS_DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"

INTRO = """\
# Benchmarks

A benchmark here puts autodo next to its peers in one run, on one machine, against the same stub
model server, and reports ratios: to an ideal, and to each other. They are not timed tests and
nothing passes or fails on a figure; absolute seconds move with the machine and whatever else runs
on it, so compare the ratios within a section, and rerun on a quiet machine before trusting a
small difference.

Run one from the repository root; `uv sync --group bench` once installs the peers' libraries
(`./scripts/setup` removes them again). Each benchmark prints its table; `--write` also replaces its
own section below, between its `<!-- bench:NAME -->` markers, so edit around those, not inside.

```bash
uv run --group bench python -m bench.<name> [--write]
```
"""


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = [headers, ["---"] * len(headers), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def machine_description(postgres_server: str | None) -> str:
    """Cores, RAM, CPU model, Python, SQLite and PostgreSQL versions, on one line."""
    return (
        f"{os.cpu_count()} cores, {_memory_gib():.0f} GiB RAM, {_cpu_model()}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, PostgreSQL {_postgres_version(postgres_server)}"
    )


def autodo_revision() -> str:
    """The commit measured, marked when autodo's source had uncommitted changes on top of it."""
    commit = _git("rev-parse", "--short", "HEAD") or "an unknown commit"
    return f"{commit} with uncommitted changes in src/" if _git("status", "--porcelain", "--", "src") else commit


def _git(*arguments: str) -> str:
    found = subprocess.run(["git", *arguments], cwd=BENCHMARKS_DOC.parent.parent, capture_output=True, text=True)
    return found.stdout.strip()


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024**2  # the kernel reports kB
    return 0.0


def _postgres_version(server: str | None) -> str:
    if server is None:
        return "not used"
    with psycopg.connect(server) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "unknown"


def write_section(name: str, body: str, path: Path = BENCHMARKS_DOC) -> None:
    """Replace the benchmark's section between its markers, or append it (creating the file with its intro)."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.strip()}\n{end}"
    text = path.read_text() if path.exists() else INTRO
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
