"""``storeloop search train-ranker``: a reranker learned from graded judgments (issue 20)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from models.search.documents import documents_from_rows
from models.search.evaluate import configurations
from models.search.judged_ltr import split_queries
from models.search.ltr import Ranker, candidates
from models.search.synthetic import generate_catalog, generate_judgments
from models.search.tantivy_backend import TantivyBackend
from serving.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A titles-only catalog (the other columns absent) and graded judgments for it."""
    root = tmp_path_factory.mktemp("judged")
    docs = generate_catalog(800, seed=5)
    pd.DataFrame([{"product_id": d.product_id, "title": d.title} for d in docs]).to_csv(
        root / "catalog.csv", index=False
    )
    generate_judgments(docs, 40, seed=3).to_csv(root / "judgments.csv", index=False)
    return root


def _train(files, out, *extra: str) -> int:
    args = ["search", "train-ranker", "--catalog", str(files / "catalog.csv")]
    args += ["--judgments", str(files / "judgments.csv"), "--out", str(out), *extra]
    return main(args)


def test_split_is_by_query_seeded_and_disjoint():
    queries = [f"q{i}" for i in range(50)]
    train, val = split_queries(queries, 0.2, seed=1)
    assert len(val) == 10 and not set(train) & set(val) and set(train) | set(val) == set(queries)
    assert split_queries(queries, 0.2, seed=1) == (train, val)
    assert split_queries(queries, 0.2, seed=2)[1] != val


def test_train_ranker_gates_saves_and_evaluate_loads_it(files, tmp_path, capsys):
    out = tmp_path / "ranker"
    code = _train(files, out, "--k", "10", "--seed", "1")
    printed = capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    metrics = manifest["metrics"]
    assert code == (0 if metrics["gate_passed"] else 1)
    assert "gate" in printed and "bm25" in printed
    assert metrics["validation_queries"] == 8 and metrics["train_queries"] == 32
    for name in ("ranker", "bm25", "bm25_same", "retrieval"):
        assert 0.0 <= metrics[f"{name}_ndcg@10"] <= 1.0
    ranker = Ranker.load(out)  # checksums and feature list verified
    assert ranker.association is not None and ranker.depth == 200

    result = tmp_path / "eval.json"
    code = main(
        [
            "search",
            "evaluate",
            "--catalog",
            str(files / "catalog.csv"),
            "--judgments",
            str(files / "judgments.csv"),
            "--ranker",
            str(out),
            "--json",
            str(result),
        ]
    )
    assert code == 0
    rows = {r["configuration"]: r for r in json.loads(result.read_text())}
    assert set(rows) == {"bm25", "storeloop", "storeloop+ltr"}


def test_train_ranker_publishes_only_a_gated_ranker(files, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    code = _train(files, tmp_path / "ranker", "--publish", "--seed", "1")
    store = tmp_path / "data" / "registry" / "search_ranker"
    metrics = json.loads((tmp_path / "ranker" / "manifest.json").read_text())["metrics"]
    assert metrics["gate_passed"], "the fixture's ranker beats BM25 (grades follow the brand)"
    assert code == 0 and "published as" in capsys.readouterr().out
    current = (store / "CURRENT").read_text().strip()
    assert Ranker.load(store / "versions" / current).metrics == metrics


def test_train_ranker_does_not_publish_a_ranker_that_failed_its_gate(files, tmp_path, monkeypatch):
    """Nothing to gain: each query's only graded product is what retrieval already ranks
    first, so on the validation query the ranker can at best tie the retrieval order."""
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    catalog = pd.read_csv(files / "catalog.csv")
    backend = TantivyBackend(tmp_path / "index", config=configurations()["storeloop"])
    backend.build(documents_from_rows(catalog.to_dict(orient="records")))
    assert backend.table is not None
    rows = []
    for query in sorted(pd.read_csv(files / "judgments.csv")["query"].unique())[:5]:
        top = int(candidates(backend, query).rows[0])
        rows.append(
            {"query": query, "product_id": backend.table.text["product_id"][top], "grade": 3}
        )
    pd.DataFrame(rows).to_csv(tmp_path / "j.csv", index=False)
    args = ["search", "train-ranker", "--catalog", str(files / "catalog.csv")]
    args += ["--judgments", str(tmp_path / "j.csv"), "--out", str(tmp_path / "r"), "--publish"]
    assert main(args) == 1
    assert not json.loads((tmp_path / "r" / "manifest.json").read_text())["metrics"]["gate_passed"]
    assert not (tmp_path / "data" / "registry" / "search_ranker" / "CURRENT").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--k", "0"], "--k"), (["--validation", "1.5"], "--validation")],
)
def test_train_ranker_rejects_bad_arguments(files, tmp_path, capsys, extra, message):
    assert _train(files, tmp_path / "r", *extra) == 2
    assert message in capsys.readouterr().err


def test_train_ranker_rejects_bad_files(tmp_path, capsys):
    (tmp_path / "c.csv").write_text("id,name\n1,x\n")
    (tmp_path / "j.csv").write_text("query,product_id,grade\nx,1,1\n")
    code = main(
        [
            "search",
            "train-ranker",
            "--catalog",
            str(tmp_path / "c.csv"),
            "--judgments",
            str(tmp_path / "j.csv"),
            "--out",
            str(tmp_path / "r"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("search train-ranker:") and "title" in err
