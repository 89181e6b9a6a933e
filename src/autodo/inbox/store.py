"""Reading and writing inbox items."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from ulid import ULID

from autodo.errors import Conflict, NotFound
from autodo.events import append_event
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
    item = get_item(conn, item_id)
    append_event(conn, task_id, "inbox.opened", _summary(item), run_id=run_id, key=f"inbox.opened:{item_id}")
    return item


def _summary(item: InboxItem) -> dict[str, Any]:
    """What an inbox event says about its item (live views, webhooks)."""
    return {"item_id": item.id, "kind": item.kind.value, "state": item.state.value, "prompt": item.prompt[:500]}


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
    append_event(conn, item.task_id, "inbox.answered", {**_summary(item), "by": by}, run_id=item.run_id)
    return item


def cancel_items(conn: sa.Connection, task_id: str) -> None:
    """Withdraw every open item of a task (it was moved, done or cancelled)."""
    for item in pending_items(conn, task_id):
        append_event(conn, task_id, "inbox.cancelled", {**_summary(item), "state": "cancelled"}, run_id=item.run_id)
    conn.execute(
        inbox_items.update()
        .where(inbox_items.c.task_id == task_id, inbox_items.c.state == ItemState.PENDING.value)
        .values(state=ItemState.CANCELLED.value, answered_at=now())
    )
