"""``pacs export`` against the real exporter (uvicorn, its worker thread) reading from the
real API: a CT phantom becomes a watertight STL with its progress and report shown; an MR
series fails with the job's reason (exit 6); a refused request exits 2; Ctrl-C cancels the
job (130); an unreachable exporter exits 5."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import httpx
import numpy as np
import pytest
from stl import mesh as stl_mesh

from tests.cli.conftest import pacs, unreachable_url
from tests.cli.services import finish, pacs_process, read_until, running_exporter
from tests.exporter.service import RADIUS_MM, phantom, store


@pytest.fixture(autouse=True)
def _no_exporter_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The exporter's Settings come from the test, not the PACS_EXPORTER_* of the shell."""
    for name in list(os.environ):
        if name.upper().startswith("PACS_EXPORTER_"):
            monkeypatch.delenv(name)


@pytest.fixture
def exporter(api: str, tmp_path: Path) -> Iterator[str]:
    with running_exporter(tmp_path / "exporter", api) as url:
        yield url


def test_export_ct_phantom_progress_report_and_watertight_stl(
    api: str, exporter: str, tmp_path: Path
) -> None:
    """The job is followed from queued to succeeded 100%, the binary STL downloaded is the
    closed sphere of the phantom, and the report printed matches it."""
    study, series = store(api, phantom())
    out = tmp_path / "sphere.stl"
    args = [series, "--study", study, "--level", "500", "--out", str(out), "--poll", "0.05"]

    result = pacs("export", *args, "--exporter", exporter)

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("job ") and lines[0].endswith(": queued 0%")
    states = [line.split(": ")[1] for line in lines if line.startswith("job ")]
    assert states[-1] == "succeeded 100%"
    assert f"mesh {out} ({out.stat().st_size} bytes)" in lines
    assert "  watertight  yes (1 connected components)" in lines
    assert "  level       500 HU, LPS mm" in lines
    parsed = stl_mesh.Mesh.from_file("sphere.stl", fh=BytesIO(out.read_bytes()))
    assert parsed.is_closed()
    assert f"  triangles   {len(parsed.vectors)} (" in result.output
    volume, _, _ = parsed.get_mass_properties()
    assert volume == pytest.approx(4 / 3 * np.pi * RADIUS_MM**3, rel=0.02)
    (shown,) = [line.split()[1] for line in lines if line.startswith("  volume ")]
    assert float(shown) == pytest.approx(volume, rel=1e-3)


def test_export_default_name_from_the_exporter(
    api: str, exporter: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --out the mesh is saved under the name the exporter serves it by."""
    study, series = store(api, phantom())
    monkeypatch.chdir(tmp_path)
    args = [series, "--study", study, "--level", "500", "--format", "ply", "--poll", "0.05"]
    result = pacs("export", *args, "--exporter", exporter)
    assert result.exit_code == 0, result.output
    assert (tmp_path / f"{series}.ply").read_bytes().startswith(b"ply\n")


def test_export_mr_series_job_failed_reason_6(api: str, exporter: str) -> None:
    """An MR series: the job fails, its reason is printed, the exit code is 6."""
    study, series = store(api, phantom(modality="MR"))
    result = pacs("export", series, "--study", study, "--poll", "0.05", "--exporter", exporter)
    assert result.exit_code == 6, result.output
    assert "failed: " in result.output and "not CT (Modality MR)" in result.output


def test_export_refused_request_reason_2(api: str, exporter: str) -> None:
    """A request the exporter refuses (an unknown preset) exits 2 with its reason."""
    result = pacs(
        "export", "1.2.3", "--study", "1.2", "--preset", "cartilage", "--exporter", exporter
    )
    assert result.exit_code == 2, result.output
    assert "unknown preset 'cartilage'" in result.output


def test_export_ctrl_c_cancels_the_job_130(api: str, tmp_path: Path) -> None:
    """SIGINT while the job waits (an exporter without workers) cancels it: DELETE, 130."""
    study, series = store(api, phantom())
    with running_exporter(tmp_path / "exporter", api, workers=0) as url:
        args = ["export", series, "--study", study, "--poll", "0.05", "--exporter", url]
        with pacs_process(*args) as process:
            (line,) = read_until(process, ": queued 0%")
            process.send_signal(signal.SIGINT)
            code, rest = finish(process)
        job_id = line.split()[1].rstrip(":")
        assert code == 130, rest
        assert f"interrupted: export job {job_id} cancelled" in rest
        job = httpx.get(f"{url}/exports/{job_id}", timeout=30).json()
    assert job["state"] == "cancelled"


def test_export_exporter_unreachable_5() -> None:
    url = unreachable_url()
    result = pacs("export", "1.2.3", "--study", "1.2", "--exporter", url)
    assert result.exit_code == 5, result.output
    assert f"the exporter at {url} cannot be reached" in result.output
