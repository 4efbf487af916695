"""The audit trail's view of HTTP: one ASGI middleware, shared by the API and the exporter, that
records every request once its response has gone out.

It watches the response start for the status and the request id, lets the service turn the
answered request into records (``records(scope, status, request_id, broken)``: none for an
unaudited request; *broken* when the application raised after or instead of answering), and
appends them in a worker thread (the stream line is a file write). A failure to record is
logged with its traceback, never raised: the user's answer has been sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pacs_common.audit import AuditRecord
from pacs_common.observability.requestid import HEADER

log = logging.getLogger(__name__)

#: Turns an answered request into its audit records.
RecordsOf = Callable[[Scope, int, str, bool], Sequence[AuditRecord]]


class AuditMiddleware:
    """Record every audited HTTP request once its response is sent (module docstring); install
    it outermost, so that it sees every answer, errors included."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        records: RecordsOf,
        append: Callable[[Sequence[AuditRecord]], None],
    ) -> None:
        self.app = app
        self.records = records
        self.append = append

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        status = 500
        request_id = ""
        broken = False

        async def send_and_watch(message: Message) -> None:
            nonlocal status, request_id
            if message["type"] == "http.response.start":
                status = int(message["status"])
                request_id = Headers(raw=message.get("headers", [])).get(HEADER, "")
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        except BaseException:
            broken = True
            raise
        finally:
            await self._record(scope, status, request_id, broken)

    async def _record(self, scope: Scope, status: int, request_id: str, broken: bool) -> None:
        try:
            records = self.records(scope, status, request_id, broken)
            if records:
                await run_in_threadpool(self.append, records)
        except Exception:  # the user's answer is sent; the failure must be seen, not raised
            log.exception(
                "the audit record of %s %s (request %s) could not be written",
                scope.get("method"),
                scope.get("path"),
                request_id,
            )
