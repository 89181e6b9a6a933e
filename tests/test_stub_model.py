"""The scripted stub model server, exercised over real HTTP with the real openai client and pydantic-ai."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam, ChatCompletionToolParam
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from autodo.errors import ConfigError
from autodo.testing import RecordedRequest, StubModelServer, StubScript, load_script

pytestmark = pytest.mark.storeless  # never opens the store: runs once, in the SQLite pass

DOCS = Path(__file__).resolve().parents[1] / "docs" / "stub-model.md"


@dataclass
class Stub:
    """A running stub server and an openai client pointed at it."""

    server: StubModelServer
    client: openai.OpenAI


StartStub = Callable[..., Stub]


@pytest.fixture
def start_stub() -> Iterator[StartStub]:
    """Start stub servers from script dicts; every one is stopped (and its client closed) after the test."""
    started: list[Stub] = []

    def start(script: dict[str, Any], **client_options: Any) -> Stub:
        server = StubModelServer(StubScript.model_validate(script))
        server.start()
        client = openai.OpenAI(base_url=server.url, api_key="x", max_retries=0, **client_options)
        started.append(Stub(server, client))
        return started[-1]

    yield start
    for stub in started:
        stub.client.close()
        stub.server.stop()


def one_rule(*turns: dict[str, Any], **rule: Any) -> dict[str, Any]:
    """A script with a single rule named 'r' answering ``turns``."""
    return {"rule": [{"name": "r", **rule, "turn": list(turns)}]}


def user(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


def tool(name: str) -> ChatCompletionToolParam:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object", "properties": {}}}}


def ask(stub: Stub, text: str = "hi", **options: Any) -> ChatCompletion:
    reply: ChatCompletion = stub.client.chat.completions.create(model="stub", messages=user(text), **options)
    return reply


def error_text(exc: openai.APIStatusError) -> str:
    return str(exc.response.json()["error"]["message"])


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- replies --------------------------------------------------------------------------------------


def test_text_turn_comes_back_as_a_chat_completion(start_stub: StartStub) -> None:
    stub = start_stub(one_rule({"content": "Hello!"}))
    completion = ask(stub)
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == "Hello!"
    assert completion.choices[0].finish_reason == "stop"


def test_tool_call_arguments_round_trip_as_json(start_stub: StartStub) -> None:
    arguments = {"path": "poem.txt", "content": "a\nb", "lines": [1, 2]}
    stub = start_stub(one_rule({"tool_calls": [{"name": "write_file", "arguments": arguments}]}))
    message = ask(stub).choices[0]
    assert message.finish_reason == "tool_calls"
    assert message.message.content is None
    call = message.message.tool_calls[0] if message.message.tool_calls else None
    assert call is not None and call.type == "function"
    assert call.function.name == "write_file"
    assert json.loads(call.function.arguments) == arguments


def test_string_arguments_are_sent_verbatim_even_when_not_json(start_stub: StartStub) -> None:
    stub = start_stub(one_rule({"tool_calls": [{"name": "f", "arguments": "{not json"}]}))
    calls = ask(stub).choices[0].message.tool_calls or []
    assert calls[0].type == "function" and calls[0].function.arguments == "{not json"


def test_tool_call_ids_are_deterministic_per_rule_turn_and_position(start_stub: StartStub) -> None:
    stub = start_stub(one_rule({"tool_calls": [{"name": "a"}, {"name": "b"}]}))
    first = [call.id for call in ask(stub).choices[0].message.tool_calls or []]
    again = [call.id for call in ask(stub).choices[0].message.tool_calls or []]
    assert first == again == ["call_r_0_0", "call_r_0_1"]


def test_explicit_usage_is_reported_with_total(start_stub: StartStub) -> None:
    stub = start_stub(one_rule({"content": "x", "usage": {"prompt_tokens": 12, "completion_tokens": 3}}))
    usage = ask(stub).usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (12, 3, 15)


def test_usage_defaults_to_an_estimate_of_at_least_one_token(start_stub: StartStub) -> None:
    stub = start_stub(one_rule({"content": "a reply of about forty characters long.."}))
    usage = ask(stub, "x" * 400).usage
    assert usage is not None
    assert usage.prompt_tokens >= 100 and usage.completion_tokens == 10


def test_streaming_delivers_text_tool_calls_and_usage(start_stub: StartStub) -> None:
    turn = {"content": "Writing the poem now.", "tool_calls": [{"name": "write_file", "arguments": {"path": "p.txt"}}]}
    stub = start_stub(one_rule(turn))
    stream = stub.client.chat.completions.create(
        model="stub", messages=user("hi"), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    deltas = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or []]
    arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
    assert text == "Writing the poem now."
    assert [d.id for d in deltas if d.id] == ["call_r_0_0"]
    assert json.loads(arguments) == {"path": "p.txt"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


def test_streaming_text_accumulates_with_the_openai_stream_helper(start_stub: StartStub) -> None:
    stub = start_stub(one_rule({"content": "Streaming works end to end."}))
    with stub.client.chat.completions.stream(model="stub", messages=user("hi")) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "Streaming works end to end."


# --- rule and turn selection ---------------------------------------------------------------------


def test_turn_is_chosen_by_the_number_of_assistant_messages(start_stub: StartStub) -> None:
    stub = start_stub(one_rule({"content": "first"}, {"content": "second"}))
    history: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "first"},
        {"role": "user", "content": "and?"},
    ]
    reply = stub.client.chat.completions.create(model="stub", messages=history)
    assert reply.choices[0].message.content == "second"


def test_first_matching_rule_wins(start_stub: StartStub) -> None:
    rules = [
        {"name": "haiku", "match": {"user": "HAIKU"}, "turn": [{"content": "haiku rule"}]},
        {"name": "fallback", "turn": [{"content": "fallback rule"}]},
        {"name": "never", "match": {"user": "haiku"}, "turn": [{"content": "never"}]},
    ]
    stub = start_stub({"rule": rules})
    assert ask(stub, "Write a haiku please").choices[0].message.content == "haiku rule"
    assert ask(stub, "something else").choices[0].message.content == "fallback rule"


def test_user_match_looks_only_at_the_first_user_message(start_stub: StartStub) -> None:
    rules = [
        {"name": "haiku", "match": {"user": "haiku"}, "turn": [{"content": "haiku"}]},
        {"name": "other", "turn": [{"content": "other"}]},
    ]
    stub = start_stub({"rule": rules})
    messages: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "plain request"},
        {"role": "user", "content": "now a haiku"},
    ]
    assert stub.client.chat.completions.create(model="stub", messages=messages).choices[0].message.content == "other"


def test_rule_matches_on_system_and_developer_messages(start_stub: StartStub) -> None:
    rules = [
        {"name": "triage", "match": {"system": "TRIAGE"}, "turn": [{"content": "triaged"}]},
        {"name": "other", "turn": [{"content": "other"}]},
    ]
    stub = start_stub({"rule": rules})
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": "You are helpful."},
        {"role": "developer", "content": "You do triage."},
        {"role": "user", "content": "hi"},
    ]
    assert stub.client.chat.completions.create(model="stub", messages=messages).choices[0].message.content == "triaged"
    assert ask(stub).choices[0].message.content == "other"


def test_rule_matches_on_an_offered_tool_name(start_stub: StartStub) -> None:
    rules = [
        {"name": "final", "match": {"tool": "final_result"}, "turn": [{"content": "has tool"}]},
        {"name": "other", "turn": [{"content": "no tool"}]},
    ]
    stub = start_stub({"rule": rules})
    assert ask(stub, tools=[tool("final_result")]).choices[0].message.content == "has tool"
    assert ask(stub, tools=[tool("final_result_2")]).choices[0].message.content == "no tool"


def test_rule_matches_on_the_exact_request_model(start_stub: StartStub) -> None:
    rules = [
        {"name": "triage", "match": {"model": "stub-triage"}, "turn": [{"content": "triage model"}]},
        {"name": "other", "turn": [{"content": "other model"}]},
    ]
    stub = start_stub({"rule": rules})
    reply = stub.client.chat.completions.create(model="stub-triage", messages=user("hi"))
    assert reply.choices[0].message.content == "triage model"
    assert ask(stub).choices[0].message.content == "other model"


def test_request_past_the_last_turn_gets_400_naming_rule_and_turn(start_stub: StartStub) -> None:
    stub = start_stub(one_rule({"content": "only"}))
    history: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "only"},
        {"role": "user", "content": "more"},
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        stub.client.chat.completions.create(model="stub", messages=history)
    assert "rule 'r' has 1 turns; the request is at turn 1" in error_text(caught.value)


def test_unmatched_request_gets_400_naming_first_user_message_and_rules(start_stub: StartStub) -> None:
    rules = [
        {"name": "haiku", "match": {"user": "haiku"}, "turn": [{"content": "x"}]},
        {"name": "sonnet", "match": {"user": "sonnet"}, "turn": [{"content": "x"}]},
    ]
    stub = start_stub({"rule": rules})
    with pytest.raises(openai.BadRequestError) as caught:
        ask(stub, "write a limerick " + "la" * 100)
    message = error_text(caught.value)
    assert "write a limerick" in message and "..." in message
    assert "'haiku', 'sonnet'" in message


# --- fault injection ------------------------------------------------------------------------------


def test_injected_429_repeats_the_given_times_then_succeeds(start_stub: StartStub) -> None:
    error = {"status": 429, "times": 2, "message": "rate limited", "retry_after": 0}
    stub = start_stub(one_rule({"content": "finally", "error": error}))
    for _ in range(2):
        with pytest.raises(openai.RateLimitError) as caught:
            ask(stub)
        assert error_text(caught.value) == "rate limited"
        assert caught.value.response.headers["Retry-After"] == "0"
    assert ask(stub).choices[0].message.content == "finally"


def test_malformed_body_breaks_parsing_then_the_turn_replies(start_stub: StartStub) -> None:
    stub = start_stub(one_rule({"content": "ok", "malformed": {"times": 1}}))
    with pytest.raises(ValueError):
        ask(stub)
    assert ask(stub).choices[0].message.content == "ok"
    assert [r.status for r in stub.server.requests] == [200, 200]


def test_delay_beyond_the_client_timeout_raises_api_timeout(start_stub: StartStub) -> None:
    stub = start_stub(one_rule({"content": "late", "delay": 1}), timeout=0.1)
    with pytest.raises(openai.APITimeoutError):
        ask(stub)


# --- request log, reset and other endpoints ------------------------------------------------------


def test_request_log_records_rule_turn_stream_status_and_first_user(start_stub: StartStub) -> None:
    stub = start_stub(one_rule({"content": "a"}, match={"user": "hello"}))
    ask(stub, "hello there")
    list(stub.client.chat.completions.create(model="stub", messages=user("hello again"), stream=True))
    with pytest.raises(openai.BadRequestError):
        ask(stub, "bye")
    log = stub.server.requests
    assert [dataclasses.replace(entry, at=0.0) for entry in log] == [
        RecordedRequest("r", 0, False, 200, "hello there", authorization=True),
        RecordedRequest("r", 0, True, 200, "hello again", authorization=True),
        RecordedRequest(None, 0, False, 400, "bye", authorization=True),
    ]
    assert 0 < log[0].at <= log[1].at <= log[2].at  # arrival times, for latency measurements


def test_request_log_records_what_was_said_after_the_first_user_message(start_stub: StartStub) -> None:
    stub = start_stub(one_rule({"content": "a"}, {"content": "b"}, match={"said": "use tabs"}))
    messages = [*user("tidy up"), {"role": "assistant", "content": "ok"}, *user("use tabs, not spaces")]
    stub.client.chat.completions.create(model="stub", messages=messages)  # type: ignore[arg-type]
    assert (stub.server.requests[0].turn, stub.server.requests[0].said) == (1, "use tabs, not spaces")


def test_request_log_notes_a_missing_authorization_header(start_stub: StartStub) -> None:
    stub = start_stub(one_rule({"content": "a"}))
    body = {"model": "stub", "messages": user("hi")}
    response = httpx.post(stub.server.url + "/chat/completions", json=body)
    assert response.status_code == 200
    assert stub.server.requests[0].authorization is False


def test_log_endpoint_serves_the_log_and_reset_clears_it_and_the_error_counters(start_stub: StartStub) -> None:
    stub = start_stub(one_rule({"content": "ok", "error": {"status": 500}}))
    with pytest.raises(openai.InternalServerError):
        ask(stub)
    base = stub.server.url.removesuffix("/v1")
    [entry] = httpx.get(base + "/_stub/requests").json()
    assert entry.pop("at") > 0
    assert entry == {
        "rule": "r", "turn": 0, "stream": False, "status": 500, "first_user": "hi", "authorization": True, "said": "",
    }  # fmt: skip
    assert httpx.post(base + "/_stub/reset").status_code == 200
    assert httpx.get(base + "/_stub/requests").json() == []
    with pytest.raises(openai.InternalServerError):
        ask(stub)


def test_models_endpoint_lists_each_scripted_model_and_stub(start_stub: StartStub) -> None:
    rules = [
        {"name": "a", "match": {"model": "stub-triage"}, "turn": [{"content": "x"}]},
        {"name": "b", "match": {"model": "stub-triage"}, "turn": [{"content": "x"}]},
        {"name": "c", "match": {"model": "stub-worker"}, "turn": [{"content": "x"}]},
    ]
    stub = start_stub({"rule": rules})
    assert [model.id for model in stub.client.models.list()] == ["stub-triage", "stub-worker", "stub"]


def test_server_loads_a_script_given_as_a_path(tmp_path: Path) -> None:
    path = write(tmp_path, "s.toml", '[[rule]]\nname = "r"\n[[rule.turn]]\ncontent = "from file"\n')
    with StubModelServer(str(path)) as server, openai.OpenAI(base_url=server.url, api_key="x") as client:
        reply = client.chat.completions.create(model="stub", messages=user("hi"))
    assert reply.choices[0].message.content == "from file"


# --- script files ----------------------------------------------------------------------------------


def test_the_documented_example_script_loads(tmp_path: Path) -> None:
    example = re.search(r"```toml\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)
    assert example is not None
    script = load_script(write(tmp_path, "example.toml", example.group(1)))
    assert [rule.name for rule in script.rule] == ["triage", "haiku", "flaky", "fallback"]


def test_json_script_file_loads(tmp_path: Path) -> None:
    script = {"rule": [{"name": "j", "match": {"tool": "t"}, "turn": [{"tool_calls": [{"name": "t"}]}]}]}
    loaded = load_script(write(tmp_path, "s.json", json.dumps(script)))
    assert loaded.rule[0].name == "j" and loaded.rule[0].turn[0].tool_calls[0].name == "t"


def test_toml_syntax_error_raises_config_error_with_the_location(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.toml", '[[rule]]\nname = "r\n')
    with pytest.raises(ConfigError, match=r"bad\.toml is not valid TOML: .*line 2"):
        load_script(path)


def test_unknown_field_raises_config_error_naming_it_and_the_allowed_fields(tmp_path: Path) -> None:
    path = write(tmp_path, "s.toml", '[[rule]]\nname = "r"\n[[rule.turn]]\ncontnet = "typo"\n')
    with pytest.raises(ConfigError) as caught:
        load_script(path)
    message = caught.value.message
    assert "rule[0] ('r').turn[0]: unknown field 'contnet'" in message
    assert "allowed: content, tool_calls" in message


def test_duplicate_rule_name_raises_config_error(tmp_path: Path) -> None:
    text = '[[rule]]\nname = "r"\n[[rule.turn]]\ncontent = "a"\n[[rule]]\nname = "r"\n[[rule.turn]]\ncontent = "b"\n'
    with pytest.raises(ConfigError, match=r"rule\[1\] repeats the name 'r' of rule\[0\]"):
        load_script(write(tmp_path, "s.toml", text))


def test_turn_without_content_or_tool_calls_raises_config_error(tmp_path: Path) -> None:
    text = '[[rule]]\nname = "r"\n[[rule.turn]]\ndelay = 1\n'
    with pytest.raises(ConfigError, match=r"rule\[0\] \('r'\)\.turn\[0\]: a turn needs `content` and/or `tool_calls`"):
        load_script(write(tmp_path, "s.toml", text))


def test_script_with_an_unsupported_extension_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"must end in \.toml or \.json"):
        load_script(write(tmp_path, "s.yaml", "rule: []"))


def test_missing_script_file_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read stub script"):
        load_script(tmp_path / "absent.toml")


# --- pydantic-ai -------------------------------------------------------------------------------------


def test_pydantic_ai_agent_runs_a_tool_call_then_answers(start_stub: StartStub) -> None:
    turns = (
        {"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]},
        {"content": "The sum is 5."},
    )
    stub = start_stub(one_rule(*turns, match={"tool": "add"}))
    agent = Agent(OpenAIChatModel("stub", provider=OpenAIProvider(base_url=stub.server.url, api_key="x")))
    seen: list[tuple[int, int]] = []

    @agent.tool_plain
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        seen.append((a, b))
        return a + b

    result = agent.run_sync("What is 2 + 3?")
    assert result.output == "The sum is 5."
    assert seen == [(2, 3)]
    assert [(r.rule, r.turn, r.status) for r in stub.server.requests] == [("r", 0, 200), ("r", 1, 200)]
