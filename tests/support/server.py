"""The API served by a real uvicorn on a free loopback port, in a thread (httpx's test idiom)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from pacs_api.main import create_app
from pacs_api.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(app: Any, port: int | None = None) -> Iterator[int]:
    """Serve the ASGI *app* with uvicorn on 127.0.0.1 (*port*, or a free one); yield the port;
    stop it afterwards."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def running_api(settings: Settings, port: int | None = None) -> Iterator[str]:
    """Serve the API (on *port*, or a free one); yield its DICOMweb root URL; stop it
    afterwards."""
    with serving(create_app(settings), port) as bound:
        yield f"http://127.0.0.1:{bound}/dicom-web"
