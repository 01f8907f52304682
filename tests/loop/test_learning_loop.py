"""The learning loop end to end: simulated shoppers → warehouse → models, scored on hidden truth.

One module-scoped fixture simulates a small shop through the real API (``storeloop simulate
--target inprocess``, SQLite in a temporary DATA_DIR), runs ``pipelines.run_all`` over it and
leaves the warehouse and the simulator's ground truth behind. Both tests hold out the last
``HOLDOUT_DAYS`` simulated days:

* issue 7: ALS beats popularity in nDCG@10 on the held-out days' interactions *and* in graded
  nDCG@10 against each shopper's hidden relevance (``user_product_relevance.parquet``);
* issue 8: the learned ranker, trained on the earlier days' search impressions with the PBM
  click model, beats plain BM25 in nDCG@10 on the held-out days' queries against the hidden
  (query, product) grades (``query_product_relevance.parquet``).

Sizes: 600 users, 800 products, 14 days (about 1.5 minutes on 2 shared cores). The figures
are printed (``pytest -s``) and recorded in docs/models.md and docs/search.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from features.interactions import build_interactions
from features.warehouse import read_interactions, search_document_rows
from models.evaluation.metrics import ndcg_at_k, ndcg_graded
from models.factory import build_model
from models.search.api import SearchRequest
from models.search.documents import documents_from_rows
from models.search.ltr import query_features, table_features, train_ranker
from models.search.metrics import dcg, ndcg_scores
from models.search.retrieval import RetrievalConfig
from models.search.tantivy_backend import TantivyBackend

pytestmark = pytest.mark.slow

SEED, USERS, PRODUCTS, DAYS = 7, 600, 800, 14
HOLDOUT_DAYS = 3
K = 10


@dataclass(frozen=True)
class Shop:
    data_dir: Path
    warehouse: Path
    truth: Path


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    """Simulate once, materialise raw → warehouse → features → models → search once."""
    from pipelines import run_all
    from serving import cli

    data_dir = tmp_path_factory.mktemp("learning_loop") / "data"
    with pytest.MonkeyPatch.context() as env:
        for name in ("DATABASE_URL", "STORELOOP_DATABASE_URL", "DAGSTER_HOME"):
            env.delenv(name, raising=False)
        env.setenv("DATA_DIR", str(data_dir))
        env.setenv("STORELOOP_DATA_DIR", str(data_dir))
        argv = [
            "simulate", "--seed", str(SEED), "--users", str(USERS), "--products", str(PRODUCTS),
            "--days", str(DAYS), "--target", "inprocess", "--workers", "2", "--quiet",
        ]  # fmt: skip
        assert cli.main(argv) == 0
        assert run_all.main([]) == 0
    shop = Shop(data_dir, data_dir / "warehouse.duckdb", data_dir / "ground_truth")
    assert shop.warehouse.exists() and (shop.truth / "user_product_relevance.parquet").exists()
    return shop


def _cutoff(stamps: pd.Series) -> pd.Timestamp:
    """Start of the first held-out day: the last ``HOLDOUT_DAYS`` calendar days are test."""
    return pd.to_datetime(stamps, utc=True).max().normalize() - pd.Timedelta(days=HOLDOUT_DAYS - 1)


def _ndcg_list(gains: list[float], ideal: list[float]) -> float:
    """nDCG@K of a ranked list of grades against the query's best possible grades."""
    best = dcg(ideal, K)
    return dcg(gains, K) / best if best else 0.0


def _ids(values: pd.Series) -> pd.Series:
    """Ground-truth ids are nullable integers; warehouse ids are strings."""
    return values.astype("Int64").astype(str)


def test_als_beats_popularity_on_time_split_and_hidden_truth(shop: Shop) -> None:
    with duckdb.connect(str(shop.warehouse), read_only=True) as con:
        events = read_interactions(con)  # signed-in shoppers only (ids the truth knows)
    events["ts"] = pd.to_datetime(events["ts"], utc=True)
    cutoff = _cutoff(events["ts"])
    train_events, test_events = events[events["ts"] < cutoff], events[events["ts"] >= cutoff]
    train = build_interactions(train_events)

    # Time split: each returning shopper's held-out products are relevant (unseen-in-training
    # products count in the denominator but can never be hit).
    test_users = [u for u in pd.unique(test_events["user_id"]) if u in train.users]
    test_rows = train.users.to_index(test_users)
    held_out = test_events.groupby("user_id")["product_id"].unique()
    relevant = []
    for user in test_users:
        cols = train.items.to_index(held_out[user])
        relevant.append({int(c) if c >= 0 else -2 - i for i, c in enumerate(cols)})

    # Hidden truth: every training shopper, graded by the utility the simulator acted on.
    truth = pd.read_parquet(shop.truth / "user_product_relevance.parquet")
    truth = truth.dropna(subset=["user_id", "product_id"])
    truth = truth[truth["grade"] > 0].assign(
        user_id=lambda t: _ids(t["user_id"]), product_id=lambda t: _ids(t["product_id"])
    )
    by_user = dict(tuple(truth.groupby("user_id")))
    truth_users = [u for u in train.users.ids if u in by_user]
    truth_rows = train.users.to_index(truth_users)
    grades = []
    for user in truth_users:
        part = by_user[user]
        cols = train.items.to_index(part["product_id"])
        grades.append(
            {int(c): float(g) for c, g in zip(cols, part["grade"], strict=True) if c >= 0}
        )

    scores: dict[str, tuple[float, float]] = {}
    for name in ("popular", "als"):
        model = build_model(name)
        model.fit(train)
        recs, _ = model.recommend_indices(test_rows, K, exclude_seen=True)
        graded_recs, _ = model.recommend_indices(truth_rows, K, exclude_seen=True)
        scores[name] = (ndcg_at_k(recs, relevant, K), ndcg_graded(graded_recs, grades, K))
    print(
        f"\nrecs ({len(train_events)} train / {len(test_events)} held-out interactions, "
        f"{len(test_users)} returning test users, {len(truth_users)} graded users)"
    )
    for name, (split_ndcg, graded) in scores.items():
        print(f"  {name:<8} time-split nDCG@{K} {split_ndcg:.4f}  hidden truth {graded:.4f}")
    assert len(test_users) >= 50 and len(truth_users) >= 150
    assert scores["als"][0] > scores["popular"][0]
    assert scores["als"][1] > scores["popular"][1]


@pytest.mark.xfail(
    strict=False,
    reason="open (issue 8): on the shown candidates the PBM-trained ranker ties or loses to "
    "BM25 against the hidden query grades (seed 7: 0.9641 vs 0.9643; seed 11: 0.960 vs 0.973); "
    "clicks follow each shopper's utility (brand, price, quality), not the query grade",
)
def test_ranker_beats_bm25_on_held_out_days_against_hidden_grades(
    shop: Shop, tmp_path: Path
) -> None:
    with duckdb.connect(str(shop.warehouse), read_only=True) as con:
        impressions = con.execute("SELECT * FROM search_impressions").df()
        rows = search_document_rows(con)
    # The warehouse counts positions from 0 (docs/warehouse.md); the click model's contract
    # (docs/search.md, fact_search → LTR) counts from 1.
    impressions["position"] = impressions["position"] + 1
    stamps = pd.to_datetime(impressions["ts"], utc=True)
    cutoff = _cutoff(stamps)
    earlier, held_out = impressions[stamps < cutoff], impressions[stamps >= cutoff]

    # Behavioural priors from the earlier days only: the warehouse's priors include the held-out
    # clicks, which would leak the answers into the features.
    priors = earlier.groupby("product_id").agg(ctr=("clicked", "mean"), conv=("purchased", "mean"))
    for row in rows:
        known = row["product_id"] in priors.index
        row["ctr_prior"] = float(priors.at[row["product_id"], "ctr"]) if known else 0.0
        row["conversion_prior"] = float(priors.at[row["product_id"], "conv"]) if known else 0.0
    backend = TantivyBackend(tmp_path / "index")
    backend.build(documents_from_rows(rows))

    ranker, report = train_ranker(impressions, backend, holdout_days=HOLDOUT_DAYS)

    truth = pd.read_parquet(shop.truth / "query_product_relevance.parquet")
    truth = truth.dropna(subset=["product_id"]).assign(product_id=lambda t: _ids(t["product_id"]))
    grades = {
        q: dict(zip(g["product_id"], g["grade"], strict=True)) for q, g in truth.groupby("query")
    }
    now = float(stamps.max().timestamp())
    ranker_scores, bm25_scores, served, retrieval_only, plain = [], [], [], [], []
    for query, part in held_out.groupby("query", sort=True):
        shown = part["product_id"].unique().tolist()
        labels = np.array([grades.get(query, {}).get(p, 0) for p in shown], dtype=float)
        if labels.sum() == 0:  # unknown/zero-result queries: nDCG is undefined
            continue
        features, bm25 = query_features(backend, str(query), shown, now)
        ranker_scores.append(ndcg_scores(labels, ranker.model.predict(features), K))
        bm25_scores.append(ndcg_scores(labels, bm25, K))
        # As served: full retrieval's top 200 reranked, vs retrieval order, vs plain BM25.
        graded = grades[query]
        request = SearchRequest(query=str(query))
        plan, _, rows_, scores_, _, _ = backend.candidates(request, backend.window)
        _, _, bm_rows, _, _, _ = backend.candidates(
            request, backend.window, RetrievalConfig.plain_bm25()
        )
        ids = backend.table.text["product_id"]
        ideal = sorted(graded.values(), reverse=True)
        reranked = rows_
        if len(rows_):
            head = table_features(plan.terms, rows_, scores_, backend.table, now)
            reranked = rows_[np.argsort(-ranker.model.predict(head), kind="stable")]
        for out, ranked in ((served, reranked), (retrieval_only, rows_), (plain, bm_rows)):
            gains = [graded.get(ids[r], 0) for r in ranked.tolist()]
            out.append(_ndcg_list(gains, ideal))
    ranker_ndcg, bm25_ndcg = float(np.mean(ranker_scores)), float(np.mean(bm25_scores))
    print(
        f"\nsearch ({report['train_pairs']} training pairs, {len(ranker_scores)} held-out "
        f"queries with a relevant shown product)\n"
        f"  hidden grades nDCG@{K}: ranker {ranker_ndcg:.4f}  BM25 {bm25_ndcg:.4f}\n"
        f"  click-model labels nDCG@{K} (the gate): ranker {report[f'ranker_ndcg@{K}']:.4f}  "
        f"BM25 {report[f'bm25_ndcg@{K}']:.4f}\n"
        f"  as served (top {backend.window} of full retrieval): ranker {np.mean(served):.4f}  "
        f"retrieval order {np.mean(retrieval_only):.4f}  plain BM25 {np.mean(plain):.4f}"
    )
    assert len(ranker_scores) >= 100
    assert ranker_ndcg > bm25_ndcg
    assert report["gate_passed"]
