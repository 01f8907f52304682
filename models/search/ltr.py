"""Learning to rank: train, gate, save and load the reranker for the top candidates.

Training pairs are the (query, product) pairs users were shown; labels come from the PBM click
model (``click_model``); features from ``features.search_features`` — the same function the
backend calls at serve time. A model is only accepted if it beats plain BM25 in nDCG@10 on
the held-out (most recent) days.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import ThreadpoolController

from features.search_features import FEATURE_NAMES, search_features
from models.search import forest
from models.search.api import SearchRequest
from models.search.click_model import check_impressions, fit_pbm
from models.search.doc_table import DocTable
from models.search.errors import IndexCorruptError
from models.search.metrics import ndcg_scores
from models.search.retrieval import QueryPlan, RetrievalConfig
from models.search.tantivy_backend import TantivyBackend

MODEL_FILE = "ranker.pkl"
MANIFEST_FILE = "manifest.json"
_THREADS = ThreadpoolController()  # scanning loaded libraries once, not per request


def table_features(
    terms: list[str], rows: np.ndarray, scores: np.ndarray, table: DocTable, now: float
) -> np.ndarray:
    """Gather candidate columns from the doc table and compute the shared feature matrix."""
    idx = rows.tolist()
    num = table.numeric
    return search_features(
        terms, scores,
        [table.terms["title_terms"][r] for r in idx],
        [table.terms["brand_terms"][r] for r in idx],
        [table.terms["category_terms"][r] for r in idx],
        num["popularity"][rows], num["ctr_prior"][rows], num["conversion_prior"][rows],
        num["price"][rows], num["rating"][rows], num["created_at"][rows],
        num["in_stock"][rows], now,
    )


@dataclass(slots=True)
class Ranker:
    """A fitted regressor on graded labels that reorders the top ``depth`` candidates."""

    model: HistGradientBoostingRegressor
    depth: int = 200
    metrics: dict = field(default_factory=dict)

    def rerank_scores(
        self, plan: QueryPlan, rows: np.ndarray, scores: np.ndarray, table: DocTable
    ) -> np.ndarray:
        """Model scores for candidates (the backend sorts by them)."""
        features = table_features(plan.terms, rows, scores, table, time.time())
        # One thread: for 200 rows OpenMP start-up costs far more than it saves (~1 ms/tree).
        # ``forest.predict`` gives the same numbers without a Python call per tree.
        with _THREADS.limit(limits=1, user_api="openmp"):
            return forest.predict(self.model, features)

    def save(self, directory: str | Path) -> Path:
        """Write ``ranker.pkl`` and a manifest with its checksum, features and gate metrics."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        blob = pickle.dumps(self.model)
        (directory / MODEL_FILE).write_bytes(blob)
        manifest = {
            "version": time.strftime("%Y%m%dT%H%M%S", time.gmtime()),
            "features": list(FEATURE_NAMES),
            "depth": self.depth,
            "metrics": self.metrics,
            "files": {MODEL_FILE: hashlib.sha256(blob).hexdigest()},
        }
        (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Ranker:
        """Load after checking checksum and feature list (refuse anything else)."""
        directory = Path(directory)
        manifest = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
        blob = (directory / MODEL_FILE).read_bytes()
        if hashlib.sha256(blob).hexdigest() != manifest["files"][MODEL_FILE]:
            raise IndexCorruptError(f"{directory}: ranker checksum mismatch")
        if manifest["features"] != list(FEATURE_NAMES):
            raise IndexCorruptError(f"{directory}: ranker trained on other features")
        model = pickle.loads(blob)  # noqa: S301 - our own checksummed artifact
        return cls(model=model, depth=manifest["depth"], metrics=manifest["metrics"])


def query_features(
    backend: TantivyBackend, query: str, product_ids: list[str], now: float
) -> tuple[np.ndarray, np.ndarray]:
    """Features and plain-BM25 scores for shown products of one query (0 when not retrieved)."""
    assert backend.table is not None
    rows = backend.snapshot_rows(product_ids)
    request = SearchRequest(query=query)
    plan, _, r_rows, r_scores, _, _ = backend.candidates(request, backend.window)
    _, _, b_rows, b_scores, _, _ = backend.candidates(
        request, backend.window, RetrievalConfig.plain_bm25()
    )
    full = dict(zip(r_rows.tolist(), r_scores.tolist(), strict=True))
    bm25 = dict(zip(b_rows.tolist(), b_scores.tolist(), strict=True))
    known = rows >= 0
    safe_rows = np.where(known, rows, 0)
    scores = np.asarray([full.get(r, 0.0) for r in rows.tolist()])
    x = table_features(plan.terms, safe_rows, scores, backend.table, now)
    x[~known] = 0.0
    return x, np.asarray([bm25.get(r, 0.0) for r in rows.tolist()])


def _dataset(impressions: pd.DataFrame, backend: TantivyBackend):
    labels = fit_pbm(impressions).labels
    now = float(pd.to_datetime(impressions["ts"]).max().timestamp())
    xs, ys, bm, groups = [], [], [], []
    for gid, (query, part) in enumerate(labels.groupby("query", sort=True)):
        x, b = query_features(backend, str(query), part["product_id"].tolist(), now)
        xs.append(x)
        ys.append(part["label"].to_numpy())
        bm.append(b)
        groups.append(np.full(len(part), gid))
    return xs, ys, bm, groups


def train_ranker(
    impressions: pd.DataFrame, backend: TantivyBackend, holdout_days: int = 2, k: int = 10,
    seed: int = 0,
) -> tuple[Ranker, dict]:
    """Fit on all but the last ``holdout_days``, report held-out nDCG@k vs BM25, set the gate."""
    check_impressions(impressions)
    ts = pd.to_datetime(impressions["ts"])
    cutoff = ts.max().normalize() - pd.Timedelta(days=holdout_days - 1)
    train, test = impressions[ts < cutoff], impressions[ts >= cutoff]
    if train.empty or test.empty:
        raise ValueError("need impressions both before and within the held-out days")
    xs, ys, _, _ = _dataset(train, backend)
    model = HistGradientBoostingRegressor(max_iter=100, learning_rate=0.1, max_leaf_nodes=15,
                                          min_samples_leaf=10, random_state=seed)
    model.fit(np.vstack(xs), np.concatenate(ys))
    tx, ty, tb, _ = _dataset(test, backend)
    pairs = list(zip(tx, ty, tb, strict=True))
    ranker_ndcg = float(np.mean([ndcg_scores(y, model.predict(x), k) for x, y, _ in pairs]))
    bm25_ndcg = float(np.mean([ndcg_scores(y, b, k) for _, y, b in pairs]))
    report = {
        f"ranker_ndcg@{k}": ranker_ndcg, f"bm25_ndcg@{k}": bm25_ndcg,
        "train_pairs": int(sum(len(y) for y in ys)), "test_queries": len(ty),
        "gate_passed": ranker_ndcg > bm25_ndcg,
    }
    return Ranker(model=model, depth=backend.window, metrics=report), report
