"""Limits (issue 6): instances per STOW request (413), a stalled request body (408) and the rate
limit (429), each answered as problem+json with a reason, and nothing of a refused request kept.

The stalled body runs against a real uvicorn on a loopback socket: the client sends the
headers and part of the body, then stops sending while keeping the connection open.
"""

from __future__ import annotations

import json
import socket

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pacs_api.limits import EXEMPT_PATHS, TokenBuckets
from pacs_api.main import create_app
from pacs_api.settings import Settings
from pacs_common.auth import Scope
from pacs_common.auth.api_keys import key_digest, new_api_key
from pacs_common.auth.settings import ApiKeyEntry
from pacs_common.media import encode_multipart_related

from tests.support.dicom import ct_instances, stow
from tests.support.server import running_api
from tests.support.stores import stored_objects


def test_stow_more_instances_than_limit_413_nothing_stored(settings: Settings) -> None:
    """One instance over ``max_instances_per_request``: 413 naming the limit, no row, no
    object; exactly the limit is accepted."""
    limited = settings.model_copy(update={"max_instances_per_request": 3})
    with TestClient(create_app(limited)) as client:
        response = stow(client, ct_instances(4, seed=61))
        assert response.status_code == 413, response.text
        assert response.headers["content-type"] == "application/problem+json"
        detail = response.json()["detail"]
        assert "more than 3 instances" in detail and "max_instances_per_request" in detail
        assert client.get("/dicom-web/studies").json() == []
        assert stored_objects(limited) == {}

        assert stow(client, ct_instances(3, seed=62)).status_code == 200


def _stall_mid_body(port: int, body: bytes, content_type: str, sent: int) -> tuple[str, bytes]:
    """POST /dicom-web/studies announcing the whole *body* but sending only its first *sent*
    bytes, then wait (connection open) for the answer: its status line and body."""
    head = (
        f"POST /dicom-web/studies HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head + body[:sent])
        answer = b""
        while chunk := sock.recv(65536):  # the server closes the connection after a 408
            answer += chunk
    header, _, payload = answer.partition(b"\r\n\r\n")
    return header.decode("latin-1"), payload


def test_stow_body_stalls_mid_request_408_nothing_kept(settings: Settings) -> None:
    """A client that sends two whole instances and half of a third, then stops sending,
    is answered 408 (RFC 9110 §15.5.9) with ``Connection: close`` after
    ``request_body_timeout``; the two instances received whole are not kept."""
    limited = settings.model_copy(update={"request_body_timeout": 1.0})
    instances = ct_instances(3, seed=63)
    chunks, content_type = encode_multipart_related(instances)
    body = b"".join(chunks)
    sent = len(body) - len(instances[2]) // 2
    with running_api(limited) as url:
        port = httpx.URL(url).port
        assert port is not None
        status, payload = _stall_mid_body(port, body, content_type, sent)
        assert status.startswith("HTTP/1.1 408"), status
        assert "connection: close" in status.lower()
        problem = json.loads(payload)
        assert problem["status"] == 408
        assert "request_body_timeout" in problem["detail"]
        with httpx.Client(timeout=30) as http:
            assert http.get(f"{url}/studies").json() == []
            # The same instances sent whole are then stored: the server serves on.
            again = http.post(
                f"{url}/studies", content=body, headers={"Content-Type": content_type}
            )
            assert again.status_code == 200, again.text
    objects = stored_objects(limited)
    assert len(objects) == 3 and sorted(objects.values()) == sorted(instances)


#: Two callers' API keys (read scope) for the rate-limit tests.
ALICE, BOB = new_api_key(), new_api_key()


def _rate_limited(tmp_settings: Settings, rate: float, burst: int) -> FastAPI:
    """The API with a rate limit and authentication (two API keys; loopback)."""
    keys = [
        ApiKeyEntry(name=name, sha256=key_digest(key), scopes=frozenset({Scope.READ}))
        for name, key in (("alice", ALICE), ("bob", BOB))
    ]
    return create_app(
        tmp_settings.model_copy(
            update={
                "rate_limit_per_second": rate,
                "rate_limit_burst": burst,
                "auth_api_keys": keys,
            }
        )
    )


@pytest.fixture
def sqlite_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    directory = tmp_path_factory.mktemp("limits")
    return Settings(
        database_url=f"sqlite:///{directory / 'index.sqlite3'}",
        store_url=f"file://{directory / 'objects'}",
    )


def test_rate_limit_over_burst_429_retry_after(sqlite_settings: Settings) -> None:
    """Past its burst a caller gets 429 with Retry-After (RFC 6585 §4) as problem+json; the
    caller is the credential presented, so another key has a bucket of its own (behind an
    ingress proxy every client has the proxy's address), and the probes and metrics are not
    limited."""
    app = _rate_limited(sqlite_settings, rate=0.01, burst=3)
    with TestClient(app) as client:
        alice = {"Authorization": f"Bearer {ALICE}"}
        answers = [client.get("/dicom-web/studies", headers=alice).status_code for _ in range(3)]
        assert answers == [200, 200, 200]
        refused = client.get("/dicom-web/studies", headers=alice)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["retry-after"] == "100"  # one token per 100 s
        assert "from this caller" in refused.json()["detail"]
        bob = {"Authorization": f"Bearer {BOB}"}
        assert client.get("/dicom-web/studies", headers=bob).status_code == 200
        for path in sorted(EXEMPT_PATHS):
            assert client.get(path).status_code == 200, path
        # Without a credential the caller is the client address: a bucket of its own (and 401).
        assert client.get("/dicom-web/studies").status_code == 401


def test_rate_limit_unset_by_default_no_429(sqlite_settings: Settings) -> None:
    assert sqlite_settings.rate_limit_per_second is None
    with TestClient(create_app(sqlite_settings)) as client:
        assert {client.get("/dicom-web/studies").status_code for _ in range(200)} == {200}


def test_token_bucket_refills_at_rate() -> None:
    """A bucket holds *burst* tokens and earns *rate* a second, never more than *burst*."""
    now = [0.0]
    buckets = TokenBuckets(rate=2.0, burst=2, clock=lambda: now[0])
    assert [buckets.take("a"), buckets.take("a")] == [0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)
    now[0] = 0.5
    assert buckets.take("a") == 0.0
    now[0] = 100.0
    assert [buckets.take("a"), buckets.take("a")] == [0.0, 0.0]
    assert buckets.take("a") > 0


def test_openapi_documents_408_413_429(sqlite_settings: Settings) -> None:
    schema = create_app(sqlite_settings).openapi()
    stow_responses = schema["paths"]["/dicom-web/studies"]["post"]["responses"]
    assert {"408", "413", "429"} <= set(stow_responses)
    assert "429" in schema["paths"]["/dicom-web/studies"]["get"]["responses"]
    assert "408" not in schema["paths"]["/dicom-web/studies"]["get"]["responses"]
    assert "429" not in schema["paths"]["/readyz"]["get"]["responses"]
