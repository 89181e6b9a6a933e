"""Which tool calls need the person's approval: by tool, command prefix, path or network host."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import shlex
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_URL_HOST = re.compile(r"\b[a-z][a-z0-9+.-]*://(?:[^@/\s]*@)?(\[[^\]]+\]|[^/\s:?#]+)", re.IGNORECASE)


class ApprovalRules(BaseModel):
    """A profile's ``[profile.NAME.approvals]`` table."""

    model_config = ConfigDict(extra="forbid")

    tools: list[str] = Field(default_factory=list)  # every call of these tools
    commands: list[list[str]] = Field(default_factory=list)  # run_command argv prefixes, e.g. ["git", "push"]
    paths: list[str] = Field(default_factory=list)  # workspace paths (glob), for any tool with a path
    hosts: list[str] = Field(default_factory=list)  # network hosts (glob) named by a URL in any argument
    # When set, every command needs approval except those starting with one of these prefixes
    # whose remaining arguments carry nothing a shell or the program could turn into more.
    allow_commands: list[list[str]] | None = None
    expires_after: float = Field(default=86_400, gt=0)  # seconds a request waits before it is refused

    def reason(self, tool: str, arguments: dict[str, Any]) -> str | None:
        """Why this call needs approval, or None when no rule holds it."""
        if tool in self.tools:
            return f"every {tool} call needs approval"
        argv = arguments.get("argv")
        if tool == "run_command" and isinstance(argv, list):
            held = self._command_reason([str(part) for part in argv])
            if held:
                return held
        path = arguments.get("path")
        if isinstance(path, str):
            for pattern in self.paths:
                if _path_matches(path, pattern):
                    return f"paths matching {pattern!r} need approval"
        for host in _hosts_in(arguments):
            for pattern in self.hosts:
                if fnmatch.fnmatch(host, pattern.lower()):
                    return f"network access to {host} (rule {pattern!r}) needs approval"
        return None

    def _command_reason(self, argv: list[str]) -> str | None:
        for prefix in self.commands:
            if prefix and argv[: len(prefix)] == prefix:
                return f"commands starting with `{shlex.join(prefix)}` need approval"
        if self.allow_commands is not None and not any(_plainly(argv, prefix) for prefix in self.allow_commands):
            return "only the profile's allow_commands run without approval, with plain arguments"
        return None


# A tail token like these could chain, redirect or substitute if a shell ever saw the arguments.
SHELL_SYNTAX = ("&", "|", ";", "<", ">", "`", "$(", "\n", "\r")


def _plainly(argv: list[str], prefix: list[str]) -> bool:
    """argv starts with the allowed prefix and the rest is plain arguments (no shell syntax)."""
    if not prefix or argv[: len(prefix)] != prefix:
        return False
    return not any(marker in token for token in argv[len(prefix) :] for marker in SHELL_SYNTAX)


def _path_matches(path: str, pattern: str) -> bool:
    """The path or a directory above it matches: a rule on ``deploy`` covers ``deploy/app.yml``."""
    normal = PurePosixPath(path.lstrip("/").removeprefix("./"))
    candidates = [normal, *list(normal.parents)[:-1]]
    return any(fnmatch.fnmatch(candidate.as_posix(), pattern) for candidate in candidates)


def _hosts_in(value: Any) -> set[str]:
    if isinstance(value, str):
        return {match.group(1).strip("[]").lower() for match in _URL_HOST.finditer(value)}
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return set().union(*(_hosts_in(item) for item in value)) if value else set()
    return set()


def arguments_hash(tool: str, arguments: dict[str, Any]) -> str:
    """What an approval is bound to: the tool and its exact arguments."""
    canonical = json.dumps({"tool": tool, "arguments": arguments}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
