"""Write the API's OpenAPI document to ``openapi/api.json``, or check that it is up to date.

    uv run python scripts/export_openapi.py            # write openapi/api.json
    uv run python scripts/export_openapi.py --check    # exit 1 when the file differs

The app is built by :func:`pacs_api.main.create_app` with a throw-away SQLite index and
filesystem store in a temporary directory, so nothing under ``./var/`` is touched. The document
is written as indented JSON with sorted keys, so its diffs are readable and stable.
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

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "openapi" / "api.json"


async def _schema(settings: Settings) -> dict[str, Any]:
    app = create_app(settings)
    # Run the lifespan so that the store and the engine are closed again.
    async with app.router.lifespan_context(app):
        return app.openapi()


def render() -> str:
    """The OpenAPI document of the API as sorted, indented JSON."""
    with tempfile.TemporaryDirectory(prefix="pacs-openapi-") as tmp:
        settings = Settings(
            database_url=f"sqlite:///{tmp}/index.sqlite3",
            store_url=f"file://{tmp}/objects",
        )
        schema = asyncio.run(_schema(settings))
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the file differs")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="%(default)s")
    args = parser.parse_args(argv)
    output: Path = args.output
    document = render()
    if args.check:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current == document:
            print(f"{output} is up to date")
            return 0
        diff = difflib.unified_diff(
            current.splitlines(keepends=True),
            document.splitlines(keepends=True),
            fromfile=f"{output} (committed)",
            tofile=f"{output} (generated)",
        )
        sys.stdout.writelines(list(diff)[:60])
        print(f"\n{output} is out of date: run `make openapi` and commit it", file=sys.stderr)
        return 1
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(document, encoding="utf-8")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
