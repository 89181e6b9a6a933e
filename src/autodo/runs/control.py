"""Talk to running workflows from any process (the CLI, the API): answers and cancellation."""

from __future__ import annotations

from dbos import DBOSClient

from autodo.config import Settings


class RunControl:
    """A DBOS client on the runs database."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _client(self) -> DBOSClient:
        return DBOSClient(system_database_url=self.settings.system_database_url)

    def deliver_answer(self, run_id: str, item_id: str, answer: str) -> None:
        """Wake the run waiting on this item; the key makes a repeated delivery harmless."""
        client = self._client()
        try:
            client.send(run_id, answer, topic=f"answer:{item_id}", idempotency_key=f"answer:{item_id}")
        finally:
            client.destroy()

    def cancel(self, run_id: str) -> None:
        client = self._client()
        try:
            client.cancel_workflow(run_id)
        finally:
            client.destroy()
