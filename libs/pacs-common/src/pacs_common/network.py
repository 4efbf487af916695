"""Network facts the services share."""

from __future__ import annotations

import ipaddress
import re


def is_loopback(host: str) -> bool:
    """True for a host that only this machine can reach (``localhost``, 127.0.0.0/8, ``::1``).

    The services refuse to listen on anything else without access control (secure by default,
    ARCHITECTURE.md "Configuration").
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_ORIGIN = re.compile(r"^[a-z][a-z0-9+.-]*://[^/?#\s]+$", re.IGNORECASE)


def check_origins(origins: list[str]) -> list[str]:
    """CORS origins as settings take them: each ``scheme://host[:port]`` without a path
    (RFC 6454 §7), or ``"*"`` for any; raises ``ValueError`` naming the first that is not."""
    for origin in origins:
        if origin != "*" and not _ORIGIN.match(origin):
            raise ValueError(
                f"{origin!r} is not an origin: write scheme://host[:port] without a path or "
                'trailing slash, or "*"'
            )
    return origins
