"""``pacs routing``: store-and-forward progress from the DIMSE bridge's status API
(``pacs_bridge.admin``): every destination's queue, one destination's deliveries, and putting
failed deliveries back in the queue."""

from __future__ import annotations

import enum
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from pacs_cli.common import Token, bearer_auth, print_table

#: The bridge's status API when it runs with its defaults (``make run``).
DEFAULT_URL = "http://127.0.0.1:8082"


class Exit(enum.IntEnum):
    OK = 0
    ATTENTION = 1  # a destination has failed or quarantined deliveries or is backing off
    USAGE = 2
    UNAVAILABLE = 5  # the status API cannot be reached or answered an error


class State(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"
    QUARANTINED = "quarantined"  # incomplete Pixel Data: not sent until an admin releases it
    DROPPED = "dropped"


app = typer.Typer(
    help="Store-and-forward routing: progress and failures per destination.",
    no_args_is_help=True,
)
BridgeURL = Annotated[
    str,
    typer.Option(
        "--bridge",
        envvar="PACS_BRIDGE_STATUS_URL",
        help="The bridge's status API.",
        show_default=True,
    ),
]
Destination = Annotated[str, typer.Argument(help="The destination's AE title.")]


def _console(*, stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _call(method: str, url: str, token: str | None, **options: Any) -> Any:
    try:
        response = httpx.request(method, url, timeout=30, auth=bearer_auth(token), **options)
    except httpx.HTTPError as exc:
        _console(stderr=True).print(f"the bridge status API cannot be reached at {url}: {exc}")
        raise typer.Exit(Exit.UNAVAILABLE) from None
    if response.is_error:
        detail = response.text
        try:
            detail = response.json().get("detail", detail)
        except ValueError:
            pass
        _console(stderr=True).print(f"{method} {url} -> {response.status_code}: {detail}")
        raise typer.Exit(Exit.UNAVAILABLE)
    return response.json()


def _when(value: str | None) -> str:
    return value.replace("T", " ")[:19] if value else "-"


@app.command()
def status(bridge: BridgeURL = DEFAULT_URL, token: Token = None) -> None:
    """Every destination's queue; exit 1 when one has failed or quarantined deliveries or is
    backing off."""
    body = _call("GET", f"{bridge.rstrip('/')}/routing", token)
    out = _console()
    role = "routing" if body["leading"] else "standing by (another replica routes)"
    out.print(f"bridge {role}; change feed read up to {body['cursor']}")
    if body["feed_error"]:
        out.print(f"the change feed cannot be read: {body['feed_error']}", markup=False)
    for route in body["routes"]:
        out.print(f"route {route['name']} -> {', '.join(route['to'])}", markup=False)
    headers = [
        "destination",
        "pending",
        "delivered",
        "failed",
        "cancelled",
        "quarantined",
        "oldest pending",
        "last success",
        "retry at",
        "last error",
    ]
    rows = []
    attention = False
    for row in body["destinations"]:
        backing_off = row["consecutive_failures"] > 0
        quarantined = row.get("quarantined", 0)
        attention = attention or row["failed"] > 0 or quarantined > 0 or backing_off
        rows.append(
            [
                row["ae_title"],
                str(row["pending"]),
                str(row["delivered"]),
                str(row["failed"]),
                str(row["cancelled"]),
                str(quarantined),
                _when(row["oldest_pending_at"]),
                _when(row["last_success_at"]),
                _when(row["next_attempt_at"]) if backing_off else "-",
                row["last_error"] if backing_off or row["failed"] else "",
            ]
        )
    print_table(out, headers, rows)
    if attention:
        raise typer.Exit(Exit.ATTENTION)


@app.command()
def deliveries(
    destination: Destination,
    state: Annotated[State | None, typer.Option(help="Only deliveries in this state.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
    bridge: BridgeURL = DEFAULT_URL,
    token: Token = None,
) -> None:
    """DESTINATION's deliveries, newest first, with their last status and reason."""
    params: dict[str, Any] = {"limit": limit}
    if state is not None:
        params["state"] = state.value
    url = f"{bridge.rstrip('/')}/routing/destinations/{destination}/deliveries"
    rows = _call("GET", url, token, params=params)
    headers = ["feed", "state", "attempts", "status", "SOP instance", "route", "reason"]
    lines = []
    for row in rows:
        status = "-" if row["last_status"] is None else f"0x{row['last_status']:04X}"
        lines.append(
            [
                str(row["seq"]),
                row["state"],
                str(row["attempts"]),
                status,
                row["instance"],
                row["route"],
                row["last_error"],
            ]
        )
    print_table(_console(), headers, lines)


@app.command()
def retry(destination: Destination, bridge: BridgeURL = DEFAULT_URL, token: Token = None) -> None:
    """Put DESTINATION's failed deliveries back in the queue and end its backoff."""
    url = f"{bridge.rstrip('/')}/routing/destinations/{destination}/retry"
    body = _call("POST", url, token)
    _console().print(f"{body['requeued']} deliveries to {destination} back in the queue")
