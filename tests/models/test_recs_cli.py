"""``storeloop recs`` end to end on a synthetic MovieLens-100k-shaped file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from recs_toy import make_two_blocks

from models.evaluation.synthetic import movielens_like
from models.factory import build_model
from models.registry import ModelRegistry
from serving.cli import main


@pytest.fixture(scope="module")
def ml100k_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame, _ = movielens_like(seed=0)
    assert frame["user"].nunique() == 943 and frame["item"].nunique() == 1682
    assert 95_000 <= len(frame) <= 105_000
    path = tmp_path_factory.mktemp("ml") / "ratings.csv"
    frame.to_csv(path, index=False)
    return path


def test_evaluate_per_user_best_model_beats_popular(ml100k_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    code = main(
        [
            "recs", "evaluate", str(ml100k_csv), "--protocol", "per-user",
            "--test-fraction", "0.25", "--k", "10", "--seed", "1",
            "--models", "ease,als,item2item,popular", "--tune-trials", "3",
            "--json", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    results = {entry["model"]: entry for entry in json.loads(out.read_text())}
    assert set(results) == {"ease", "als", "item2item", "popular"}
    for entry in results.values():
        for key in ("ndcg@10", "precision@10", "recall@10", "map@10", "coverage", "params"):
            assert key in entry
        assert entry["run_seconds"] >= 0
    best = max(results.values(), key=lambda e: e["ndcg@10"])
    assert best["model"] != "popular"
    assert best["ndcg@10"] > results["popular"]["ndcg@10"] + 0.05
    assert results["ease"]["params"]["l2"] > 0


def test_evaluate_time_protocol_parquet_min_rating(tmp_path: Path) -> None:
    frame, _ = movielens_like(n_users=150, n_items=200, n_ratings=6000, seed=2)
    path = tmp_path / "r.parquet"
    frame.to_parquet(path)
    out = tmp_path / "r.json"
    args = ["recs", "evaluate", str(path), "--protocol", "time", "--min-rating", "4"]
    code = main([*args, "--models", "popular,trending,bpr", "--no-tune", "--json", str(out)])
    assert code == 0
    assert [e["model"] for e in json.loads(out.read_text())] == ["popular", "trending", "bpr"]


def test_evaluate_rejects_unknown_model(ml100k_csv: Path, capsys) -> None:
    assert main(["recs", "evaluate", str(ml100k_csv), "--models", "als,wat"]) == 2
    assert "wat" in capsys.readouterr().err


def test_evaluate_reports_unreadable_input(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("u,i\n1,2\n")
    assert main(["recs", "evaluate", str(bad)]) == 2
    assert "timestamp" in capsys.readouterr().err
    assert main(["recs", "evaluate", str(tmp_path / "missing.csv")]) == 2


def test_registry_commands(tmp_path: Path, capsys) -> None:
    registry = ModelRegistry(tmp_path / "reg", kind="recs")
    model = build_model("item2item").fit(make_two_blocks())
    for ndcg in (0.3, 0.35):
        registry.publish_model(
            model, metrics={"ndcg@10": ndcg}, baselines={"popular": {"ndcg@10": 0.1}}
        )
    root = ["--registry", str(tmp_path / "reg")]
    assert main(["recs", "promote", "item2item", "v0001", *root]) == 0
    assert main(["recs", "promote", "item2item", "v0002", *root]) == 0
    assert main(["recs", "list", *root]) == 0
    assert "* item2item" in capsys.readouterr().out
    assert main(["recs", "rollback", "item2item", *root]) == 0
    assert registry.serving_version("item2item") == "v0001"
    assert main(["recs", "rollback", "item2item", *root]) == 1
