"""Network egress: the allow-list, address checks, pinned connections, redirects and the size cap."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator

import pytest

from autodo.policy.egress import HttpAllow, Refused, Request, Resolver, check_url, fetch
from autodo.policy.taint import needs_approval
from tests.loopback_target import LoopbackTarget

pytestmark = pytest.mark.storeless  # never opens the store: runs once, in the SQLite pass

API = HttpAllow(host="api.example.com", methods=["GET", "POST"], path_prefix="/v1")
WILD = HttpAllow(host="*.example.org")


@pytest.fixture
def target() -> Iterator[LoopbackTarget]:
    with LoopbackTarget() as server:
        yield server


def resolving_to(*answers: list[str]) -> tuple[list[str], Resolver]:
    """A resolver seam that gives each answer in turn and logs the names it was asked for."""
    asked: list[str] = []
    remaining = list(answers)

    def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return remaining.pop(0) if len(remaining) > 1 else remaining[0]

    return asked, resolve


def loopback_rule(host: str, port: int, *, allow_private: bool = True) -> HttpAllow:
    return HttpAllow(host=host, scheme="http", port=port, methods=["GET", "POST"], allow_private=allow_private)


@pytest.mark.parametrize(
    ("method", "url", "allowed"),
    [
        ("GET", "https://api.example.com/v1/contacts?page=2", True),
        ("POST", "https://api.example.com/v1", True),
        ("GET", "http://api.example.com/v1/contacts", False),  # scheme
        ("GET", "https://api.example.com.evil.test/v1/contacts", False),  # host
        ("GET", "https://api.example.com:8443/v1/contacts", False),  # port
        ("DELETE", "https://api.example.com/v1/contacts", False),  # method
        ("GET", "https://api.example.com/v10/contacts", False),  # path prefix is a directory, not a string prefix
        ("GET", "https://api.example.com/admin", False),  # path
        ("GET", "https://docs.example.org/guide", True),  # *.suffix
        ("GET", "https://example.org.evil.test/guide", False),
        ("POST", "https://docs.example.org/guide", False),  # GET and HEAD unless the rule says more
    ],
)
def test_the_allow_list_matches_scheme_host_port_method_and_path(method: str, url: str, allowed: bool) -> None:
    try:
        check_url([API, WILD], method, url)
    except Refused:
        assert not allowed
    else:
        assert allowed


def test_with_no_rules_every_url_is_refused_with_how_to_allow_one() -> None:
    with pytest.raises(Refused, match=r"network access is off.*\[\[profile.default.network\]\].*host = \"a.test\""):
        check_url([], "GET", "https://a.test/x")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://api.example.com/v1", "gopher://x/"])
def test_only_http_and_https_are_fetched(url: str) -> None:
    fetched = fetch(Request("GET", url), [API])
    assert fetched.text.startswith("error: refused: only http and https")


@pytest.mark.parametrize(
    ("address", "allow_private", "why"),
    [
        ("169.254.169.254", True, "cloud metadata"),  # even where private addresses are allowed
        ("fd00:ec2::254", True, "cloud metadata"),
        ("127.0.0.1", False, "non-public"),
        ("::1", False, "non-public"),
        ("10.1.2.3", False, "non-public"),
        ("192.168.0.10", False, "non-public"),
        ("fd12:3456::1", False, "non-public"),  # unique local
        ("169.254.10.10", False, "non-public"),  # link-local
        ("::ffff:127.0.0.1", False, "non-public"),  # IPv4-mapped loopback
        ("0.0.0.0", False, "non-public"),
        ("224.0.0.1", False, "non-public"),  # multicast
    ],
)
def test_ssrf_to_metadata_localhost_and_private_addresses_is_blocked(
    target: LoopbackTarget, address: str, allow_private: bool, why: str
) -> None:
    rule = HttpAllow(host="innocent.test", scheme="http", allow_private=allow_private)
    _, resolve = resolving_to([address])
    fetched = fetch(Request("GET", "http://innocent.test/"), [rule], resolver=resolve)
    assert "refused" in fetched.text and why in fetched.text
    assert fetched.hops[0].refused and fetched.hops[0].address is None  # nothing was sent


def test_a_name_that_also_resolves_inside_is_refused() -> None:
    _, resolve = resolving_to(["93.184.215.14", "10.0.0.7"])
    fetched = fetch(
        Request("GET", "http://mixed.test/"), [HttpAllow(host="mixed.test", scheme="http")], resolver=resolve
    )
    assert "10.0.0.7" in fetched.text and "refused" in fetched.text


def test_the_connection_is_pinned_to_the_checked_address_against_dns_rebinding(target: LoopbackTarget) -> None:
    # The first answer is the one checked; a rebinding resolver would answer differently later.
    asked, resolve = resolving_to(["127.0.0.1"], ["10.9.9.9"])
    fetched = fetch(
        Request("GET", f"http://rebind.test:{target.port}/pinned"),
        [loopback_rule("rebind.test", target.port)],
        resolver=resolve,
    )
    assert fetched.text.endswith("hello from /pinned")
    assert asked == ["rebind.test"]  # resolved once, never again at connect time
    [received] = target.received
    assert received.headers["Host"] == f"rebind.test:{target.port}"  # the name travels in Host (and SNI)
    assert fetched.hops[0].address == "127.0.0.1"


def test_a_redirect_to_a_private_address_is_blocked(target: LoopbackTarget) -> None:
    rules = [loopback_rule("first.test", target.port), loopback_rule("127.0.0.1", target.port, allow_private=False)]
    _, resolve = resolving_to(["127.0.0.1"])
    url = f"http://first.test:{target.port}/redirect?to=http://127.0.0.1:{target.port}/admin"
    fetched = fetch(Request("GET", url), rules, resolver=resolve)
    assert "refused" in fetched.text and "non-public" in fetched.text
    assert [r.path.split("?")[0] for r in target.received] == ["/redirect"]  # /admin never reached
    assert [hop.refused is None for hop in fetched.hops] == [True, False]


def test_a_redirect_off_the_allow_list_is_blocked(target: LoopbackTarget) -> None:
    url = f"{target.url}/redirect?to=https://evil.test/collect"
    fetched = fetch(Request("GET", url), [loopback_rule("127.0.0.1", target.port)])
    assert "no network rule" in fetched.text and "evil.test" in fetched.text


def test_a_cross_origin_redirect_drops_the_callers_headers(target: LoopbackTarget) -> None:
    rules = [loopback_rule("127.0.0.1", target.port), loopback_rule("localhost", target.port)]
    _, resolve = resolving_to(["127.0.0.1"])
    url = f"{target.url}/redirect?to=http://localhost:{target.port}/next"
    fetch(Request("GET", url, {"Authorization": "Bearer abc123"}), rules, resolver=resolve)
    first, second = target.received
    assert first.headers.get("Authorization") == "Bearer abc123" and "Authorization" not in second.headers


def test_a_1_gb_response_is_cut_at_the_cap_with_bounded_memory(target: LoopbackTarget) -> None:
    tracemalloc.start()
    try:
        fetched = fetch(
            Request("GET", f"{target.url}/flood"), [loopback_rule("127.0.0.1", target.port)], max_bytes=200_000
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert fetched.text.endswith("[response cut at 200000 bytes]")
    assert fetched.hops[0].bytes == 200_000
    assert peak < 10_000_000  # a few chunks, never the gigabyte


@pytest.mark.parametrize(
    ("setting", "tainted_by", "method", "secrets", "held"),
    [
        ("ask", None, "POST", set(), False),  # nothing untrusted read yet
        ("ask", "output of read_file", "POST", set(), True),
        ("ask", "output of read_file", "GET", set(), False),
        ("ask", "output of read_file", "GET", {"crm_token"}, True),  # a secret leaves with it
        ("ask-all", "the task came from 'api'", "GET", set(), True),
        ("off", "output of read_file", "DELETE", {"crm_token"}, False),
    ],
)
def test_the_rule_of_two_holds_state_changing_or_secret_carrying_requests_of_a_tainted_run(
    setting: str, tainted_by: str | None, method: str, secrets: set[str], held: bool
) -> None:
    reason = needs_approval(setting, tainted_by, method, secrets)  # type: ignore[arg-type]
    assert (reason is not None) == held
    if held:
        assert reason == f"rule of two: this run has read untrusted input ({tainted_by})"
