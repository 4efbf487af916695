"""Settings faults as the services print them at start (pacs_common.launch): named by their
environment variables, never showing a secret or a password inside a URL."""

from __future__ import annotations

import pytest
from pacs_common.launch import load_settings, settings_faults, shown_value
from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator


class _Peer(BaseModel):
    ae_title: str = Field(max_length=16)


class _Settings(BaseModel):
    port: int = Field(8080, ge=1, le=65535)
    database_url: str = Field("sqlite://", pattern=r"^(sqlite|postgresql)")
    s3_secret_key: str | None = Field(None, min_length=8)
    auth_jwt_secret: SecretStr | None = Field(None, min_length=32)
    peers: list[_Peer] = []


def _faults(**values: object) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        _Settings.model_validate(values)
    return settings_faults(caught.value, "PACS_X_")


def test_settings_fault_named_by_variable_with_value() -> None:
    (line,) = _faults(port=0)
    assert line.startswith("PACS_X_PORT: ")
    assert line.endswith("(got 0)")


def test_settings_fault_in_structured_value_names_the_path() -> None:
    (line,) = _faults(peers=[{"ae_title": "A"}, {"ae_title": "X" * 17}])
    assert line.startswith("PACS_X_PEERS[1].ae_title: ")


def test_settings_fault_of_a_secret_never_shows_it() -> None:
    lines = _faults(s3_secret_key="short", auth_jwt_secret="tiny-secret")
    assert len(lines) == 2
    assert all("short" not in line and "tiny-secret" not in line for line in lines)
    assert {line.split(":")[0] for line in lines} == {
        "PACS_X_S3_SECRET_KEY",
        "PACS_X_AUTH_JWT_SECRET",
    }


def test_settings_fault_masks_password_in_url() -> None:
    (line,) = _faults(database_url="mysql://pacs:hunter2@db:3306/pacs")
    assert "hunter2" not in line
    assert "mysql://pacs:***@db:3306/pacs" in line


def test_shown_value_keeps_url_without_password() -> None:
    assert shown_value("store_url", "s3://minio:9000/bucket") == " (got 's3://minio:9000/bucket')"


def test_load_settings_exits_2_naming_the_fault(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        load_settings(lambda: _Settings(port=70000), "PACS_X_")
    assert exited.value.code == 2
    assert capsys.readouterr().err.startswith("PACS_X_PORT: ")


class _Paired(BaseModel):
    user: str = "pacs"
    password: str = ""

    @model_validator(mode="after")
    def _both(self) -> _Paired:
        if self.user and not self.password:
            raise ValueError("a user needs a password")
        return self


def test_settings_fault_across_fields_shows_no_input() -> None:
    """A model-level check gets the whole input (secrets too) as its value: never shown."""
    with pytest.raises(ValidationError) as caught:
        _Paired.model_validate({"user": "pacs", "password": "", "token": "s3cr3t"})
    (line,) = settings_faults(caught.value, "PACS_X_")
    assert line == "PACS_X_*: Value error, a user needs a password"
