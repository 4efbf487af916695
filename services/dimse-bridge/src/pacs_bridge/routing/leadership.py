"""One router per routing database: the bridge replica holding the lock follows the feed and
delivers; the others stand by and take over when it goes (a stateless replica may run
anywhere; the lock, not a home-made election, decides).

PostgreSQL: a session-level advisory lock on a connection kept open while leading (released by
the server when the process dies). SQLite: an exclusive ``flock`` on a file beside the database
(one machine; released by the kernel when the process dies).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

#: Key of the PostgreSQL advisory lock of the router (any constant will do).
_ROUTER_LOCK = 0x726F7574  # "rout"


class Leadership:
    """Try to lead with :meth:`acquire`; :meth:`release` when stopping."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._held: Any = None

    @property
    def leading(self) -> bool:
        return self._held is not None

    def acquire(self) -> bool:
        """True when this process leads (now or already). On PostgreSQL a held lock is checked
        first: a lost session (the server restarted) lost the lock with it."""
        if self._held is not None and not isinstance(self._held, int):
            if not self._session_holds(self._held):
                self._held.invalidate()
                self._held = None
        if self._held is not None:
            return True
        if self.engine.dialect.name == "postgresql":
            connection = self.engine.connect()
            got = connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": _ROUTER_LOCK}
            ).scalar()
            connection.commit()
            if got:
                self._held = connection
            else:
                connection.close()
        else:
            database = self.engine.url.database
            path = Path(f"{database}.router-lock" if database else "router.lock")
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
            else:
                self._held = fd
        return self._held is not None

    @staticmethod
    def _session_holds(connection: Any) -> bool:
        try:
            held = connection.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND pid = pg_backend_pid() AND objid = :key AND granted"
                ),
                {"key": _ROUTER_LOCK},
            ).scalar()
            connection.commit()
        except Exception:  # noqa: BLE001  a broken session holds nothing
            return False
        return bool(held)

    def release(self) -> None:
        held, self._held = self._held, None
        if held is None:
            return
        if isinstance(held, int):
            os.close(held)  # closing the descriptor releases the flock
            return
        try:  # the pooled session outlives close(): unlock explicitly
            held.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _ROUTER_LOCK})
            held.commit()
        except Exception:  # noqa: BLE001  a broken session has lost the lock already
            held.invalidate()
        held.close()
