"""End to end in a real browser: Debian's Chromium, driven by Playwright, on `autodo serve`.

The person adds a task on the board, answers the agent's question in the inbox, and steers the
running agent from the task page; the agent talks to the stub model over HTTP. Screenshots of
every page (at 1280x800) go to $AUTODO_SCREENSHOTS (docs/screenshots/ for the docs) or a temp folder.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, ViewportSize, expect, sync_playwright

from autodo.testing import StubModelServer
from tests.support import AUTODO, agent_rule, call, environment, script, wait_for, write_profiles

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
# A closed network: without these Chromium keeps trying to reach Google's services.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
# `AUTODO_SCREENSHOTS=docs/screenshots pytest tests/test_web_browser.py` refreshes the docs' pictures.
SCREENSHOTS = Path(os.environ.get("AUTODO_SCREENSHOTS") or Path(tempfile.gettempdir()) / "autodo-screenshots")
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}

QUESTION = "Which greeting should the file hold?"
ANSWER = "Hello from the web board"
STEER = "Also add a second line that says goodbye"
SLOW_TURN = 4.0  # the turn after the answer: time to type a steering message while the agent works


def greeter() -> dict[str, object]:
    """The agent asks, writes the file slowly, then finishes (after reading the steering message)."""
    return agent_rule(
        "greeter",
        "[greeter]",
        {**call("ask_human", 0.3, question=QUESTION), "content": "I can write it once I know the wording."},
        call("write_file", SLOW_TURN, path="greeting.txt", content=f"{ANSWER}\n"),
        call("write_file", 0.3, path="greeting.txt", content=f"{ANSWER}\nGoodbye\n"),
        call("finish", 0.3, summary="wrote greeting.txt with a greeting and a goodbye"),
    )


def note_writer() -> dict[str, object]:
    """A task that waits for the greeting, then writes its note at once."""
    return agent_rule(
        "notes",
        "[notes]",
        call("write_file", 0.2, path="notes.md", content="# Notes\nThe greeting is written.\n"),
        call("finish", 0.2, summary="wrote notes.md"),
    )


@pytest.fixture
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: run scripts/browser (it installs Debian's chromium)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def stub() -> Iterator[StubModelServer]:
    # The notes rule comes first: a task's prompt quotes the titles of the tasks it waited for.
    with StubModelServer(script(note_writer(), greeter())) as server:
        yield server


@pytest.fixture
def board_url(home: Path, stub: StubModelServer) -> Iterator[str]:
    """`autodo serve` without a token on a free loopback port, with two agents beside it."""
    write_profiles(home, stub.url)
    log = home / "serve.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [*AUTODO, "serve", "--port", "0", "--no-auth", "--agents", "2"],
            env=environment(home), stdout=output, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    try:
        found = wait_for(lambda: _announced_url(log, server), timeout=30, what="autodo serve to print its URL")
        yield found
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def _announced_url(log: Path, server: subprocess.Popen[str]) -> str | None:
    if server.poll() is not None:
        raise AssertionError(f"autodo serve exited with {server.returncode}:\n{log.read_text()}")
    match = re.search(r"autodo board on (http://127\.0\.0\.1:\d+/)", log.read_text())
    return match.group(1) if match else None


class Guard:
    """Fails the test on a JavaScript error or on any request that leaves the server."""

    def __init__(self, base: str) -> None:
        self.host = urlsplit(base).netloc
        self.errors: list[str] = []
        self.outside: list[str] = []

    def watch(self, page: Page) -> Page:
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", self._console)
        page.on("request", self._request)
        return page

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def _request(self, request: Request) -> None:
        if urlsplit(request.url).netloc != self.host:
            self.outside.append(request.url)


def shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png")


def test_a_task_added_on_the_board_is_asked_answered_steered_and_done_in_the_browser(
    browser: Browser, board_url: str, stub: StubModelServer, home: Path
) -> None:
    guard = Guard(board_url)
    context = browser.new_context(viewport=VIEWPORT, base_url=board_url.rstrip("/"))
    page = guard.watch(context.new_page())

    page.goto("/")
    expect(page.locator(".empty-board")).to_contain_text("No tasks yet")
    shoot(page, "board-empty")
    add_side_tasks(page)

    page.fill("#new-title", "[greeter] Write a greeting file")
    page.select_option("#new-lane", "agent")
    page.click("#add-task button[type=submit]")
    card = page.locator(".card", has_text="[greeter] Write a greeting file")
    expect(card).to_be_visible()
    task_id = card.get_attribute("data-task")
    assert task_id
    add_dependent_task(page)

    # The agent's question moves the card live, without a reload.
    waiting = page.locator("#cards-waiting-on-you .card", has_text="[greeter]")
    expect(waiting).to_be_visible(timeout=30_000)
    expect(waiting.locator(".activity")).to_contain_text(QUESTION)
    shoot(page, "board")

    page.click("nav >> text=Inbox")
    question = page.locator("[data-kind=question]", has_text=QUESTION)
    expect(question).to_be_visible()
    expect(page.locator("#inbox-count")).to_have_text("3")
    shoot(page, "inbox")
    question.focus()
    page.keyboard.press("Enter")  # the answer box, from the keyboard
    page.keyboard.type(ANSWER)
    page.keyboard.press("Control+Enter")
    expect(question).to_have_count(0)
    expect(page.locator("#notice")).to_contain_text("Answered")

    team = guard.watch(context.new_page())
    team.goto("/team")
    page.goto(f"/tasks/{task_id}")
    expect(page.locator("#transcript")).to_contain_text("with the answer")
    wait_for(lambda: len(stub.requests) >= 2, timeout=20, what="the agent's request after the answer")
    page.fill("#steer-text", STEER)
    page.click("#steer button[type=submit]")
    expect(page.locator("#notice")).to_contain_text("Sent")
    sent_at = time.time()
    expect(page.locator("#transcript .ev-message-sent")).to_contain_text(STEER)
    expect(team.locator(".profile", has_text="default").locator(".agents-now")).to_contain_text("[greeter]")
    shoot(team, "team")

    expect(page.locator(".task-head .badge").first).to_have_text("done", timeout=30_000)
    expect(page.locator("#transcript")).to_contain_text("the agent read your message")
    page.evaluate("window.scrollTo(0, 0)")  # the page followed the transcript down as it grew
    shoot(page, "task")
    page.click("#tab-changes")
    expect(page.locator("#changes .file")).to_contain_text("greeting.txt")
    expect(page.locator("#changes .diff .add").last).to_have_text("+Goodbye")

    page.goto("/")
    expect(page.locator("#cards-done .card", has_text="[greeter]")).to_be_visible()
    expect(page.locator("#cards-done .card", has_text="[notes]")).to_be_visible(timeout=20_000)

    later = [request for request in stub.requests if request.at >= sent_at]
    assert later and STEER in later[0].said, [(r.rule, r.turn, r.said) for r in stub.requests]
    assert (home / "workspaces" / task_id / "greeting.txt").read_text() == f"{ANSWER}\nGoodbye\n"
    assert guard.errors == []
    assert guard.outside == []
    context.close()


def add_side_tasks(page: Page) -> None:
    """Work for the person: one task only they can do, one the agents may start after an answer."""
    for title, lane in (("Sign the supplier contract", "human"), ("Plan the team offsite", "ask")):
        page.fill("#new-title", title)
        page.select_option("#new-lane", lane)
        page.keyboard.press("Enter")
        expect(page.locator(".card", has_text=title)).to_be_visible()
    expect(page.locator(".empty-board")).to_have_count(0)


def add_dependent_task(page: Page) -> None:
    """A task with details, a dependency and a profile, from the form's second row."""
    page.fill("#new-title", "[notes] Write a note about the greeting")
    page.click(".add-more summary")
    page.fill("#add-task textarea[name=body]", "Say which file holds the greeting.")
    page.select_option("#add-task select[name=blocked_by]", label="[greeter] Write a greeting file")
    page.select_option("#add-task select[name=profile]", "default")
    page.click("#add-task button[type=submit]")
    notes = page.locator("#cards-agents-working .card", has_text="[notes]")
    expect(notes.locator(".badge").first).to_have_text("blocked")
    expect(notes.locator(".activity")).to_have_text("waits for 1 task")
    page.click(".add-more summary")
