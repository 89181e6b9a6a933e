"""A worker process: triage new tasks, start ready ones on the profile queues, run workflows."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import sqlalchemy as sa
from dbos import DBOS, Queue, SetWorkflowID
from pydantic_ai import Agent

from autodo import __version__
from autodo.agents.builtin import build_agent
from autodo.agents.choice import HOW_TO_CONFIGURE, default_model, parse_model
from autodo.agents.interruptible import InterruptibleModel
from autodo.agents.models import build_model
from autodo.agents.profiles import Profile
from autodo.desk import Desk
from autodo.errors import AutodoError, ConfigError
from autodo.events import append_event
from autodo.runs import leases, runtime, signals, workflow
from autodo.runs.model import ACTIVE_RUN_STATES, RunState, queue_name
from autodo.runs.store import create_run, tasks_to_start, unenqueued_runs, update_run
from autodo.steering.store import pending_interrupts
from autodo.store import now
from autodo.store.db import enable_wal
from autodo.store.schema import profiles as profiles_table
from autodo.store.schema import runs, tasks
from autodo.tasks import triage
from autodo.tasks.board import list_tasks, promote_ready
from autodo.tasks.model import State

POLL_SECONDS = 0.2
WATCH_SECONDS = 0.05  # how often the person's interrupts, pauses and cancels are looked for
TRIAGE_PARALLEL = 4
TRIAGE_RETRY_SECONDS = 60.0


def default_worker_id() -> str:
    """Stable across restarts of the same worker, so DBOS recovers its runs at once."""
    return f"{socket.gethostname()}-1"


@dataclass
class Worker:
    desk: Desk
    agents: int = 4
    worker_id: str = field(default_factory=default_worker_id)
    queues: dict[str, Queue] = field(default_factory=dict)
    triage_agent: Agent[None, triage.TriageDecision] | None = None
    _triaging: set[str] = field(default_factory=set)
    _triage_retry_at: dict[str, float] = field(default_factory=dict)  # task id → when to try again
    lease_seconds: float = leases.DEFAULT_LEASE_SECONDS
    _fired: set[str] = field(default_factory=set)  # interrupts already signalled

    def launch(self) -> None:
        """Build the agents, start DBOS (which resumes this worker's unfinished runs), open the queues."""
        settings, profiles = self.desk.settings, self.desk.profiles
        engine = self.desk.engine
        rt = runtime.Runtime(settings, engine, profiles, self.worker_id)
        for profile in profiles.profile.values():
            rt.agents[profile.name] = build_agent(profile, InterruptibleModel(self._model_for(profile)))
        self.triage_agent = self._build_triage_agent()
        runtime.install(rt)
        with engine.begin() as conn:
            leases.register(conn, self.worker_id, self.lease_seconds)
        _sync_profiles(engine, list(profiles.profile.values()))
        if settings.system_database_url.startswith("sqlite"):
            enable_wal(settings.system_database_url)
        DBOS(config=_dbos_config(settings.system_database_url, self.worker_id))
        DBOS.launch()
        for profile in profiles.profile.values():
            self.queues[profile.name] = DBOS.register_queue(
                queue_name(profile.name),
                worker_concurrency=min(self.agents, profile.concurrency),
                global_concurrency=profile.concurrency,
                polling_interval_sec=POLL_SECONDS,
            )

    def _model_for(self, profile: Profile) -> Any:
        spec = profile.model or default_model(self.desk.settings)
        if spec is None:
            raise ConfigError(f"profile {profile.name!r} has no model and {HOW_TO_CONFIGURE}")
        choice = parse_model(spec, profile.base_url, profile.api_key_env)
        return build_model(choice, self.desk.settings, profile.request_timeout, profile.max_retries)

    def _build_triage_agent(self) -> Agent[None, triage.TriageDecision] | None:
        profiles = self.desk.profiles
        spec = profiles.triage_model or default_model(self.desk.settings)
        if spec is None:
            return None
        choice = parse_model(spec, profiles.triage_base_url)
        model = build_model(choice, self.desk.settings, retries=profiles.triage_max_retries)
        return triage.triage_agent(model)

    def shutdown(self) -> None:
        DBOS.destroy(destroy_registry=False)
        with self.desk.engine.begin() as conn:
            leases.stop(conn, self.worker_id)

    async def serve(self, until: Callable[[], bool] | None = None) -> None:
        """Dispatch until ``until()`` says stop (or forever)."""
        async with anyio.create_task_group() as group:
            group.start_soon(self._watch_signals)
            group.start_soon(self._keep_lease)
            while until is None or not until():
                self._start_triage(group)
                await self.dispatch()
                await anyio.sleep(POLL_SECONDS)
            group.cancel_scope.cancel()

    async def _keep_lease(self) -> None:
        """Renew this worker's lease, and take over the runs of workers whose lease lapsed."""
        while True:
            await anyio.to_thread.run_sync(self._renew_and_take_over)
            await anyio.sleep(self.lease_seconds / 3)

    def _renew_and_take_over(self) -> None:
        with self.desk.engine.begin() as conn:
            leases.renew(conn, self.worker_id)
            lapsed = leases.claim_lapsed(conn, self.worker_id)
        if lapsed:
            # DBOS puts their unfinished workflows back on their queues, to resume from the last step.
            DBOS._recover_pending_workflows(lapsed)

    async def _watch_signals(self) -> None:
        """Turn the person's interrupts, pauses and cancels in the store into signals to local runs."""
        while True:
            await anyio.sleep(WATCH_SECONDS)
            local = signals.local_runs()
            if local:
                await anyio.to_thread.run_sync(self._signal_runs, local)

    def _signal_runs(self, local: list[str]) -> None:
        with self.desk.engine.connect() as conn:
            interrupts = pending_interrupts(conn, local)
            halted = conn.execute(
                sa.select(runs.c.id, runs.c.state).where(
                    runs.c.id.in_(local), runs.c.state.in_([RunState.PAUSED.value, RunState.CANCELLED.value])
                )
            ).all()
        for message in interrupts:
            signal = signals.signal_for(message.run_id)
            if signal is not None and message.id not in self._fired:
                self._fired.add(message.id)
                signal.fire(f"interrupted by {message.author}")
        for run_id, state in halted:
            signal = signals.signal_for(run_id)
            if signal is not None:
                signal.fire(f"{state} by the person", halt=True)

    def _start_triage(self, group: anyio.abc.TaskGroup) -> None:
        if self.triage_agent is None:
            return
        with self.desk.engine.connect() as conn:
            new = [task for task in list_tasks(conn, [State.NEW]) if self._triage_due(task.id)]
        for task in new[: max(0, TRIAGE_PARALLEL - len(self._triaging))]:
            self._triaging.add(task.id)
            group.start_soon(self._triage_one, task.id)

    def _triage_due(self, task_id: str) -> bool:
        return task_id not in self._triaging and self._triage_retry_at.get(task_id, 0.0) <= time.monotonic()

    async def _triage_one(self, task_id: str) -> None:
        assert self.triage_agent is not None
        try:
            with self.desk.engine.connect() as conn:
                task = list_tasks(conn, [State.NEW])
            target = next((t for t in task if t.id == task_id), None)
            if target is not None:
                decision = await triage.decide_lane(self.triage_agent, target)
                with self.desk.engine.begin() as conn:
                    triage.apply_decision(conn, task_id, decision)
        except Exception as error:
            self._note_triage_failure(task_id, error)
        finally:
            self._triaging.discard(task_id)

    def _note_triage_failure(self, task_id: str, error: Exception) -> None:
        # Try again later, not in a hot loop; the task stays in the Inbox column meanwhile.
        self._triage_retry_at[task_id] = time.monotonic() + TRIAGE_RETRY_SECONDS
        message = error.message if isinstance(error, AutodoError) else f"{type(error).__name__}: {error}"
        with self.desk.engine.begin() as conn:
            append_event(conn, task_id, "triage.failed", {"error": message})

    async def dispatch(self) -> None:
        """Unblock ready tasks, claim queued ones and put their runs on the profile queues."""
        with self.desk.engine.begin() as conn:
            promote_ready(conn)
            for task_id, profile in tasks_to_start(conn):
                create_run(conn, task_id, profile)
        with self.desk.engine.connect() as conn:
            pending = unenqueued_runs(conn)
        for run in pending:
            await self._enqueue(run.id, run.profile)

    async def _enqueue(self, run_id: str, profile: str) -> None:
        queue = self.queues.get(profile)
        if queue is None:
            return  # a profile this worker does not know; another worker with it will take the run
        with SetWorkflowID(run_id):  # the same id twice is one workflow, so a repeat is harmless
            await queue.enqueue_async(workflow.run_task, run_id)
        with self.desk.engine.begin() as conn:
            update_run(conn, run_id, enqueued=True)

    def settled(self) -> bool:
        """True when nothing can move without the person: no run active, nothing to triage or start."""
        with self.desk.engine.connect() as conn:
            to_triage = [t.id for t in list_tasks(conn, [State.NEW]) if t.id not in self._triage_retry_at]
            return _settled(conn) and not (self.triage_agent and to_triage)


def _settled(conn: sa.Connection) -> bool:
    # Blocked tasks need no check of their own: a blocker finishes only through an active run or
    # the person, and finishing promotes its dependents in the same transaction.
    busy = conn.execute(sa.select(sa.func.count()).where(tasks.c.state == State.QUEUED.value)).scalar()
    # A paused run moves only when the person resumes it.
    moving = [state for state in ACTIVE_RUN_STATES if state != RunState.PAUSED.value]
    active = conn.execute(sa.select(sa.func.count()).where(runs.c.state.in_(moving))).scalar()
    return not busy and not active


def _sync_profiles(engine: sa.Engine, profiles: list[Profile]) -> None:
    with engine.begin() as conn:
        for profile in profiles:
            conn.execute(profiles_table.delete().where(profiles_table.c.name == profile.name))
            conn.execute(
                profiles_table.insert().values(name=profile.name, config=profile.model_dump(), updated_at=now())
            )


def _dbos_config(system_database_url: str, worker_id: str) -> Any:
    return {
        "name": "autodo",
        "system_database_url": system_database_url,
        "executor_id": worker_id,
        # Pinned: by default DBOS hashes the workflow source, and a new hash strands in-flight runs.
        "application_version": __version__,
        "notification_listener_polling_interval_sec": 0.1,
        "log_level": "WARNING",
    }
