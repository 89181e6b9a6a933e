"""Stop signals for the runs this process executes: interrupt, pause and cancel reach them here.

The person's request is durable in the store; the worker's watcher turns it into a signal that
cuts short the model request or command in flight. What the run does next is journaled (the
interrupted step records its error), so a replay after a crash takes the same path.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")


class Interrupted(Exception):
    """The person stopped the current model turn or command (it is recorded as the step's error)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __reduce__(self) -> tuple[type[Interrupted], tuple[str]]:  # DBOS pickles step errors
        return (Interrupted, (self.reason,))


class RunSignal:
    """One run's signal; fired from the watcher's thread, awaited on the run's event loop.

    An interrupt stops the current model request or command; a halt (pause, cancel) also wakes
    the run from a wait on the person, so it reaches its next step, where DBOS stops it.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._interrupt = asyncio.Event()
        self._halt = asyncio.Event()
        self.stop = threading.Event()  # for work in threads: a command polls it
        self.reason = ""

    def fire(self, reason: str, *, halt: bool = False) -> None:
        self.reason = reason
        self.stop.set()
        self._loop.call_soon_threadsafe(self._interrupt.set)
        if halt:
            self._loop.call_soon_threadsafe(self._halt.set)

    def clear(self) -> None:
        self.stop.clear()
        self._interrupt.clear()

    async def race(self, work: Coroutine[Any, Any, T], *, halt_only: bool = False) -> T:
        """The work's result, or Interrupted if the signal fires first (the work is cancelled)."""
        event = self._halt if halt_only else self._interrupt
        if event.is_set():
            work.close()  # never started
            raise Interrupted(self.reason)
        task = asyncio.ensure_future(work)
        waiter = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if task.done():
            return task.result()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise Interrupted(self.reason)


_signals: dict[str, RunSignal] = {}
_lock = threading.Lock()
current_run: ContextVar[str | None] = ContextVar("autodo_current_run", default=None)


def register(run_id: str) -> RunSignal:
    """Called by the run's workflow on this process's event loop."""
    signal = RunSignal(asyncio.get_running_loop())
    with _lock:
        _signals[run_id] = signal
    current_run.set(run_id)
    return signal


def unregister(run_id: str, signal: RunSignal) -> None:
    with _lock:
        if _signals.get(run_id) is signal:
            del _signals[run_id]


def signal_for(run_id: str | None) -> RunSignal | None:
    if run_id is None:
        return None
    with _lock:
        return _signals.get(run_id)


def current() -> RunSignal | None:
    return signal_for(current_run.get())


def local_runs() -> list[str]:
    with _lock:
        return list(_signals)
