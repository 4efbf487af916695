"""Route rules and their validation in the bridge settings: a route matches on the sender's
AE title, the modality and the SOP class; a bad route stops the start with a precise reason."""

from __future__ import annotations

from typing import Any

import pytest
from pacs_bridge.routing.rules import Route, destinations
from pacs_bridge.settings import Node, Settings
from pacs_common.changefeed import Change, ChangeKind
from pydantic import ValidationError

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"


def change(sender: str = "", modality: str = "CT", sop_class: str = CT) -> Change:
    return Change(1, ChangeKind.STORED, "1.2", "1.2.3", "1.2.3.4", sop_class, modality, sender)


def test_route_criteria_all_must_accept() -> None:
    route = Route(
        name="r", calling_ae=frozenset({"CT_SCANNER"}), modality=frozenset({"ct"}), to=("A",)
    )
    assert route.matches(change("CT_SCANNER", "CT"))
    assert not route.matches(change("CT_SCANNER", "MR"))
    assert not route.matches(change("OTHER", "CT"))
    by_class = Route.model_validate({"name": "c", "sop_class": [MR], "to": ["A"]})
    assert by_class.matches(change(sop_class=MR)) and not by_class.matches(change())


def test_destinations_each_node_once_never_back_to_sender() -> None:
    routes = [
        Route.model_validate({"name": "first", "match_all": True, "to": ["A", "B"]}),
        Route.model_validate({"name": "second", "modality": ["CT"], "to": ["B", "C"]}),
    ]
    assert destinations(routes, change()) == [("A", "first"), ("B", "first"), ("C", "second")]
    assert destinations(routes, change(sender="B")) == [("A", "first"), ("C", "second")]


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ({"name": "r", "to": ["A"]}, "give calling_ae, modality or sop_class, or match_all"),
        ({"name": "r", "match_all": True, "modality": ["CT"], "to": ["A"]}, "not both"),
        ({"name": "r", "match_all": True, "to": []}, "at least 1 item"),
        ({"name": "bad name", "match_all": True, "to": ["A"]}, "letters, digits"),
        ({"name": "r", "sop_class": ["1.2.x"], "to": ["A"]}, "not a valid UID"),
        ({"name": "r", "calling_ae": ["A" * 17], "to": ["A"]}, "longer than 16"),
    ],
)
def test_route_invalid_refused_with_reason(route: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Route.model_validate(route)


def _settings(**values: Any) -> Settings:
    return Settings(allow_any_calling_ae=True, **values)


def test_settings_route_to_unknown_node_refused() -> None:
    with pytest.raises(ValidationError, match="sends to NOWHERE, not among the nodes"):
        _settings(routes=[{"name": "r", "match_all": True, "to": ["NOWHERE"]}])


def test_settings_duplicate_route_names_refused() -> None:
    nodes = {"A": Node(host="127.0.0.1", port=104)}
    route = {"name": "r", "match_all": True, "to": ["A"]}
    with pytest.raises(ValidationError, match="route names must be unique: r"):
        _settings(nodes=nodes, routes=[route, route])


def test_settings_changefeed_url_derived_or_required() -> None:
    assert _settings().changefeed_url == "http://127.0.0.1:8080/changefeed"
    with pytest.raises(ValidationError, match="set changefeed_url"):
        _settings(dicomweb_url="http://api:8080/dicomweb")
    given = _settings(dicomweb_url="http://api:8080/dicomweb", changefeed_url="http://api/feed")
    assert given.changefeed_url == "http://api/feed"


def test_settings_status_api_non_loopback_refused_without_opt_in() -> None:
    with pytest.raises(ValidationError, match="no authentication configured"):
        Settings(allow=[{"ae_title": "A"}], admin_host="0.0.0.0")
    opted = Settings(
        allow=[{"ae_title": "A"}], admin_host="0.0.0.0", admin_allow_unauthenticated_network=True
    )
    assert opted.admin_host == "0.0.0.0"
