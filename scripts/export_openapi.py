"""Write the OpenAPI documents of the services to ``openapi/``, or check they are up to date.

    uv run python scripts/export_openapi.py            # write openapi/*.json
    uv run python scripts/export_openapi.py --check    # exit 1 when a file differs

``api.json`` is the API (:func:`pacs_api.main.create_app`), ``bridge.json`` the DIMSE bridge's
HTTP status API (:mod:`pacs_bridge.admin`), ``exporter.json`` the mesh exporter
(:func:`pacs_exporter.main.create_app`); each is built with throw-away SQLite databases and
stores in a temporary directory, so nothing under ``./var/`` is touched. Documents are written
as indented JSON with sorted keys, so their diffs are readable and stable.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from pacs_api.main import create_app
from pacs_api.settings import Settings
from pacs_bridge.main import create_bridge
from pacs_bridge.settings import Settings as BridgeSettings
from pacs_exporter.main import create_app as create_exporter
from pacs_exporter.settings import Settings as ExporterSettings

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIRECTORY = ROOT / "openapi"


async def _schema(settings: Settings) -> dict[str, Any]:
    app = create_app(settings)
    # Run the lifespan so that the store and the engine are closed again.
    async with app.router.lifespan_context(app):
        return app.openapi()


def _json(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_api() -> str:
    """The OpenAPI document of the API as sorted, indented JSON."""
    with tempfile.TemporaryDirectory(prefix="pacs-openapi-") as tmp:
        settings = Settings(
            database_url=f"sqlite:///{tmp}/index.sqlite3",
            store_url=f"file://{tmp}/objects",
        )
        return _json(asyncio.run(_schema(settings)))


def render_bridge() -> str:
    """The OpenAPI document of the bridge's status API (the bridge built, never started)."""
    with tempfile.TemporaryDirectory(prefix="pacs-openapi-") as tmp:
        settings = BridgeSettings(
            allow_any_calling_ae=True, database_url=f"sqlite:///{tmp}/bridge.sqlite3"
        )
        bridge = create_bridge(settings)
        try:
            return _json(bridge.admin.app.openapi())
        finally:
            bridge.close()


def render_exporter() -> str:
    """The OpenAPI document of the mesh exporter (no workers: none is started)."""
    with tempfile.TemporaryDirectory(prefix="pacs-openapi-") as tmp:
        settings = ExporterSettings(
            database_url=f"sqlite:///{tmp}/exporter.sqlite3",
            store_url=f"file://{tmp}/exports",
            workers=0,
        )
        app = create_exporter(settings)

        async def schema() -> dict[str, Any]:
            async with app.router.lifespan_context(app):
                return app.openapi()

        return _json(asyncio.run(schema()))


DOCUMENTS = {
    "api.json": render_api,
    "bridge.json": render_bridge,
    "exporter.json": render_exporter,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a file differs")
    parser.add_argument("--directory", type=Path, default=DEFAULT_DIRECTORY, help="%(default)s")
    args = parser.parse_args(argv)
    directory: Path = args.directory
    failed = 0
    for name, render in DOCUMENTS.items():
        output = directory / name
        document = render()
        if not args.check:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(document, encoding="utf-8")
            print(f"wrote {output}")
            continue
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current == document:
            print(f"{output} is up to date")
            continue
        diff = difflib.unified_diff(
            current.splitlines(keepends=True),
            document.splitlines(keepends=True),
            fromfile=f"{output} (committed)",
            tofile=f"{output} (generated)",
        )
        sys.stdout.writelines(list(diff)[:60])
        print(f"\n{output} is out of date: run `make openapi` and commit it", file=sys.stderr)
        failed = 1
    return failed


if __name__ == "__main__":
    sys.exit(main())
