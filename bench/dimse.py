"""The DIMSE bridge measured with DCMTK peers (issue 4), beside the machine's own limit.

``bench/run.py`` starts the API (SQLite + filesystem store) and calls :func:`bench_dimse`, which
starts the bridge in its own process (``pacs-bridge serve``) and a DCMTK ``storescp`` (the C-MOVE
destination and the reference C-STORE SCP), then prints:

- C-STORE instances/s of a 200-slice CT series sent by DCMTK ``storescu``: to DCMTK
  ``storescp`` (the machine's limit), to a bare pynetdicom SCP that answers success without
  doing anything (pynetdicom's own ceiling), and through the bridge to the API, with the ratio
  of the bridge to the limit (target >= 0.5x);
- C-GET (``getscu``) and C-MOVE (``movescu`` to the ``storescp``) of that series, instances/s
  (target >= 500);
- the C-FIND round trip on an open association (pynetdicom SCU, TCP_NODELAY; target <= 10 ms).

Each C-STORE run sends a new series (a re-sent instance would be found identical and cost less).
Every DCMTK tool gets ``TCP_NODELAY=1`` (``TESTING.md``). Figures are medians of the runs.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from pacs_bridge.network import set_poll_interval
from pacs_bridge.settings import Settings
from pacs_common import statuses
from pacs_common.dimse import set_tcp_nodelay
from pacs_common.synthetic import iter_ct_series, to_bytes
from pydicom.dataset import Dataset
from pydicom.uid import AllTransferSyntaxes
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.events import Event
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind  # type: ignore[attr-defined]

SCU = "BENCHSCU"
BRIDGE = "BENCHBRIDGE"
DESTINATION = "BENCHSCP"
BARE = "BAREPYNETDICOM"
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}


def dcmtk(tool: str) -> str:
    """DCMTK's *tool*, not the same-named pynetdicom app in the virtual environment's bin."""
    venv_bin = Path(sys.executable).parent.resolve()
    path = os.pathsep.join(
        p
        for p in os.environ.get("PATH", "").split(os.pathsep)
        if p and Path(p).resolve() != venv_bin
    )
    found = shutil.which(tool, path=path)
    if found is None:
        raise RuntimeError(f"DCMTK's {tool} is not installed: run scripts/install-test-deps.sh")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes] | None, what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or (process is not None and process.poll() is not None):
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.05)


@contextmanager
def process(
    command: list[str], env: dict[str, str], port: int, what: str, log: Path
) -> Iterator[None]:
    """*command* running until the block ends (SIGTERM, then SIGKILL), ready on *port*; its
    output goes to *log* (the bridge logs every HTTP request)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, proc, what)
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def bridge_process(
    url: str,
    destination_port: int,
    log: Path,
    *,
    command: list[str] | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[int]:
    """``pacs-bridge serve`` (or *command*) in front of the API at *url*, logging to *log*;
    yields its port."""
    port = free_port()
    env = {
        **os.environ,
        "PACS_BRIDGE_AE_TITLE": BRIDGE,
        "PACS_BRIDGE_HOST": "127.0.0.1",
        "PACS_BRIDGE_PORT": str(port),
        "PACS_BRIDGE_DICOMWEB_URL": url,
        "PACS_BRIDGE_ALLOW": json.dumps([{"ae_title": SCU, "host": "127.0.0.1"}]),
        "PACS_BRIDGE_NODES": json.dumps(
            {DESTINATION: {"host": "127.0.0.1", "port": destination_port}}
        ),
        **(extra_env or {}),
    }
    command = command or [str(Path(sys.executable).parent / "pacs-bridge"), "serve"]
    with process(command, env, port, "the bridge", log):
        yield port


@contextmanager
def dcmtk_storescp(out: Path) -> Iterator[int]:
    """DCMTK ``storescp`` writing what it receives to *out*; yields its port."""
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [dcmtk("storescp"), "-aet", DESTINATION, "-od", str(out), str(port)]
    with process(command, DCMTK_ENV, port, "storescp", out.parent / "storescp.log"):
        yield port


@contextmanager
def bare_pynetdicom_scp() -> Iterator[int]:
    """A pynetdicom C-STORE SCP (TCP_NODELAY, the bridge's maximum PDU and poll interval,
    every storage class and syntax) that answers success without touching the data set:
    pynetdicom's own ceiling."""

    def handle_store(event: Event) -> int:
        return statuses.SUCCESS

    ae = AE(ae_title=BARE)
    ae.maximum_pdu_size = Settings.model_fields["max_pdu"].default  # the bridge's
    poll_interval = Settings.model_fields["poll_interval"].default
    syntaxes = [str(uid) for uid in AllTransferSyntaxes]
    for context in AllStoragePresentationContexts:
        if context.abstract_syntax is not None:
            ae.add_supported_context(context.abstract_syntax, syntaxes)
    port = free_port()
    server = ae.start_server(
        ("127.0.0.1", port),
        block=False,
        evt_handlers=[
            (evt.EVT_CONN_OPEN, set_tcp_nodelay),
            (evt.EVT_CONN_OPEN, set_poll_interval, [poll_interval]),
            (evt.EVT_C_STORE, handle_store),
        ],
    )
    assert server is not None
    try:
        yield port
    finally:
        server.shutdown()
        ae.shutdown()


def run_dcmtk(tool: str, *args: str) -> None:
    proc = subprocess.run(
        [dcmtk(tool), *args], env=DCMTK_ENV, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} exited with {proc.returncode}: {proc.stderr[-500:]}")


def write_series(directory: Path, slices: int, size: int, seed: int) -> tuple[list[str], Dataset]:
    """A new CT series as Part 10 files in *directory*; the paths and the first slice."""
    directory.mkdir(parents=True)
    paths, first = [], None
    for i, ds in enumerate(
        iter_ct_series(slices, size, size, seed=seed, patient_id=f"BENCH-DIMSE-{seed}")
    ):
        first = first or ds
        path = directory / f"{i:04d}.dcm"
        path.write_bytes(to_bytes(ds))
        paths.append(str(path))
    assert first is not None
    return paths, first


def storescu(port: int, called: str, paths: list[str]) -> float:
    """Seconds for DCMTK ``storescu`` to send *paths* on one association."""
    start = time.perf_counter()
    run_dcmtk("storescu", "-aet", SCU, "-aec", called, "127.0.0.1", str(port), *paths)
    return time.perf_counter() - start


def find_round_trips(port: int, patient_id: str, count: int) -> list[float]:
    """Seconds per study-level C-FIND (one match) on one open pynetdicom association."""
    ae = AE(ae_title=SCU)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate(
        "127.0.0.1", port, ae_title=BRIDGE, evt_handlers=[(evt.EVT_CONN_OPEN, set_tcp_nodelay)]
    )
    if not assoc.is_established:
        raise RuntimeError("the bridge refused the C-FIND association")
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientID = patient_id
    query.StudyInstanceUID = ""
    times = []
    try:
        for _ in range(count):
            start = time.perf_counter()
            answers = list(assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind))
            times.append(time.perf_counter() - start)
            if len(answers) != 2:
                raise RuntimeError(f"C-FIND answered {len(answers)} responses, expected 2")
    finally:
        assoc.release()
        ae.shutdown()
    return times


def rate(count: int, times: list[float]) -> float:
    return count / statistics.median(times)


def bench_dimse(url: str, slices: int, size: int, runs: int) -> None:
    """The DIMSE section of ``make bench`` against the API at *url*."""
    print(
        f"\n== DIMSE bridge (sqlite-fs): {slices} slices of {size}x{size} CT, DCMTK peers, "
        f"median of {runs} runs  (load average "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())})"
    )
    with (
        tempfile.TemporaryDirectory(prefix="pacs-bench-dimse-") as tmp_name,
        dcmtk_storescp(Path(tmp_name) / "storescp") as scp_port,
        bare_pynetdicom_scp() as bare_port,
        bridge_process(url, scp_port, Path(tmp_name) / "bridge.log") as bridge_port,
    ):
        tmp = Path(tmp_name)
        limit, bare, bridged = [], [], []
        first: Dataset | None = None
        for run in range(runs):
            paths, ds = write_series(tmp / f"series-{run}", slices, size, seed=100 + run)
            first = first or ds
            limit.append(storescu(scp_port, DESTINATION, paths))
            bare.append(storescu(bare_port, BARE, paths))
            bridged.append(storescu(bridge_port, BRIDGE, paths))
            shutil.rmtree(tmp / f"series-{run}")
            shutil.rmtree(tmp / "storescp")
            (tmp / "storescp").mkdir()
        assert first is not None
        print(f"C-STORE storescu -> DCMTK storescp  {rate(slices, limit):8.1f} instances/s (limit)")
        print(
            f"C-STORE storescu -> bare pynetdicom {rate(slices, bare):8.1f} instances/s "
            f"({statistics.median(limit) / statistics.median(bare):.2f}x the limit)"
        )
        print(
            f"C-STORE storescu -> bridge -> API   {rate(slices, bridged):8.1f} instances/s "
            f"({statistics.median(limit) / statistics.median(bridged):.2f}x the limit; "
            f"target >= 0.5x)"
        )
        keys = [
            "-k",
            "QueryRetrieveLevel=SERIES",
            "-k",
            f"StudyInstanceUID={first.StudyInstanceUID}",
            "-k",
            f"SeriesInstanceUID={first.SeriesInstanceUID}",
        ]
        peer = ["-aet", SCU, "-aec", BRIDGE, "127.0.0.1", str(bridge_port)]
        get_out = tmp / "getscu"
        get_out.mkdir()

        def get(*options: str) -> Callable[[], None]:
            return lambda: run_dcmtk("getscu", "-S", *options, *keys, "-od", str(get_out), *peer)

        def move() -> None:
            run_dcmtk("movescu", "-S", "-aem", DESTINATION, *keys, *peer)

        # DCMTK receives PDUs of 16 KiB by default: a 512x512 slice takes 32 of them, each one
        # a pass through pynetdicom's reactor; the second line shows what a larger one saves.
        for label, action in (
            ("C-GET  getscu", get()),
            ("C-GET  getscu -pdu 131072", get("-pdu", "131072")),
            ("C-MOVE movescu -> storescp", move),
        ):
            try:
                times = timed(action, runs)
            except RuntimeError:
                log = (tmp / "bridge.log").read_text(errors="replace").splitlines()
                print("\n".join(line for line in log[-40:] if "HTTP Request" not in line))
                raise
            print(f"{label:34s} {rate(slices, times):8.1f} instances/s (target >= 500)")
        received = len(list(get_out.iterdir()))
        if received != slices:
            raise RuntimeError(f"getscu received {received} instances, expected {slices}")
        times = find_round_trips(bridge_port, str(first.PatientID), runs * 20)
        print(
            f"C-FIND round trip, open association {statistics.median(times) * 1000:8.2f} ms "
            f"(median; target <= 10 ms)"
        )


def timed(action: Callable[[], object], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return times


def bench_dimse_audit(url_on: str, url_off: str, slices: int, size: int, runs: int) -> None:
    """What the audit trail costs the bridge (issue 6, issue 8): C-STORE (``storescu``) and
    C-GET (``getscu``) through three bridges measured in alternation: the real one in front of
    the audited API at *url_on* (the trail on), one with its audit tap not installed
    (:func:`bench.audit.bridge_without_audit`) in front of the same API (the bridge's share),
    and that one in front of the API without its recorder at *url_off* (the trail off)."""
    print(
        f"\n== audit trail cost, DIMSE bridge (sqlite-fs): {slices} slices of {size}x{size} CT, "
        f"median of {runs} alternating runs  (load average "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())})"
    )
    root = Path(__file__).resolve().parent.parent
    without = [sys.executable, "-m", "bench.audit", "serve"]
    configs = {
        "trail on": (url_on, None),
        "bridge tap off": (url_on, without),
        "trail off": (url_off, without),
    }
    with tempfile.TemporaryDirectory(prefix="pacs-bench-dimse-audit-") as tmp_name:
        tmp = Path(tmp_name)
        with dcmtk_storescp(tmp / "storescp") as scp_port, ExitStack() as stack:
            ports: dict[str, int] = {}
            for number, (label, (url, command)) in enumerate(configs.items()):
                env = {
                    "PACS_BRIDGE_DATABASE_URL": f"sqlite:///{tmp / f'bridge-{number}.sqlite3'}",
                    "PACS_BRIDGE_AUDIT_LOG_PATH": str(tmp / f"bridge-{number}-audit.jsonl"),
                    "PACS_BRIDGE_ADMIN_PORT": "0",
                    "PYTHONPATH": str(root),
                }
                ports[label] = stack.enter_context(
                    bridge_process(
                        url, scp_port, tmp / f"bridge-{number}.log", command=command, extra_env=env
                    )
                )
            stores: dict[str, list[float]] = {label: [] for label in configs}
            firsts: dict[str, Dataset] = {}
            for run in range(runs):
                order = list(configs) if run % 2 == 0 else list(configs)[::-1]
                for number, label in enumerate(order):
                    directory = tmp / f"series-{run}-{number}"
                    paths, ds = write_series(directory, slices, size, seed=500 + 10 * run + number)
                    firsts.setdefault(label, ds)
                    stores[label].append(storescu(ports[label], BRIDGE, paths))
                    shutil.rmtree(directory)
            gets: dict[str, list[float]] = {label: [] for label in configs}
            for run in range(runs):
                for label in configs if run % 2 == 0 else list(configs)[::-1]:
                    first = firsts[label]
                    out = tmp / f"get-{label}-{run}".replace(" ", "-")
                    out.mkdir()
                    start = time.perf_counter()
                    run_dcmtk(
                        "getscu", "-S", "-k", "QueryRetrieveLevel=SERIES",
                        "-k", f"StudyInstanceUID={first.StudyInstanceUID}",
                        "-k", f"SeriesInstanceUID={first.SeriesInstanceUID}",
                        "-od", str(out), "-aet", SCU, "-aec", BRIDGE, "127.0.0.1",
                        str(ports[label]),
                    )  # fmt: skip
                    gets[label].append(time.perf_counter() - start)
                    received = len(list(out.iterdir()))
                    if received != slices:
                        raise RuntimeError(f"getscu received {received}, expected {slices}")
                    shutil.rmtree(out)
            base_store = rate(slices, stores["trail off"])
            base_get = rate(slices, gets["trail off"])
            for label in configs:
                store, get = rate(slices, stores[label]), rate(slices, gets[label])
                store_cost, get_cost = base_store / store - 1, base_get / get - 1
                print(
                    f"  {label:15s} C-STORE {store:7.1f} instances/s ({store_cost:+4.0%})   "
                    f"C-GET {get:7.1f} instances/s ({get_cost:+4.0%})"
                )
