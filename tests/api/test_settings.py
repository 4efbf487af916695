"""Settings are validated once, at start; unsafe ones stop the start with a precise message."""

from __future__ import annotations

import pytest
from pacs_api.settings import Settings
from pydantic import ValidationError


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "pacs.example.org"])
def test_network_bind_without_authentication_refused(host: str) -> None:
    """Secure by default: no non-loopback bind while the API has no authentication."""
    with pytest.raises(ValidationError, match="no authentication configured"):
        Settings(host=host)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_loopback_bind_allowed(host: str) -> None:
    assert Settings(host=host).host == host


def test_network_bind_allowed_when_acknowledged() -> None:
    settings = Settings(host="0.0.0.0", allow_unauthenticated_network=True)
    assert settings.host == "0.0.0.0"


def test_unknown_setting_refused() -> None:
    """A misspelt keyword is an error, not silently ignored."""
    with pytest.raises(ValidationError):
        Settings(store="file://x")  # type: ignore[call-arg]
