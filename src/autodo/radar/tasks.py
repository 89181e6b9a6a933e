"""Turning the radar's best clusters into tasks, and keeping those tasks up to date."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from autodo.radar.store import cluster_rows
from autodo.store.schema import radar_clusters
from autodo.tasks import board
from autodo.tasks.model import NewTask, State

if TYPE_CHECKING:
    from autodo.radar.service import ImportReport

TOP_CLUSTERS = 10  # at most this many clusters become tasks
MIN_REPORTERS = 2  # one person's complaint is a data point, not yet a task


def sync_tasks(conn: sa.Connection, report: ImportReport, before: dict[str, int] | None = None) -> None:
    """Create tasks for the top clusters, update the tasks of clusters that changed, reopen grown ones.

    ``before`` holds each cluster's reporters before this import: a done task's cluster that grew
    past that count has new reports after the fix and reopens.
    """
    rows = cluster_rows(conn)
    top = {row.id for row in rows[:TOP_CLUSTERS] if row.reporters >= MIN_REPORTERS}
    for row in rows:
        if row.task_id is not None:
            _follow_up(conn, row, report, (before or {}).get(row.id, row.reporters))
        elif row.id in top:
            task = board.add_task(
                conn, NewTask(title=task_title(row), body=task_body(row), source="radar", labels=["radar"])
            )
            conn.execute(radar_clusters.update().where(radar_clusters.c.id == row.id).values(task_id=task.id))
            report.tasks_created.append(task.id)


def _follow_up(conn: sa.Connection, row: Any, report: ImportReport, reporters_before: int) -> None:
    task = board.get_task(conn, row.task_id)
    if task.state is State.DONE:
        baseline = row.reporters_at_done if row.reporters_at_done is not None else reporters_before
        if row.reporters > baseline:
            board.reopen(conn, task.id, f"{row.reporters - baseline} more people reported it after it was done")
            board.rewrite(conn, task.id, task_title(row), task_body(row))
            _set_baseline(conn, row.id, None)
            report.tasks_reopened.append(task.id)
        elif row.reporters_at_done is None:
            _set_baseline(conn, row.id, baseline)
    elif task.state not in (State.FAILED, State.CANCELLED) and (task.title, task.body) != (
        task_title(row),
        task_body(row),
    ):
        board.rewrite(conn, task.id, task_title(row), task_body(row))
        report.tasks_updated.append(task.id)


def _set_baseline(conn: sa.Connection, cluster_id: str, reporters: int | None) -> None:
    conn.execute(radar_clusters.update().where(radar_clusters.c.id == cluster_id).values(reporters_at_done=reporters))


def task_title(row: Any) -> str:
    people = "1 person" if row.reporters == 1 else f"{row.reporters} people"
    return f"Fix: {row.label}, reported by {people}"


def task_body(row: Any) -> str:
    """The evidence: why it ranks where it does, what people said (with links), when, and the trend."""
    details: dict[str, Any] = row.details
    lines = [
        f'The feedback radar groups {row.size} items from {row.reporters} people under "{row.label}" '
        f"(score {row.score:.1f}: {details.get('explanation', '')}).",
        "",
        "What people said:",
    ]
    for quote in details.get("quotes", [])[:3]:
        link = f" ({quote['url']})" if quote.get("url") else ""
        lines.append(f"> {quote['text']}{link}")
    lines += [
        "",
        f"First seen {details.get('first_seen') or 'unknown'}, last seen {details.get('last_seen') or 'unknown'}; "
        f"trend: {details.get('trend', 'unknown')}.",
        f"Radar cluster {row.id} (`autodo radar show {row.id}`).",
    ]
    return "\n".join(lines)
