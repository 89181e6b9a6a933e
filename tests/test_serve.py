"""`autodo serve` as a person starts it: the URL to open, a worker beside it, a clean stop."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support import AUTODO, environment, wait_for

pytestmark = pytest.mark.slow


def start_serve(home: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [*AUTODO, "serve", "--port", "0", *args],
        env=environment(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:\d+/\?token=(\S+)", line)
    assert match, line
    return process, match.group(0)


def worker_pids(home: Path) -> list[int]:
    """Worker processes started for this home (found by their environment)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if b"work" in cmdline and f"AUTODO_HOME={home}".encode() in environ:
            found.append(int(pid))
    return found


def test_serve_prints_a_login_link_and_stops_its_worker_on_ctrl_c(home: Path) -> None:
    process, link = start_serve(home, "--agents", "1")
    try:
        with httpx.Client(follow_redirects=True) as browser:
            page = browser.get(link)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert wait_for(lambda: worker_pids(home), timeout=30, what="the worker beside the server")
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    wait_for(lambda: not worker_pids(home), timeout=30, what="the worker to stop")


def test_a_killed_server_takes_its_worker_with_it(home: Path) -> None:
    process, _ = start_serve(home, "--agents", "1")
    [worker] = wait_for(lambda: worker_pids(home), timeout=30, what="the worker beside the server")
    process.kill()
    process.wait(timeout=10)
    wait_for(lambda: worker not in worker_pids(home), timeout=30, what="the orphaned worker to exit")
