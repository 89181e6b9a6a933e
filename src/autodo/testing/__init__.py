"""Test helpers for autodo and for people testing against it, such as the scripted stub model server."""

from autodo.testing._stub_script import (
    InjectedError,
    InjectedMalformed,
    RuleMatch,
    ScriptedToolCall,
    ScriptedUsage,
    StubRule,
    StubScript,
    StubTurn,
    load_script,
    parse_script,
)
from autodo.testing.stub_model import RecordedRequest, StubModelServer, serve_forever

__all__ = [
    "InjectedError",
    "InjectedMalformed",
    "RecordedRequest",
    "RuleMatch",
    "ScriptedToolCall",
    "ScriptedUsage",
    "StubModelServer",
    "StubRule",
    "StubScript",
    "StubTurn",
    "load_script",
    "parse_script",
    "serve_forever",
]
