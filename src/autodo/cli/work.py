"""`autodo work`: the agent team in the foreground, with a live view on a terminal."""

from __future__ import annotations

import anyio
from rich.live import Live

from autodo.cli import render
from autodo.desk import Desk
from autodo.events import list_events
from autodo.overview import describe_event
from autodo.runs.worker import Worker, default_worker_id


class ActivityFeed:
    """One line per task saying what its agent did last; reads only events it has not seen."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.seen = 0
        self.lines: dict[str, str] = {}

    def latest(self) -> dict[str, str]:
        for event in list_events(self.desk.engine, after=self.seen):
            self.seen = event.seq
            line = describe_event(event.kind, event.data)
            if line:
                self.lines[event.task_id] = line
        return self.lines


def run_worker(desk: Desk, *, agents: int, worker_id: str | None, until_settled: bool, lease: float) -> None:
    worker = Worker(desk, agents=agents, worker_id=worker_id or default_worker_id(), lease_seconds=lease)
    worker.launch()
    try:
        anyio.run(_serve_with_view, worker, until_settled)
    except KeyboardInterrupt:
        render.console.print("stopped; unfinished runs resume when this worker starts again")
    finally:
        worker.shutdown()


async def _serve_with_view(worker: Worker, until_settled: bool) -> None:
    header = f"worker {worker.worker_id}: {worker.agents} agents"
    stop = worker.settled if until_settled else None
    if not render.console.is_terminal:
        render.console.print(header)
        await worker.serve(until=stop)
        return
    with Live(refresh_per_second=4, console=render.console) as live:
        async with anyio.create_task_group() as group:
            feed = ActivityFeed(worker.desk)
            group.start_soon(_refresh, live, feed, header)
            await worker.serve(until=stop)
            group.cancel_scope.cancel()
        live.update(render.live_view(worker.desk.tasks(), feed.latest(), header))


async def _refresh(live: Live, feed: ActivityFeed, header: str) -> None:
    while True:
        live.update(render.live_view(feed.desk.tasks(), feed.latest(), header))
        await anyio.sleep(0.25)
