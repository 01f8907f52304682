"""LTR on a synthetic click log with position bias and known relevance."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from features.search_features import FEATURE_NAMES
from features.search_priors import QueryHeldOutPriors
from models.search.api import SearchRequest
from models.search.click_model import fit_pbm
from models.search.ltr import Ranker, candidates, train_ranker, training_set
from models.search.metrics import ndcg_scores
from models.search.synthetic import (
    ADJECTIVES,
    CATEGORIES,
    generate_catalog,
    generate_click_log,
    true_relevance,
)
from models.search.tantivy_backend import TantivyBackend


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    docs = generate_catalog(3000, seed=3)
    backend = TantivyBackend(tmp_path_factory.mktemp("ltr") / "index")
    backend.build(docs)
    by_id = {d.product_id: d for d in docs}
    rng = np.random.default_rng(0)
    ranked = {}
    for _ in range(40):
        noun = CATEGORIES[int(rng.integers(len(CATEGORIES)))][1]
        query = f"{ADJECTIVES[int(rng.integers(len(ADJECTIVES)))]} {noun}"
        hits = backend.search(SearchRequest(query=query, page_size=20, facets=False)).hits
        ranked[query] = [by_id[h.product_id] for h in hits]
    log = generate_click_log(ranked, sessions_per_query=250, days=10)
    truth = {(q, d.product_id): true_relevance(d) for q, ds in ranked.items() for d in ds}
    return backend, log, truth


def _mean_ndcg(labels, column: str, truth) -> float:
    scores = []
    for query, part in labels.groupby("query"):
        rel = np.array([truth[(query, p)] for p in part["product_id"]])
        scores.append(ndcg_scores(rel, part[column].to_numpy(), 10))
    return float(np.mean(scores))


def test_click_model_recovers_relevance_better_than_ctr(world):
    _, log, truth = world
    result = fit_pbm(log)
    pbm = _mean_ndcg(result.labels, "attractiveness", truth)
    ctr = _mean_ndcg(result.labels, "ctr", truth)
    print(f"nDCG@10 vs true relevance: PBM {pbm:.4f}, raw CTR {ctr:.4f}")
    assert pbm > ctr
    assert np.all(np.diff(result.examination[:10]) < 0.05)  # examination decays with position


def test_ranker_beats_bm25_on_held_out_days_and_round_trips(world, tmp_path):
    backend, log, _ = world
    ranker, report = train_ranker(log, backend, holdout_days=3)
    print(
        f"held-out nDCG@10: ranker {report['ranker_ndcg@10']:.4f}, "
        f"BM25 {report['bm25_ndcg@10']:.4f}"
    )
    assert report["gate_passed"]
    assert report["ranker_ndcg@10"] > report["bm25_ndcg@10"]
    rival, score = report["gate_rival"].split()  # the best rival, named in the log
    assert rival in ("bm25", "retrieval") and report["ranker_ndcg@10"] > float(score)
    loaded = Ranker.load(ranker.save(tmp_path / "ranker"))
    backend.ranker = loaded
    try:
        hits = backend.search(SearchRequest(query="compact headphones", facets=False)).hits
    finally:
        backend.ranker = None
    assert hits and hits[0].rating >= 4.0


def test_training_rows_leave_their_own_query_out_of_the_priors(tmp_path):
    """A (query, product) row's label is made of that query's clicks on it; the CTR and
    conversion priors it trains with must not already contain them (they did: the model
    leaned on the priors and, served, lifted products clicked under other queries)."""
    docs = generate_catalog(400, seed=11)
    backend = TantivyBackend(tmp_path / "plain")
    backend.build(docs)
    by_id = {d.product_id: d for d in docs}
    ranked = {}
    for noun in [c[1] for c in CATEGORIES[:4]]:
        hits = backend.search(SearchRequest(query=noun, page_size=20, facets=False)).hits
        ranked[noun] = [by_id[h.product_id] for h in hits]
    log = generate_click_log(ranked, sessions_per_query=40, days=2)
    # The index's priors as the warehouse computes them: over every impression.
    shown = log.groupby("product_id")[["clicked", "purchased"]].mean()
    priors_docs = [
        replace(
            d,
            ctr_prior=float(shown["clicked"].get(d.product_id, 0.0)),
            conversion_prior=float(shown["purchased"].get(d.product_id, 0.0)),
        )
        for d in docs
    ]
    backend = TantivyBackend(tmp_path / "priors")
    backend.build(priors_docs)
    labels = fit_pbm(log).labels
    ranker = Ranker(model=None, depth=backend.window)
    leaky, _, _ = training_set(labels, backend, ranker, now=0.0)
    fixed, _, _ = training_set(labels, backend, ranker, now=0.0, priors=QueryHeldOutPriors.fit(log))
    ctr_at = FEATURE_NAMES.index("ctr_prior")
    rows = [
        (query, backend.table.text["product_id"][r])
        for query in sorted(labels["query"].unique())
        for r in candidates(backend, query).rows.tolist()
    ]
    assert len(rows) == len(fixed)
    expected = []
    for query, pid in rows:
        mine = log["product_id"] == pid
        if (mine & (log["query"] == query)).any():  # a labelled pair: its query's log left out
            mine &= log["query"] != query
        expected.append(log.loc[mine, "clicked"].mean() if mine.any() else 0.0)
    np.testing.assert_allclose(fixed[:, ctr_at], expected)
    assert not np.allclose(leaky[:, ctr_at], expected)  # the index's priors: labels inside
