"""Starting a service from its command line: settings faults named by their variables, and
uvicorn run with the services' logging and metrics set up.

A service refuses to start on an invalid configuration and says which variable is at fault
(exit status 2). What it shows of the value given is bounded by what is safe in a log: the
values of secrets (keys, tokens, passwords) are never shown, and a password inside a URL (a
database URL, say) is masked.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import uvicorn
from pydantic import ValidationError

from pacs_common.observability.logs import LogFormat, logging_config
from pacs_common.observability.metrics import prepare_multiprocess

S = TypeVar("S")

#: How long uvicorn's supervisor waits for a worker process to answer its health ping before it
#: kills and replaces it. uvicorn's 5 s default is shorter than a worker's start (importing
#: pydicom, numpy, the codecs) on a loaded machine: seen here at a load of 13 on 2 cores, the
#: supervisor killed every worker before it started, forever. A worker silent this long is hung.
WORKER_HEALTHCHECK_SECONDS = 60

#: Settings whose values are never echoed (matched against the field name).
_SECRET_NAME = re.compile(r"secret|password|token|key", re.IGNORECASE)
#: ``scheme://user:password@`` in a URL: the password is masked.
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/:@\s]*:)[^@/\s]*@", re.IGNORECASE)


def shown_value(field: str, value: Any) -> str:
    """How a rejected *value* of *field* may appear in a message: `` (got ...)`` or nothing."""
    if _SECRET_NAME.search(field):
        return ""
    text = repr(value)
    return f" (got {_URL_PASSWORD.sub(lambda m: m['head'] + '***@', text)})"


def settings_faults(exc: ValidationError, env_prefix: str) -> list[str]:
    """One line per fault, named as the environment variable that carries it, with the path
    inside a structured value: ``PACS_BRIDGE_ALLOW[0].host: ... (got '...')``."""
    lines = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        where = f"{env_prefix}{loc[0].upper()}" if loc else f"{env_prefix}*"
        path = "".join(f"[{part}]" if part.isdigit() else f".{part}" for part in loc[1:])
        # a check across fields (no location) gets every value as its input, secrets too
        shown = shown_value(loc[0], error.get("input")) if loc else ""
        lines.append(f"{where}{path}: {error['msg']}{shown}")
    return lines


def load_settings(factory: Callable[[], S], env_prefix: str) -> S:
    """Build a service's settings; an invalid configuration ends the process with status 2
    after naming every fault on stderr."""
    try:
        return factory()
    except ValidationError as exc:
        for line in settings_faults(exc, env_prefix):
            print(line, file=sys.stderr)
        raise SystemExit(2) from exc


def serve_app(
    factory: str,
    *,
    env_prefix: str,
    host: str,
    port: int,
    processes: int,
    log_level: str,
    log_format: LogFormat,
    validate: Callable[[], object],
) -> None:
    """Run the ASGI app factory *factory* (``"module:function"``) with uvicorn until
    interrupted.

    The factory builds its own settings in every process, so the address actually bound is
    handed to it through ``{env_prefix}HOST`` / ``{env_prefix}PORT``, and *validate* checks
    the settings again with those overrides before anything starts. With several processes
    they share their metrics (:func:`~pacs_common.observability.metrics.prepare_multiprocess`).
    The apps write their own access records, so uvicorn's access log is off.
    """
    os.environ[f"{env_prefix}HOST"] = host
    os.environ[f"{env_prefix}PORT"] = str(port)
    validate()
    prepare_multiprocess(processes)  # /metrics of any process answers for all of them
    uvicorn.run(
        factory,
        factory=True,
        host=host,
        port=port,
        workers=processes,
        log_level=log_level,
        log_config=logging_config(log_format, log_level),
        access_log=False,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
    )
