"""Secure by default (ARCHITECTURE.md): no service listens beyond loopback without
authentication, and each says how to configure it; the auth settings refuse what would be weak
or broken."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pacs_api.settings import Settings as ApiSettings
from pacs_bridge.settings import Settings as BridgeSettings
from pacs_common.auth.api_keys import key_digest, new_api_key
from pacs_exporter.settings import Settings as ExporterSettings
from pydantic import ValidationError

ENTRY = {"name": "ops", "sha256": key_digest(new_api_key()), "scopes": ["read"]}
BRIDGE = {"allow": [{"ae_title": "CT"}]}

#: (settings class, the field that binds, the service's own settings, its prefix)
SERVICES: list[tuple[Any, str, dict[str, Any], str]] = [
    (ApiSettings, "host", {}, "PACS_API_"),
    (ExporterSettings, "host", {}, "PACS_EXPORTER_"),
    (BridgeSettings, "admin_host", BRIDGE, "PACS_BRIDGE_"),
]


@pytest.mark.parametrize(("cls", "field", "base", "prefix"), SERVICES)
def test_non_loopback_without_auth_refused_saying_how(
    cls: Any, field: str, base: dict[str, Any], prefix: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        cls(**base, **{field: "0.0.0.0"})
    message = str(refused.value)
    for variable in ("AUTH_API_KEYS", "AUTH_OIDC_ISSUER", "AUTH_JWT_SECRET", "AUTH_AUDIENCE"):
        assert f"{prefix}{variable}" in message
    assert "pacs-api api-key new" in message


@pytest.mark.parametrize(("cls", "field", "base", "prefix"), SERVICES)
def test_non_loopback_with_auth_starts_without_the_flag(
    cls: Any, field: str, base: dict[str, Any], prefix: str
) -> None:
    assert getattr(cls(**base, **{field: "0.0.0.0"}, auth_api_keys=[ENTRY]), field) == "0.0.0.0"
    jwt = {"auth_jwt_secret": "s" * 32, "auth_audience": "pacs"}
    assert getattr(cls(**base, **{field: "10.0.0.5"}, **jwt), field) == "10.0.0.5"


@pytest.mark.parametrize("cls", [ApiSettings, ExporterSettings])
def test_loopback_without_auth_is_the_embedded_default(cls: Any) -> None:
    settings = cls()
    assert settings.host == "127.0.0.1" and not settings.auth_configured


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ({"auth_jwt_secret": "s" * 32}, "only with auth_audience"),
        ({"auth_oidc_issuer": "https://id.example.org"}, "only with auth_audience"),
        ({"auth_jwt_secret": "s" * 31, "auth_audience": "pacs"}, "at least 32 bytes"),
        ({"auth_oidc_issuer": "http://id.example.org", "auth_audience": "a"}, "https://"),
        ({"auth_oidc_issuer": "id.example.org", "auth_audience": "a"}, "https://"),
        ({"auth_api_keys": [{**ENTRY, "sha256": new_api_key()}]}, "never the key itself"),
        ({"auth_api_keys": [{**ENTRY, "scopes": []}]}, "at least 1"),
        ({"auth_api_keys": [{**ENTRY, "scopes": ["root"]}]}, "'read'"),
        ({"auth_api_keys": [ENTRY, ENTRY]}, "must be unique"),
    ],
)
def test_auth_settings_refused_with_reason(given: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        ApiSettings(**given)


def test_api_keys_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "PACS_EXPORTER_AUTH_API_KEYS",
        f'[{{"name": "a", "sha256": "{"0" * 64}", "scopes": ["read", "write"]}}]',
    )
    (entry,) = ExporterSettings().auth_api_keys
    assert entry.name == "a" and {s.value for s in entry.scopes} == {"read", "write"}


def test_pacs_api_serve_non_loopback_refused_exit_2_secret_not_shown() -> None:
    """`pacs-api serve --host 0.0.0.0` with an incomplete configuration stops before binding,
    names what to set, and never prints the configured secret."""
    env = {
        **os.environ,
        "PACS_API_HOST": "0.0.0.0",
        "PACS_API_AUTH_JWT_SECRET": "do-not-print-this-secret-anywhere-0123",
    }
    env.pop("PACS_API_AUTH_AUDIENCE", None)
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "pacs-api"), "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "auth_audience" in proc.stderr
    assert "do-not-print-this-secret" not in proc.stderr + proc.stdout
