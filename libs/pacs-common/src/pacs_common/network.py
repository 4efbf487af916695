"""Network facts the services share."""

from __future__ import annotations

import ipaddress


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
