"""Reading back what a deployment's object store holds, through the project's own backends."""

from __future__ import annotations

from pacs_api.settings import Settings
from pacs_common.storage import open_store


def stored_objects(settings: Settings) -> dict[str, bytes]:
    """Every object in the store, by key (for small test stores)."""
    store = open_store(settings)
    try:
        return {info.key: store.read(info.key) for info in store.list()}
    finally:
        store.close()
