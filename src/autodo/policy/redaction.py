"""Scrub secret values from everything autodo writes or shows: events, tool results, logs.

A process-wide registry holds every value that must never appear: each secret stored in
``$AUTODO_HOME/secrets.toml`` (reloaded when the file changes, so a worker scrubs a value its runs
never resolved) and each value resolved in this process. A value is replaced by ``[secret:NAME]``
as written and in the encodings a model or a tool would use to smuggle it out: base64 (standard
and URL-safe, with and without padding), hex (either case), URL-encoding and JSON escaping.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

MIN_LENGTH = 4  # a shorter value would match all over ordinary text; `secret set` refuses one

_lock = threading.Lock()
_resolved: dict[str, str] = {}  # value -> name, resolved in this process
_stored: dict[str, str] = {}  # value -> name, from the secrets file
_file_state: tuple[str, int, int] | None = None  # path, mtime_ns and size of the file last read
_pattern: re.Pattern[str] | None = None
_names: dict[str, str] = {}  # every form -> the name it stands for


def register(name: str, value: str) -> None:
    """Scrub ``value`` (and its encodings) from now on in this process."""
    if len(value) < MIN_LENGTH:
        return
    with _lock:
        if _resolved.get(value) != name:
            _resolved[value] = name
            _rebuild()


def scrub(text: str) -> str:
    """``text`` with every registered value, in any of its forms, replaced by ``[secret:NAME]``."""
    pattern = _current_pattern()
    if pattern is None or not text:
        return text
    return pattern.sub(lambda match: f"[secret:{_names[match.group()]}]", text)


def scrub_data(value: Any) -> Any:
    """A JSON-like value with every string (keys too) scrubbed."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {scrub_data(key): scrub_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_data(item) for item in value]
    return value


def encodings(value: str) -> set[str]:
    """The forms of ``value`` that are scrubbed."""
    raw = value.encode()
    standard, urlsafe = base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()
    forms = {value, standard, standard.rstrip("="), urlsafe, urlsafe.rstrip("="), raw.hex(), raw.hex().upper()}
    forms |= {urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value), json.dumps(value)[1:-1]}
    forms |= {form for offset in (0, 1, 2) for form in _embedded_base64(raw, offset) if len(form) >= EMBEDDED_MIN}
    return {form for form in forms if len(form) >= MIN_LENGTH}


EMBEDDED_MIN = 8  # characters of a value's base64 inside a longer text's: shorter ones match by chance


def _embedded_base64(raw: bytes, offset: int) -> set[str]:
    """The characters of base64 that ``raw`` alone decides when it starts ``offset`` bytes into a 3-byte group.

    base64 of a longer text holding the value (an echoed request, a JSON blob) does not contain the
    value's own base64 unless the value starts on a 3-byte boundary; these cover the other two.
    """
    padded = b"\0" * offset + raw
    start, end = -(-8 * offset // 6), 8 * len(padded) // 6  # characters whose 6 bits all come from raw
    return {encode(padded).decode()[start:end] for encode in (base64.b64encode, base64.urlsafe_b64encode)}


def _rebuild() -> None:
    global _pattern, _names  # the registry is process-wide on purpose
    names = {form: name for value, name in (_stored | _resolved).items() for form in encodings(value)}
    # Longest first, so a value's base64 is not cut short by a shorter value inside it.
    ordered = sorted(names, key=len, reverse=True)
    _pattern = re.compile("|".join(re.escape(form) for form in ordered)) if ordered else None
    _names = names


def _current_pattern() -> re.Pattern[str] | None:
    path = secrets_path()
    try:
        stat = path.stat()
        state: tuple[str, int, int] | None = (str(path), stat.st_mtime_ns, stat.st_size)
    except OSError:
        state = None
    with _lock:
        if state != _file_state:
            _load_stored(path, state)
        return _pattern


def _load_stored(path: Path, state: tuple[str, int, int] | None) -> None:
    global _file_state
    from autodo.errors import ConfigError
    from autodo.policy.secrets import read_secrets  # that module registers through this one

    try:
        stored = read_secrets(path) if state is not None else {}
    except ConfigError:
        stored = {value: name for name, value in _stored.items()}  # a broken edit: keep scrubbing what was there
    _stored.clear()
    _stored.update({value: name for name, value in stored.items() if len(value) >= MIN_LENGTH})
    _file_state = state
    _rebuild()


_home_cache: dict[str | None, Path] = {}


def secrets_path() -> Path:
    """``$AUTODO_HOME/secrets.toml`` (the home is looked up once per value of ``AUTODO_HOME``)."""
    variable = os.environ.get("AUTODO_HOME")
    if variable not in _home_cache:
        from autodo.config import Settings

        _home_cache[variable] = Settings().home
    return _home_cache[variable] / "secrets.toml"


class RedactingFilter(logging.Filter):
    """Scrubs a log record's message (arguments merged in) and its traceback text."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub_record(record)
        return True


def scrub_record(record: logging.LogRecord) -> logging.LogRecord:
    try:
        message = record.getMessage()
    except (TypeError, ValueError):
        return record  # a bad format string: logging reports it at emit time, as it would anyway
    record.msg, record.args = scrub(message), ()
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = scrub(record.exc_text)
    return record


_installed = False


def install_log_redaction() -> None:
    """Scrub every log record this process makes, whichever logger or handler it goes to.

    A filter on one logger misses its children's records and handlers come and go (DBOS adds
    its own), so the scrub sits in the record factory every logger uses.
    """
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    make = logging.getLogRecordFactory()

    def scrubbed(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return scrub_record(make(*args, **kwargs))

    factory: Callable[..., logging.LogRecord] = scrubbed
    logging.setLogRecordFactory(factory)
