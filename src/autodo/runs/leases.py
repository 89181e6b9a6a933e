"""Worker leases: each worker renews its lease in the shared store; the runs of a worker whose
lease lapsed (killed, machine gone) are taken over by a live one.

DBOS recovers a worker's unfinished workflows when a process with the same executor id starts
again. For a worker that never comes back, one live worker claims it here (a conditional update,
so exactly one wins) and asks DBOS to recover its workflows, which puts them back on their
queues; they resume from their last completed step wherever a free slot is.
"""

from __future__ import annotations

import os
import socket
import time
from enum import StrEnum

import sqlalchemy as sa

from autodo.errors import Conflict
from autodo.events import append_event
from autodo.runs.model import ACTIVE_RUN_STATES
from autodo.store import now
from autodo.store.schema import runs, workers

DEFAULT_LEASE_SECONDS = 30.0


class WorkerState(StrEnum):
    ALIVE = "alive"
    STOPPED = "stopped"  # shut down cleanly; its unfinished runs wait for it or for a takeover
    TAKEN_OVER = "taken_over"


def register(conn: sa.Connection, worker_id: str, lease_seconds: float) -> None:
    """Start (or restart) a worker's lease; refuse an id another live worker holds."""
    host, pid = socket.gethostname(), os.getpid()
    row = conn.execute(sa.select(workers).where(workers.c.id == worker_id)).first()
    if row is not None and _holds_lease(row) and not _same_worker_restarted(row, host):
        raise Conflict(
            f"worker id {worker_id!r} is in use by pid {row.pid} on {row.host}; "
            "give this worker its own --worker-id (the same id resumes that worker's runs)"
        )
    values = dict(
        host=host, pid=pid, state=WorkerState.ALIVE.value, lease_seconds=lease_seconds, heartbeat=time.time(),
        started_at=now(), taken_over_by=None, taken_over_at=None,
    )  # fmt: skip
    if row is None:
        conn.execute(workers.insert().values(id=worker_id, **values))
    else:
        conn.execute(workers.update().where(workers.c.id == worker_id).values(**values))


def _holds_lease(row: sa.Row[tuple[object, ...]]) -> bool:
    return bool(row.state == WorkerState.ALIVE.value and time.time() - row.heartbeat < row.lease_seconds)


def _same_worker_restarted(row: sa.Row[tuple[object, ...]], host: str) -> bool:
    """The id's last holder ran here and its process is gone: this is that worker, restarted."""
    if row.host != host:
        return False
    try:
        os.kill(int(row.pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return int(row.pid) == os.getpid()


def renew(conn: sa.Connection, worker_id: str) -> None:
    conn.execute(
        workers.update()
        .where(workers.c.id == worker_id)
        .values(heartbeat=time.time(), state=WorkerState.ALIVE.value, taken_over_by=None, taken_over_at=None)
    )


def stop(conn: sa.Connection, worker_id: str) -> None:
    conn.execute(workers.update().where(workers.c.id == worker_id).values(state=WorkerState.STOPPED.value))


_CLAIMABLE = (WorkerState.ALIVE.value, WorkerState.STOPPED.value)


def claim_lapsed(conn: sa.Connection, me: str) -> list[str]:
    """Claim every other worker whose lease lapsed; each is claimed by exactly one live worker."""
    candidates = conn.execute(
        sa.select(workers.c.id, workers.c.heartbeat, workers.c.lease_seconds).where(
            workers.c.id != me, workers.c.state.in_(_CLAIMABLE)
        )
    ).all()
    claimed = []
    for worker_id, heartbeat, lease in candidates:
        if time.time() - heartbeat < lease:
            continue
        won = conn.execute(
            workers.update()
            # The state check matters on PostgreSQL: a second claimer blocked on the row lock
            # re-evaluates the condition on the claimed row, whose heartbeat is unchanged.
            .where(workers.c.id == worker_id, workers.c.heartbeat == heartbeat, workers.c.state.in_(_CLAIMABLE))
            .values(state=WorkerState.TAKEN_OVER.value, taken_over_by=me, taken_over_at=now())
        )
        if won.rowcount == 1:
            claimed.append(worker_id)
            _note_takeover(conn, worker_id, me)
    return claimed


def _note_takeover(conn: sa.Connection, dead: str, me: str) -> None:
    orphaned = conn.execute(
        sa.select(runs.c.id, runs.c.task_id).where(runs.c.worker == dead, runs.c.state.in_(ACTIVE_RUN_STATES))
    ).all()
    for run_id, task_id in orphaned:
        append_event(conn, task_id, "run.taken_over", {"from": dead, "by": me}, run_id=run_id)
