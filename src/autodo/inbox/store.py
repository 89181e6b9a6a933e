"""Reading and writing inbox items."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from ulid import ULID

from autodo.errors import Conflict, NotFound
from autodo.inbox.model import InboxItem, ItemKind, ItemState
from autodo.store import now
from autodo.store.schema import inbox_items


def open_item(
    conn: sa.Connection,
    *,
    task_id: str,
    kind: ItemKind,
    prompt: str,
    key: str,
    context: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> InboxItem:
    """Open an item, or return the one already opened under ``key`` (replayed code)."""
    existing = conn.execute(sa.select(inbox_items).where(inbox_items.c.key == key)).first()
    if existing is not None:
        return InboxItem.from_row(existing)
    item_id = str(ULID())
    values = dict(
        id=item_id, key=key, task_id=task_id, run_id=run_id, kind=kind.value, state=ItemState.PENDING.value,
        prompt=prompt, context=context or {}, created_at=now(),
    )  # fmt: skip
    conn.execute(inbox_items.insert().values(**values))
    return get_item(conn, item_id)


def get_item(conn: sa.Connection, item_id: str) -> InboxItem:
    row = conn.execute(sa.select(inbox_items).where(inbox_items.c.id == item_id)).first()
    if row is None:
        raise NotFound(f"no inbox item {item_id}; `autodo inbox` lists the open ones")
    return InboxItem.from_row(row)


def pending_items(conn: sa.Connection, task_id: str | None = None) -> list[InboxItem]:
    """Open items, oldest first."""
    query = sa.select(inbox_items).where(inbox_items.c.state == ItemState.PENDING.value)
    if task_id is not None:
        query = query.where(inbox_items.c.task_id == task_id)
    return [InboxItem.from_row(row) for row in conn.execute(query.order_by(inbox_items.c.created_at))]


def close_item(conn: sa.Connection, item_id: str, answer: str, by: str) -> InboxItem:
    """Record the answer; exactly one answer wins, a second gets Conflict."""
    result = conn.execute(
        inbox_items.update()
        .where(inbox_items.c.id == item_id, inbox_items.c.state == ItemState.PENDING.value)
        .values(state=ItemState.ANSWERED.value, answer=answer, answered_by=by, answered_at=now())
    )
    item = get_item(conn, item_id)
    if result.rowcount != 1:
        raise Conflict(f"inbox item {item_id} is already {item.state.value} (by {item.answered_by or 'autodo'})")
    return item


def cancel_items(conn: sa.Connection, task_id: str) -> None:
    """Withdraw every open item of a task (it was moved, done or cancelled)."""
    conn.execute(
        inbox_items.update()
        .where(inbox_items.c.task_id == task_id, inbox_items.c.state == ItemState.PENDING.value)
        .values(state=ItemState.CANCELLED.value, answered_at=now())
    )
