"""Model registry: atomic versions, checksums, gated promotion, rollback, history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from recs_toy import make_two_blocks

from models.exceptions import ArtifactError, PromotionRefused
from models.factory import build_model
from models.registry import ModelRegistry, PromotionGate

EVAL = {"protocol": "per-user", "data": "toy-v1"}


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "registry", kind="recs")


@pytest.fixture(scope="module")
def fitted():
    return build_model("ease", l2=10.0).fit(make_two_blocks())


def publish(registry: ModelRegistry, model, ndcg: float, popular: float = 0.2, evaluation=EVAL):
    return registry.publish_model(
        model,
        metrics={"ndcg@10": ndcg},
        baselines={"popular": {"ndcg@10": popular}},
        evaluation=evaluation,
        data_range={"start": "2026-01-01", "end": "2026-02-01"},
    )


def test_publish_writes_versioned_manifest(registry: ModelRegistry, fitted) -> None:
    first = publish(registry, fitted, 0.3)
    second = publish(registry, fitted, 0.31)
    assert (first["version"], second["version"]) == ("v0001", "v0002")
    manifest = registry.manifest("ease", "v0001")
    for key in ("name", "version", "created_at", "params", "metrics", "data_range", "files"):
        assert key in manifest
    assert manifest["params"]["l2"] == 10.0
    assert "model.json" in manifest["files"] and len(manifest["files"]["model.json"]) == 64
    assert not [p for p in (registry.base / "ease").iterdir() if p.name.startswith(".tmp")]


def test_failed_write_leaves_no_version(registry: ModelRegistry) -> None:
    def broken(directory: Path) -> None:
        (directory / "half.bin").write_bytes(b"x")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        registry.publish("broken", broken)
    assert registry.versions("broken") == []
    assert list((registry.base / "broken").iterdir()) == []


def test_gate_refuses_model_not_beating_popular(registry: ModelRegistry, fitted) -> None:
    version = publish(registry, fitted, ndcg=0.19, popular=0.2)["version"]
    with pytest.raises(PromotionRefused, match="popular"):
        registry.promote("ease", version)
    assert registry.serving_version("ease") is None


def test_gate_refuses_regression_against_serving(registry: ModelRegistry, fitted) -> None:
    good = publish(registry, fitted, 0.40)["version"]
    registry.promote("ease", good)
    worse = publish(registry, fitted, 0.38)["version"]
    with pytest.raises(PromotionRefused, match="worse than serving"):
        registry.promote("ease", worse)
    slightly = publish(registry, fitted, 0.395)["version"]
    registry.promote("ease", slightly)
    assert registry.serving_version("ease") == slightly
    relative = PromotionGate(max_drop=0.05, relative=True)
    assert registry.promote("ease", worse, gate=relative)["version"] == worse


def test_gate_needs_comparable_evaluation(registry: ModelRegistry, fitted) -> None:
    registry.promote("ease", publish(registry, fitted, 0.40)["version"])
    other = publish(registry, fitted, 0.5, evaluation={"data": "toy-v2"})["version"]
    with pytest.raises(PromotionRefused, match="different evaluation"):
        registry.promote("ease", other)
    registry.promote("ease", other, serving_metrics={"ndcg@10": 0.45})
    assert registry.serving_version("ease") == other


def test_rollback_and_history(registry: ModelRegistry, fitted) -> None:
    v1 = publish(registry, fitted, 0.40)["version"]
    v2 = publish(registry, fitted, 0.41)["version"]
    registry.promote("ease", v1)
    registry.promote("ease", v2)
    record = registry.rollback("ease")
    assert record["version"] == v1 and registry.serving_version("ease") == v1
    with pytest.raises(ArtifactError, match="no previous"):
        registry.rollback("ease")
    actions = [(h["action"], h["version"]) for h in registry.history("ease")]
    assert actions == [("promote", v1), ("promote", v2), ("rollback", v1)]


def test_pointer_swap_is_atomic_file_replace(registry: ModelRegistry, fitted) -> None:
    v1 = publish(registry, fitted, 0.40)["version"]
    registry.promote("ease", v1)
    pointer = registry.base / "ease" / "serving.json"
    assert json.loads(pointer.read_text())["version"] == v1
    assert not [p for p in (registry.base / "ease").iterdir() if p.name.startswith(".serving")]


def test_corrupt_artifact_is_refused(registry: ModelRegistry, fitted) -> None:
    version = publish(registry, fitted, 0.40)["version"]
    registry.promote("ease", version)
    assert registry.load_model("ease").recommend([0], k=3)[0] == fitted.recommend([0], k=3)[0]
    arrays = registry.path("ease", version) / "arrays.npz"
    arrays.write_bytes(arrays.read_bytes()[:-10])
    with pytest.raises(ArtifactError, match="checksum"):
        registry.load_model("ease")
    with pytest.raises(ArtifactError, match="checksum"):
        registry.promote("ease", version, force=True)


def test_missing_manifest_is_refused(registry: ModelRegistry, fitted) -> None:
    version = publish(registry, fitted, 0.40)["version"]
    (registry.path("ease", version) / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match="manifest"):
        registry.load_model("ease", version)


def test_generic_kind_for_other_artifacts(tmp_path: Path) -> None:
    from models.registry import ArtifactRegistry

    search = ArtifactRegistry(tmp_path, kind="search")
    manifest = search.publish("products", lambda d: (d / "index.bin").write_bytes(b"idx"))
    assert search.verify("products", manifest["version"]).parent.parent.name == "search"
