"""Drill: the data directory fills up or is read-only (issue 18, "Every path answers 4xx").

A real small file system (a tmpfs mounted for the test; root is needed to mount, as on the
project's machines and CI) filled to the last block, or mounted read-only: ``/readyz`` turns
503 and says which folder, and recovers when space is back; ``storeloop serve`` on a read-only
data directory prints one clear line and exits non-zero instead of "serving on" and a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app


def _mount(point: Path, options: str) -> None:
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
        check=True,
        capture_output=True,
        text=True,
    )


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs, unmounted afterwards; skipped where this process may not mount."""
    point = tmp_path / "disk"
    point.mkdir()
    try:
        _mount(point, "size=16m")
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or exc
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"cannot mount a tmpfs for the storage drill: {detail}")
        pytest.skip(f"cannot mount a tmpfs (needs root): {detail}")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False, capture_output=True)


def _fill(disk: Path) -> Path:
    """Write zeros (unbuffered) until the device refuses even 512 bytes: a truly full disk."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as fh:
        for size in (1 << 16, 512):
            try:
                while True:
                    fh.write(b"\0" * size)
            except OSError:
                pass
    return filler


def test_readyz_turns_503_on_a_full_disk_and_recovers(settings, small_disk):
    shop = settings.model_copy(update={"data_dir": small_disk / "data"})
    with TestClient(create_app(shop)) as client:
        r = client.get("/readyz")
        assert r.status_code == 200, r.text
        assert r.json()["storage"] == "ok"
        filler = _fill(small_disk)
        try:
            r = client.get("/readyz")
            assert r.status_code == 503, r.text
            unwritable = r.json()["storage"]["unwritable"]
            assert any("No space left on device" in why for why in unwritable), unwritable
            assert client.get("/healthz").status_code == 200  # alive, just not ready
        finally:
            filler.unlink()
        assert client.get("/readyz").status_code == 200


def test_serve_on_a_read_only_data_dir_is_one_line_and_nonzero(settings, small_disk):
    data = small_disk / "data"
    data.mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    env.update(DATA_DIR=str(data), JWT_SECRET="s" * 48)
    result = subprocess.run(
        [sys.executable, "-m", "serving", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "serving on" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Read-only file system" in lines[0] and str(data) in lines[0]
