"""The command lines with authentication: an operator mints a key with ``pacs-api api-key new``,
configures its entry, and ``pacs`` verbs send it with ``--token`` or ``PACS_TOKEN``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pacs_api.cli import app as api_cli
from pacs_api.settings import Settings as ApiSettings
from pacs_cli.cli import app as pacs_cli
from pacs_common.auth.api_keys import PREFIX, key_digest
from pacs_common.synthetic import iter_ct_series, to_bytes
from typer.testing import CliRunner

from tests.bridge.running import running_bridge
from tests.cli.conftest import pacs
from tests.support.server import running_api


def mint(*args: str) -> dict[str, Any]:
    """``pacs-api api-key new ARGS --json``: the key and its settings entry."""
    result = CliRunner().invoke(api_cli, ["api-key", "new", *args, "--json"])
    assert result.exit_code == 0, result.output
    minted: dict[str, Any] = json.loads(result.output)
    return minted


@pytest.fixture
def minted() -> dict[str, Any]:
    return mint("--name", "radiology-scripts", "--scope", "read", "--scope", "write")


@pytest.fixture
def api(tmp_path: Path, minted: dict[str, Any]) -> Iterator[str]:
    settings = ApiSettings(
        database_url=f"sqlite:///{tmp_path / 'index.sqlite3'}",
        store_url=f"file://{tmp_path / 'objects'}",
        auth_api_keys=[minted["entry"]],
    )
    with running_api(settings) as url:
        yield url


def test_api_key_new_prints_key_once_and_its_digest_entry() -> None:
    result = CliRunner().invoke(
        api_cli, ["api-key", "new", "--name", "ci", "--scope", "read", "--scope", "delete"]
    )
    assert result.exit_code == 0, result.output
    (key,) = [word for word in result.output.split() if word.startswith(PREFIX)]
    entry = json.loads(next(line for line in result.output.splitlines() if "sha256" in line))
    assert entry == {"name": "ci", "sha256": key_digest(key), "scopes": ["delete", "read"]}
    assert mint("--name", "ci", "--scope", "read")["key"] != key  # a new key each time


def test_api_key_new_bad_name_exit_2() -> None:
    result = CliRunner().invoke(
        api_cli, ["api-key", "new", "--name", "two words", "--scope", "read"]
    )
    assert result.exit_code == 2
    assert "not a key name" in result.output


def test_upload_query_download_with_token(api: str, minted: dict[str, Any], tmp_path: Path) -> None:
    series = list(iter_ct_series(2, 16, 16, seed=71, patient_id="TOKEN-1"))
    folder = tmp_path / "in"
    folder.mkdir()
    for ds in series:
        (folder / f"{ds.SOPInstanceUID}.dcm").write_bytes(to_bytes(ds))
    key = minted["key"]

    uploaded = pacs("upload", str(folder), "--url", api, "--token", key)
    assert uploaded.exit_code == 0, uploaded.output

    queried = CliRunner().invoke(
        pacs_cli,
        ["query", "--url", api],
        env={"PACS_TOKEN": key},
    )
    assert queried.exit_code == 0, queried.output
    assert "TOKEN-1" in queried.output

    study = str(series[0].StudyInstanceUID)
    out = tmp_path / "out"
    downloaded = pacs("download", study, "--out", str(out), "--url", api, "--token", key)
    assert downloaded.exit_code == 0, downloaded.output
    assert len(list(out.rglob("*.dcm"))) == 2


def test_query_without_or_with_a_wrong_token_exit_5_naming_401(api: str) -> None:
    for args in ((), ("--token", "pacs_" + "x" * 43)):
        result = pacs("query", "--url", api, *args)
        assert result.exit_code == 5, result.output
        assert "401" in result.output


def test_routing_status_with_token(api: str, minted: dict[str, Any]) -> None:
    reader = mint("--name", "ops", "--scope", "read")
    with running_bridge(api, auth_api_keys=[reader["entry"]]) as bridge:
        url = bridge.bridge.admin_url
        refused = pacs("routing", "status", "--bridge", url)
        assert refused.exit_code == 5 and "401" in refused.output
        allowed = pacs("routing", "status", "--bridge", url, "--token", reader["key"])
        assert allowed.exit_code == 0, allowed.output
        retry = pacs("routing", "retry", "NOBODY", "--bridge", url, "--token", reader["key"])
        assert retry.exit_code == 5 and "403" in retry.output
