"""Live streams as Server-Sent Events: every event, or one task's, resumable with ``Last-Event-ID``.

Each SSE message is one event of the log: ``event:`` its kind, ``id:`` its sequence number,
``data:`` the event as JSON. A client that reconnects with ``Last-Event-ID`` (browsers do it
by themselves) gets exactly the events after that one. Without it, ``?after=N`` says where to
start; with neither the stream starts at the present.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from autodo.errors import InvalidInput
from autodo.events import head_seq
from autodo.server.api import Id, desk_of
from autodo.server.streams import EventTail

POLL_SECONDS = 0.25

router = APIRouter(prefix="/api/v1", tags=["live"])

After = Annotated[int | None, Query(ge=0, description="Start after this event number (0: from the beginning).")]
LastEventId = Annotated[str | None, Header(description="Set by a reconnecting EventSource; wins over `after`.")]


def _start(request: Request, after: int | None, last_event_id: str | None) -> int:
    if last_event_id is not None:
        if not last_event_id.strip().isdigit():
            raise InvalidInput(f"Last-Event-ID {last_event_id!r} is not an event number")
        return int(last_event_id)
    return after if after is not None else head_seq(desk_of(request).engine)


# Dependencies run before the response starts, so a bad request still gets a proper error.
def _all_tail(request: Request, after: After = None, last_event_id: LastEventId = None) -> EventTail:
    return EventTail(desk_of(request).engine, _start(request, after, last_event_id))


def _task_tail(request: Request, task_id: Id, after: After = None, last_event_id: LastEventId = None) -> EventTail:
    desk = desk_of(request)
    desk.task(task_id)  # 404 for an unknown task
    return EventTail(desk.engine, _start(request, after, last_event_id), task_id=task_id)


@router.get("/events", response_class=EventSourceResponse)
async def all_events(
    request: Request, tail: Annotated[EventTail, Depends(_all_tail)]
) -> AsyncIterator[ServerSentEvent]:
    """Every event of every task, as it happens."""
    async for message in _stream(request, tail):
        yield message


@router.get("/tasks/{task_id}/events", response_class=EventSourceResponse)
async def task_events(
    request: Request, task_id: Id, tail: Annotated[EventTail, Depends(_task_tail)]
) -> AsyncIterator[ServerSentEvent]:
    """One task's events (its transcript), as they happen."""
    async for message in _stream(request, tail):
        yield message


async def _stream(request: Request, tail: EventTail) -> AsyncIterator[ServerSentEvent]:
    while not await request.is_disconnected():
        batch = await anyio.to_thread.run_sync(tail.read)
        for event in batch:
            yield ServerSentEvent(data=event.model_dump(mode="json"), event=event.kind, id=str(event.seq))
        if not batch:
            await anyio.sleep(POLL_SECONDS)
