"""``make bench``: the DICOMweb core measured on a generated CT series, on both deployments.

For each deployment (SQLite + filesystem store, PostgreSQL + SeaweedFS S3) the API runs in its
own processes (uvicorn, two workers) and this script is the client. It prints:

- STOW-RS instances/s and MB/s, one instance per request and batches of 50 from one client,
  and batches of 50 from two clients at once;
- QIDO-RS median / p95 latency for the study queries viewers and EHRs send;
- WADO-RS whole-series retrieve MB/s;
- series ``/metadata`` median / p95 latency;
- for viewers (issue 3): a single frame, a rendered 512x512 JPEG and the metadata of a
  1,000-instance series (median / p95);
- the DIMSE bridge with DCMTK peers (issue 4, :mod:`bench.dimse`): C-STORE beside DCMTK
  ``storescu`` -> ``storescp`` in the same run, C-GET, C-MOVE and the C-FIND round trip.

Figures are medians of several runs, printed with the machine's load average: the machines are
shared and noisy, so compare figures from one run, not across runs. Targets from the foundation
issue are printed beside the figures; nothing here fails on a figure.

    uv run python bench/run.py [--slices 200] [--size 512] [--deployments sqlite-fs,postgresql-s3]
        [--sections dicomweb,dimse,exporter,scale] [--scale-instances 100000]
        [--scale-database sqlite]

The ``dimse`` section is bench/dimse.py (issue 4: the DIMSE bridge with DCMTK peers), the
``exporter`` section bench/exporter.py (issue 5: CT volume to watertight mesh files), the
``scale`` section bench/scale.py (issue 8: queries and STOW-RS at a large archive; its size is
``--scale-instances``, default ``BENCH_SCALE_INSTANCES`` or 100,000; ``make bench-scale`` runs
1,000,000 on PostgreSQL).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
from pacs_common.launch import WORKER_HEALTHCHECK_SECONDS
from pacs_common.media import encode_multipart_related
from pacs_common.synthetic import iter_ct_series, to_bytes

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2  # one per core of the reference machine
sys.path.insert(0, str(ROOT))

from bench.dimse import bench_dimse  # noqa: E402
from tests.support import postgres  # noqa: E402
from tests.support.seaweedfs import SeaweedFS  # noqa: E402
from tests.support.server import free_port  # noqa: E402


@contextmanager
def api_process(
    env: dict[str, str], workers: int = WORKERS, factory: str = "pacs_api.main:create_app"
) -> Iterator[str]:
    """The API in its own process (*workers* uvicorn workers, the app made by *factory*) on a
    free port; yields the DICOMweb root."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        factory,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        # uvicorn's 5 s default kills workers still importing on a loaded machine
        "--timeout-worker-healthcheck",
        str(WORKER_HEALTHCHECK_SECONDS),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    process = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": path, **env})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the API did not become ready")
            time.sleep(0.1)
        yield f"{url}/dicom-web"
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def deployment(name: str, workdir: Path) -> Iterator[dict[str, str]]:
    """PACS_API_* settings for a deployment, with its servers started."""
    with ExitStack() as stack:
        if name == "sqlite-fs":
            yield {
                "PACS_API_DATABASE_URL": f"sqlite:///{workdir / 'index.sqlite3'}",
                "PACS_API_STORE_URL": f"file://{workdir / 'objects'}",
            }
            return
        seaweed = stack.enter_context(SeaweedFS(workdir / "seaweedfs"))
        database = stack.enter_context(postgres.temporary_database(postgres.ensure_server()))
        yield {
            "PACS_API_DATABASE_URL": database,
            "PACS_API_STORE_URL": seaweed.store_url("bench"),
            "PACS_API_S3_ACCESS_KEY": seaweed.access_key,
            "PACS_API_S3_SECRET_KEY": seaweed.secret_key,
        }


def stow(http: httpx.Client, url: str, parts: list[bytes]) -> None:
    body, content_type = encode_multipart_related(parts)
    response = http.post(
        f"{url}/studies", content=b"".join(body), headers={"Content-Type": content_type}
    )
    if response.status_code != 200:
        raise RuntimeError(f"STOW answered {response.status_code}: {response.text[:300]}")


def timed(action: Callable[[], object], runs: int) -> list[float]:
    """Seconds per run of *action*."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return times


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


def bench(name: str, slices: int, size: int, runs: int) -> None:
    print(
        f"\n== {name}: {slices} slices of {size}x{size} CT  (load average "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())})"
    )
    batched = [
        to_bytes(ds) for ds in iter_ct_series(slices, size, size, seed=1, patient_id="BENCH-1")
    ]
    single = [
        to_bytes(ds)
        for ds in iter_ct_series(min(slices, 50), size, size, seed=2, patient_id="BENCH-2")
    ]
    megabytes = sum(map(len, batched)) / 1e6
    with (
        tempfile.TemporaryDirectory(prefix="pacs-bench-") as tmp,
        deployment(name, Path(tmp)) as env,
        api_process(env) as url,
        httpx.Client(timeout=300) as http,
    ):
        start = time.perf_counter()
        for i in range(0, len(batched), 50):
            stow(http, url, batched[i : i + 50])
        elapsed = time.perf_counter() - start
        print(
            f"STOW batches of 50    {len(batched) / elapsed:8.1f} instances/s "
            f"{megabytes / elapsed:8.1f} MB/s   (target >= 400 instances/s)"
        )
        concurrent = [
            [
                to_bytes(ds)
                for ds in iter_ct_series(100, size, size, seed=10 + n, patient_id=f"BENCH-C{n}")
            ]
            for n in range(2)
        ]

        def upload(instances: list[bytes]) -> None:
            with httpx.Client(timeout=300) as own:
                for i in range(0, len(instances), 50):
                    stow(own, url, instances[i : i + 50])

        start = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(upload, concurrent))
        elapsed = time.perf_counter() - start
        count = sum(map(len, concurrent))
        print(
            f"STOW 2 clients x 50   {count / elapsed:8.1f} instances/s "
            f"{sum(len(d) for c in concurrent for d in c) / 1e6 / elapsed:8.1f} MB/s   "
            f"({WORKERS} workers)"
        )
        start = time.perf_counter()
        for data in single:
            stow(http, url, [data])
        elapsed = time.perf_counter() - start
        print(
            f"STOW one per request  {len(single) / elapsed:8.1f} instances/s "
            f"{sum(map(len, single)) / 1e6 / elapsed:8.1f} MB/s"
        )

        series = http.get(f"{url}/studies", params={"PatientID": "BENCH-1"}).json()
        study_uid = series[0]["0020000D"]["Value"][0]
        series_uid = http.get(f"{url}/studies/{study_uid}/series").json()[0]["0020000E"]["Value"][0]
        queries = {
            "PatientID": {"PatientID": "BENCH-1"},
            "PatientName prefix": {"PatientName": "PHANTOM*"},
            "StudyDate range + CT": {"StudyDate": "20000101-20991231", "ModalitiesInStudy": "CT"},
            "StudyInstanceUID": {"StudyInstanceUID": study_uid},
        }
        print("QIDO-RS study queries (median / p95, target median <= 5 ms)")
        for label, params in queries.items():
            times = timed(
                lambda p=params: http.get(f"{url}/studies", params=p).raise_for_status(), runs * 10
            )
            print(f"  {label:22s} {ms(statistics.median(times))} {ms(p95(times))}")
        times = timed(
            lambda: http.get(
                f"{url}/studies/{study_uid}/series/{series_uid}/instances", params={"limit": 100}
            ).raise_for_status(),
            runs * 10,
        )
        print(f"  {'instances of series':22s} {ms(statistics.median(times))} {ms(p95(times))}")

        def retrieve() -> None:
            with http.stream("GET", f"{url}/studies/{study_uid}/series/{series_uid}") as response:
                response.raise_for_status()
                for _ in response.iter_raw(1024 * 1024):
                    pass

        times = timed(retrieve, runs)
        print(
            f"WADO-RS series retrieve {megabytes / statistics.median(times):8.1f} MB/s "
            f"({megabytes:.0f} MB; target >= 800 MB/s)"
        )
        times = timed(
            lambda: http.get(
                f"{url}/studies/{study_uid}/series/{series_uid}/metadata"
            ).raise_for_status(),
            runs * 5,
        )
        print(
            f"series /metadata      {ms(statistics.median(times))} {ms(p95(times))} "
            f"(median / p95; target <= 30 ms)"
        )
        viewer(http, url, study_uid, series_uid, runs)
        transcoding(size, runs)


def viewer(http: httpx.Client, url: str, study_uid: str, series_uid: str, runs: int) -> None:
    """What a web viewer asks for (issue 3): frames, rendered images, a 1,000-instance series'
    metadata (small images: metadata does not grow with the pixels)."""
    instances = http.get(f"{url}/studies/{study_uid}/series/{series_uid}/instances").json()
    middle = instances[len(instances) // 2]["00080018"]["Value"][0]
    instance = f"{url}/studies/{study_uid}/series/{series_uid}/instances/{middle}"
    frame = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
    times = timed(
        lambda: http.get(f"{instance}/frames/1", headers={"Accept": frame}).raise_for_status(),
        runs * 10,
    )
    print(
        f"single frame          {ms(statistics.median(times))} {ms(p95(times))} "
        f"(median / p95; target median <= 10 ms)"
    )
    times = timed(
        lambda: http.get(
            f"{instance}/rendered", params={"window": "40,400"}, headers={"Accept": "image/jpeg"}
        ).raise_for_status(),
        runs * 10,
    )
    print(
        f"rendered 512 JPEG     {ms(statistics.median(times))} {ms(p95(times))} "
        f"(median / p95; target median <= 15 ms)"
    )
    large = [to_bytes(ds) for ds in iter_ct_series(1000, 16, 16, seed=3, patient_id="BENCH-1K")]
    for i in range(0, len(large), 100):
        stow(http, url, large[i : i + 100])
    ds_study = http.get(f"{url}/studies", params={"PatientID": "BENCH-1K"}).json()
    big_study = ds_study[0]["0020000D"]["Value"][0]
    big_series = http.get(f"{url}/studies/{big_study}/series").json()[0]["0020000E"]["Value"][0]
    times = timed(
        lambda: http.get(
            f"{url}/studies/{big_study}/series/{big_series}/metadata"
        ).raise_for_status(),
        runs * 2,
    )
    print(
        f"1,000-instance /metadata {ms(statistics.median(times))} {ms(p95(times))} "
        f"(median / p95; target <= 100 ms)"
    )


def transcoding(size: int, runs: int) -> None:
    """Transcoding throughput per codec (issue 3) in MB/s of native pixel data, for one
    size x size CT slice: native to each lossless syntax, and from it back to native (the
    pure function WADO-RS runs per instance, without HTTP)."""
    from pacs_api.imaging.transcode import transcode
    from pydicom.uid import (
        ExplicitVRLittleEndian,
        JPEG2000Lossless,
        JPEGLosslessSV1,
        JPEGLSLossless,
        RLELossless,
    )

    native = to_bytes(next(iter_ct_series(1, size, size, seed=4, patient_id="BENCH-TC")))
    megabytes = size * size * 2 / 1e6  # 16-bit samples
    print(f"transcoding one {size}x{size} CT slice (MB/s of native pixel data, median)")
    for label, syntax in (
        ("RLE Lossless", RLELossless),
        ("JPEG-LS Lossless", JPEGLSLossless),
        ("JPEG 2000 Lossless", JPEG2000Lossless),
        ("JPEG Lossless SV1", JPEGLosslessSV1),
    ):
        encoded = transcode(native, syntax)
        there = timed(lambda s=syntax: transcode(native, s), runs)
        back = timed(lambda e=encoded: transcode(e, ExplicitVRLittleEndian), runs)
        print(
            f"  {label:18s} encode {megabytes / statistics.median(there):7.1f} MB/s   "
            f"decode {megabytes / statistics.median(back):7.1f} MB/s   "
            f"(object {len(native) / len(encoded):.1f}:1)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--deployments", default="sqlite-fs,postgresql-s3")
    parser.add_argument(
        "--sections",
        default="dicomweb,dimse,exporter,scale,audit",
        help="dicomweb (per deployment), dimse (bridge), exporter, scale, audit (its cost)",
    )
    parser.add_argument(
        "--scale-instances",
        type=int,
        default=int(os.environ.get("BENCH_SCALE_INSTANCES", "100000")),
        help="archive size of the scale section (default BENCH_SCALE_INSTANCES or 100000)",
    )
    parser.add_argument("--scale-database", default="sqlite", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    sections = {name.strip() for name in args.sections.split(",")}
    print(f"pacs-cloud bench: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    if "dicomweb" in sections:
        for name in args.deployments.split(","):
            bench(name.strip(), args.slices, args.size, args.runs)
    if "dimse" in sections:
        with (
            tempfile.TemporaryDirectory(prefix="pacs-bench-") as tmp,
            deployment("sqlite-fs", Path(tmp)) as env,
            api_process(env) as url,
        ):
            bench_dimse(url, args.slices, args.size, args.runs)
    if "exporter" in sections:
        from bench import exporter

        exporter.main(["--runs", "3"])
    if "scale" in sections:
        from bench.scale import bench_scale

        bench_scale(args.scale_database, args.scale_instances, args.runs, api_process)
    if "audit" in sections:
        from bench.audit import WITHOUT_AUDIT, bench_audit
        from bench.dimse import bench_dimse_audit

        for name in args.deployments.split(","):
            bench_audit(name.strip(), deployment, api_process, 20, args.size, args.runs)
        with (
            tempfile.TemporaryDirectory(prefix="pacs-bench-") as tmp,
            deployment("sqlite-fs", Path(tmp) / "on") as env_on,
            deployment("sqlite-fs", Path(tmp) / "off") as env_off,
            api_process(env_on) as url_on,
            api_process(env_off, factory=WITHOUT_AUDIT) as url_off,
        ):
            bench_dimse_audit(url_on, url_off, min(args.slices, 100), args.size, args.runs)


if __name__ == "__main__":
    main()
