"""A scripted stand-in for an OpenAI-compatible model server, for tests and demos.

The server answers ``POST /v1/chat/completions`` from a ``StubScript``: the first rule whose match
fits the request answers, with the turn numbered by how many assistant messages the request
already holds. Choosing the turn from the request (not from server memory) keeps replays after a
crash deterministic; the only state is the error/malformed counters per (rule, turn) and the log.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import re
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from autodo.testing._stub_script import ChatRequest, InjectedError, StubRule, StubScript, StubTurn, load_script

_MALFORMED_BODY = b"<html>stub model: deliberately malformed response {"
_FIRST_USER_LIMIT = 80

_Call = tuple[str, str, str]  # (id, name, arguments JSON)


@dataclass(frozen=True)
class RecordedRequest:
    """One chat-completions request as the stub saw it and answered it."""

    rule: str | None
    turn: int
    stream: bool
    status: int
    first_user: str
    authorization: bool = False
    said: str = ""  # user messages after the first (steering), joined
    at: float = 0.0  # when the request arrived (epoch seconds)

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON-ready dict (as served by ``GET /_stub/requests``)."""
        return asdict(self)


@dataclass
class _Response:
    """Everything the HTTP handler needs to send; built without touching the socket."""

    status: int
    chunks: list[bytes]
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class _Reply:
    """A scripted assistant reply, ready to render as a completion or as stream chunks."""

    completion_id: str
    created: int
    model: str
    content: str | None
    tool_calls: list[_Call]
    usage: dict[str, int]

    @property
    def finish_reason(self) -> str:
        """``tool_calls`` when the reply calls tools, else ``stop``."""
        return "tool_calls" if self.tool_calls else "stop"


class _Engine:
    """Decides every response; thread-safe because handler threads share it."""

    def __init__(self, script: StubScript) -> None:
        self.script = script
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, int], int] = {}
        self._log: list[RecordedRequest] = []
        self._ids = itertools.count(1)

    def log(self) -> list[RecordedRequest]:
        """A snapshot of the request log."""
        with self._lock:
            return list(self._log)

    def reset(self) -> None:
        """Forget the error/malformed counters and the request log."""
        with self._lock:
            self._counters.clear()
            self._log.clear()

    def chat(self, raw: bytes, authorization: bool) -> _Response:
        """The response to one ``POST /v1/chat/completions`` body."""
        body = _decode_object(raw)
        request = ChatRequest.from_body(body or {})
        if body is None:
            message = "the request body must be a JSON object with a `messages` list"
            return self._record(None, request, authorization, _error(400, message, "stub_bad_request"))
        rule = self.script.find_rule(request)
        if rule is None:
            return self._record(None, request, authorization, _no_match(request, self.script))
        return self._record(rule.name, request, authorization, self._answer(rule, request))

    def _answer(self, rule: StubRule, request: ChatRequest) -> _Response:
        index = request.assistant_turns
        if index >= len(rule.turn):
            return _beyond_script(rule, index)
        turn = rule.turn[index]
        response = self._pick(rule, index, turn, request)
        response.delay = turn.delay
        return response

    def _pick(self, rule: StubRule, index: int, turn: StubTurn, request: ChatRequest) -> _Response:
        seen = self._bump((rule.name, index))
        errors = turn.error.times if turn.error else 0
        malformed = turn.malformed.times if turn.malformed else 0
        if turn.error is not None and seen < errors:
            return _injected_error(turn.error)
        if seen < errors + malformed:
            return _malformed(request.stream)
        reply = _build_reply(rule, index, turn, request, next(self._ids))
        return _stream_response(reply, request.include_usage) if request.stream else _completion_response(reply)

    def _bump(self, key: tuple[str, int]) -> int:
        with self._lock:
            seen = self._counters.get(key, 0)
            self._counters[key] = seen + 1
        return seen

    def _record(self, rule: str | None, request: ChatRequest, authorization: bool, response: _Response) -> _Response:
        entry = RecordedRequest(
            rule, request.assistant_turns, request.stream, response.status, request.first_user, authorization,
            request.later_user, request.received_at,
        )  # fmt: skip
        with self._lock:
            self._log.append(entry)
        return response


def _decode_object(raw: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _build_reply(rule: StubRule, index: int, turn: StubTurn, request: ChatRequest, serial: int) -> _Reply:
    # Rule names are free text; ids stay to safe characters like real providers' ids.
    slug = re.sub(r"[^A-Za-z0-9_-]", "_", rule.name)
    calls = [
        (f"call_{slug}_{index}_{position}", call.name, call.arguments_json())
        for position, call in enumerate(turn.tool_calls)
    ]
    # An error-only turn still owes a normal reply once its errors are used up: an empty text.
    content = turn.content if turn.content is not None or calls else ""
    return _Reply(
        completion_id=f"chatcmpl-stub-{serial}",
        created=int(time.time()),
        model=request.model or "stub",
        content=content,
        tool_calls=calls,
        usage=_usage(turn, request, content, calls),
    )


def _usage(turn: StubTurn, request: ChatRequest, content: str | None, calls: list[_Call]) -> dict[str, int]:
    if turn.usage is not None:
        prompt, completion = turn.usage.prompt_tokens, turn.usage.completion_tokens
    else:
        # Roughly four characters a token, like real tokenizers on English text.
        reply_chars = len(content or "") + sum(len(name) + len(args) for _, name, args in calls)
        prompt, completion = max(1, request.prompt_chars // 4), max(1, reply_chars // 4)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _json_response(status: int, payload: object, headers: dict[str, str] | None = None) -> _Response:
    return _Response(status, [json.dumps(payload).encode()], headers=headers or {})


def _completion_response(reply: _Reply) -> _Response:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            for call_id, name, arguments in reply.tool_calls
        ]
    choice = {"index": 0, "message": message, "finish_reason": reply.finish_reason, "logprobs": None}
    return _json_response(200, {**_envelope(reply, "chat.completion"), "choices": [choice], "usage": reply.usage})


def _envelope(reply: _Reply, kind: str) -> dict[str, Any]:
    return {"id": reply.completion_id, "object": kind, "created": reply.created, "model": reply.model}


def _stream_response(reply: _Reply, include_usage: bool) -> _Response:
    events = [_chunk(reply, {"role": "assistant", "content": "" if reply.content else None})]
    events += [_chunk(reply, {"content": piece}) for piece in _split(reply.content or "", 3)]
    for position, call in enumerate(reply.tool_calls):
        events += _tool_call_chunks(reply, position, call)
    events.append(_chunk(reply, {}, reply.finish_reason))
    if include_usage:
        events.append({**_envelope(reply, "chat.completion.chunk"), "choices": [], "usage": reply.usage})
    chunks = [b"data: " + json.dumps(event).encode() + b"\n\n" for event in events]
    return _Response(200, [*chunks, b"data: [DONE]\n\n"], content_type="text/event-stream")


def _chunk(reply: _Reply, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
    return {**_envelope(reply, "chat.completion.chunk"), "choices": [choice]}


def _tool_call_chunks(reply: _Reply, position: int, call: _Call) -> list[dict[str, Any]]:
    """A tool call as real servers stream it: id and name first, then the arguments in pieces."""
    call_id, name, arguments = call
    head = {"index": position, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
    events = [_chunk(reply, {"tool_calls": [head]})]
    for piece in _split(arguments, 2):
        events.append(_chunk(reply, {"tool_calls": [{"index": position, "function": {"arguments": piece}}]}))
    return events


def _split(text: str, parts: int) -> list[str]:
    size = max(1, math.ceil(len(text) / parts))
    return [text[start : start + size] for start in range(0, len(text), size)]


def _error(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> _Response:
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return _json_response(status, body, headers)


def _injected_error(spec: InjectedError) -> _Response:
    headers = {} if spec.retry_after is None else {"Retry-After": format(spec.retry_after, "g")}
    return _error(spec.status, spec.message, "stub_injected_error", headers)


def _malformed(stream: bool) -> _Response:
    if stream:
        return _Response(200, [b"data: " + _MALFORMED_BODY + b"\n\n"], content_type="text/event-stream")
    return _Response(200, [_MALFORMED_BODY])


def _beyond_script(rule: StubRule, index: int) -> _Response:
    message = (
        f"stub model: rule {rule.name!r} has {len(rule.turn)} turns; the request is at turn {index} "
        f"(it holds {index} assistant messages). Add [[rule.turn]] entries or end the conversation sooner."
    )
    return _error(400, message, "stub_turn_out_of_range")


def _no_match(request: ChatRequest, script: StubScript) -> _Response:
    first_user = request.first_user
    if len(first_user) > _FIRST_USER_LIMIT:
        first_user = first_user[:_FIRST_USER_LIMIT] + "..."
    names = ", ".join(repr(rule.name) for rule in script.rule)
    message = (
        f"stub model: no rule matched the request with first user message {first_user!r}; "
        f"rules tried in order: {names}. Add a matching rule or a fallback rule without `match`."
    )
    return _error(400, message, "stub_no_rule_matched")


class _StubHTTPServer(ThreadingHTTPServer):
    """The HTTP server plus the engine and a stop signal its handlers share."""

    daemon_threads = True

    def __init__(self, host: str, port: int, engine: _Engine) -> None:
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.engine = engine
        self.stopping = threading.Event()
        super().__init__((host, port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    """Routes requests to the engine; never decides anything itself."""

    server: _StubHTTPServer

    def do_GET(self) -> None:
        """Serve the model list and the request log."""
        path = urlsplit(self.path).path.rstrip("/")
        if path == "/v1/models":
            models = [{"id": n, "object": "model", "created": 0, "owned_by": "autodo-stub"} for n in self._names()]
            self._send(_json_response(200, {"object": "list", "data": models}))
        elif path == "/_stub/requests":
            self._send(_json_response(200, [entry.to_json() for entry in self.server.engine.log()]))
        else:
            self._send(_error(404, f"stub model: no route GET {path}", "stub_not_found"))

    def do_POST(self) -> None:
        """Answer chat completions and reset the stub."""
        path = urlsplit(self.path).path.rstrip("/")
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if path == "/v1/chat/completions":
            # Any Authorization is accepted; we only note that one came, for tests that care.
            self._send(self.server.engine.chat(raw, "Authorization" in self.headers))
        elif path == "/_stub/reset":
            self.server.engine.reset()
            self._send(_json_response(200, {"reset": True}))
        else:
            self._send(_error(404, f"stub model: no route POST {path}", "stub_not_found"))

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests and the CLI decide what to print."""

    def _names(self) -> list[str]:
        return self.server.engine.script.model_names()

    def _send(self, response: _Response) -> None:
        # Waiting on the stop event instead of sleeping lets stop() cut a scripted delay short.
        if response.delay and self.server.stopping.wait(response.delay):
            return
        # The client may have given up first (e.g. its timeout fired during a delay).
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._write(response)

    def _write(self, response: _Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        if response.content_type == "application/json":
            self.send_header("Content-Length", str(sum(len(chunk) for chunk in response.chunks)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        for chunk in response.chunks:
            self.wfile.write(chunk)
            self.wfile.flush()


class StubModelServer:
    """A scripted OpenAI-compatible chat-completions server on a background thread; a context manager."""

    def __init__(self, script: StubScript | Path | str, host: str = "127.0.0.1", port: int = 0) -> None:
        loaded = script if isinstance(script, StubScript) else load_script(Path(script))
        self._engine = _Engine(loaded)
        self._host, self._port = host, port
        self._httpd: _StubHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL for OpenAI clients, ending in ``/v1``."""
        if self._httpd is None:
            raise RuntimeError("the stub model server is not running; call start() or use it as a context manager")
        host, port = self._httpd.server_address[:2]
        shown = f"[{host!s}]" if ":" in str(host) else str(host)
        return f"http://{shown}:{port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the chat-completions requests answered so far."""
        return self._engine.log()

    def reset(self) -> None:
        """Forget the error/malformed counters and the request log."""
        self._engine.reset()

    def start(self) -> None:
        """Bind the port and serve on a daemon thread."""
        if self._httpd is not None:
            raise RuntimeError("the stub model server is already running")
        self._httpd = _StubHTTPServer(self._host, self._port, self._engine)
        # A short poll interval keeps stop() fast; the default 0.5 s adds up across many tests.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="stub-model", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        httpd, thread = self._httpd, self._thread
        self._httpd, self._thread = None, None
        if httpd is None or thread is None:
            return
        httpd.stopping.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()

    def __enter__(self) -> StubModelServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve_forever(script_path: Path, host: str, port: int) -> None:
    """Serve ``script_path`` in the calling thread until interrupted; prints nothing itself."""
    httpd = _StubHTTPServer(host, port, _Engine(load_script(script_path)))
    try:
        httpd.serve_forever()
    finally:
        httpd.stopping.set()
        httpd.server_close()
