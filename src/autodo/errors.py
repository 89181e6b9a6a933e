"""The one error hierarchy of autodo.

Every error carries a stable ``code`` and an HTTP ``status`` so the CLI and (later) the API
render it the same way. A message says what went wrong and what to do about it.

* AutodoError
  + InvalidInput            (400) bad arguments: empty title, bad lane, malformed file
    - DependencyCycle       (409) ``blocked_by`` would form a cycle
  + NotFound                (404) unknown task, inbox item or profile
  + Conflict                (409) the thing is not in a state that allows this
  + ConfigError             (400) profile file or model configuration is wrong
  + ModelUnavailable        (503) no model configured, or the provider refuses us
  + PathOutsideWorkspace    (403) a file tool tried to leave the task workspace
"""

from __future__ import annotations

from typing import ClassVar


class AutodoError(Exception):
    """Base of every error autodo raises on purpose."""

    code: ClassVar[str] = "autodo_error"
    status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_problem(self) -> dict[str, object]:
        """The error as an RFC 9457 problem document."""
        return {
            "type": f"urn:autodo:error:{self.code}",
            "title": self.code,
            "status": self.status,
            "detail": self.message,
        }


class InvalidInput(AutodoError):
    code = "invalid_input"
    status = 400


class DependencyCycle(InvalidInput):
    code = "dependency_cycle"
    status = 409


class NotFound(AutodoError):
    code = "not_found"
    status = 404


class Conflict(AutodoError):
    code = "conflict"
    status = 409


class ConfigError(AutodoError):
    code = "config_error"
    status = 400


class ModelUnavailable(AutodoError):
    code = "model_unavailable"
    status = 503


class PathOutsideWorkspace(AutodoError):
    code = "path_outside_workspace"
    status = 403
