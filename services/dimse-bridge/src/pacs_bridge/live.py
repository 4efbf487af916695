"""The configuration a running bridge changes without a restart, and its reload (SIGHUP).

The handlers read the allow-list, the known nodes and the other parts named in
:data:`RELOADABLE` through one :class:`Live` holder, once per request: a reload swaps the
holder's :class:`LiveConfig` and the next request, or association, sees the new one. Open
associations are not dropped; their next request is judged by the new configuration (a peer
removed from the allow-list gets "Refused: Not Authorized" on its open association, PS3.7
Annex C, and A-ASSOCIATE-RJ on its next one, PS3.8 §7.1.1.9).

:func:`reload` builds the new settings from the same sources as at start (environment and
file) and refuses them, keeping the configuration in use and logging why, when they are
invalid (the fault named as at start), when a setting outside :data:`RELOADABLE` changed (the
AE title, the address, the TLS files, the PDU size, the API ...: they are bound when the bridge
starts), or when a node's TLS files cannot be used.

To make another setting reloadable, add its name to :data:`RELOADABLE` and read it through
``live.current.settings`` (or a part built in :func:`live_config`); a component that must act
on a change (restart a worker, say) registers with :meth:`Live.subscribe`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pydantic import ValidationError
from pydantic_settings import SettingsError

from pacs_bridge.access import AccessPolicy
from pacs_bridge.retrieve.move import Destination
from pacs_bridge.settings import ConfigError, Settings, config_faults
from pacs_bridge.tls import node_context

log = logging.getLogger(__name__)

#: Settings a reload may change; a change to any other refuses the reload.
RELOADABLE = frozenset(
    {
        "allow",
        "allow_any_calling_ae",
        "require_called_ae_title",
        "nodes",
        "find_page_size",
        "routes",
        "routing_poll_interval",
        "routing_page_size",
        "routing_batch_size",
        "routing_retry_initial",
        "routing_retry_max",
        "routing_keep_settled",
    }
)


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
    """The live configuration in use: handlers read :attr:`current`, :func:`reload` swaps it."""

    def __init__(self, config: LiveConfig) -> None:
        self._config = config
        self._listeners: list[Callable[[LiveConfig], None]] = []
        self.reloading = threading.Lock()

    @property
    def current(self) -> LiveConfig:
        """The configuration in use (read it once per request: a reload may swap it)."""
        return self._config

    def subscribe(self, listener: Callable[[LiveConfig], None]) -> None:
        """Call *listener* with each new configuration, after it is swapped in."""
        self._listeners.append(listener)

    def swap(self, config: LiveConfig) -> None:
        """Put *config* in use, then tell the listeners."""
        self._config = config
        for listener in self._listeners:
            try:
                listener(config)
            except Exception:
                log.exception("a configuration listener failed on the new configuration")


@dataclass(frozen=True)
class ReloadResult:
    """What a reload did: applied or refused, and the logged reason."""

    applied: bool
    message: str


def restart_only_changes(old: Settings, new: Settings) -> list[str]:
    """The settings outside :data:`RELOADABLE` whose value differs between *old* and *new*."""
    return [
        name
        for name in type(old).model_fields
        if name not in RELOADABLE and getattr(old, name) != getattr(new, name)
    ]


def reload(live: Live, load: Callable[[], Settings]) -> ReloadResult:
    """Load the settings again with *load* and swap in their live configuration, or keep the
    one in use and log why not. Reloads run one at a time."""
    with live.reloading:
        result = _reload(live, load)
    if result.applied:
        log.info("%s", result.message)
    else:
        log.warning("%s", result.message)
    return result


def _reload(live: Live, load: Callable[[], Settings]) -> ReloadResult:
    kept = "the configuration in use is kept"
    try:
        settings = load()
    except (ConfigError, SettingsError, ValidationError) as exc:
        return ReloadResult(False, f"reload refused, {kept}: {'; '.join(config_faults(exc))}")
    old = live.current.settings
    fixed = restart_only_changes(old, settings)
    if fixed:
        return ReloadResult(
            False,
            f"reload refused, {kept}: {', '.join(fixed)} cannot change while the bridge runs "
            f"(restart it to apply {'this' if len(fixed) == 1 else 'these'})",
        )
    try:
        config = live_config(settings)
    except ConfigError as exc:
        return ReloadResult(False, f"reload refused, {kept}: {exc}")
    live.swap(config)
    changed = [name for name in sorted(RELOADABLE) if getattr(old, name) != getattr(settings, name)]
    return ReloadResult(
        True, f"configuration reloaded: {', '.join(changed) if changed else 'nothing'} changed"
    )
