"""The stub model's script: rules that match chat requests and the turns they answer with.

A script is pure data (pydantic models, unknown fields rejected) so it can come from a TOML or
JSON file or be written in Python. Nothing here knows about HTTP; ``ChatRequest`` is the small
view of an OpenAI chat-completions request body that rules match against.
"""

from __future__ import annotations

import json
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from autodo.errors import ConfigError

_STRICT = ConfigDict(extra="forbid")


class ScriptedToolCall(BaseModel):
    """One tool call the stub model makes; ``arguments`` as a table, or a raw (possibly bad) JSON string."""

    model_config = _STRICT

    name: str = Field(min_length=1)
    arguments: dict[str, Any] | str = Field(default_factory=dict)

    @field_validator("arguments", mode="before")
    @classmethod
    def _table_or_string(cls, value: object) -> object:
        # Checked up front so a wrong type gives one clear message instead of one per union member.
        if not isinstance(value, dict | str):
            raise ValueError("`arguments` must be a table (sent as JSON) or a string (sent verbatim)")
        return value

    def arguments_json(self) -> str:
        """The arguments as sent on the wire: a raw string verbatim, a table as JSON."""
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


class ScriptedUsage(BaseModel):
    """Token counts to report instead of the chars/4 estimate."""

    model_config = _STRICT

    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)


class InjectedError(BaseModel):
    """An HTTP error returned for the first ``times`` requests of a turn."""

    model_config = _STRICT

    status: int = Field(ge=400, le=599)
    times: int = Field(default=1, ge=1)
    message: str = "injected error from the stub model"
    retry_after: float | None = Field(default=None, ge=0)


class InjectedMalformed(BaseModel):
    """A 200 response with a non-JSON body for the first ``times`` requests of a turn."""

    model_config = _STRICT

    times: int = Field(default=1, ge=1)


class StubTurn(BaseModel):
    """The reply for one turn of a conversation (turn index = assistant messages so far)."""

    model_config = _STRICT

    content: str | None = None
    tool_calls: list[ScriptedToolCall] = Field(default_factory=list)
    usage: ScriptedUsage | None = None
    delay: float = Field(default=0.0, ge=0)
    error: InjectedError | None = None
    malformed: InjectedMalformed | None = None

    @model_validator(mode="after")
    def _has_a_reply(self) -> StubTurn:
        if self.content is None and not self.tool_calls and self.error is None:
            raise ValueError("a turn needs `content` and/or `tool_calls` (or an `error`); add one of them")
        return self


class RuleMatch(BaseModel):
    """Conditions a request must meet for a rule to apply; no conditions matches everything."""

    model_config = _STRICT

    user: str | None = None
    said: str | None = None
    system: str | None = None
    tool: str | None = None
    model: str | None = None

    def matches(self, request: ChatRequest) -> bool:
        """Whether every condition given holds for ``request``."""
        checks = (
            self.user is None or self.user.casefold() in request.first_user.casefold(),
            self.said is None or self.said.casefold() in request.later_user.casefold(),
            self.system is None or self.system.casefold() in request.system.casefold(),
            self.tool is None or self.tool in request.tool_names,
            self.model is None or self.model == request.model,
        )
        return all(checks)


class StubRule(BaseModel):
    """A named rule: when ``match`` fits, answer turn N with ``turn[N]``."""

    model_config = _STRICT

    name: str = Field(min_length=1)
    match: RuleMatch = Field(default_factory=RuleMatch)
    turn: list[StubTurn] = Field(min_length=1)


class StubScript(BaseModel):
    """A whole script: rules tried in order, the first that matches answers."""

    model_config = _STRICT

    rule: list[StubRule] = Field(min_length=1)

    @model_validator(mode="after")
    def _names_are_unique(self) -> StubScript:
        seen: dict[str, int] = {}
        for index, rule in enumerate(self.rule):
            if rule.name in seen:
                first = seen[rule.name]
                raise ValueError(f"rule[{index}] repeats the name {rule.name!r} of rule[{first}]; rename one of them")
            seen[rule.name] = index
        return self

    def find_rule(self, request: ChatRequest) -> StubRule | None:
        """The first rule whose match fits ``request``, if any."""
        return next((rule for rule in self.rule if rule.match.matches(request)), None)

    def model_names(self) -> list[str]:
        """Every distinct ``match.model`` in file order, plus ``stub``."""
        names = [rule.match.model for rule in self.rule if rule.match.model is not None]
        return list(dict.fromkeys([*names, "stub"]))


@dataclass(frozen=True)
class ChatRequest:
    """The parts of a chat-completions request body that the stub looks at."""

    model: str
    first_user: str
    later_user: str  # every user message after the first, joined: what was said mid-run
    system: str
    tool_names: frozenset[str]
    assistant_turns: int
    stream: bool
    include_usage: bool
    prompt_chars: int
    received_at: float = field(default_factory=time.time)

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> ChatRequest:
        """Read a decoded request body; tolerant of odd shapes because clients vary."""
        messages = [m for m in _as_list(body.get("messages")) if isinstance(m, dict)]
        stream_options = body.get("stream_options")
        return cls(
            model=str(body.get("model", "")),
            first_user=next((_text_of(m) for m in messages if m.get("role") == "user"), ""),
            later_user="\n".join(_text_of(m) for m in [m for m in messages if m.get("role") == "user"][1:]),
            system="\n".join(_text_of(m) for m in messages if m.get("role") in ("system", "developer")),
            tool_names=frozenset(_tool_names(body.get("tools"))),
            assistant_turns=sum(1 for m in messages if m.get("role") == "assistant"),
            stream=body.get("stream") is True,
            include_usage=isinstance(stream_options, dict) and stream_options.get("include_usage") is True,
            prompt_chars=len(json.dumps(messages)),
        )


def _as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _text_of(message: dict[str, Any]) -> str:
    """A message's text; content may be a string or a list of typed parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    parts = [p.get("text") for p in _as_list(content) if isinstance(p, dict)]
    return "\n".join(p for p in parts if isinstance(p, str))


def _tool_names(tools: object) -> list[str]:
    functions = [t.get("function") for t in _as_list(tools) if isinstance(t, dict)]
    return [str(f.get("name")) for f in functions if isinstance(f, dict)]


def parse_script(data: object, source: str = "<script>") -> StubScript:
    """Validate decoded script data, turning validation problems into one ConfigError."""
    try:
        return StubScript.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(error, data) for error in exc.errors())
        raise ConfigError(f"invalid stub script {source}: {problems}") from None


def load_script(path: Path) -> StubScript:
    """Load a script from a ``.toml`` or ``.json`` file."""
    return parse_script(_read_data(Path(path)), source=str(path))


def _read_data(path: Path) -> object:
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ConfigError(f"stub script {path} must end in .toml or .json, not {suffix or 'nothing'!r}")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read stub script {path}: {exc.strerror}; check the --script path") from None
    try:
        return tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        kind = suffix[1:].upper()
        raise ConfigError(f"stub script {path} is not valid {kind}: {exc}; fix the syntax there") from None


def _describe(error: ErrorDetails, data: object) -> str:
    """One validation problem as 'where: what', naming the rule and listing allowed fields."""
    loc = error["loc"]
    if error["type"] == "extra_forbidden":
        return f"{_where(loc[:-1], data)}: unknown field {loc[-1]!r} (allowed: {_allowed_fields(loc[:-1])})"
    message = error["msg"].removeprefix("Value error, ")
    return f"{_where(loc, data)}: {message}"


def _where(loc: tuple[int | str, ...], data: object) -> str:
    parts = [f"[{key}]" if isinstance(key, int) else f".{key}" for key in loc]
    if len(loc) >= 2 and loc[0] == "rule" and isinstance(loc[1], int):
        parts[1] += _rule_label(data, loc[1])
    return "".join(parts).removeprefix(".") or "script"


def _rule_label(data: object, index: int) -> str:
    """`` ('name')`` for rule ``index`` when the raw data has a usable name, so errors point at it."""
    rules = data.get("rule") if isinstance(data, dict) else None
    if not isinstance(rules, list) or index >= len(rules):
        return ""
    name = rules[index].get("name") if isinstance(rules[index], dict) else None
    return f" ({name!r})" if isinstance(name, str) else ""


def _allowed_fields(loc: tuple[int | str, ...]) -> str:
    model: type[BaseModel] | None = StubScript
    for key in loc:
        if isinstance(key, str) and model is not None:
            field = model.model_fields.get(key)
            model = _model_in(field.annotation) if field is not None else None
    return ", ".join(model.model_fields) if model is not None else "see docs/stub-model.md"


def _model_in(annotation: object) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as ``list[StubRule]`` or ``X | None``."""
    if get_origin(annotation) is None and isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((m for m in map(_model_in, get_args(annotation)) if m is not None), None)
