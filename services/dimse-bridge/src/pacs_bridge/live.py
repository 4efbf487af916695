"""The configuration the handlers read at each request: the allow-list and the known nodes.

The handlers read it through one :class:`Live` holder, once per request, so that the
configuration in use can be replaced as a whole (:meth:`Live.swap`) while the bridge runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pacs_bridge.access import AccessPolicy
from pacs_bridge.retrieve.move import Destination
from pacs_bridge.settings import Settings
from pacs_bridge.tls import node_context


@dataclass(frozen=True)
class LiveConfig:
    """One consistent state of the reloadable configuration, and what is built from it."""

    settings: Settings
    policy: AccessPolicy
    destinations: Mapping[str, Destination]


def live_config(settings: Settings) -> LiveConfig:
    """The live configuration of *settings*; :class:`ConfigError` when a node's TLS files
    cannot be used."""
    destinations = {
        title: Destination(node, node_context(title, node, settings))
        for title, node in settings.nodes.items()
    }
    return LiveConfig(settings, AccessPolicy(settings), destinations)


class Live:
    """The live configuration in use: handlers read :attr:`current`."""

    def __init__(self, config: LiveConfig) -> None:
        self._config = config

    @property
    def current(self) -> LiveConfig:
        """The configuration in use (read it once per request)."""
        return self._config

    def swap(self, config: LiveConfig) -> None:
        """Put *config* in use."""
        self._config = config
