"""LTR on a synthetic click log with position bias and known relevance."""

from __future__ import annotations

import numpy as np
import pytest

from models.search.api import SearchRequest
from models.search.click_model import fit_pbm
from models.search.ltr import Ranker, train_ranker
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
    loaded = Ranker.load(ranker.save(tmp_path / "ranker"))
    backend.ranker = loaded
    try:
        hits = backend.search(SearchRequest(query="compact headphones", facets=False)).hits
    finally:
        backend.ranker = None
    assert hits and hits[0].rating >= 4.0
