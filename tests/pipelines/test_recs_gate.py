"""The nightly gate offers whichever model won on validation, a blend included."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from models.evaluation.runner import to_interactions
from models.evaluation.synthetic import movielens_like
from models.registry import ModelRegistry
from pipelines.assets.ml import SERVING_NAME, recs_promotion
from pipelines.resources import (
    LakeDir,
    RecsGate,
    RegistryDir,
    Trainer,
    Warehouse,
    recs_gate_from_env,
)


def _lake_with(tmp_path: Path, selected: dict, popular: float) -> LakeDir:
    lake = tmp_path / "lake"
    frame, _ = movielens_like(n_users=80, n_items=120, n_ratings=2500, seed=2)
    to_interactions(frame).save(lake / "features" / "interactions")
    evaluation = {
        "k": 10,
        "metrics": {"blend": {"ndcg@10": 0.30}, "popular": {"ndcg@10": popular}},
        "selected": selected,
    }
    (lake / "models").mkdir(parents=True)
    (lake / "models" / "evaluation.json").write_text(json.dumps(evaluation))
    return LakeDir(path=str(lake))


def _warehouse(tmp_path: Path) -> Warehouse:
    """A warehouse whose interactions table the manifest's data range is read from."""
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE interactions (ts TIMESTAMPTZ, is_anonymous BOOLEAN)")
        con.execute("INSERT INTO interactions VALUES ('2026-11-01 10:00:00+00', FALSE)")
    return Warehouse(path=str(path))


def _blend() -> dict:
    params = {"models": ["ease", "als"], "weights": [1.0, 0.5], "params": {"ease": {"l2": 50.0}}}
    return {"model": "blend", "params": params, "reason": "blend has the best validation nDCG"}


def test_gate_publishes_and_promotes_a_winning_blend(tmp_path: Path) -> None:
    registry = RegistryDir(path=str(tmp_path / "registry"))
    result = recs_promotion(
        context=dg.build_asset_context(),
        lake=_lake_with(tmp_path, _blend(), popular=0.10),
        registry=registry,
        warehouse=_warehouse(tmp_path),
        trainer=Trainer(),
        recs_gate=RecsGate(),
    )
    assert result.metadata["promoted"] and result.metadata["model"] == "blend"
    reg = ModelRegistry(registry.directory, kind="recs")
    version = reg.serving_version(SERVING_NAME)
    assert reg.manifest(SERVING_NAME, version)["model"] == "blend"
    assert reg.load_model(SERVING_NAME).name == "blend"


def test_gate_keeps_popularity_and_says_why(tmp_path: Path) -> None:
    registry = RegistryDir(path=str(tmp_path / "registry"))
    result = recs_promotion(
        context=dg.build_asset_context(),
        lake=_lake_with(tmp_path, _blend(), popular=0.50),
        registry=registry,
        warehouse=_warehouse(tmp_path),
        trainer=Trainer(),
        recs_gate=RecsGate(),
    )
    assert not result.metadata["promoted"]
    assert "does not beat popular" in str(result.metadata["reason"])
    assert ModelRegistry(registry.directory, kind="recs").serving_version(SERVING_NAME) is None


def test_a_candidate_that_loses_to_popularity_replaces_the_older_learned_model_with_it(
    tmp_path: Path,
) -> None:
    """The older model learned from less data than the candidate that just lost to
    popularity on the newest days: popularity serves, and the manifest says why."""
    registry = RegistryDir(path=str(tmp_path / "registry"))
    warehouse = _warehouse(tmp_path)
    first = recs_promotion(
        context=dg.build_asset_context(),
        lake=_lake_with(tmp_path / "night1", _blend(), popular=0.10),
        registry=registry,
        warehouse=warehouse,
        trainer=Trainer(),
        recs_gate=RecsGate(),
    )
    assert first.metadata["promoted"]
    second = recs_promotion(
        context=dg.build_asset_context(),
        lake=_lake_with(tmp_path / "night2", _blend(), popular=0.50),
        registry=registry,
        warehouse=warehouse,
        trainer=Trainer(),
        recs_gate=RecsGate(),
    )
    assert not second.metadata["promoted"]
    reg = ModelRegistry(registry.directory, kind="recs")
    serving = reg.manifest(SERVING_NAME, reg.serving_version(SERVING_NAME))
    assert serving["version"] != first.metadata["version"]
    assert serving["model"] == "popular"
    assert "lost to popularity" in serving["selection"]
    assert second.metadata["fallback"] == f"popular {serving['version']}"
    assert reg.load_model(SERVING_NAME).name == "popular"


def _metrics_lake(tmp_path: Path, blend: float) -> LakeDir:
    """A lake whose evaluation says the blend scored ``blend`` against popularity's 0.10."""
    lake = _lake_with(tmp_path, _blend(), popular=0.10)
    report = lake.directory / "models" / "evaluation.json"
    evaluation = json.loads(report.read_text())
    evaluation["metrics"]["blend"]["ndcg@10"] = blend
    report.write_text(json.dumps(evaluation))
    return lake


def test_the_tolerated_drop_against_the_serving_model_is_the_operators_setting(
    tmp_path: Path,
) -> None:
    """A retrain 0.02 below the serving model's figure (measured on an earlier night's
    held-out days) is refused by the default gate and promoted by a wider one."""
    registry = RegistryDir(path=str(tmp_path / "registry"))
    warehouse = _warehouse(tmp_path)

    def night(name: str, blend: float, gate: RecsGate) -> dg.MaterializeResult:
        return recs_promotion(
            context=dg.build_asset_context(),
            lake=_metrics_lake(tmp_path / name, blend),
            registry=registry,
            warehouse=warehouse,
            trainer=Trainer(),
            recs_gate=gate,
        )

    assert night("night1", 0.30, RecsGate()).metadata["promoted"]
    refused = night("night2", 0.28, RecsGate())
    assert not refused.metadata["promoted"]
    assert "worse than serving" in str(refused.metadata["reason"])
    wide = recs_gate_from_env({"STORELOOP_RECS_GATE_MAX_DROP": "0.05"})
    assert night("night3", 0.28, wide).metadata["promoted"]


@pytest.mark.parametrize("raw", ["lots", "-0.1", "nan"])
def test_a_bad_gate_setting_is_one_clear_error(raw: str) -> None:
    with pytest.raises(ValueError, match="STORELOOP_RECS_GATE_MAX_DROP must be a number >= 0"):
        recs_gate_from_env({"STORELOOP_RECS_GATE_MAX_DROP": raw}).gate()
