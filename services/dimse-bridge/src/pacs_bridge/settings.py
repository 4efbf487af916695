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
    nodes:                      # C-MOVE destinations by AE title
      WORKSTATION: {host: 10.1.2.40, port: 104}

Secure by default: with the allow-list on (the default), only the calling AE titles listed are
accepted, and an empty list refuses to start; ``allow_any_calling_ae`` switches the check off
and is refused on a non-loopback address.
"""

from __future__ import annotations

import ipaddress
import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pacs_common.network import is_loopback
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "PACS_BRIDGE_"
CONFIG_FILE_ENV = f"{ENV_PREFIX}CONFIG_FILE"
#: PS3.5 table 6.2-1: an AE title is 1 to 16 characters, no backslash, no control characters.
AE_TITLE_MAX_LENGTH = 16


class ConfigError(Exception):
    """The configuration cannot be used (an unreadable or malformed configuration file)."""


class Permission(StrEnum):
    """A DIMSE service a calling AE title may use."""

    ECHO = "echo"
    STORE = "store"
    FIND = "find"
    GET = "get"
    MOVE = "move"


def validate_ae_title(value: str) -> str:
    """An AE title without its padding (PS3.5 table 6.2-1, VR AE), else ``ValueError``."""
    title = value.strip(" ")
    if not title:
        raise ValueError("an AE title needs at least one non-space character")
    if len(title) > AE_TITLE_MAX_LENGTH:
        raise ValueError(f"AE title {title!r} is longer than {AE_TITLE_MAX_LENGTH} characters")
    if "\\" in title or not title.isascii() or not title.isprintable():
        raise ValueError(
            f"AE title {title!r} may hold printable ASCII only, without backslash (PS3.5 6.2)"
        )
    return title


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
    """A DICOM node the bridge connects to (a C-MOVE destination): its address and port."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(min_length=1, description="Host name or IP address of the node.")
    port: int = Field(ge=1, le=65535)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        host = value.strip()
        if not host or any(c.isspace() for c in host):
            raise ValueError(f"{value!r} is not a host name or address")
        return host


class Settings(BaseSettings):
    """Configuration of the DIMSE bridge (``PACS_BRIDGE_*`` variables, optional config file)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    config_file: Path | None = Field(
        None, description="JSON or YAML file with any of these settings (the environment wins)."
    )
    ae_title: str = "PACSCLOUD"
    host: str = "127.0.0.1"
    port: int = Field(11112, ge=1, le=65535)
    dicomweb_url: str = "http://127.0.0.1:8080/dicom-web"
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
        default_factory=dict, description="Known nodes (C-MOVE destinations) by AE title."
    )

    @field_validator("ae_title")
    @classmethod
    def _ae_title(cls, value: str) -> str:
        return validate_ae_title(value)

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
