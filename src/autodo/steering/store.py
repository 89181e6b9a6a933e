"""Keeping messages until a run reads them: exactly once, in the order they were sent."""

from __future__ import annotations

import sqlalchemy as sa
from ulid import ULID

from autodo.events import append_event
from autodo.steering.model import Message, MessageState, Mode
from autodo.store import now
from autodo.store.schema import messages


def add_message(conn: sa.Connection, task_id: str, run_id: str | None, mode: Mode, body: str, author: str) -> Message:
    message_id = str(ULID())
    conn.execute(
        messages.insert().values(
            id=message_id, task_id=task_id, run_id=run_id, mode=mode.value, body=body, author=author,
            state=MessageState.PENDING.value, created_at=now(),
        )
    )  # fmt: skip
    data = {"mode": mode.value, "body": body, "author": author, "message_id": message_id}
    append_event(conn, task_id, "message.sent" if run_id else "message.kept", data, run_id=run_id)
    return get_message(conn, message_id)


def get_message(conn: sa.Connection, message_id: str) -> Message:
    return Message.from_row(conn.execute(sa.select(messages).where(messages.c.id == message_id)).one())


def claim_messages(conn: sa.Connection, run_id: str, task_id: str) -> list[Message]:
    """Take the run's pending messages (and those kept for the task's next run), oldest first."""
    query = (
        sa.select(messages)
        .where(messages.c.task_id == task_id, messages.c.state == MessageState.PENDING.value)
        .where(sa.or_(messages.c.run_id == run_id, messages.c.run_id.is_(None)))
        .order_by(messages.c.created_at, messages.c.id)
    )
    claimed = []
    for row in conn.execute(query).all():
        taken = conn.execute(
            messages.update()
            .where(messages.c.id == row.id, messages.c.state == MessageState.PENDING.value)
            .values(state=MessageState.DELIVERED.value, run_id=run_id, delivered_at=now())
        )
        if taken.rowcount == 1:
            message = get_message(conn, row.id)
            append_event(conn, task_id, "message.delivered", {"message_id": row.id, "mode": row.mode}, run_id=run_id)
            claimed.append(message)
    return claimed


def pending_interrupts(conn: sa.Connection, run_ids: list[str]) -> list[Message]:
    """Interrupts not yet read by these runs: the worker stops what those runs are doing."""
    if not run_ids:
        return []
    query = sa.select(messages).where(
        messages.c.run_id.in_(run_ids),
        messages.c.mode == Mode.INTERRUPT.value,
        messages.c.state == MessageState.PENDING.value,
    )
    return [Message.from_row(row) for row in conn.execute(query)]


def drop_unread(conn: sa.Connection, run_id: str, task_id: str) -> None:
    """The run ended: what it never read is marked so, visibly, instead of vanishing."""
    unread = conn.execute(
        sa.select(messages.c.id).where(messages.c.run_id == run_id, messages.c.state == MessageState.PENDING.value)
    ).scalars()
    for message_id in unread:
        conn.execute(messages.update().where(messages.c.id == message_id).values(state=MessageState.DROPPED.value))
        append_event(conn, task_id, "message.dropped", {"message_id": message_id}, run_id=run_id)


def mark_delivered(conn: sa.Connection, message_id: str) -> None:
    conn.execute(
        messages.update()
        .where(messages.c.id == message_id)
        .values(state=MessageState.DELIVERED.value, delivered_at=now())
    )
