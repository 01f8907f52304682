"""Drill: `python -m pipelines.run_all` SIGKILLed mid-way, then rerun (drill_pipeline_kill.py).

Pass: after each kill nothing half-written is visible (Parquet partitions, warehouse tables,
registry versions and pointers, features and model candidates are each the old state or the
finished new one, with valid checksums), and the rerun's outputs equal a clean run's, with no
temporary file left behind. The test runs the drill's representative subset (``--quick``) on
the backend chosen by ``--db``; ``python tests/faults/drill_pipeline_kill.py`` runs every kill
point. The drill lives beside its test: it is a test harness, not a tool of the product.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_killed_pipeline_run_publishes_nothing_half_written_and_reruns_identically(
    backend: str, tmp_path: Path
):
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("drill_pipeline_kill.py")), "--quick"]
        + ["--db", backend, "--workdir", str(tmp_path / "drill")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    lines = report.strip().splitlines()
    assert lines[-1] == "PASS", report
    assert sum("[ok]" in line for line in lines) >= 4, report
