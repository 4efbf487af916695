"""``make bench`` section ``audit``: what the audit trail (issue 6) costs the requests it records
(issue 8), measured against the same build with the recorder not installed.

For each deployment (SQLite + filesystem store, PostgreSQL + SeaweedFS S3) two API processes
run side by side on their own databases and stores, each with the same series: the real app
(``pacs_api.main:create_app``, audit trail on, its JSON-lines file written) and
:func:`create_app_without_audit` (the same app with :class:`~pacs_api.audit.http.AuditMiddleware`
taken out: a benchmark baseline, not a setting: the audit trail cannot be switched off). The
two are measured in alternation, run after run, so that the machine's noise falls on both, and
this prints for each request kind the median latency on one keep-alive connection, the rate of
four concurrent clients, and the cost of the trail in per cent:

- a single frame (``/frames/1``, what a viewer scrolling a stack asks for);
- a rendered 512x512 JPEG (``/rendered``);
- a QIDO-RS study query (``PatientID``);
- STOW-RS of one instance per request.

The bridge's share is measured by :func:`bench.dimse.bench_dimse_audit` (C-STORE and C-GET
with the bridge's audit tap on and off).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from fastapi import FastAPI
from pacs_api.audit.http import AuditMiddleware
from pacs_api.main import create_app
from pacs_bridge import main as bridge_main
from pacs_bridge.audit import AuditTap
from pacs_bridge.cli import main as bridge_cli
from pacs_common.media import encode_multipart_related
from pacs_common.synthetic import iter_ct_series, to_bytes

#: The API factory without the audit recorder, for uvicorn (``--factory``).
WITHOUT_AUDIT = "bench.audit:create_app_without_audit"
WITH_AUDIT = "pacs_api.main:create_app"
#: Concurrent clients of the rate figures (a viewer loads a stack over about this many).
CLIENTS = 4
FRAME = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'


def create_app_without_audit() -> FastAPI:
    """The API exactly as :func:`pacs_api.main.create_app` builds it, less the audit
    recorder (the middleware stack is built on the first request, so removing it here is
    removing it from the app)."""
    app = create_app()
    app.user_middleware = [m for m in app.user_middleware if m.cls is not AuditMiddleware]
    return app


@dataclass
class Figures:
    """Seconds per request (latency, one connection) and requests/s (concurrent clients)."""

    latency: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)


@dataclass
class Target:
    """One API process of the comparison and what it holds."""

    url: str
    instance: str = ""
    fresh: Iterator[bytes] = field(default_factory=lambda: iter(()))
    lock: threading.Lock = field(default_factory=threading.Lock)


def stow(http: httpx.Client, url: str, parts: list[bytes]) -> None:
    body, content_type = encode_multipart_related(parts)
    answer = http.post(
        f"{url}/studies", content=b"".join(body), headers={"Content-Type": content_type}
    )
    if answer.status_code != 200:
        raise RuntimeError(f"STOW answered {answer.status_code}: {answer.text[:300]}")


def load(url: str, slices: int, size: int) -> str:
    """Store one series; the URL of its middle instance."""
    series = [to_bytes(d) for d in iter_ct_series(slices, size, size, seed=1, patient_id="AUD-B")]
    with httpx.Client(timeout=300) as http:
        for i in range(0, len(series), 25):
            stow(http, url, series[i : i + 25])
        study = http.get(f"{url}/studies", params={"PatientID": "AUD-B"}).json()
        study_uid = study[0]["0020000D"]["Value"][0]
        listed = http.get(f"{url}/studies/{study_uid}/instances").json()
    middle = listed[len(listed) // 2]
    series_uid = middle["0020000E"]["Value"][0]
    sop = middle["00080018"]["Value"][0]
    return f"{url}/studies/{study_uid}/series/{series_uid}/instances/{sop}"


def requests(target: Target) -> dict[str, Callable[[httpx.Client], object]]:
    """The request kinds measured, as calls on a client."""
    instance, url = target.instance, target.url

    def store(http: httpx.Client) -> None:
        with target.lock:  # one generator, several clients
            data = next(target.fresh)
        stow(http, url, [data])

    return {
        "single frame": lambda http: http.get(
            f"{instance}/frames/1", headers={"Accept": FRAME}
        ).raise_for_status(),
        "rendered 512 JPEG": lambda http: http.get(
            f"{instance}/rendered", params={"window": "40,400"}, headers={"Accept": "image/jpeg"}
        ).raise_for_status(),
        "QIDO study query": lambda http: http.get(
            f"{url}/studies", params={"PatientID": "AUD-B"}
        ).raise_for_status(),
        "STOW one instance": store,
    }


def measure(action: Callable[[httpx.Client], object], count: int) -> tuple[list[float], float]:
    """Latencies of *count* sequential requests on one connection, and the rate of
    :data:`CLIENTS` clients each sending *count* requests at once."""
    latencies = []
    with httpx.Client(timeout=120) as http:
        action(http)  # the connection open, the route warm
        for _ in range(count):
            start = time.perf_counter()
            action(http)
            latencies.append(time.perf_counter() - start)

    def client(_: int) -> None:
        with httpx.Client(timeout=120) as own:
            for _ in range(count):
                action(own)

    start = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(client, range(CLIENTS)))
    return latencies, CLIENTS * count / (time.perf_counter() - start)


def fresh_instances(size: int, seed: int) -> Iterator[bytes]:
    """New single-instance studies, one per STOW (a re-sent instance costs less)."""
    number = 0
    while True:
        number += 1
        for ds in iter_ct_series(1, size, size, seed=seed * 100_000 + number):
            yield to_bytes(ds)


def bench_audit(
    name: str,
    deployment: Callable[[str, Path], AbstractContextManager[dict[str, str]]],
    api_process: Callable[..., AbstractContextManager[str]],
    slices: int,
    size: int,
    runs: int,
) -> None:
    """Audit trail on vs off on deployment *name* (see the module)."""
    print(
        f"\n== audit trail cost, {name}: {size}x{size} CT, median of {runs} alternating runs, "
        f"{CLIENTS} clients for rates  (load average "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())})"
    )
    with tempfile.TemporaryDirectory(prefix="pacs-bench-audit-") as tmp, ExitStack() as stack:
        targets: dict[str, Target] = {}
        for variant, factory in (("on", WITH_AUDIT), ("off", WITHOUT_AUDIT)):
            env = stack.enter_context(deployment(name, Path(tmp) / variant))
            env["PACS_API_AUDIT_LOG_PATH"] = str(Path(tmp) / variant / "audit.jsonl")
            url = stack.enter_context(api_process(env, factory=factory))
            targets[variant] = Target(url, load(url, slices, size), fresh_instances(size, 7))
        figures = {(v, k): Figures() for v in targets for k in requests(targets["on"])}
        count = 20
        for run in range(runs):
            order = ("on", "off") if run % 2 == 0 else ("off", "on")
            for kind in requests(targets["on"]):
                for variant in order:
                    latencies, rate = measure(requests(targets[variant])[kind], count)
                    figures[(variant, kind)].latency.extend(latencies)
                    figures[(variant, kind)].rates.append(rate)
        print(
            f"  {'':20s} {'median on':>10s} {'off':>9s} {'cost':>6s}   {'rate on':>9s} "
            f"{'off':>8s} {'cost':>6s}"
        )
        for kind in requests(targets["on"]):
            on, off = figures[("on", kind)], figures[("off", kind)]
            lat_on, lat_off = statistics.median(on.latency), statistics.median(off.latency)
            rate_on, rate_off = statistics.median(on.rates), statistics.median(off.rates)
            print(
                f"  {kind:20s} {lat_on * 1000:8.2f}ms {lat_off * 1000:7.2f}ms "
                f"{(lat_on / lat_off - 1) * 100:+5.0f}%   {rate_on:7.1f}/s {rate_off:6.1f}/s "
                f"{(rate_off / rate_on - 1) * 100:+5.0f}%"
            )
        audited = Path(tmp) / "on" / "audit.jsonl"
        lines = len(audited.read_text().splitlines()) if audited.exists() else 0
        print(f"  ({lines} audit records streamed by the audited API)")


class _UnheardTap(AuditTap):
    """An audit tap that is not installed: it wraps no handler and observes no event."""

    def request(self, handler):  # type: ignore[no-untyped-def]
        return handler

    def handlers(self) -> list:  # type: ignore[type-arg]
        return []


def bridge_without_audit() -> None:
    """``pacs-bridge`` with its audit tap not installed (``python -m bench.audit serve``): the
    baseline of :func:`bench.dimse.bench_dimse_audit`."""
    bridge_main.AuditTap = _UnheardTap  # type: ignore[misc]
    bridge_cli()


if __name__ == "__main__":
    bridge_without_audit()
