"""What the agent is told about its task."""

from __future__ import annotations

import sqlalchemy as sa

from autodo.tasks.board import get_task
from autodo.tasks.model import Task


def build_prompt(conn: sa.Connection, task: Task) -> str:
    """The task, the person's answers so far, and the results of the tasks it waited for."""
    parts = [f"# Task {task.id}: {task.title}"]
    if task.body:
        parts.append(task.body)
    if task.context:
        parts.append(f"## What the person told us\n{task.context}")
    finished = [get_task(conn, blocker_id) for blocker_id in task.blocked_by]
    if finished:
        lines = [f"- {blocker.title} ({blocker.id}): {blocker.result or 'done'}" for blocker in finished]
        parts.append("## Results of the tasks this one waited for\n" + "\n".join(lines))
    parts.append("Work in your workspace; the current directory of every command is its root.")
    return "\n\n".join(parts)
