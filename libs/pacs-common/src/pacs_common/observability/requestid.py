"""The request id: one id per unit of work, carried in a context variable into log records and
sent to the next service in the ``X-Request-ID`` header, so that one operation can be followed
across the bridge, the exporter and the API.

An incoming id is used only when it is safe to log and to echo: 1 to 128 characters of
``[A-Za-z0-9._:-]``; anything else (too long, spaces, control characters, quotes) is replaced
by a generated one (32 hex digits). Threads start with an empty context: work handed to a
thread sets its own id (:func:`request_id_scope`) or runs in a copied context.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpx

HEADER = "X-Request-ID"
MAX_LENGTH = 128
_SAFE = re.compile(rf"[A-Za-z0-9._:-]{{1,{MAX_LENGTH}}}")
_current: ContextVar[str | None] = ContextVar("pacs_request_id", default=None)


def new_request_id() -> str:
    """A fresh id: 32 lowercase hex digits."""
    return uuid.uuid4().hex


def valid_request_id(value: str | None) -> str | None:
    """*value* when it is a safe request id, else None."""
    if value is not None and _SAFE.fullmatch(value):
        return value
    return None


def current_request_id() -> str | None:
    """The id of the work in hand, if any."""
    return _current.get()


def set_request_id(value: str | None) -> None:
    """Make *value* the id of what this thread (or task) does from now on."""
    _current.set(value)


@contextmanager
def request_id_scope(value: str | None = None) -> Iterator[str]:
    """Run a block under *value* (or a new id); the previous id comes back afterwards."""
    rid = value or new_request_id()
    token = _current.set(rid)
    try:
        yield rid
    finally:
        _current.reset(token)


def send_request_id(request: httpx.Request) -> None:
    """httpx ``request`` event hook: send the current id unless the caller set one."""
    rid = _current.get()
    if rid is not None and HEADER not in request.headers:
        request.headers[HEADER] = rid


def request_id_hooks() -> dict[str, list[Callable[..., Any]]]:
    """Event hooks for ``httpx.Client(event_hooks=...)``: send the current id on every call."""
    return {"request": [send_request_id]}
