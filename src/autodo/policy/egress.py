"""Network egress for agent tools: an allow-list, address checks, a pinned connection, a size cap.

Agent tools have no network of their own (commands run in a sandbox without one). The
``http_request`` tool goes through ``fetch`` here, in the worker:

- only ``http`` and ``https``, and only URLs a rule of the profile's ``network`` list allows
  (scheme, host exactly or ``*.suffix``, port, method, path prefix);
- the host is resolved once and every address checked: loopback, private, link-local,
  unique-local, multicast, unspecified and other non-global addresses are refused unless the rule
  says ``allow_private``; cloud metadata addresses are refused always;
- the connection goes to the checked address (the Host header and TLS SNI keep the name), so a
  DNS answer that changes between check and connect (rebinding) cannot redirect it;
- redirects are followed by hand, at most ``MAX_REDIRECTS``, each hop checked like the first;
- the response is read as a stream and cut at ``max_bytes``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_REDIRECTS = 5
MAX_RESPONSE_BYTES = 1_000_000
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
REDIRECTS = {301, 302, 303, 307, 308}
DEFAULT_PORTS = {"http": 80, "https": 443}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]  # host and port -> addresses, in preference order


class HttpAllow(BaseModel):
    """One ``[[profile.NAME.network]]`` rule: which requests the ``http_request`` tool may send."""

    model_config = ConfigDict(extra="forbid")

    host: str  # exact, or "*.example.com" for any name under example.com
    scheme: Literal["https", "http"] = "https"
    port: int | None = Field(default=None, ge=1, le=65535)  # None: the scheme's default port
    methods: list[str] = Field(default_factory=lambda: ["GET", "HEAD"])
    path_prefix: str = "/"
    allow_private: bool = False  # loopback, private and link-local addresses (never cloud metadata)

    @field_validator("methods")
    @classmethod
    def _upper(cls, methods: list[str]) -> list[str]:
        return [method.upper() for method in methods]

    @field_validator("host")
    @classmethod
    def _lower(cls, host: str) -> str:
        return host.lower().rstrip(".")

    def allows(self, method: str, url: httpx.URL) -> bool:
        port = url.port or DEFAULT_PORTS[url.scheme]
        return (
            url.scheme == self.scheme
            and _host_matches(url.host, self.host)
            and port == (self.port or DEFAULT_PORTS[self.scheme])
            and method.upper() in self.methods
            and _path_under(url.path, self.path_prefix)
        )


class Refused(Exception):
    """A request egress will not send, with what to do about it."""


def _host_matches(host: str, pattern: str) -> bool:
    host = host.lower().rstrip(".")
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


def _path_under(path: str, prefix: str) -> bool:
    if prefix.endswith("/") or path == prefix:
        return path.startswith(prefix)
    return path.startswith(prefix + "/")


def check_url(rules: list[HttpAllow], method: str, url: str, *, profile: str = "default") -> HttpAllow:
    """The rule that allows ``method`` on ``url``; Refused, saying how to allow it, when none does."""
    parsed = _parse(url)
    for rule in rules:
        if rule.allows(method, parsed):
            return rule
    raise Refused(_how_to_allow(method, parsed, profile, bool(rules)))


def _parse(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as error:
        raise Refused(f"not a valid URL: {error}") from None
    if parsed.scheme not in DEFAULT_PORTS:
        raise Refused(f"only http and https URLs can be fetched, not {parsed.scheme or 'a relative'} URLs")
    if not parsed.host:
        raise Refused("the URL has no host")
    if parsed.userinfo:
        raise Refused("credentials in the URL are refused; put a secret handle in a header instead")
    if any(segment in (".", "..") for segment in parsed.path.split("/")):
        raise Refused("the URL path has . or .. segments; write the path the server should see")
    return parsed


def _how_to_allow(method: str, url: httpx.URL, profile: str, has_rules: bool) -> str:
    what = f"{method.upper()} {url.scheme}://{url.host}{url.path}"
    start = f"no network rule of profile {profile!r} allows {what}" if has_rules else "network access is off"
    port = "" if url.port is None else f", port = {url.port}"
    example = (
        f'[[profile.{profile}.network]]  host = "{url.host}", scheme = "{url.scheme}"{port}, '
        f'methods = ["{method.upper()}"], path_prefix = "/"'
    )
    return f"{start}; the person can allow it in profiles.toml: {example}"


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for ``host``."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise Refused(f"cannot resolve {host}: {error.strerror}") from None
    return [str(info[4][0]) for info in infos]


def check_address(address: IPAddress, rule: HttpAllow) -> None:
    """Refuse an address the rule does not reach: metadata always, non-global unless allowed."""
    mapped = getattr(address, "ipv4_mapped", None)
    address = mapped or address
    if address in METADATA:
        raise Refused(f"{address} is a cloud metadata address; it is never reachable")
    if (not address.is_global or address.is_multicast) and not rule.allow_private:
        raise Refused(
            f"{address} is a loopback, private, link-local or otherwise non-public address; "
            "a network rule reaches one only with allow_private = true"
        )


def pick_address(url: httpx.URL, rule: HttpAllow, resolver: Resolver) -> IPAddress:
    """Resolve once; every address must pass (a name that also points inside is refused)."""
    port = url.port or DEFAULT_PORTS[url.scheme]
    try:
        addresses = [ipaddress.ip_address(url.host)]
    except ValueError:
        addresses = [ipaddress.ip_address(text.split("%")[0]) for text in resolver(url.host, port)]
    if not addresses:
        raise Refused(f"{url.host} has no address")
    for address in addresses:
        check_address(address, rule)
    return addresses[0]


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None


@dataclass(frozen=True)
class Hop:
    """One request egress sent (or refused), for the audit log: never a header value."""

    method: str
    host: str
    path: str
    address: str | None
    status: int | None
    bytes: int
    refused: str | None = None


@dataclass
class Fetched:
    """What came back, as the model reads it, and every hop on the way."""

    text: str
    hops: list[Hop] = field(default_factory=list)


def fetch(
    request: Request,
    rules: list[HttpAllow],
    *,
    profile: str = "default",
    resolver: Resolver = system_resolver,
    max_bytes: int = MAX_RESPONSE_BYTES,
    timeout: httpx.Timeout = TIMEOUT,
) -> Fetched:
    """Send the request under the rules, following redirects by hand; a refusal becomes the text."""
    fetched = Fetched("")
    current = request
    with httpx.Client(trust_env=False, follow_redirects=False, timeout=timeout) as client:
        for _hop in range(MAX_REDIRECTS + 1):
            try:
                response_text, following = _one_hop(client, current, rules, profile, resolver, max_bytes, fetched)
            except Refused as refusal:
                fetched.text = f"error: refused: {refusal}"
                return fetched
            except httpx.HTTPError as error:
                fetched.text = f"error: the request failed: {type(error).__name__}: {error}"
                return fetched
            if following is None:
                fetched.text = response_text
                return fetched
            current = following
    fetched.text = f"error: more than {MAX_REDIRECTS} redirects; stopped at {current.url}"
    return fetched


def _one_hop(
    client: httpx.Client,
    request: Request,
    rules: list[HttpAllow],
    profile: str,
    resolver: Resolver,
    max_bytes: int,
    fetched: Fetched,
) -> tuple[str, Request | None]:
    """Check and send one request; the response text, or the next request when it redirects."""
    url = _parse(request.url)
    try:
        rule = check_url(rules, request.method, request.url, profile=profile)
        address = pick_address(url, rule, resolver)
    except Refused as refusal:
        fetched.hops.append(Hop(request.method, url.host, url.path, None, None, 0, str(refusal)))
        raise
    pinned = client.build_request(
        request.method,
        url.copy_with(host=str(address)),
        headers={**request.headers, "Host": url.netloc.decode("ascii"), "Accept-Encoding": "identity"},
        content=request.body.encode() if request.body is not None else None,
        extensions={"sni_hostname": url.host} if url.scheme == "https" else {},
    )
    response = client.send(pinned, stream=True)
    try:
        body, cut = _read_capped(response, max_bytes)
    finally:
        response.close()
    fetched.hops.append(Hop(request.method, url.host, url.path, str(address), response.status_code, len(body)))
    location = response.headers.get("location")
    if response.status_code in REDIRECTS and location:
        return "", _redirected(request, url, response.status_code, location)
    return _render(response, body, cut, max_bytes), None


def _read_capped(response: httpx.Response, max_bytes: int) -> tuple[bytes, bool]:
    """At most ``max_bytes`` of the body: memory stays bounded however much the server sends."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        chunks.append(chunk[: max_bytes - size])
        size += len(chunks[-1])
        if size >= max_bytes:
            return b"".join(chunks), True
    return b"".join(chunks), False


def _redirected(request: Request, url: httpx.URL, status: int, location: str) -> Request:
    target = url.join(location)
    method, body = request.method, request.body
    if status == 303 or (status in (301, 302) and method == "POST"):
        method, body = ("HEAD" if method == "HEAD" else "GET"), None
    same_origin = (target.scheme, target.host, target.port) == (url.scheme, url.host, url.port)
    # Headers may carry a secret meant for the first host only.
    headers = request.headers if same_origin else {}
    return Request(method, str(target), headers, body)


def _render(response: httpx.Response, body: bytes, cut: bool, max_bytes: int) -> str:
    content_type = response.headers.get("content-type", "")
    lines = [f"HTTP {response.status_code} {response.reason_phrase}", f"content-type: {content_type}", ""]
    text = "\n".join(lines) + body.decode("utf-8", errors="replace")
    if cut:
        text += f"\n[response cut at {max_bytes} bytes]"
    return text
