"""Bridge settings: one validated object, built by the app factory, never at import.

Values come from ``PACS_BRIDGE_*`` environment variables and, when ``PACS_BRIDGE_CONFIG_FILE``
(or ``pacs-bridge serve --config``) names one, from a JSON or YAML file holding a mapping of the
same field names; the environment wins over the file. The allow-list is the ``allow`` field::

    # bridge.yaml
    ae_title: PACSCLOUD
    allow:
      - ae_title: CT_SCANNER
        host: 10.1.2.3          # an address or a network (10.1.2.0/24); omitted: any address
        permissions: [echo, store]
      - ae_title: WORKSTATION
        permissions: [echo, find, get]
    nodes:                      # C-MOVE and routing destinations by AE title
      WORKSTATION: {host: 10.1.2.40, port: 104}
      PLANNING:                 # over DICOM TLS, its certificate checked against this CA
        host: planning.example.org
        port: 2762
        tls: true
        tls_ca_certificates: /etc/pacs/planning-ca.pem
    tls_certificate: /etc/pacs/bridge.pem    # DICOM TLS (PS3.15 Annex B) on the listening port
    tls_private_key: /etc/pacs/bridge.key    # unencrypted PEM, matching the certificate
    tls_ca_certificates: /etc/pacs/ca.pem    # optional: peers must present a certificate it signs
    tls_minimum_version: "1.2"               # or "1.3"
    routes:                     # store-and-forward (pacs_bridge.routing.rules)
      - name: ct-to-planning
        calling_ae: [CT_SCANNER]
        modality: [CT]
        to: [PLANNING]

Secure by default: with the allow-list on (the default), only the calling AE titles listed are
accepted, and an empty list refuses to start; ``allow_any_calling_ae`` switches the check off
and is refused on a non-loopback address.

TLS (:mod:`pacs_bridge.tls`): with ``tls_certificate`` and ``tls_private_key`` the listening
port speaks TLS only; with ``tls_ca_certificates`` too, a peer must present a certificate signed
by one of those CAs (mutual TLS). The bridge presents its certificate to ``tls: true`` nodes,
which it verifies (host name included) against the node's ``tls_ca_certificates``, else the
bridge's, else the system's trust store. Relative paths are relative to the working directory.
The files are read and checked when the bridge starts.

A running bridge re-reads the environment and the file on SIGHUP (:mod:`pacs_bridge.live`):
``allow``, ``allow_any_calling_ae``, ``require_called_ae_title``, ``nodes`` and
``find_page_size`` change live; any other change refuses the reload.
"""

from __future__ import annotations

import ipaddress
import json
import os
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pacs_common.audit_outbox import AuditOutboxSettings, default_audit_url
from pacs_common.auth.settings import AuthSettings, require_authentication
from pacs_common.dimse import validate_ae_title
from pacs_common.launch import settings_faults
from pacs_common.network import check_origins, is_loopback
from pacs_common.observability.logs import LogFormat
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from pacs_bridge.routing.rules import Route

ENV_PREFIX = "PACS_BRIDGE_"
CONFIG_FILE_ENV = f"{ENV_PREFIX}CONFIG_FILE"


class ConfigError(Exception):
    """The configuration cannot be used (an unreadable or malformed configuration file)."""


class Permission(StrEnum):
    """A DIMSE service a calling AE title may use."""

    ECHO = "echo"
    STORE = "store"
    FIND = "find"
    GET = "get"
    MOVE = "move"


class AllowedPeer(BaseModel):
    """One allow-list entry: a calling AE title, optionally bound to addresses, and what it may
    do."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ae_title: str
    host: ipaddress.IPv4Network | ipaddress.IPv6Network | None = Field(
        None, description="Address or network the peer must connect from (default: any)."
    )
    permissions: frozenset[Permission] = frozenset(Permission)

    @field_validator("ae_title")
    @classmethod
    def _ae_title(cls, value: str) -> str:
        return validate_ae_title(value)

    @field_validator("host", mode="before")
    @classmethod
    def _network(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return ipaddress.ip_network(value.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"{value!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/24)"
                ) from None
        return value

    def admits(self, ae_title: str, address: str) -> bool:
        """True when a peer calling as *ae_title* from *address* is this entry."""
        if ae_title != self.ae_title:
            return False
        if self.host is None:
            return True
        try:
            return ipaddress.ip_address(address) in self.host
        except ValueError:
            return False


class Node(BaseModel):
    """A DICOM node the bridge connects to (a C-MOVE destination): its address and port, and
    whether it speaks DICOM TLS (PS3.15 Annex B)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(min_length=1, description="Host name or IP address of the node.")
    port: int = Field(ge=1, le=65535)
    tls: bool = Field(False, description="Connect over TLS and verify the node's certificate.")
    tls_ca_certificates: Path | None = Field(
        None, description="PEM CA certificates that sign the node's certificate (needs tls)."
    )

    @model_validator(mode="after")
    def _tls_ca_needs_tls(self) -> Node:
        if self.tls_ca_certificates is not None and not self.tls:
            raise ValueError("tls_ca_certificates is set but tls is not: add tls: true")
        return self

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        host = value.strip()
        if not host or any(c.isspace() for c in host):
            raise ValueError(f"{value!r} is not a host name or address")
        return host


class Settings(AuditOutboxSettings, AuthSettings, BaseSettings):
    """Configuration of the DIMSE bridge (``PACS_BRIDGE_*`` variables, optional config file).

    ``dicomweb_token`` is what the bridge presents to the API; the ``auth_*`` fields
    (:mod:`pacs_common.auth.settings`) are what callers of its status API must present.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    config_file: Path | None = Field(
        None, description="JSON or YAML file with any of these settings (the environment wins)."
    )
    ae_title: str = "PACSCLOUD"
    host: str = "127.0.0.1"
    port: int = Field(11112, ge=1, le=65535)
    dicomweb_url: str = "http://127.0.0.1:8080/dicom-web"
    dicomweb_token: SecretStr | None = Field(
        None,
        description="Bearer token (an API key, or a JWT) sent to the API, which needs the "
        "read and write scopes (store, query, retrieve, the change feed). Unset: none sent.",
    )
    max_pdu: int = Field(
        262144, ge=0, description="Maximum PDU length received (PS3.8 D.1), 0 for no limit."
    )
    max_associations: int = Field(16, ge=1)
    poll_interval: float = Field(
        0.0002,
        gt=0,
        le=0.01,
        description=(
            "Seconds pynetdicom's reactor sleeps when idle: lower answers sooner and costs "
            "more CPU per open association (pacs_bridge.network)."
        ),
    )
    network_timeout: float = Field(60.0, gt=0, description="Seconds of network inactivity.")
    acse_timeout: float = Field(30.0, gt=0, description="Seconds to wait for ACSE messages.")
    dimse_timeout: float = Field(60.0, gt=0, description="Seconds to wait for DIMSE messages.")
    http_timeout: float = Field(120.0, gt=0, description="Seconds to wait for the API.")
    find_page_size: int = Field(500, ge=1, description="QIDO-RS results fetched per request.")
    require_called_ae_title: bool = Field(
        True, description="Reject associations whose called AE title is not ae_title."
    )
    allow_any_calling_ae: bool = Field(
        False, description="Accept every calling AE title (loopback binds only)."
    )
    connection_timeout: float = Field(
        10.0, gt=0, description="Seconds to wait for a C-MOVE destination to accept a connection."
    )
    allow: tuple[AllowedPeer, ...] = ()
    nodes: dict[str, Node] = Field(
        default_factory=dict,
        description="Known nodes (C-MOVE and routing destinations) by AE title.",
    )
    database_url: str = Field(
        "sqlite:///./var/bridge.sqlite3",
        description="The bridge's own database (routing state): sqlite:///PATH or postgresql://.",
    )
    changefeed_url: str | None = Field(
        None, description="The API's change feed (default: beside dicomweb_url, /changefeed)."
    )
    routes: tuple[Route, ...] = Field((), description="Store-and-forward route rules.")
    routing_poll_interval: float = Field(1.0, gt=0, description="Seconds between feed polls.")
    routing_page_size: int = Field(500, ge=1, le=10000, description="Feed entries per read.")
    routing_batch_size: int = Field(50, ge=1, description="Instances sent per association.")
    routing_retry_initial: float = Field(2.0, gt=0, description="First backoff, seconds.")
    routing_retry_max: float = Field(300.0, gt=0, description="Longest backoff, seconds.")
    routing_keep_settled: timedelta = Field(
        timedelta(days=7), description="How long delivered and cancelled deliveries are listed."
    )
    admin_host: str = Field("127.0.0.1", description="Address of the HTTP status API.")
    admin_port: int = Field(
        8082, ge=0, le=65535, description="Port of the HTTP status API (0: any free port)."
    )
    admin_allow_unauthenticated_network: bool = Field(
        False,
        description="Serve the status API on a non-loopback address with no auth_* configured "
        "(only behind a proxy that authenticates every request).",
    )
    admin_cors_allow_origins: list[str] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port]) whose browser pages may call the status "
        'API (the API\'s dashboard, e.g. ["http://127.0.0.1:8080"]), or ["*"]; empty (the '
        "default) turns CORS off. Read at start.",
    )
    log_format: LogFormat = Field(
        "auto",
        description="Logs of `pacs-bridge serve`: json (one object per line), text, or auto "
        "(text on a terminal, JSON otherwise).",
    )
    tls_certificate: Path | None = Field(
        None, description="PEM certificate (chain) of the bridge: the listening port uses TLS."
    )
    tls_private_key: Path | None = Field(
        None, description="Unencrypted PEM private key of tls_certificate."
    )
    tls_ca_certificates: Path | None = Field(
        None, description="PEM CA certificates: peers must present a certificate they sign."
    )
    tls_minimum_version: Literal["1.2", "1.3"] = Field(
        "1.2", description="Oldest TLS version accepted (BCP 195: 1.2 or later)."
    )

    @field_validator("ae_title")
    @classmethod
    def _ae_title(cls, value: str) -> str:
        return validate_ae_title(value)

    @field_validator("admin_cors_allow_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        return check_origins(origins)

    @field_validator("nodes")
    @classmethod
    def _node_titles(cls, value: dict[str, Node]) -> dict[str, Node]:
        nodes: dict[str, Node] = {}
        for title, node in value.items():
            key = validate_ae_title(title)
            if key in nodes:
                raise ValueError(f"the AE title {key!r} names more than one node")
            nodes[key] = node
        return nodes

    @field_validator("dicomweb_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _routing(self) -> Settings:
        names = [route.name for route in self.routes]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"route names must be unique: {', '.join(twice)}")
        for route in self.routes:
            unknown = [title for title in route.to if title not in self.nodes]
            if unknown:
                raise ValueError(
                    f"route {route.name!r} sends to {', '.join(unknown)}, not among the nodes"
                )
        if self.changefeed_url is None:
            root, _, last = self.dicomweb_url.rpartition("/")
            if last != "dicom-web":
                raise ValueError(
                    f"changefeed_url cannot be derived from {self.dicomweb_url!r} (it does not "
                    "end in /dicom-web): set changefeed_url"
                )
            self.changefeed_url = f"{root}/changefeed"
        if self.audit_url is None:
            self.audit_url = default_audit_url(self.dicomweb_url)
        require_authentication(
            self,
            service="the bridge's status API (admin_host)",
            host=self.admin_host,
            env_prefix=ENV_PREFIX,
            flag="ADMIN_ALLOW_UNAUTHENTICATED_NETWORK",
            waived=self.admin_allow_unauthenticated_network,
        )
        return self

    @model_validator(mode="after")
    def _tls_files_together(self) -> Settings:
        if (self.tls_certificate is None) != (self.tls_private_key is None):
            given, missing = (
                ("tls_certificate", "tls_private_key")
                if self.tls_private_key is None
                else ("tls_private_key", "tls_certificate")
            )
            raise ValueError(f"{given} is set without {missing}: TLS needs both")
        if self.tls_ca_certificates is not None and self.tls_certificate is None:
            raise ValueError(
                "tls_ca_certificates asks peers for certificates, which needs TLS: "
                "set tls_certificate and tls_private_key"
            )
        return self

    @model_validator(mode="after")
    def _secure_by_default(self) -> Settings:
        if self.allow_any_calling_ae:
            if not is_loopback(self.host):
                raise ValueError(
                    f"allow_any_calling_ae accepts every peer, which is refused on the "
                    f"non-loopback address {self.host!r}: list the peers in allow instead"
                )
        elif not self.allow:
            raise ValueError(
                "no calling AE title is allowed: list peers in allow (PACS_BRIDGE_ALLOW as JSON, "
                "or a config file), or set allow_any_calling_ae on a loopback address"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments first, then the environment, then the configuration file."""
        return init_settings, env_settings, ConfigFileSource(settings_cls, init_settings)


class ConfigFileSource(PydanticBaseSettingsSource):
    """The mapping in the file named by ``config_file`` (an argument or the environment)."""

    def __init__(
        self, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource
    ) -> None:
        super().__init__(settings_cls)
        self._init_settings = init_settings

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads the whole file at once

    def __call__(self) -> dict[str, Any]:
        path = self._init_settings().get("config_file") or os.environ.get(CONFIG_FILE_ENV)
        return read_config_file(Path(path)) if path else {}


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings mapping of a ``.json``, ``.yaml`` or ``.yml`` file, else
    :class:`ConfigError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration file {path}: {exc.strerror}") from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            raise ConfigError(f"{path}: a configuration file ends in .json, .yaml or .yml")
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path} is not valid {path.suffix[1:].upper()}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of setting names to values")
    return data


def config_faults(exc: ConfigError | SettingsError | ValidationError) -> list[str]:
    """One line per fault of a configuration that cannot be loaded, a validation error named
    as its variable (``PACS_BRIDGE_ALLOW[0].host: ...``)."""
    if not isinstance(exc, ValidationError):
        cause = f": {exc.__cause__}" if exc.__cause__ else ""
        return [f"configuration: {exc}{cause}"]
    return settings_faults(exc, ENV_PREFIX)
