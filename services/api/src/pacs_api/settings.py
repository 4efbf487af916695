"""API settings: one validated object, built by the app factory, never at import."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pacs_common.auth.settings import AuthSettings, require_authentication
from pacs_common.network import check_origins
from pacs_common.observability.logs import LogFormat
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class OverwritePolicy(StrEnum):
    """What STOW-RS does with a SOP Instance UID it already holds under different bytes."""

    REJECT = "reject"
    OVERWRITE = "overwrite"


class Settings(AuthSettings, BaseSettings):
    """Configuration of the DICOMweb API, from ``PACS_API_*`` environment variables.

    The defaults are the embedded setup: a SQLite index and a filesystem object store under
    ``./var/``. PostgreSQL and S3 are one URL each. Authentication is the ``auth_*`` fields
    (:mod:`pacs_common.auth.settings`); with none of them set, every caller may do everything,
    which is allowed on a loopback address only.
    """

    model_config = SettingsConfigDict(env_prefix="PACS_API_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    public_url: str | None = Field(
        None,
        description="Base URL clients reach the server at, used for RetrieveURL and BulkDataURI "
        "(default: taken from each request).",
    )
    database_url: str = "sqlite:///./var/index.sqlite3"
    store_url: str = Field(
        "file://./var/objects",
        description="file://PATH for the filesystem store, or s3://[host:port]/bucket (with "
        "s3_access_key/s3_secret_key; s3+https:// for TLS).",
    )
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_region: str | None = None
    max_body_bytes: int = Field(
        4 * 1024**3, ge=1, description="Largest STOW-RS request body accepted (413 above)."
    )
    max_instances_per_request: int = Field(
        10_000,
        ge=1,
        description="Most instances (body parts) one STOW-RS request may carry (413 above; "
        "nothing of the request is stored).",
    )
    request_body_timeout: float = Field(
        60.0,
        gt=0,
        description="Seconds a client may pause while sending a request body before it is "
        "answered 408 and nothing of the request is kept (RFC 9110 §15.5.9).",
    )
    rate_limit_per_second: float | None = Field(
        None,
        gt=0,
        description="Requests a second each caller (authenticated subject, else client "
        "address) may make, as a token bucket per replica, not cluster-wide; 429 with "
        "Retry-After above (RFC 6585 §4). Probes and /metrics are exempt. Unset: no limit.",
    )
    rate_limit_burst: int = Field(
        50, ge=1, description="Requests a caller may make at once before the rate applies."
    )
    spool_memory_bytes: int = Field(
        8 * 1024**2,
        ge=0,
        description="Memory a received STOW part may take before it spills to a temporary file "
        "(a request holds at most WRITES_IN_FLIGHT + 2 parts).",
    )
    spool_dir: Path | None = Field(
        None, description="Where STOW parts spill (default: the system temp directory)."
    )
    overwrite_policy: OverwritePolicy = OverwritePolicy.REJECT
    qido_default_limit: int = Field(1000, ge=1)
    qido_max_limit: int = Field(10000, ge=1)
    bulk_data_threshold: int = Field(
        1024, ge=0, description="Binary values longer than this become BulkDataURI in metadata."
    )

    cors_allow_origins: list[str] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port]) whose browser pages may call the API, or "
        '["*"] for any; empty (the default) turns CORS off.',
    )
    cors_allow_credentials: bool = Field(
        False, description="Let allowed origins send cookies and HTTP authentication (CORS)."
    )

    ui_exporter_url: str | None = Field(
        None,
        description="Base URL of the mesh exporter as the browser reaches it (e.g. "
        "http://127.0.0.1:8081): the dashboard at /ui offers mesh exports (the exporter must "
        "allow the dashboard's origin: PACS_EXPORTER_CORS_ALLOW_ORIGINS). Unset: no exports.",
    )
    ui_bridge_status_url: str | None = Field(
        None,
        description="Base URL of the DIMSE bridge's status API as the browser reaches it (e.g. "
        "http://127.0.0.1:8082): the dashboard shows nodes, routes and forwarding (the bridge "
        "must allow the dashboard's origin: PACS_BRIDGE_ADMIN_CORS_ALLOW_ORIGINS). Unset: "
        "not shown.",
    )
    ui_ohif_url: str | None = Field(
        None,
        description="Base URL of an OHIF viewer reading this server: the dashboard links each "
        "study to {ui_ohif_url}/viewer?StudyInstanceUIDs=... Unset: no link.",
    )
    deidentify_secret: SecretStr | None = Field(
        None,
        min_length=16,
        description="Key of the keyed hashes (HMAC-SHA256) that replace UIDs, patient names and "
        "IDs and pick the date shift of POST /studies/{study}/deidentify; the same secret "
        "always gives the same output. Unset: de-identification is refused (503).",
    )
    deidentify_max_instances: int = Field(
        2000,
        ge=1,
        description="Largest study POST /studies/{study}/deidentify handles (409 above).",
    )
    audit_log_path: Path | None = Field(
        None,
        description="File the audit trail is also appended to, one DICOM audit message (PS3.15 "
        "A.5.1) as JSON per line, flushed per line. The same lines always go to the pacs.audit "
        "logger; the index database keeps them for GET /audit.",
    )
    log_format: LogFormat = Field(
        "auto",
        description="Logs of `pacs-api serve`: json (one object per line), text, or auto (text "
        "on a terminal, JSON otherwise).",
    )

    allow_unauthenticated_network: bool = Field(
        False,
        description="Allow binding a non-loopback address with no auth_* configured (only "
        "behind a proxy that authenticates every request).",
    )

    @model_validator(mode="after")
    def _secure_by_default(self) -> Settings:
        """Refuse to serve the network without authentication (ARCHITECTURE.md, secure by
        default), saying how to configure it."""
        require_authentication(
            self,
            service="the API",
            host=self.host,
            env_prefix="PACS_API_",
            flag="ALLOW_UNAUTHENTICATED_NETWORK",
            waived=self.allow_unauthenticated_network,
        )
        return self

    @model_validator(mode="after")
    def _no_credentials_for_any_origin(self) -> Settings:
        """Credentials for every origin would let any web page act as the logged-in user."""
        if self.cors_allow_credentials and "*" in self.cors_allow_origins:
            raise ValueError('cors_allow_credentials needs the origins listed one by one, not "*"')
        return self

    @field_validator("cors_allow_origins")
    @classmethod
    def _check_origins(cls, origins: list[str]) -> list[str]:
        """An origin is a scheme and host with an optional port, no path (RFC 6454 §7)."""
        return check_origins(origins)

    @field_validator("public_url", "ui_exporter_url", "ui_bridge_status_url", "ui_ohif_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @field_validator("ui_exporter_url", "ui_bridge_status_url", "ui_ohif_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        """The dashboard's browser fetches or links these: http(s) URLs only."""
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} must be an http:// or https:// URL")
        return value
