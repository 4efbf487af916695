"""Write ``THIRD_PARTY_LICENSES.md``: every package the services need at run time, its version
and its licence as the package declares it, or check that the file is current.

    uv run python scripts/third_party_licenses.py            # write the file
    uv run python scripts/third_party_licenses.py --check    # exit 1 when it differs

The packages are those of ``uv export --frozen --no-dev`` for every workspace member (what a
deployment installs from ``uv.lock``); the licence comes from each installed distribution's
metadata: its ``License-Expression`` (PEP 639), else its ``License`` field when it is short,
else its licence classifiers. Bundled third-party code inside a wheel (for example the codecs
inside the imaging wheels) is listed in that wheel's own licence files, named here.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "THIRD_PARTY_LICENSES.md"
_REQUIREMENT = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;]+)")


def runtime_packages() -> list[tuple[str, str]]:
    """``(name, version)`` of every locked run-time dependency, sorted by name."""
    uv = shutil.which("uv") or str(ROOT / ".tools" / "uv" / "bin" / "uv")
    exported = subprocess.run(
        [uv, "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-workspace",
         "--all-packages"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    found = {}
    for line in exported.splitlines():
        match = _REQUIREMENT.match(line)
        if match and "sys_platform == 'win32'" not in line:
            found[match.group(1).lower()] = match.group(2)
    return sorted(found.items())


def declared_licence(name: str) -> tuple[str, list[str]]:
    """The licence a distribution declares, and the names of its licence files."""
    try:
        meta = metadata.metadata(name)
        files = metadata.files(name) or []
    except metadata.PackageNotFoundError:
        return "(not installed here)", []
    licence = meta["License-Expression"] or ""
    if not licence:
        field = (meta["License"] or "").strip()
        if field and "\n" not in field and len(field) <= 80:
            licence = field
    if not licence:
        classifiers = [
            c.split(" :: ")[-1] for c in meta.get_all("Classifier") or [] if c.startswith("License")
        ]
        licence = ", ".join(classifiers) or "(not declared)"
    licence_files = sorted(
        {str(f.name) for f in files if "licen" in str(f).lower() or "copying" in str(f).lower()}
    )
    return licence, licence_files


def render() -> str:
    lines = [
        "# Third-party licences",
        "",
        "pacs-cloud is licensed under the Apache License 2.0 (`LICENSE`). It runs on these",
        "packages (from `uv.lock`, run-time dependencies of every service), each under its own",
        "licence, as its metadata declares it; the full texts ship in each package's",
        "distribution (`*.dist-info/licenses/`). Regenerate with",
        "`uv run python scripts/third_party_licenses.py`; CI checks it is current.",
        "",
        "Licences that are not permissive, and why they are there:",
        "",
        "- psycopg (LGPL-3.0): the PostgreSQL driver, used unmodified as a separate library;",
        "  the LGPL permits that from Apache-2.0 code.",
        "- pylibjpeg-libjpeg (GPL-3.0): the only decoder here for 12-bit JPEG Extended",
        "  (1.2.840.10008.1.2.4.51) objects, which older CT scanners write (GDCM and Pillow",
        "  refuse 12-bit samples: measured with pydicom's JPEG-lossy.dcm and JPGExtended.dcm).",
        "  Whoever distributes images that include it takes on the GPL's terms for that",
        "  package; without it the API answers 406 for rendering and transcoding those",
        "  objects, and stores and serves them as stored as before.",
        "",
        "| package | version | licence | licence files |",
        "|---|---|---|---|",
    ]
    for name, version in runtime_packages():
        licence, files = declared_licence(name)
        shown = ", ".join(files[:4]) + (" ..." if len(files) > 4 else "")
        lines.append(f"| {name} | {version} | {licence} | {shown} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the file differs")
    args = parser.parse_args(argv)
    document = render()
    if args.check:
        if OUTPUT.exists() and OUTPUT.read_text(encoding="utf-8") == document:
            print(f"{OUTPUT} is up to date")
            return 0
        print(f"{OUTPUT} is out of date: run `make licenses` and commit it", file=sys.stderr)
        return 1
    OUTPUT.write_text(document, encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
