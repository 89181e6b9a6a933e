"""Secrets: stored by autodo in a 0600 file, named by handle (``secret:crm_token``) everywhere else.

The model only ever sees handles. A handle in a request is replaced by its value at execution,
inside the step that sends the request, and every value is registered for scrubbing
(``autodo.policy.redaction``) the moment it is resolved or read from the file.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autodo.errors import ConfigError, InvalidInput, NotFound
from autodo.policy import redaction

SECRETS_FILE = "secrets.toml"
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
HANDLE = re.compile(r"secret:([A-Za-z_][A-Za-z0-9_]{0,63})")


def secrets_file(home: Path) -> Path:
    return home / SECRETS_FILE


def read_secrets(path: Path) -> dict[str, str]:
    """Every stored secret, name to value ({} when there is no file)."""
    if not path.exists():
        return {}
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}; fix it or remove the broken line") from None
    return {str(name): value for name, value in raw.items() if isinstance(value, str)}


def secret_names(home: Path) -> list[str]:
    return sorted(read_secrets(secrets_file(home)))


def set_secret(home: Path, name: str, value: str) -> None:
    """Store (or replace) a secret; the file stays readable by its owner only."""
    if not NAME.fullmatch(name):
        raise InvalidInput(f"{name!r} is not a secret name: use letters, digits and _ (e.g. crm_token)")
    if len(value) < redaction.MIN_LENGTH:
        raise InvalidInput(
            f"a secret needs at least {redaction.MIN_LENGTH} characters; shorter ones cannot be scrubbed"
        )
    path = secrets_file(home)
    _write(path, {**read_secrets(path), name: value})
    redaction.register(name, value)


def remove_secret(home: Path, name: str) -> None:
    path = secrets_file(home)
    stored = read_secrets(path)
    if name not in stored:
        raise NotFound(f"no secret {name!r}; `autodo secret list` shows the names")
    del stored[name]
    _write(path, stored)


def _write(path: Path, stored: Mapping[str, str]) -> None:
    lines = [f"{name} = {_toml_string(value)}\n" for name, value in sorted(stored.items())]
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        os.fchmod(file.fileno(), 0o600)  # the umask or an older file must not widen it
        file.write("# autodo secrets: values never leave this file except into an executed request\n")
        file.writelines(lines)
    os.replace(temporary, path)


def _toml_string(value: str) -> str:
    # json.dumps writes a valid TOML basic string, except that TOML wants DEL escaped too.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


@dataclass
class Resolved:
    """A value with its handles replaced, and which secrets that took."""

    value: Any
    used: set[str] = field(default_factory=set)


def resolve_handles(value: Any, stored: Mapping[str, str]) -> Resolved:
    """Replace every ``secret:NAME`` in the strings of ``value``; an unknown name is an error."""
    resolved = Resolved(None)
    resolved.value = _substitute(value, stored, resolved.used)
    return resolved


def _substitute(value: Any, stored: Mapping[str, str], used: set[str]) -> Any:
    if isinstance(value, str):
        return HANDLE.sub(lambda match: _value_of(match.group(1), stored, used), value)
    if isinstance(value, Mapping):
        return {key: _substitute(item, stored, used) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, stored, used) for item in value]
    return value


def _value_of(name: str, stored: Mapping[str, str], used: set[str]) -> str:
    if name not in stored:
        raise NotFound(f"no secret {name!r}; the person adds it with `autodo secret set {name}`")
    used.add(name)
    redaction.register(name, stored[name])
    return stored[name]


def handles_in(value: Any) -> set[str]:
    """The secret names a value refers to."""
    if isinstance(value, str):
        return set(HANDLE.findall(value))
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, list):
        return set().union(*(handles_in(item) for item in value)) if value else set()
    return set()
