"""The API in a process of its own (uvicorn, as operators run it), for the tests that kill,
restart or race it: started on a free port, ready when ``/readyz`` answers, stopped by its PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from pacs_common.launch import WORKER_HEALTHCHECK_SECONDS

from tests.support.server import free_port


@contextmanager
def api_process(
    env: dict[str, str], log: Path, *, workers: int = 1
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``uvicorn pacs_api.main:create_app`` with *env* (``PACS_API_*``) and *workers* worker
    processes, its output appended to *log*; yields the process and its DICOMweb root once
    ready; stops it (if still alive: SIGTERM, then SIGKILL) afterwards."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "pacs_api.main:create_app", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    if workers > 1:
        command += ["--workers", str(workers)]
        command += ["--timeout-worker-healthcheck", str(WORKER_HEALTHCHECK_SECONDS)]
    with log.open("ab") as output:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90  # a bound against hanging, not a timing assertion
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"the API did not become ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield process, f"{url}/dicom-web"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
