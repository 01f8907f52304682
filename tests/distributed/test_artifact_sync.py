"""Registry mirroring through fsspec: versions first, pointers last, nothing half-copied.

Run against fsspec's local file system with ``file://`` URLs (no S3-compatible server runs on
these machines; s3fs plugs into the same calls). A published model and search index pushed to
the "bucket" and pulled into a second host's registry load and verify there; a pull never
leaves a pointer to a version whose files are missing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from features.interactions import interactions_from_triples
from models.artifact_sync import main, sync
from models.factory import build_model
from models.registry import ModelRegistry


def _publish(root: Path, factors: int) -> str:
    users = np.arange(40) % 20
    items = (np.arange(40) * 7) % 13
    model = build_model("als", factors=factors, iterations=3, num_threads=1).fit(
        interactions_from_triples(users, items)
    )
    registry = ModelRegistry(root, kind="recs")
    manifest = registry.publish_model(
        model, name="als", metrics={"ndcg@10": 0.5}, baselines={"popular": {"ndcg@10": 0.1}}
    )
    registry.promote("als", manifest["version"], force=True)
    return manifest["version"]


def test_push_then_pull_serves_the_same_verified_version(tmp_path: Path) -> None:
    pipeline, host = tmp_path / "pipeline" / "registry", tmp_path / "host" / "registry"
    bucket = f"file://{tmp_path / 'bucket' / 'registry'}"
    v1 = _publish(pipeline, factors=4)
    pushed = sync(str(pipeline), bucket)
    assert pushed.pointers == ["recs/als/serving.json"]
    assert pushed.copied and all(not p.endswith("serving.json") for p in pushed.copied)
    pulled = sync(bucket, str(host))
    assert pulled.pointers == ["recs/als/serving.json"]
    registry = ModelRegistry(host, kind="recs")
    assert registry.serving_version("als") == v1
    registry.load_model("als", v1)  # verifies every file's sha256 against the manifest
    again = sync(bucket, str(host))
    assert again.copied == [] and again.pointers == [], "nothing changed, nothing copied"
    v2 = _publish(pipeline, factors=6)
    sync(str(pipeline), bucket)
    second = sync(bucket, str(host))
    assert second.pointers == ["recs/als/serving.json"]
    new = {p for p in second.copied if not p.startswith(f"recs/als/{v2}/")}
    assert new == {"recs/als/history.jsonl"}, "only the new version and the promotion log"
    assert ModelRegistry(host, kind="recs").serving_version("als") == v2


def test_pointers_are_copied_after_every_file_they_point_at(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import models.artifact_sync as artifact_sync

    pipeline, host = tmp_path / "pipeline", tmp_path / "host"
    _publish(pipeline, factors=4)
    order: list[str] = []
    real_put = artifact_sync._put

    def recording_put(fs, dst, data):  # records the order; the copy itself is the real one
        order.append(dst)
        real_put(fs, dst, data)

    monkeypatch.setattr(artifact_sync, "_put", recording_put)
    sync(str(pipeline), str(host))
    assert order[-1].endswith("recs/als/serving.json")
    pointer = json.loads((host / "recs" / "als" / "serving.json").read_text())
    assert (host / "recs" / "als" / pointer["version"] / "manifest.json").exists()


def test_command_line_pull_of_a_missing_source_copies_nothing(tmp_path: Path, capsys) -> None:
    code = main(["pull", f"file://{tmp_path / 'nothing'}", str(tmp_path / "host")])
    assert code == 0
    assert capsys.readouterr().out.strip() == "pull: 0 files, 0 pointers copied, 0 unchanged"


def test_a_version_published_during_the_copy_never_leaves_a_dangling_pointer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import models.artifact_sync as artifact_sync

    pipeline, host = tmp_path / "pipeline", tmp_path / "host"
    _publish(pipeline, factors=4)
    real_files = artifact_sync._files
    published: list[str] = []

    def files_then_publish(fs, root):  # the real listing; the pipeline publishes right after
        listing = real_files(fs, root)
        if root == str(pipeline) and not published:
            published.append(_publish(pipeline, factors=6))
        return listing

    monkeypatch.setattr(artifact_sync, "_files", files_then_publish)
    sync(str(pipeline), str(host))
    registry = ModelRegistry(host, kind="recs")
    serving = registry.serving_version("als")
    registry.load_model("als", serving)  # the pointer names a version that is all there
    monkeypatch.setattr(artifact_sync, "_files", real_files)
    sync(str(pipeline), str(host))
    assert ModelRegistry(host, kind="recs").serving_version("als") == published[0]
