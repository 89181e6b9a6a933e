"""`blocked_by` edges: readiness and cycle detection."""

from __future__ import annotations

import sqlalchemy as sa

from autodo.errors import DependencyCycle, InvalidInput, NotFound
from autodo.store.schema import task_blockers, tasks
from autodo.tasks.model import State


def blockers_of(conn: sa.Connection, task_id: str) -> list[str]:
    query = sa.select(task_blockers.c.blocker_id).where(task_blockers.c.task_id == task_id)
    return sorted(conn.execute(query).scalars())


def blockers_by_task(conn: sa.Connection, task_ids: list[str]) -> dict[str, list[str]]:
    """The blockers of many tasks in one query (the board lists them all at once)."""
    found: dict[str, list[str]] = {}
    if not task_ids:
        return found
    query = sa.select(task_blockers.c.task_id, task_blockers.c.blocker_id).where(task_blockers.c.task_id.in_(task_ids))
    for task_id, blocker_id in conn.execute(query.order_by(task_blockers.c.blocker_id)):
        found.setdefault(task_id, []).append(blocker_id)
    return found


def dependents_of(conn: sa.Connection, task_id: str) -> list[str]:
    query = sa.select(task_blockers.c.task_id).where(task_blockers.c.blocker_id == task_id)
    return sorted(conn.execute(query).scalars())


def open_blockers(conn: sa.Connection, task_id: str) -> list[str]:
    """Blockers that are not done yet: the task may start only when this is empty."""
    query = (
        sa.select(tasks.c.id)
        .join(task_blockers, task_blockers.c.blocker_id == tasks.c.id)
        .where(task_blockers.c.task_id == task_id, tasks.c.state != State.DONE.value)
    )
    return sorted(conn.execute(query).scalars())


def add_blockers(conn: sa.Connection, task_id: str, blocker_ids: list[str]) -> None:
    """Record that ``task_id`` waits for each blocker; refuse unknown ids and cycles."""
    for blocker_id in dict.fromkeys(blocker_ids):
        _check_blocker(conn, task_id, blocker_id)
        conn.execute(task_blockers.insert().values(task_id=task_id, blocker_id=blocker_id))


def _check_blocker(conn: sa.Connection, task_id: str, blocker_id: str) -> None:
    if blocker_id == task_id:
        raise DependencyCycle(f"task {task_id} cannot be blocked by itself")
    if conn.execute(sa.select(tasks.c.id).where(tasks.c.id == blocker_id)).first() is None:
        raise NotFound(f"no task {blocker_id} to wait for; check the id with `autodo ls`")
    if blocker_id in blockers_of(conn, task_id):
        raise InvalidInput(f"task {task_id} is already blocked by {blocker_id}")
    path = _path(conn, start=blocker_id, goal=task_id)
    if path is not None:
        cycle = " → ".join([task_id, *path])
        raise DependencyCycle(f"that dependency would form a cycle: {cycle} (each waits for the next); drop one edge")


def _path(conn: sa.Connection, start: str, goal: str) -> list[str] | None:
    """A chain of blocked_by edges from ``start`` to ``goal``, if one exists (depth-first)."""
    stack: list[list[str]] = [[start]]
    seen: set[str] = set()
    while stack:
        path = stack.pop()
        node = path[-1]
        if node == goal:
            return path
        if node in seen:
            continue
        seen.add(node)
        stack.extend([*path, blocker] for blocker in blockers_of(conn, node))
    return None
