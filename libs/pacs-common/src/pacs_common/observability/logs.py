"""Structured logs: one JSON object per line on stderr, through the standard logging module.

Every record becomes ``{"time", "level", "logger", "message", "request_id", ...}``: the time
in UTC (RFC 3339, milliseconds), the request id of the work in hand
(:mod:`.requestid`), then the context fields the code passed with ``extra={...}``, and
``exc_info`` as a formatted traceback. A formatter of our own (about 40 lines on ``json``)
instead of python-json-logger: the fields, their names and the time format are ours to
choose, and it adds no dependency whose module layout changed between major versions.

``log_format`` is ``json``, ``text`` (the classic one-line format, with the request id) or
``auto``: text on a terminal, JSON otherwise (a container, a file, a log shipper).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

from pacs_common.observability.requestid import current_request_id

LogFormat = Literal["auto", "json", "text"]

#: Attributes every LogRecord has: not context fields.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "request_id", "taskName"}
)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class RequestIdFilter(logging.Filter):
    """Give every record the current request id (``request_id``; "-" for text when none),
    unless the code passed one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module's docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The one-line text format, with the request id in brackets ("-" when none)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id() or "-"
        return super().format(record)


def resolve_format(log_format: LogFormat) -> Literal["json", "text"]:
    """``auto``: text when stderr is a terminal, JSON otherwise."""
    if log_format == "auto":
        return "text" if sys.stderr.isatty() else "json"
    return log_format


def logging_config(log_format: LogFormat = "auto", level: str = "INFO") -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` dictionary: one stderr handler on the root logger in
    *log_format*; uvicorn's loggers propagate to it (its own access log is replaced by the
    services' access records, :mod:`.http`). Also usable as uvicorn's ``log_config``, so that
    every worker process configures the same."""
    formatter = JsonFormatter if resolve_format(log_format) == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"default": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "default",
                "filters": ["request_id"],
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False, "level": "WARNING"},
            "pynetdicom": {"level": "WARNING"},
            # one record per call, with the full URL: the access records say it better
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
        },
    }


def configure_logging(log_format: LogFormat = "auto", level: str = "INFO") -> None:
    """Configure this process's logging (:func:`logging_config`)."""
    import logging.config

    logging.config.dictConfig(logging_config(log_format, level))
