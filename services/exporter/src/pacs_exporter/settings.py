"""Exporter settings: one validated object, built by the app factory, never at import.

Values come from ``PACS_EXPORTER_*`` environment variables. The defaults are the embedded
setup: jobs in a SQLite file and meshes in a filesystem store under ``./var/``, the series read
from the API that ``make run`` starts beside it. PostgreSQL and S3 are one URL each.
"""

from __future__ import annotations

from pacs_common.audit_outbox import AuditOutboxSettings, default_audit_url
from pacs_common.auth.settings import AuthSettings, require_authentication
from pacs_common.network import check_origins
from pacs_common.observability.logs import LogFormat
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(AuditOutboxSettings, AuthSettings, BaseSettings):
    """Configuration of the mesh exporter, from ``PACS_EXPORTER_*`` environment variables.

    ``dicomweb_token`` is what the exporter presents to the API; the ``auth_*`` fields
    (:mod:`pacs_common.auth.settings`) are what its own callers must present; the ``audit_*``
    fields (:mod:`pacs_common.audit_outbox`) where its audit records go.
    """

    model_config = SettingsConfigDict(env_prefix="PACS_EXPORTER_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8081, ge=1, le=65535)
    dicomweb_url: str = Field(
        "http://127.0.0.1:8080/dicom-web",
        description="DICOMweb root of the API the series are read from (WADO-RS) and stored "
        "back to (STOW-RS).",
    )
    dicomweb_token: SecretStr | None = Field(
        None,
        description="Bearer token (an API key, or a JWT) sent to the API: the read scope, "
        "write to store meshes back into studies, and audit to deliver the exporter's audit "
        "records (POST /audit). Unset: none sent.",
    )
    dicomweb_timeout: float = Field(
        120.0, gt=0, description="Seconds to wait for each request to the API."
    )
    database_url: str = Field(
        "sqlite:///./var/exporter.sqlite3",
        description="The jobs' database: sqlite:///PATH or postgresql://... (its own version "
        "table, so it may share a PostgreSQL database with another service).",
    )
    store_url: str = Field(
        "file://./var/exports",
        description="Where meshes and reports go: file://PATH, or s3://[host:port]/bucket "
        "(with s3_access_key/s3_secret_key; s3+https:// for TLS).",
    )
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_region: str | None = None

    workers: int = Field(
        1,
        ge=0,
        description="Worker threads per process running export jobs (0: this process only "
        "answers the REST API; workers in other processes run the jobs).",
    )
    memory_budget_bytes: int = Field(
        4 * 1024**3,
        ge=1,
        description="Estimated peak memory a job may use (the series, the volume and the mesh "
        "stages); a job over it fails before work starts.",
    )
    lease_seconds: float = Field(
        60.0,
        gt=0,
        description="How long a claimed job stays with its worker without a renewal; the "
        "worker renews it every third of that while it runs. A job whose lease expired is "
        "taken over by another worker.",
    )
    max_attempts: int = Field(
        3, ge=1, description="Attempts of a job (lease expiries, unreachable API) before it fails."
    )
    retry_delay_seconds: float = Field(
        10.0, ge=0, description="Wait before a job whose API could not be reached is retried."
    )
    poll_seconds: float = Field(
        1.0, gt=0, description="How often an idle worker looks for queued jobs."
    )
    spool_dir: str | None = Field(
        None,
        description="Where meshes are written before they go to the store (default: the "
        "system temp directory).",
    )

    cors_allow_origins: list[str] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port]) whose browser pages may call the exporter "
        '(the API\'s dashboard, e.g. ["http://127.0.0.1:8080"]), or ["*"] for any; empty (the '
        "default) turns CORS off.",
    )
    log_format: LogFormat = Field(
        "auto",
        description="Logs of `pacs-exporter serve`: json (one object per line), text, or auto "
        "(text on a terminal, JSON otherwise).",
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
            service="the exporter",
            host=self.host,
            env_prefix="PACS_EXPORTER_",
            flag="ALLOW_UNAUTHENTICATED_NETWORK",
            waived=self.allow_unauthenticated_network,
        )
        return self

    @model_validator(mode="after")
    def _audit_url(self) -> Settings:
        if self.audit_url is None:
            self.audit_url = default_audit_url(self.dicomweb_url)
        return self

    @field_validator("dicomweb_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"dicomweb_url must be an http:// or https:// URL, not {value!r}")
        return value.rstrip("/")

    @field_validator("cors_allow_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        return check_origins(origins)
