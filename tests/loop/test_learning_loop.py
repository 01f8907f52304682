"""The learning loop end to end: simulated shoppers → warehouse → models, scored on hidden truth.

One module-scoped fixture simulates a small shop through the real API (``storeloop simulate
--target inprocess``, SQLite in a temporary DATA_DIR), runs ``pipelines.run_all`` over it and
leaves the warehouse and the simulator's ground truth behind. Both tests hold out the last
``HOLDOUT_DAYS`` simulated days:

* issue 7: ALS beats popularity in nDCG@10 on the held-out days' interactions *and* in graded
  nDCG@10 against each shopper's hidden relevance (``user_product_relevance.parquet``);
* issue 8: the search ranker the pipeline trained on the earlier days' search impressions
  (click-model labels, query-intent features; it never sees a grade), gated on the held-out
  days and published, beats BM25 in nDCG@10 on the held-out days' queries against the hidden
  (query, product) grades (``query_product_relevance.parquet``).

Sizes: 600 users, 800 products, 14 days (about 1.5 minutes on 2 shared cores). The figures
are printed (``pytest -s``) and recorded in docs/models.md and docs/search.md.
"""

from __future__ import annotations

import os
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
from models.search.documents import documents_from_rows
from models.search.index_store import IndexStore
from models.search.ltr import Ranker, candidates, evaluate_judged
from models.search.ltr_eval import holdout_cutoff
from models.search.metrics import ndcg_scores
from models.search.tantivy_backend import TantivyBackend
from pipelines.assets.ml import RANKER_HOLDOUT_DAYS, RANKER_SUBDIR

pytestmark = pytest.mark.slow

#: ``STORELOOP_LOOP_SEED=11`` reruns the loop on another simulated history.
SEED = int(os.environ.get("STORELOOP_LOOP_SEED", "7"))
USERS, PRODUCTS, DAYS = 600, 800, 14
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


def test_ranker_beats_bm25_on_held_out_days_against_hidden_grades(
    shop: Shop, tmp_path: Path
) -> None:
    """The ranker the pipeline trained, gated and published beats BM25 on the hidden grades.

    Scored as served (``ltr.evaluate_judged``, the function the pipeline's gate runs): for every
    query searched on the held-out days the ranker reorders the top ``window`` candidates of
    full retrieval. BM25 is measured as its own system (plain BM25 retrieval, what ``storeloop
    search evaluate`` calls ``bm25``) and as an ordering of the very candidates the ranker
    reranks. The index is built as of the first held-out day, so no prior includes a held-out
    click, and the ranker never saw a grade: it learned from clicks alone.
    """
    assert HOLDOUT_DAYS == RANKER_HOLDOUT_DAYS  # the pipeline's split is the test's split
    with duckdb.connect(str(shop.warehouse), read_only=True) as con:
        impressions = con.execute("SELECT * FROM search_impressions").df()
        cutoff = holdout_cutoff(impressions["ts"], HOLDOUT_DAYS)
        rows = search_document_rows(con, as_of=cutoff)
    stamps = pd.to_datetime(impressions["ts"], utc=True)
    held_out = impressions[stamps >= cutoff]

    store = IndexStore(shop.data_dir / "registry" / RANKER_SUBDIR)
    assert store.current(), "the pipeline's gate refused the ranker (see its asset log)"
    ranker = Ranker.load(store.path(store.current()))
    gate = ranker.metrics
    backend = TantivyBackend(tmp_path / "index")
    backend.build(documents_from_rows(rows))
    table = backend.table
    assert table is not None

    truth = pd.read_parquet(shop.truth / "query_product_relevance.parquet")
    truth = truth.dropna(subset=["product_id"]).assign(product_id=lambda t: _ids(t["product_id"]))
    grades = {
        q: dict(zip(g["product_id"], g["grade"].astype(float), strict=True))
        for q, g in truth.groupby("query")
    }
    now = float(stamps.max().timestamp())
    mean, n = evaluate_judged(ranker, backend, held_out["query"], grades, K, now)

    # The old measure: only the products shoppers were shown, reordered.
    shown_scores: dict[str, list[float]] = {"ranker": [], "bm25": []}
    for query, part in held_out.groupby("query", sort=True):
        graded = grades.get(str(query), {})
        shown = backend.snapshot_rows(part["product_id"].astype(str).unique().tolist())
        shown = shown[shown >= 0]
        labels = np.asarray([graded.get(table.text["product_id"][r], 0.0) for r in shown])
        if not len(shown) or labels.sum() == 0:
            continue
        cand = candidates(backend, str(query))
        at = {r: i for i, r in enumerate(cand.rows.tolist())}
        pick = [at.get(r, -1) for r in shown.tolist()]
        scores = np.asarray([cand.scores[i] if i >= 0 else 0.0 for i in pick])
        bm25 = np.asarray([cand.bm25[i] if i >= 0 else 0.0 for i in pick])
        ranked = ranker.predict(cand.plan, shown, scores, table, now)
        shown_scores["ranker"].append(ndcg_scores(labels, ranked, K))
        shown_scores["bm25"].append(ndcg_scores(labels, bm25, K))
    print(
        f"\nsearch ({gate['train_pairs']} training pairs, {n} held-out queries with a relevant "
        f"product; gate: {gate['gate_evaluation']}, passed {gate['gate_passed']})\n"
        f"  hidden grades nDCG@{K}, as served: ranker {mean['ranker']:.4f}  "
        f"BM25 {mean['bm25']:.4f}\n"
        f"    on the ranker's top-{backend.window} candidates: BM25 order "
        f"{mean['bm25_same']:.4f}  retrieval order {mean['retrieval']:.4f}\n"
        f"    shown products only: ranker {np.mean(shown_scores['ranker']):.4f}  "
        f"BM25 {np.mean(shown_scores['bm25']):.4f}\n"
        f"  held-out clicks, IPS-nDCG@{K} ({gate['test_searches']} searches): ranker "
        f"{gate[f'clicks_ranker_ndcg@{K}']:.4f}  BM25 {gate[f'clicks_bm25_ndcg@{K}']:.4f}  "
        f"retrieval order {gate[f'clicks_retrieval_ndcg@{K}']:.4f}"
    )
    assert n >= 100
    assert gate["gate_passed"]
    assert mean["ranker"] > mean["bm25"]
    assert mean["ranker"] > mean["bm25_same"]
    assert mean["ranker"] > mean["retrieval"]
