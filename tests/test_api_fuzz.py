"""Generated requests against the published OpenAPI schema; every route refuses the unauthenticated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.errors import InvalidSchema
from schemathesis.core.result import Err, Ok
from schemathesis.schemas import APIOperation

from tests.support import ServedApp

EXAMPLES_PER_OPERATION = 20
STREAMS = r"/events$"  # endless by design: covered by tests/test_live.py
# A schema cannot say every rule (budget syntax, `lane:` labels, a task blocked by itself): such
# requests are refused with 400 and a problem document, which the other checks still verify.
BEYOND_THE_SCHEMA = [positive_data_acceptance]
UNDOCUMENTED = ["/", "/inbox", "/team", "/tasks/{task_id}", "/static/app.js", "/mcp", "/docs", "/openapi.json"]


def test_generated_requests_get_no_server_error_and_match_the_schema(home: Path) -> None:
    with ServedApp() as served:
        auth = {"Authorization": f"Bearer {served.token}"}
        schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json", headers=auth)
        operations = [_loaded(result) for result in schema.exclude(path_regex=STREAMS).get_all_operations()]
        cases = 0
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                @settings(
                    max_examples=EXAMPLES_PER_OPERATION // 2,
                    deadline=None,
                    database=None,
                    phases=[Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )
                @given(case=operation.as_strategy(generation_mode=mode))
                def check(case: Case[Any]) -> None:
                    nonlocal cases
                    cases += 1
                    case.call_and_validate(base_url=served.url, headers=auth, excluded_checks=BEYOND_THE_SCHEMA)

                try:
                    check()
                except Unsatisfiable:
                    assert mode is GenerationMode.NEGATIVE  # an operation without inputs has none to get wrong
    print(f"schemathesis: {cases} generated requests over {len(operations)} operations")
    assert len(operations) >= 20 and cases >= 200


def test_every_route_refuses_a_request_without_the_token(home: Path) -> None:
    with ServedApp() as served, httpx.Client(base_url=served.url) as client:
        paths = [*served.app.openapi()["paths"], *UNDOCUMENTED]
        statuses = {}
        for path in paths:
            concrete = path.replace("{task_id}", "T1").replace("{item_id}", "I1").replace("{identifier}", "X1")
            for method in ("GET", "POST"):
                statuses[(method, concrete)] = client.request(method, concrete or "/").status_code
        wrong = client.get("/api/v1/tasks", headers={"Authorization": "Bearer not-the-token"})
    assert len(paths) >= 25
    assert {key: status for key, status in statuses.items() if status != 401} == {}
    assert wrong.status_code == 401 and wrong.json() == {
        "type": "urn:autodo:error:unauthorized",
        "title": "unauthorized",
        "status": 401,
        "detail": "a valid token is required: send Authorization: Bearer <token>",
        "code": "unauthorized",
        "error": {"code": "unauthorized", "message": "a valid token is required: send Authorization: Bearer <token>"},
    }
    assert wrong.headers["www-authenticate"].startswith("Bearer")


def _loaded(result: Ok[APIOperation[Any, Any, Any, Any]] | Err[InvalidSchema]) -> APIOperation[Any, Any, Any, Any]:
    assert isinstance(result, Ok), f"the published schema has an invalid operation: {result}"
    return result.ok()
