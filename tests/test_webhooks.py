"""Outgoing webhooks: signed, in order, retried with backoff, resumed after a restart, configured by file."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio.from_thread
import pytest

from autodo.desk import Desk
from autodo.errors import ConfigError
from autodo.events import head_seq
from autodo.server.webhooks import (
    DEFAULT_EVENTS,
    RetryPolicy,
    Webhook,
    WebhookDispatcher,
    load_webhooks,
    read_cursor,
    retry_after_seconds,
    sign,
    verify_signature,
)
from autodo.tasks.model import Lane, NewTask
from tests.support import wait_for

SECRET = "a long random string the receiver knows too"
FAST = RetryPolicy(attempts=3, wait_initial=0.05, wait_max=0.2, wait_jitter=0, retry_after_max=0.05)
DROP = 0  # an answer that closes the connection without any response
Answer = int | tuple[int, dict[str, str]]


@dataclass
class Request:
    headers: dict[str, str]  # names in lower case
    body: bytes
    status: int
    at: float

    @property
    def payload(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.body)
        return loaded

    @property
    def task_id(self) -> str:
        return str(self.payload["task_id"])


class Receiver:
    """A webhook receiver on 127.0.0.1 that answers from a script (then 200) and keeps every request."""

    def __init__(self) -> None:
        self.answers: deque[Answer] = deque()
        self.requests: list[Request] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/autodo"

    def script(self, *answers: Answer) -> None:
        self.answers.extend(answers)

    def accepted(self) -> list[Request]:
        return [request for request in self.requests if 200 <= request.status < 300]

    def statuses_for(self, task_id: str) -> list[int]:
        return [request.status for request in self.requests if request.task_id == task_id]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _answer(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str]]:
        answer = self.answers.popleft() if self.answers else 200
        status, extra = answer if isinstance(answer, tuple) else (answer, {})
        self.requests.append(Request(headers, body, status, time.monotonic()))
        return status, extra

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status, extra = receiver._answer({k.lower(): v for k, v in self.headers.items()}, body)
                if status == DROP:
                    self.close_connection = True
                    return
                self.send_response(status)
                for name, value in {**extra, "Content-Length": "0"}.items():
                    self.send_header(name, value)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver()
    yield started
    started.close()


def hook_for(receiver: Receiver, events: tuple[str, ...] = DEFAULT_EVENTS) -> Webhook:
    return Webhook(url=receiver.url, secret=SECRET, events=events)


@contextmanager
def dispatching(desk: Desk, *hooks: Webhook, retry: RetryPolicy = FAST) -> Iterator[None]:
    """A dispatcher in a background event loop; every cursor is in place when the block starts."""
    dispatcher = WebhookDispatcher(desk.engine, list(hooks), poll_seconds=0.02, retry=retry)
    with anyio.from_thread.start_blocking_portal() as portal:
        future, _ = portal.start_task(dispatcher.run)
        try:
            yield
        finally:
            if future.done():
                future.result()  # it died: show why
            future.cancel()


def delivered(receiver: Receiver, count: int) -> None:
    wait_for(lambda: len(receiver.accepted()) >= count, timeout=10, what=f"{count} deliveries")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# --- delivery ------------------------------------------------------------------------------------


def test_events_of_the_wanted_kinds_arrive_in_order_and_others_are_not_sent(desk: Desk, receiver: Receiver) -> None:
    with dispatching(desk, hook_for(receiver)):
        task = desk.add(NewTask(title="sign the lease"))
        desk.set_budget(task.id, "turns=5")  # budget.set: not a task.* or inbox.* kind
        desk.move(task.id, Lane.HUMAN, "only you can sign it")
        delivered(receiver, 4)
    wanted = [event for event in desk.task(task.id).events if event.kind != "budget.set"]
    payloads = [request.payload for request in receiver.requests]
    assert [p["kind"] for p in payloads] == ["task.created", "task.lane", "task.state", "inbox.opened"]
    assert [p["id"] for p in payloads] == [event.seq for event in wanted]
    assert [p["data"] for p in payloads] == [event.data for event in wanted]
    assert all(p["task"]["id"] == task.id and p["task"]["title"] == "sign the lease" for p in payloads)


def test_every_delivery_is_signed_and_the_receiver_can_verify_it(desk: Desk, receiver: Receiver) -> None:
    with dispatching(desk, hook_for(receiver)):
        desk.add(NewTask(title="check the signature"))
        delivered(receiver, 1)
    (request,) = receiver.requests
    headers = request.headers
    assert verify_signature(SECRET, headers["x-autodo-timestamp"], request.body, headers["x-autodo-signature"])
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "autodo-webhooks"
    assert headers["x-autodo-event"] == request.payload["kind"] == "task.created"
    assert headers["x-autodo-delivery"] == str(request.payload["id"])


def test_a_signature_fails_for_another_body_another_secret_or_an_old_timestamp() -> None:
    sent_at, body = 1_700_000_000, b'{"id":1}'
    signature = sign(SECRET, sent_at, body)
    assert verify_signature(SECRET, str(sent_at), body, signature, received_at=sent_at + 299)
    assert not verify_signature(SECRET, str(sent_at), b'{"id":2}', signature, received_at=sent_at)
    assert not verify_signature("another secret", str(sent_at), body, signature, received_at=sent_at)
    assert not verify_signature(SECRET, str(sent_at), body, signature, received_at=sent_at + 301)
    assert not verify_signature(SECRET, "yesterday", body, signature, received_at=sent_at)


def test_a_receiver_failing_twice_with_503_gets_the_event_again_with_backoff(desk: Desk, receiver: Receiver) -> None:
    receiver.script(503, 503)
    with dispatching(desk, hook_for(receiver, ("task.created",))):
        first = desk.add(NewTask(title="first"))
        second = desk.add(NewTask(title="second"))
        delivered(receiver, 2)
    assert receiver.statuses_for(first.id) == [503, 503, 200]
    assert receiver.statuses_for(second.id) == [200]
    tries = [request.at for request in receiver.requests[:3]]
    assert tries[1] - tries[0] >= FAST.wait_initial
    assert tries[2] - tries[1] >= 2 * FAST.wait_initial


def test_a_retry_after_is_honoured_up_to_its_cap(desk: Desk, receiver: Receiver) -> None:
    receiver.script((429, {"Retry-After": "3600"}))
    slow_backoff = RetryPolicy(attempts=3, wait_initial=30, wait_jitter=0, retry_after_max=0.05)
    with dispatching(desk, hook_for(receiver), retry=slow_backoff):
        task = desk.add(NewTask(title="rate limited"))
        delivered(receiver, 1)  # in time only if the capped Retry-After replaced the 30 s backoff
    assert receiver.statuses_for(task.id) == [429, 200]


def test_retry_after_is_read_as_seconds_or_a_date() -> None:
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds(" 0 ") == 0.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: at once
    assert retry_after_seconds("soon") is None


def test_a_400_is_not_retried_and_the_next_event_is_sent(desk: Desk, receiver: Receiver) -> None:
    receiver.script(400)
    with dispatching(desk, hook_for(receiver, ("task.created",))):
        rejected = desk.add(NewTask(title="rejected"))
        taken = desk.add(NewTask(title="taken"))
        delivered(receiver, 1)
    assert receiver.statuses_for(rejected.id) == [400]
    assert receiver.statuses_for(taken.id) == [200]


def test_a_dropped_connection_is_retried(desk: Desk, receiver: Receiver) -> None:
    receiver.script(DROP)
    with dispatching(desk, hook_for(receiver)):
        task = desk.add(NewTask(title="flaky network"))
        delivered(receiver, 1)
    assert receiver.statuses_for(task.id) == [DROP, 200]


def test_an_event_is_given_up_after_the_last_attempt_and_logged(
    desk: Desk, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.script(*[503] * FAST.attempts)
    with caplog.at_level(logging.WARNING), dispatching(desk, hook_for(receiver, ("task.created",))):
        lost = desk.add(NewTask(title="lost"))
        kept = desk.add(NewTask(title="kept"))
        delivered(receiver, 1)
    assert receiver.statuses_for(lost.id) == [503] * FAST.attempts
    assert receiver.statuses_for(kept.id) == [200]
    assert any("gave up on event" in record.getMessage() for record in caplog.records)


def test_a_dead_receiver_does_not_hold_up_another_webhook(desk: Desk, receiver: Receiver) -> None:
    dead = Webhook(url=f"http://127.0.0.1:{closed_port()}/hooks", secret=SECRET)
    patient = RetryPolicy(attempts=10, wait_initial=30, wait_jitter=0)
    with dispatching(desk, dead, hook_for(receiver, ("task.created",)), retry=patient):
        tasks = [desk.add(NewTask(title=f"task {n}")) for n in range(3)]
        delivered(receiver, 3)
    assert [request.task_id for request in receiver.requests] == [task.id for task in tasks]


# --- cursors -------------------------------------------------------------------------------------


def test_a_restarted_dispatcher_resumes_after_the_last_delivered_event(desk: Desk, receiver: Receiver) -> None:
    hook = hook_for(receiver, ("task.created",))
    with dispatching(desk, hook):
        before = desk.add(NewTask(title="before the restart"))
        wait_for(lambda: read_cursor(desk.engine, hook) == head_seq(desk.engine), timeout=10, what="the cursor")
    during = desk.add(NewTask(title="while it was down"))
    with dispatching(desk, hook):
        after = desk.add(NewTask(title="after the restart"))
        delivered(receiver, 3)
    assert [request.task_id for request in receiver.requests] == [before.id, during.id, after.id]


def test_a_new_webhook_starts_at_the_head_of_the_log(desk: Desk, receiver: Receiver) -> None:
    desk.add(NewTask(title="before the webhook existed"))
    with dispatching(desk, hook_for(receiver)):
        new = desk.add(NewTask(title="after"))
        delivered(receiver, 1)
    assert [request.task_id for request in receiver.requests] == [new.id]


# --- configuration -------------------------------------------------------------------------------


def test_no_webhooks_file_means_no_webhooks(home: Path) -> None:
    assert load_webhooks(home) == []


def test_webhooks_are_read_with_defaults_and_secrets_from_the_environment(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", "from the environment")
    home.mkdir()
    (home / "webhooks.toml").write_text(
        '[[webhook]]\nurl = "https://example.test/a"\nsecret = "s3cret"\n\n'
        '[[webhook]]\nurl = "http://127.0.0.1:9/b"\nsecret_env = "HOOK_SECRET"\nevents = ["task.state"]\ntimeout = 3\n'
    )
    assert load_webhooks(home) == [
        Webhook(url="https://example.test/a", secret="s3cret", events=("task.*", "inbox.*")),
        Webhook(url="http://127.0.0.1:9/b", secret="from the environment", events=("task.state",), timeout=3),
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param('url = "ftp://example.test/a"\nsecret = "s"', "webhook 1 (ftp://example.test/a): url:", id="url"),
        pytest.param('url = "https://e.test/a"', 'give exactly one of secret = "…" or secret_env', id="no-secret"),
        pytest.param('url = "https://e.test/a"\nsecret_env = "UNSET_HOOK_SECRET"', "UNSET_HOOK_SECRET", id="env"),
        pytest.param('url = "https://e.test/a"\nsecret = "s"\nscret = "x"', "scret: Extra inputs", id="typo"),
        pytest.param('url = "https://e.test/a"\nsecret = "s"\nevents = []', "events:", id="no-events"),
        pytest.param('url = "https://e.test/a\nsecret = "s"', "is not valid TOML", id="toml"),
    ],
)
def test_a_bad_webhook_table_gives_a_config_error_naming_it(
    home: Path, monkeypatch: pytest.MonkeyPatch, text: str, problem: str
) -> None:
    monkeypatch.delenv("UNSET_HOOK_SECRET", raising=False)
    home.mkdir()
    (home / "webhooks.toml").write_text(f"[[webhook]]\n{text}\n")
    with pytest.raises(ConfigError, match=r"webhooks\.toml") as raised:
        load_webhooks(home)
    assert problem in raised.value.message


def test_a_single_bracket_webhook_table_is_refused(home: Path) -> None:
    home.mkdir()
    (home / "webhooks.toml").write_text('[webhook]\nurl = "https://e.test/a"\nsecret = "s"\n')
    with pytest.raises(ConfigError, match=r"\[\[webhook\]\] table"):
        load_webhooks(home)


def test_two_webhooks_with_one_url_are_refused(home: Path) -> None:
    home.mkdir()
    table = '[[webhook]]\nurl = "https://e.test/a"\nsecret = "s"\n'
    (home / "webhooks.toml").write_text(table + table)
    with pytest.raises(ConfigError, match="webhook 2 repeats the url of webhook 1"):
        load_webhooks(home)
