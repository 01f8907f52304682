"""``storeloop search evaluate`` end to end on a generated catalog and judgments."""

from __future__ import annotations

import json

import pandas as pd

from models.search.synthetic import generate_catalog, generate_judgments
from serving.cli import main


def test_evaluate_end_to_end(tmp_path, capsys):
    docs = generate_catalog(600, seed=1)
    catalog = pd.DataFrame(
        [
            {
                "product_id": d.product_id,
                "title": d.title,
                "brand": d.brand,
                "category": d.category_path,
                "description": d.description,
                "attributes": f"color: {d.attributes['color']}",
                "price": d.price,
                "rating": d.rating,
            }
            for d in docs
        ]
    )
    catalog.to_parquet(tmp_path / "catalog.parquet")
    generate_judgments(docs, 24).to_csv(tmp_path / "judgments.csv", index=False)
    out = tmp_path / "out.json"
    code = main(
        [
            "search",
            "evaluate",
            "--catalog",
            str(tmp_path / "catalog.parquet"),
            "--judgments",
            str(tmp_path / "judgments.csv"),
            "--k",
            "10",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    table = capsys.readouterr().out
    assert "bm25" in table and "storeloop" in table and "nDCG@10" in table
    results = {r["configuration"]: r for r in json.loads(out.read_text())}
    assert set(results) == {"bm25", "storeloop"}
    for r in results.values():
        assert {"ndcg@10", "mrr", "precision@10", "zero_result_rate", "queries"} <= set(r)
    assert results["storeloop"]["ndcg@10"] > results["bm25"]["ndcg@10"]


def test_evaluate_rejects_bad_input(tmp_path, capsys):
    (tmp_path / "c.csv").write_text("id,name\n1,x\n")
    (tmp_path / "j.csv").write_text("query,product_id,grade\nx,1,1\n")
    code = main(
        [
            "search",
            "evaluate",
            "--catalog",
            str(tmp_path / "c.csv"),
            "--judgments",
            str(tmp_path / "j.csv"),
        ]
    )
    assert code == 2
    assert "product_id" in capsys.readouterr().err


def test_evaluate_scores_a_trained_ranker_too(tmp_path, capsys):
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingRegressor

    from features.search_features import FEATURE_NAMES
    from models.search.ltr import Ranker

    docs = generate_catalog(300, seed=2)
    catalog = pd.DataFrame(
        [{"product_id": d.product_id, "title": d.title, "category": d.category_path} for d in docs]
    )
    catalog.to_csv(tmp_path / "catalog.csv", index=False)
    generate_judgments(docs, 6).to_csv(tmp_path / "judgments.csv", index=False)
    x = np.random.default_rng(0).random((60, len(FEATURE_NAMES)))
    model = HistGradientBoostingRegressor(max_iter=5).fit(x, x[:, 0])
    Ranker(model=model).save(tmp_path / "ranker")
    args = [
        "search",
        "evaluate",
        "--catalog",
        str(tmp_path / "catalog.csv"),
        "--judgments",
        str(tmp_path / "judgments.csv"),
        "--json",
        str(tmp_path / "o.json"),
    ]
    assert main([*args, "--ranker", str(tmp_path / "ranker")]) == 0
    assert "storeloop+ltr" in capsys.readouterr().out
    names = [r["configuration"] for r in json.loads((tmp_path / "o.json").read_text())]
    assert names == ["bm25", "storeloop", "storeloop+ltr"]
    assert main([*args, "--ranker", str(tmp_path / "missing")]) == 2
