"""Live streams: every event once, in order, across disconnects (Last-Event-ID), on both databases."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from httpx_sse import ServerSentEvent, connect_sse

from autodo.desk import Desk
from autodo.events import append_event, list_events
from autodo.server import streams
from autodo.server.streams import EventTail
from autodo.store.schema import events
from autodo.tasks.model import NewTask
from tests.support import ServedApp


@pytest.fixture
def served(home: Path) -> Iterator[ServedApp]:
    with ServedApp() as served:
        yield served


def read(client: httpx.Client, path: str, count: int, **headers: str) -> list[ServerSentEvent]:
    """The first ``count`` messages of a stream; leaving the block disconnects."""
    received: list[ServerSentEvent] = []
    with connect_sse(client, "GET", path, headers=headers) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        for message in source.iter_sse():
            received.append(message)
            if len(received) == count:
                break
    return received


def add_tasks(desk: Desk, count: int, prefix: str) -> list[str]:
    return [desk.add(NewTask(title=f"{prefix} {n}", labels=["lane:human"])).id for n in range(count)]


def test_a_reconnecting_client_gets_every_event_once_in_order(served: ServedApp) -> None:
    desk = Desk()
    add_tasks(desk, 5, "before")
    with served.client() as client:
        first = read(client, "/api/v1/events?after=0", 6)  # leaves mid-stream: more events wait
        add_tasks(desk, 5, "while away")
        missed = len(list_events(desk.engine, after=int(first[-1].id)))
        second = read(client, "/api/v1/events", missed, **{"Last-Event-ID": first[-1].id})
        add_tasks(desk, 3, "after")
        rest = len(list_events(desk.engine, after=int(second[-1].id)))
        third = read(client, "/api/v1/events?after=0", rest, **{"Last-Event-ID": second[-1].id})
    received = [int(m.id) for m in first + second + third]
    assert received == [event.seq for event in list_events(desk.engine)]  # all of them, once, in order
    assert first[0].event == "task.created" and first[0].json()["data"]["title"] == "before 0"
    assert third[-1].json()["data"] == list_events(desk.engine)[-1].data


def test_a_task_stream_carries_only_that_task_and_starts_at_the_present(served: ServedApp) -> None:
    desk = Desk()
    [mine, other] = add_tasks(desk, 2, "task")
    with served.client() as client, connect_sse(client, "GET", f"/api/v1/tasks/{mine}/events") as source:
        messages = source.iter_sse()
        desk.done(other, "not mine")
        desk.done(mine, "finished")
        message = next(messages)
    assert message.event == "task.state" and message.json()["task_id"] == mine


def test_a_bad_stream_request_gets_a_problem_before_any_stream(served: ServedApp) -> None:
    with served.client() as client:
        unknown = client.get("/api/v1/tasks/NOPE/events")
        bad_id = client.get("/api/v1/events", headers={"Last-Event-ID": "yesterday"})
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"
    assert bad_id.status_code == 400 and "Last-Event-ID" in bad_id.json()["detail"]


def test_the_tail_waits_for_a_hole_and_steps_over_it_once_it_is_stale(desk: Desk) -> None:
    add_tasks(desk, 2, "t")
    first, hole, *rest = [event.seq for event in list_events(desk.engine)]
    with desk.engine.begin() as conn:
        conn.execute(sa.delete(events).where(events.c.seq == hole))  # as if it were still committing
    now = [0.0]
    tail = EventTail(desk.engine, clock=lambda: now[0])
    assert [e.seq for e in tail.read()] == [first]
    now[0] = streams.HOLE_WAIT / 2
    assert tail.read() == []
    now[0] = streams.HOLE_WAIT
    assert [e.seq for e in tail.read()] == rest and rest


def test_concurrent_writers_never_make_a_reader_skip_an_event(desk: Desk) -> None:
    """On PostgreSQL numbers are taken before commit: a slow writer leaves a hole that fills later."""
    [task] = add_tasks(desk, 1, "busy")
    tail = EventTail(desk.engine, after=list_events(desk.engine)[-1].seq)
    received: list[int] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            received.extend(e.seq for e in tail.read())

    def writer(n: int) -> None:
        for i in range(40):
            with desk.engine.begin() as conn:
                append_event(conn, task, "test.write", {"writer": n, "i": i})

    with ThreadPoolExecutor(5) as pool:
        reading = pool.submit(reader)
        for done in [pool.submit(writer, n) for n in range(4)]:
            done.result()
        stop.set()
        reading.result()
    received.extend(e.seq for e in tail.read())
    written = [e.seq for e in list_events(desk.engine) if e.kind == "test.write"]
    assert received == written and len(written) == 160
