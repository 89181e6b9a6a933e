"""Talk to running workflows from any process (the CLI, the API): answers, pause, resume and cancel."""

from __future__ import annotations

import sqlalchemy as sa
from dbos import DBOSClient

from autodo.config import Settings
from autodo.runs.model import queue_name
from autodo.store.schema import workers


class RunControl:
    """A DBOS client on the runs database."""

    def __init__(self, settings: Settings, engine: sa.Engine) -> None:
        self.settings = settings
        self.engine = engine

    def _workers_have_started(self) -> bool:
        """Whether any worker ever ran on this store (and so created DBOS's tables)."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(workers.c.id).limit(1)).first() is not None

    def _client(self) -> DBOSClient:
        return DBOSClient(system_database_url=self.settings.system_database_url)

    def deliver_answer(self, run_id: str, item_id: str, answer: str) -> None:
        """Wake the run waiting on this item; the key makes a repeated delivery harmless."""
        if not self._workers_have_started():
            return  # no workflow exists to wake; a run reads the answer from the store when it starts
        client = self._client()
        try:
            client.send(run_id, answer, topic=f"answer:{item_id}", idempotency_key=f"answer:{item_id}")
        finally:
            client.destroy()

    def resume(self, run_id: str, profile: str) -> None:
        """Put a paused (DBOS-cancelled) run back on its profile's queue; it replays to where it stopped."""
        client = self._client()
        try:
            client.resume_workflow(run_id, queue_name=queue_name(profile))
        finally:
            client.destroy()

    def cancel(self, run_id: str) -> None:
        client = self._client()
        try:
            client.cancel_workflow(run_id)
        finally:
            client.destroy()
