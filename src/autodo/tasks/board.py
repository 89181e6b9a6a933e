"""Service functions over tasks: create, read, move between lanes, finish."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from ulid import ULID

from autodo.errors import Conflict, NotFound
from autodo.events import append_event
from autodo.inbox.model import ItemKind
from autodo.inbox.store import cancel_items, open_item
from autodo.store import now
from autodo.store.schema import tasks
from autodo.tasks.dependencies import add_blockers, blockers_by_task, blockers_of, dependents_of, open_blockers
from autodo.tasks.model import PRIORITIES, TERMINAL, Lane, NewTask, State, Task, lane_from_labels, profile_from_labels

ASK_FIRST = "Before an agent starts on this: what should it know?"
HANDED_TO_YOU = "Only you can do this one; mark it done when it is."
BY_LABEL = "set by its lane: label"
MOVED_BY_PERSON = "moved by the person"


def add_task(conn: sa.Connection, request: NewTask, *, lane_reason: str | None = None) -> Task:
    """Create a task; a `lane:` label (or an agent adding a subtask) sets its lane at once."""
    request = request.validated()
    task_id = str(ULID())
    conn.execute(tasks.insert().values(**_new_row(task_id, request)))
    add_blockers(conn, task_id, request.blocked_by)
    append_event(conn, task_id, "task.created", {"title": request.title, "source": request.source})
    lane = lane_from_labels(request.labels)
    if lane is not None:
        enter_lane(conn, task_id, lane, reason=BY_LABEL, set_by="label")
    elif request.parent_id is not None:
        enter_lane(conn, task_id, Lane.AGENT, reason=lane_reason or "subtask added by an agent", set_by="agent")
    return get_task(conn, task_id)


def _new_row(task_id: str, request: NewTask) -> dict[str, Any]:
    stamp = now()
    return dict(
        id=task_id, title=request.title, body=request.body, source=request.source,
        priority=PRIORITIES[request.priority], labels=request.labels, state=State.NEW.value,
        profile=request.profile or profile_from_labels(request.labels) or "default",
        parent_id=request.parent_id, budget=request.budget, created_at=stamp, updated_at=stamp,
    )  # fmt: skip


def get_task(conn: sa.Connection, task_id: str) -> Task:
    row = conn.execute(sa.select(tasks).where(tasks.c.id == task_id)).first()
    if row is None:
        raise NotFound(f"no task {task_id}; `autodo ls` lists the tasks and their ids")
    return Task.from_row(row, blockers_of(conn, task_id))


def list_tasks(conn: sa.Connection, states: list[State] | None = None, lane: Lane | None = None) -> list[Task]:
    """Tasks by priority, then age."""
    query = sa.select(tasks).order_by(tasks.c.priority, tasks.c.id)
    if states:
        query = query.where(tasks.c.state.in_([state.value for state in states]))
    if lane is not None:
        query = query.where(tasks.c.lane == lane.value)
    rows = conn.execute(query).all()
    blockers = blockers_by_task(conn, [row.id for row in rows])
    return [Task.from_row(row, blockers.get(row.id, [])) for row in rows]


def set_state(conn: sa.Connection, task_id: str, state: State, **values: Any) -> None:
    conn.execute(tasks.update().where(tasks.c.id == task_id).values(state=state.value, updated_at=now(), **values))
    append_event(conn, task_id, "task.state", {"state": state.value, **values})


def enter_lane(
    conn: sa.Connection, task_id: str, lane: Lane, *, reason: str, set_by: str, question: str | None = None
) -> None:
    """Put a task in a lane and into that lane's first state, opening an inbox item where one is needed."""
    cancel_items(conn, task_id)
    conn.execute(
        tasks.update().where(tasks.c.id == task_id).values(lane=lane.value, lane_reason=reason, lane_set_by=set_by)
    )
    append_event(conn, task_id, "task.lane", {"lane": lane.value, "reason": reason, "set_by": set_by})
    key = f"{task_id}:lane:{ULID()}"
    if lane is Lane.AGENT:
        set_state(conn, task_id, State.BLOCKED if open_blockers(conn, task_id) else State.QUEUED)
    elif lane is Lane.ASK:
        set_state(conn, task_id, State.WAITING)
        open_item(conn, task_id=task_id, kind=ItemKind.QUESTION, prompt=question or ASK_FIRST, key=key,
                  context={"reason": reason})  # fmt: skip
    else:
        set_state(conn, task_id, State.YOURS)
        prompt = HANDED_TO_YOU if reason in (BY_LABEL, MOVED_BY_PERSON) else reason  # say why, when someone did
        open_item(conn, task_id=task_id, kind=ItemKind.HANDOFF, prompt=prompt, key=key, context={"reason": reason})


def move_task(conn: sa.Connection, task_id: str, lane: Lane, reason: str | None = None) -> Task:
    """The person moves a task to another lane (overriding triage)."""
    task = get_task(conn, task_id)
    if task.state in TERMINAL:
        raise Conflict(f"task {task_id} is {task.state.value}; add a new task instead")
    if task.state is State.RUNNING:
        raise Conflict(f"task {task_id} is running; `autodo cancel {task_id}` first, then move it")
    enter_lane(conn, task_id, lane, reason=reason or MOVED_BY_PERSON, set_by="person")
    return get_task(conn, task_id)


def add_context(conn: sa.Connection, task_id: str, text: str) -> None:
    """Append to what the next agent on this task is told (answers given before it started)."""
    task = get_task(conn, task_id)
    context = f"{task.context}\n{text}".strip()
    conn.execute(tasks.update().where(tasks.c.id == task_id).values(context=context, updated_at=now()))


def finish_task(conn: sa.Connection, task_id: str, state: State, result: str | None) -> list[str]:
    """End a task (done, failed or cancelled); returns the dependents it unblocked."""
    set_state(conn, task_id, state, result=result)
    cancel_items(conn, task_id)
    return promote_ready(conn, dependents_of(conn, task_id)) if state is State.DONE else []


def mark_done(conn: sa.Connection, task_id: str, note: str | None = None) -> Task:
    """The person says a task is done (their own task, a review, or one they did themselves)."""
    task = get_task(conn, task_id)
    if task.state in TERMINAL:
        raise Conflict(f"task {task_id} is already {task.state.value}")
    if task.state is State.RUNNING:
        raise Conflict(f"an agent is working on task {task_id}; wait for it or `autodo cancel {task_id}`")
    finish_task(conn, task_id, State.DONE, note or task.result or "done by the person")
    return get_task(conn, task_id)


def promote_ready(conn: sa.Connection, task_ids: list[str] | None = None) -> list[str]:
    """Move blocked tasks whose blockers are all done to queued; returns their ids."""
    query = sa.select(tasks.c.id).where(tasks.c.state == State.BLOCKED.value)
    if task_ids is not None:
        query = query.where(tasks.c.id.in_(task_ids))
    ready = [task_id for task_id in conn.execute(query).scalars() if not open_blockers(conn, task_id)]
    for task_id in ready:
        set_state(conn, task_id, State.QUEUED)
    return ready


def rewrite(conn: sa.Connection, task_id: str, title: str, body: str) -> None:
    """Replace a task's title and body (a source that keeps its task up to date, like the radar)."""
    request = NewTask(title=title, body=body).validated()
    values = dict(title=request.title, body=request.body, updated_at=now())
    conn.execute(tasks.update().where(tasks.c.id == task_id).values(**values))
    append_event(conn, task_id, "task.updated", {"title": request.title})


def reopen(conn: sa.Connection, task_id: str, reason: str) -> None:
    """Bring a done task back for triage (it came back, or it was not really fixed)."""
    conn.execute(
        tasks.update().where(tasks.c.id == task_id).values(lane=None, lane_reason=None, lane_set_by=None, result=None)
    )
    set_state(conn, task_id, State.NEW)
    append_event(conn, task_id, "task.reopened", {"reason": reason})
