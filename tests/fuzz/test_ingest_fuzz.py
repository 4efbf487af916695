"""The ingest path under bad input at volume: thousands of mutated instances in broken bodies.

A real ``pacs-api serve`` process (uvicorn, the embedded SQLite index and filesystem store) is
sent the STOW-RS requests of :mod:`tests.fuzz.mutations`, one after the other, and held to:

- every answer is 200/202/409 with a well-formed Store Instances Response (PS3.18 §10.5.3,
  table 10.5.3-2: a FailedSOPSequence item with a FailureReason for each refused instance) or
  a 4xx ``application/problem+json`` (RFC 9457) -- never a 5xx, never a hang (client timeout);
- a request answered 4xx stored nothing (the change feed's head does not move);
- every acknowledged instance is retrievable, byte for byte, and holds the bytes of one of the
  request's parts (WADO-URI, PS3.18 §9), and its metadata is valid JSON (PS3.18 §10.4.1.1.2,
  RFC 8259); every refused SOP Instance UID that no request stored
  is absent (QIDO-RS, PS3.18 §10.6);
- the process stays up (the same PID answers /healthz at the end) and its memory bounded: its
  peak resident set (VmHWM in /proc, proc(5)) stays under the baseline plus
  :data:`RSS_HEADROOM`, and the resident set sampled every :data:`SAMPLE_EVERY` cases does not
  keep growing.

Reproducible: ``FUZZ_SEED`` (default :data:`SEED`) and ``FUZZ_CASES`` (default
:data:`DEFAULT_CASES`) choose the run; ``FUZZ_CASE=N`` runs case N alone. A failure names its
case index.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from pacs_common import statuses
from pacs_common.media import PROBLEM_JSON

from tests.fuzz.mutations import Case, case
from tests.support.server import free_port

SEED = 6
DEFAULT_CASES = 2000
SAMPLE_EVERY = 100
#: The resident set may grow this much over its value after warm-up (caches, arenas).
RSS_HEADROOM = 150 * 1024 * 1024
#: Growth allowed from the first half of the run to the second: more means a leak per request
#: (measured: 3 MiB over 2,000 cases, 5 MiB over 20,000; the caches are bounded).
RSS_SECOND_HALF_GROWTH = 24 * 1024 * 1024
#: Client timeout of one request: a limit against hanging, not a timing assertion.
TIMEOUT_SECONDS = 60.0
REFERENCED = "00081199"
FAILED = "00081198"
FAILURE_REASON = "00081197"
SOP_INSTANCE = "00081155"
RETRIEVE_URL = "00081190"
#: FailureReason values the API gives (PS3.4 B.2.3; PS3.18 §10.5.3).
FAILURE_REASONS = frozenset(
    {
        statuses.CANNOT_UNDERSTAND,
        statuses.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
        statuses.DUPLICATE_SOP_INSTANCE,
        statuses.OUT_OF_RESOURCES,
    }
)


def _run() -> tuple[int, list[int]]:
    seed = int(os.environ.get("FUZZ_SEED", SEED))
    if "FUZZ_CASE" in os.environ:
        return seed, [int(os.environ["FUZZ_CASE"])]
    return seed, list(range(int(os.environ.get("FUZZ_CASES", DEFAULT_CASES))))


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def rss(self, field: str = "VmRSS") -> int:
        """The server process's resident set size in bytes (/proc/PID/status: VmRSS now,
        VmHWM its peak so far, proc(5))."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {field}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """``pacs-api serve`` as a user runs it, in its own process, on a free port."""
    port = free_port()
    env = {
        **os.environ,
        "PACS_API_DATABASE_URL": f"sqlite:///{tmp_path / 'index.sqlite3'}",
        "PACS_API_STORE_URL": f"file://{tmp_path / 'objects'}",
        # glibc's mmap threshold, fixed (mallopt(3)): blocks of 128 KiB and more are mapped
        # and unmapped, so the resident set follows live memory; with the default dynamic
        # threshold one large request leaves its heap pages resident, which looks like growth.
        "MALLOC_MMAP_THRESHOLD_": str(128 * 1024),
    }
    command = [str(Path(sys.executable).parent / "pacs-api"), "serve", "--port", str(port)]
    log = tmp_path / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*command, "--log-level", "warning"], env=env, stdout=sink, stderr=sink
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield Server(process, url, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Ledger:
    """What the run stored and refused, to check against the archive."""

    stored: dict[str, bytes] = field(default_factory=dict)  # SOP Instance UID -> its bytes
    refused: dict[str, int] = field(default_factory=dict)  # SOP Instance UID -> case index
    answers: Counter[tuple[str, int]] = field(default_factory=Counter)  # (kind, status)
    problems: list[str] = field(default_factory=list)

    def fail(self, item: Case, message: str) -> None:
        self.problems.append(f"{item.describe()}: {message}")


def _values(dataset: dict[str, Any], tag: str) -> list[Any]:
    return list((dataset.get(tag) or {}).get("Value", []))


def _head(http: httpx.Client) -> int:
    head: int = http.get("/changefeed", params={"since": 0, "limit": 1}).json()["head"]
    return head


def _retrieve(http: httpx.Client, retrieve_url: str) -> bytes | None:
    """The stored object of an instance's RetrieveURL, by WADO-URI (PS3.18 §9)."""
    parts = urlsplit(retrieve_url).path.split("/")
    study, series, instance = parts[-5], parts[-3], parts[-1]
    response = http.get(
        "/wado",
        params={
            "requestType": "WADO",
            "studyUID": study,
            "seriesUID": series,
            "objectUID": instance,
            "contentType": "application/dicom",
        },
    )
    return response.content if response.status_code == 200 else None


def _not_json(token: str) -> None:
    raise ValueError(f"{token} is not a JSON number (RFC 8259 §6)")


def _check(http: httpx.Client, item: Case, ledger: Ledger) -> None:
    """Send one case and hold its answer to the rules of the module docstring."""
    before = _head(http)
    try:
        response = http.post(
            "/dicom-web/studies",
            content=item.body,
            headers={"Content-Type": item.content_type.encode("latin-1")},
        )
    except httpx.TimeoutException:
        ledger.fail(item, "no answer within the client timeout (a hang)")
        return
    status = response.status_code
    ledger.answers[(item.kind, status)] += 1
    media = response.headers.get("content-type", "")
    if status >= 500:
        ledger.fail(item, f"{status}: {response.text[:300]}")
        return
    if status not in (200, 202, 409):
        if not 400 <= status < 500 or media != PROBLEM_JSON:
            ledger.fail(item, f"{status} {media}: {response.text[:300]}")
        elif not response.json().get("detail"):
            ledger.fail(item, f"{status} problem without a detail: {response.text[:300]}")
        if _head(http) != before:
            ledger.fail(item, f"answered {status}, yet the change feed moved: something stored")
        return
    body = response.json()
    referenced, failed = _values(body, REFERENCED), _values(body, FAILED)
    expected = 200 if not failed else 202 if referenced else 409
    if status != expected or not (referenced or failed):
        ledger.fail(item, f"{status} with {len(referenced)} stored, {len(failed)} failed")
    for entry in failed:
        reasons = _values(entry, FAILURE_REASON)
        if len(reasons) != 1 or reasons[0] not in FAILURE_REASONS:
            ledger.fail(item, f"FailedSOPSequence item without a known FailureReason: {entry}")
        uid = _values(entry, SOP_INSTANCE)
        if uid:
            ledger.refused.setdefault(uid[0], item.index)
    for entry in referenced:
        uid, url = _values(entry, SOP_INSTANCE)[0], _values(entry, RETRIEVE_URL)[0]
        held = _retrieve(http, url)
        if held is None:
            ledger.fail(item, f"acknowledged {uid} cannot be retrieved")
        elif uid in ledger.stored and held != ledger.stored[uid]:
            ledger.fail(item, f"the stored bytes of {uid} changed")
        elif uid not in ledger.stored and held not in item.payloads:
            ledger.fail(item, f"acknowledged {uid} holds bytes that no part of the request held")
        elif held is not None:
            ledger.stored.setdefault(uid, held)
        metadata = http.get(f"{url}/metadata")
        try:
            json.loads(metadata.content, parse_constant=_not_json)
        except ValueError as exc:
            ledger.fail(item, f"the metadata of {uid} is not JSON ({metadata.status_code}): {exc}")


#: A limit against hanging that grows with FUZZ_CASES (each case takes milliseconds).
@pytest.mark.timeout(max(300, len(_run()[1]) // 10))
def test_ingest_fuzz_answers_4xx_or_failure_reasons_and_stays_up_bounded(
    server: Server,
) -> None:
    """The seeded run (FUZZ_SEED, FUZZ_CASES or FUZZ_CASE): see the module docstring."""
    seed, indexes = _run()
    ledger = Ledger()
    samples: list[int] = []
    with httpx.Client(base_url=server.url, timeout=TIMEOUT_SECONDS) as http:
        baseline = server.rss()
        for position, index in enumerate(indexes):
            item = case(seed, index)
            try:
                _check(http, item, ledger)
            except (httpx.TransportError, ValueError, LookupError) as exc:
                # no answer, or one that is not the JSON it claims to be
                ledger.fail(item, f"{type(exc).__name__}: {exc}")
            if server.process.poll() is not None:
                ledger.fail(item, "the server process died")
                break
            if position % SAMPLE_EVERY == SAMPLE_EVERY - 1:
                samples.append(server.rss())
        for uid in ledger.stored:
            found = http.get("/dicom-web/instances", params={"SOPInstanceUID": uid}).json()
            if len(found) != 1:
                ledger.problems.append(f"stored {uid} is not found by QIDO-RS")
        for uid, index in ledger.refused.items():
            if uid in ledger.stored:
                continue  # refused as a duplicate of what another case stored
            found = http.get("/dicom-web/instances", params={"SOPInstanceUID": uid})
            if found.status_code != 200 or found.json() != []:
                ledger.problems.append(f"case {index}: refused {uid} is in the archive")
        health = http.get("/healthz")
        peak = server.rss("VmHWM")
    assert server.process.poll() is None and health.status_code == 200, server.log.read_text()
    rerun = f"FUZZ_SEED={seed} FUZZ_CASE=<index>"
    log = server.log.read_text(errors="replace")[-6000:]
    assert not ledger.problems, (
        f"{len(ledger.problems)} problem(s) ({rerun}):\n"
        + "\n".join(ledger.problems[:40])
        + f"\nserver log (end):\n{log}"
    )
    print(
        f"\n{len(indexes)} cases (seed {seed}): {len(ledger.stored)} instances stored, "
        f"{len(ledger.refused)} refused; RSS baseline {baseline >> 20} MiB, peak {peak >> 20} MiB, "
        f"samples (MiB) "
        f"{[s >> 20 for s in samples]}\nanswers by body kind: "
        + "; ".join(f"{kind} {status}: {n}" for (kind, status), n in sorted(ledger.answers.items()))
    )
    assert peak < baseline + RSS_HEADROOM, f"peak RSS {peak >> 20} MiB"
    if len(samples) >= 4:
        half = len(samples) // 2
        growth = max(samples[half:]) - max(samples[:half])
        assert growth < RSS_SECOND_HALF_GROWTH, [s >> 20 for s in samples]
