"""Atomic replacement of files and folders, and cleaning up after writers that were killed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from features import atomic


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], text=True,
                           capture_output=True, check=True)  # fmt: skip
    return int(child.stdout)


def test_write_text_replaces_whole_and_leaves_no_temporary(tmp_path: Path):
    target = tmp_path / "sub" / "evaluation.json"
    atomic.write_text(target, "first")
    atomic.write_text(target, "second")
    assert target.read_text() == "second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["evaluation.json"]


def test_stale_temporaries_of_dead_writers_go_live_ones_stay(tmp_path: Path):
    dead, alive = _dead_pid(), os.getppid()
    (tmp_path / f".part-0.parquet.{dead}.tmp").write_bytes(b"torn")
    (tmp_path / f".part-0.parquet.{dead}.abc.tmp").write_bytes(b"torn")
    (tmp_path / f".part-0.parquet.{alive}.abc.tmp").write_bytes(b"being written")
    (tmp_path / f".other.{dead}.tmp").write_bytes(b"not ours to judge")
    removed = atomic.remove_stale(tmp_path, "part-0.parquet")
    assert sorted(removed) == sorted(
        [f".part-0.parquet.{dead}.tmp", f".part-0.parquet.{dead}.abc.tmp"]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f".part-0.parquet.{alive}.abc.tmp", f".other.{dead}.tmp"]
    )


def _write(files: dict[str, str]):
    def write(folder: Path) -> None:
        for name, text in files.items():
            (folder / name).write_text(text)

    return write


def test_replace_dir_swaps_a_whole_folder_and_keeps_the_previous(tmp_path: Path):
    target = tmp_path / "interactions"
    for n in range(3):
        atomic.replace_dir(target, _write({"matrix": f"m{n}", "ids": f"i{n}"}))
    assert target.is_symlink()
    assert {p.name: p.read_text() for p in target.iterdir()} == {"matrix": "m2", "ids": "i2"}
    versions = sorted(p for p in tmp_path.iterdir() if p.name.endswith(".d"))
    assert len(versions) == 2  # the current one and the one before it


def test_replace_dir_turns_a_plain_folder_into_a_link_once(tmp_path: Path):
    target = tmp_path / "als"
    target.mkdir()
    (target / "model.json").write_text("legacy")
    atomic.replace_dir(target, _write({"model.json": "new"}))
    assert (target / "model.json").read_text() == "new"
    atomic.replace_dir(target, _write({"model.json": "newer"}))
    assert (target / "model.json").read_text() == "newer"
    assert not any("legacy" in p.read_text() for p in tmp_path.rglob("model.json"))


def test_a_failing_writer_changes_nothing(tmp_path: Path):
    target = tmp_path / "als"
    atomic.replace_dir(target, _write({"model.json": "good"}))
    before = sorted(p.name for p in tmp_path.iterdir())

    def broken(folder: Path) -> None:
        (folder / "model.json").write_text("half")
        raise RuntimeError("fit failed")

    with pytest.raises(RuntimeError):
        atomic.replace_dir(target, broken)
    assert (target / "model.json").read_text() == "good"
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_killed_writers_folder_is_removed_by_the_next_swap(tmp_path: Path):
    target = tmp_path / "als"
    atomic.replace_dir(target, _write({"model.json": "v1"}))
    orphan = tmp_path / f".als.{_dead_pid()}.feedface.d"
    orphan.mkdir()
    (orphan / "model.json").write_text("half")
    link = tmp_path / f".als.{_dead_pid()}.feedface.link"
    link.symlink_to(orphan.name)
    atomic.replace_dir(target, _write({"model.json": "v2"}))
    assert not orphan.exists() and not link.is_symlink()
