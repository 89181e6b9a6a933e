"""The store's migrations build exactly the schema the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from autodo.config import Settings
from autodo.desk import Desk
from autodo.runs import leases
from autodo.runs.store import create_run, tasks_to_start
from autodo.store.db import open_store
from autodo.store.schema import metadata, workers
from autodo.tasks.model import NewTask


def test_migrations_match_the_declared_schema(home: Path) -> None:
    home.mkdir()
    engine = open_store(Settings().store_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = [diff for diff in compare_metadata(context, metadata) if "alembic_version" not in str(diff)]
    engine.dispose()
    assert differences == []


def test_opening_twice_applies_nothing_new(home: Path) -> None:
    home.mkdir()
    url = Settings().store_url
    open_store(url).dispose()
    engine = open_store(url)
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == "0005"
    engine.dispose()


def test_starting_a_task_twice_makes_one_run_and_one_attempt(home: Path) -> None:
    desk = Desk(Settings())
    task = desk.add(NewTask(title="once", labels=["lane:agent"]))
    with desk.engine.begin() as conn:
        assert tasks_to_start(conn) == [(task.id, "default")]
        first = create_run(conn, task.id, "default")
        second = create_run(conn, task.id, "default")
        assert tasks_to_start(conn) == []
    assert first is not None and second is None
    assert desk.task(task.id).task.attempts == 1


def test_two_workers_starting_the_same_task_at_once_make_one_run(home: Path) -> None:
    desk = Desk(Settings())
    tasks = [desk.add(NewTask(title=f"race {n}", labels=["lane:agent"])) for n in range(20)]
    barrier = threading.Barrier(2)

    def worker() -> list[str]:
        barrier.wait()
        started = []
        for task in tasks:
            with desk.engine.begin() as conn:
                run = create_run(conn, task.id, "default")
            if run is not None:
                started.append(run.id)
        return started

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.submit(worker), pool.submit(worker)
        runs = first.result() + second.result()
    assert len(runs) == len(set(runs)) == len(tasks)
    assert all(desk.task(task.id).task.attempts == 1 for task in tasks)


def test_two_workers_taking_over_a_lapsed_worker_at_once_claim_it_once(home: Path) -> None:
    desk = Desk(Settings())
    with desk.engine.begin() as conn:
        for name in ("dead", "w1", "w2"):
            leases.register(conn, name, lease_seconds=30)
        conn.execute(workers.update().where(workers.c.id == "dead").values(heartbeat=time.time() - 60))
    barrier = threading.Barrier(2)

    def take_over(me: str) -> list[str]:
        with desk.engine.begin() as conn:
            leases.renew(conn, me)
            # On PostgreSQL both now look for lapsed workers at once; on SQLite the other
            # worker's transaction waits for this one's write lock, so the barrier times out.
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=1)
            return leases.claim_lapsed(conn, me)

    with ThreadPoolExecutor(2) as pool:
        claims = list(pool.map(take_over, ["w1", "w2"]))
    assert sorted(claims) == [[], ["dead"]]
