"""The services ``pacs`` talks to over HTTP, on free loopback ports in threads: the real API
(:func:`tests.support.server.running_api`) and the real exporter app with its worker threads
(uvicorn, as ``make run`` serves it); and ``pacs`` itself as a separate process, for the tests
that interrupt it with SIGINT (Ctrl-C)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from pacs_exporter.main import create_app
from pacs_exporter.settings import Settings

from tests.exporter.service import exporter_settings
from tests.support.server import free_port

#: Upper bound of waiting for a process: a limit against hanging, not a timing assertion.
WAIT_SECONDS = 120.0


@contextmanager
def running_exporter(directory: Path, dicomweb_url: str, **overrides: object) -> Iterator[str]:
    """The exporter's REST API (its workers started by its lifespan); yield its URL."""
    directory.mkdir(parents=True, exist_ok=True)
    settings: Settings = exporter_settings(directory, dicomweb_url, **overrides)
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the exporter did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def pacs_process(*args: str) -> Iterator[subprocess.Popen[str]]:
    """``python -m pacs_cli ARGS...`` with its output on a pipe (plain lines, unbuffered);
    killed if still running when the block ends."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "pacs_cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=WAIT_SECONDS)
        assert process.stdout is not None
        process.stdout.close()


def read_until(process: subprocess.Popen[str], marker: str) -> list[str]:
    """The process's output lines up to and including the first one containing *marker*."""
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line)
        if marker in line:
            return lines
    raise AssertionError(f"{marker!r} never printed; output: {''.join(lines)}")


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    """Wait for the process; its exit code and the rest of its output."""
    assert process.stdout is not None
    rest = process.stdout.read()
    return process.wait(timeout=WAIT_SECONDS), rest
