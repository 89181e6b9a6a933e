"""The API token: created once and private, required everywhere, carried by a browser as a cookie."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import pytest

from autodo.config import Settings
from autodo.errors import InvalidInput
from autodo.server.auth import COOKIE, TOKEN_FILE
from autodo.server.serve import ServeOptions, serve_board
from tests.support import ServedApp, autodo


def test_the_token_is_created_once_readable_only_by_its_owner_and_printed_by_autodo_token(home: Path) -> None:
    printed = autodo(home, "token").stdout.strip()
    assert autodo(home, "token").stdout.strip() == printed and len(printed) >= 40
    path = home / TOKEN_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text().strip() == printed


def test_the_login_link_becomes_a_cookie_and_the_cookie_is_enough(home: Path) -> None:
    with ServedApp() as served, httpx.Client(base_url=served.url) as browser:
        login = browser.get(f"/api/v1/board?token={served.token}&x=1")
        assert login.status_code == 303 and login.headers["location"] == "/api/v1/board?x=1"
        assert "HttpOnly" in login.headers["set-cookie"] and "SameSite=Strict" in login.headers["set-cookie"]
        assert browser.cookies[COOKIE] == served.token
        assert browser.get("/api/v1/board").status_code == 200
        same_site = browser.post("/api/v1/tasks", json={"title": "t"}, headers={"Origin": served.url})
        cross_site = browser.post("/api/v1/tasks", json={"title": "t"}, headers={"Origin": "http://evil.test"})
        wrong_link = httpx.get(f"{served.url}/?token=guess", follow_redirects=False)
    assert same_site.status_code == 201
    assert cross_site.status_code == 403 and cross_site.json()["code"] == "forbidden"
    assert wrong_link.status_code == 401 and "set-cookie" not in wrong_link.headers


def test_without_auth_only_loopback_hosts_are_answered(home: Path) -> None:
    with ServedApp(auth=False) as served, httpx.Client(base_url=served.url) as client:
        assert client.get("/api/v1/board").status_code == 200
        rebound = client.get("/api/v1/board", headers={"Host": "attacker.test"})
    assert rebound.status_code == 403


def test_auth_can_be_switched_off_only_on_a_loopback_address(home: Path) -> None:
    with pytest.raises(InvalidInput, match="only allowed on a loopback address"):
        serve_board(Settings(), ServeOptions(host="0.0.0.0", auth=False, agents=0))
