"""``pacs deidentify`` against the real API over HTTP: prints the new study's UID, which holds
the de-identified instances; no secret configured -> exit 5 with the API's reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from tests.bridge.running import api_settings
from tests.cli.conftest import pacs
from tests.cli.test_upload import stored_uids
from tests.support.dicom import ct_instances, stow
from tests.support.server import running_api


@pytest.fixture
def api_with_secret(tmp_path: Path) -> Iterator[str]:
    settings = api_settings(tmp_path / "api").model_copy(
        update={"deidentify_secret": SecretStr("cli-test-secret-0123456789")}
    )
    with running_api(settings) as url:
        yield url


def _study(url: str) -> str:
    with httpx.Client(base_url=url.removesuffix("/dicom-web"), timeout=30) as http:
        response = stow(http, ct_instances(2, seed=77))
    assert response.status_code == 200
    return str(response.json()["00081190"]["Value"][0]).rsplit("/", 1)[-1]


def test_deidentify_prints_new_study_uid(api_with_secret: str) -> None:
    study = _study(api_with_secret)
    result = pacs("deidentify", study, "--url", api_with_secret, "--retain-dates")
    assert result.exit_code == 0, result.output
    new_study = result.stdout.strip()
    assert new_study.startswith("2.25.") and new_study != study
    assert len(stored_uids(api_with_secret, new_study)) == 2


def test_deidentify_without_secret_exit_5(api: str) -> None:
    result = pacs("deidentify", _study(api), "--url", api)
    assert result.exit_code == 5
    assert "PACS_API_DEIDENTIFY_SECRET" in result.output
