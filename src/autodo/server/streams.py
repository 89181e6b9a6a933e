"""Reading the event log as a stream, in order, with no gaps and no duplicates.

Event numbers come from the database in the order transactions *start* writing, but become
visible in the order they *commit*. On PostgreSQL a reader can see event 12 while 11 is still
being written; a reader that moved its cursor to 12 would never see 11. So the tail stops before
a hole and waits for it to fill; a hole still open after ``HOLE_WAIT`` seconds belongs to a
transaction that rolled back (its number is never used) and is stepped over. SQLite writers are
serialized, so holes there are only ever rollbacks.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa

from autodo.events import Event, list_events

HOLE_WAIT = 2.0
BATCH = 500


class EventTail:
    """Successive reads return the events after ``after`` exactly once, in sequence order."""

    def __init__(
        self,
        engine: sa.Engine,
        after: int = 0,
        task_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.cursor = after
        self.task_id = task_id
        self.clock = clock
        self._hole_seen_at: dict[int, float] = {}

    def read(self) -> list[Event]:
        """The next events that are safe to hand out (possibly none)."""
        batch = list_events(self.engine, after=self.cursor, limit=BATCH)
        safe: list[Event] = []
        expected = self.cursor + 1
        for event in batch:
            if event.seq != expected and not self._hole_is_stale(expected):
                break  # an earlier event may still be committing: wait for it
            safe.append(event)
            expected = event.seq + 1
        if safe:
            self.cursor = safe[-1].seq
            self._hole_seen_at = {seq: t for seq, t in self._hole_seen_at.items() if seq > self.cursor}
        return [event for event in safe if self.task_id is None or event.task_id == self.task_id]

    def _hole_is_stale(self, seq: int) -> bool:
        first_seen = self._hole_seen_at.setdefault(seq, self.clock())
        return self.clock() - first_seen >= HOLE_WAIT
