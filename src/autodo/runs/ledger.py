"""Exactly-once tool side effects: every execution is recorded under an idempotency key.

A DBOS step that was running when the process died runs again on recovery. The ledger
turns that second execution into a lookup: a finished call returns its recorded result,
and a call that started but never finished is reported to the model as interrupted
rather than run twice (its effect may or may not have happened).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa

from autodo.store import now
from autodo.store.schema import tool_executions

INTERRUPTED = (
    "this call was interrupted by a worker restart and was not repeated, so its effect is unknown; "
    "inspect the workspace (read_file, list_dir) before deciding whether to run it again"
)


async def execute_once(
    engine: sa.Engine, key: str, run_id: str, tool: str, arguments: dict[str, Any], action: Callable[[], Awaitable[str]]
) -> str:
    """Run ``action`` at most once for ``key``; later calls return what the first one recorded."""
    with engine.begin() as conn:
        row = conn.execute(sa.select(tool_executions).where(tool_executions.c.key == key)).first()
        if row is not None:
            return str(row.result) if row.finished_at is not None else INTERRUPTED
        conn.execute(
            tool_executions.insert().values(key=key, run_id=run_id, tool=tool, arguments=arguments, started_at=now())
        )
    result = await action()
    with engine.begin() as conn:
        conn.execute(
            tool_executions.update().where(tool_executions.c.key == key).values(result=result, finished_at=now())
        )
    return result


def record_once(
    conn: sa.Connection, key: str, run_id: str, tool: str, arguments: dict[str, Any], action: Callable[[], str]
) -> str:
    """The same guarantee for an action that only writes to the store: one transaction, exactly once."""
    row = conn.execute(sa.select(tool_executions).where(tool_executions.c.key == key)).first()
    if row is not None:
        return str(row.result)
    result = action()
    stamp = now()
    conn.execute(
        tool_executions.insert().values(
            key=key, run_id=run_id, tool=tool, arguments=arguments, result=result, started_at=stamp, finished_at=stamp
        )
    )
    return result
