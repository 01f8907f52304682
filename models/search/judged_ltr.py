"""Learning to rank from graded judgments (a rater panel's ``query, product_id, grade``).

The same ranker family the pipeline trains from clicks (``ltr.Ranker``: the shared features,
monotonic gradient-boosted trees, the artifact format), trained instead on human grades: a
shop that has judgments, or a data set of them, needs no click log. Rows are what serving
reranks — every training query's top ``window`` candidates of full retrieval — labelled with
their grade, unjudged candidates 0 (as nDCG counts them). Graded labels grouped by query are
what LambdaMART is for, so the trees are fitted with it (``ltr.lambdarank_model``); the
click trainer's regression on the same rows did not beat the retrieval order here.

Queries, not rows, are split into training and validation (a query's candidates share its
words, so a row split would leak). The gate is ``ltr.evaluate_judged`` on the validation
queries: the ranker must beat plain BM25, BM25 ordering the same candidates and the retrieval
order, as served. The query intent table is fitted on the training queries' judged products.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.query_intent import QueryIntent
from features.term_association import TermAssociation
from models.search.ltr import (
    Candidates,
    Ranker,
    candidates,
    evaluate_judged,
    lambdarank_model,
    table_features,
)
from models.search.tantivy_backend import TantivyBackend

#: Share of the judged queries held out for the gate.
VALIDATION_SHARE = 0.2
#: Folds for the out-of-fold term lifts of the training rows.
ASSOCIATION_FOLDS = 5


def judgment_table(frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    """query -> product id -> grade, after checking the columns."""
    missing = {"query", "product_id", "grade"} - set(frame.columns)
    if missing:
        raise ValueError(f"judgments lack columns: {', '.join(sorted(missing))}")
    grades = pd.to_numeric(frame["grade"], errors="coerce")
    if grades.isna().any():
        raise ValueError("judgments: grade must be a number on every row")
    out: dict[str, dict[str, float]] = {}
    for query, pid, grade in zip(frame["query"], frame["product_id"], grades, strict=True):
        out.setdefault(str(query), {})[str(pid)] = float(grade)
    return out


def split_queries(
    queries: list[str], share: float = VALIDATION_SHARE, seed: int = 0
) -> tuple[list[str], list[str]]:
    """(training, validation) queries: a seeded shuffle, at least one query in each."""
    if len(queries) < 2:
        raise ValueError("need at least two judged queries (one to train, one to validate)")
    if not 0 < share < 1:
        raise ValueError("validation share must be between 0 and 1")
    order = sorted(queries)
    np.random.default_rng(seed).shuffle(order)
    n_val = min(max(1, round(len(order) * share)), len(order) - 1)
    return sorted(order[n_val:]), sorted(order[:n_val])


def fit_judged_intent(
    backend: TantivyBackend, judged: Mapping[str, Mapping[str, float]]
) -> QueryIntent:
    """Query -> category evidence from graded products (grade above the lowest counts)."""
    table = backend.table
    assert table is not None
    terms, paths, evidence = [], [], []
    low = min((g for grades in judged.values() for g in grades.values()), default=0.0)
    for query, grades in judged.items():
        query_terms = backend.plan(query).terms
        for pid, grade in grades.items():
            row = table.row_of.get(pid)
            if row is not None:
                terms.append(query_terms)
                paths.append(table.text["category_path"][row])
                evidence.append(grade - low)
    return QueryIntent.fit(terms, paths, evidence, universe=table.text["category_path"])


@dataclass(slots=True)
class _Judged:
    """One training query's served candidates and their grades (0 = unjudged)."""

    cand: Candidates
    titles: list[tuple[str, ...]]
    grades: np.ndarray


def _judged_candidates(
    backend: TantivyBackend, judged: Mapping[str, Mapping[str, float]]
) -> list[_Judged]:
    table = backend.table
    assert table is not None
    ids, titles = table.text["product_id"], table.title_pieces
    out = []
    for query in sorted(judged):
        cand = candidates(backend, query)
        if len(cand.rows):
            rows = cand.rows.tolist()
            grades = np.asarray([judged[query].get(ids[r], 0.0) for r in rows])
            out.append(_Judged(cand, [titles[r] for r in rows], grades))
    if not out:
        raise ValueError("no training query retrieves any candidate")
    return out


def fit_association(items: list[_Judged]) -> TermAssociation:
    """Title-term lifts from the judged candidates of ``items``."""
    return TermAssociation.fit(
        [j.cand.plan.terms for j in items], [j.titles for j in items], [j.grades > 0 for j in items]
    )


def _training_rows(
    backend: TantivyBackend, items: list[_Judged], intent: QueryIntent, now: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Features and grades; each query's lifts come from the other folds' queries.

    Lifts fitted on a query's own grades would describe its answers, and the model would
    learn to trust them more than they deserve on unseen queries.
    """
    table = backend.table
    assert table is not None
    fold = np.random.default_rng(seed).integers(0, ASSOCIATION_FOLDS, size=len(items))
    xs: list[np.ndarray] = [np.empty(0)] * len(items)
    for f in range(ASSOCIATION_FOLDS):
        association = fit_association([j for j, g in zip(items, fold, strict=True) if g != f])
        for i in np.flatnonzero(fold == f).tolist():
            c = items[i].cand
            xs[i] = table_features(c.plan.terms, c.rows, c.scores, table, now, intent, association)
    return np.vstack(xs), np.concatenate([j.grades for j in items])


def fit_lambdarank(x: np.ndarray, grades: np.ndarray, sizes: list[int], seed: int = 0) -> object:
    """LambdaMART on the candidates of each query (``sizes``: rows per query, in order).

    LightGBM wants integer labels: each distinct grade becomes its rank among them, with the
    gain nDCG gives that grade (2^grade − 1; grades at or below 0 gain nothing).
    """
    levels = np.unique(np.maximum(grades, 0.0))
    if levels[0] != 0.0:
        levels = np.concatenate([[0.0], levels])
    labels = np.searchsorted(levels, np.maximum(grades, 0.0))
    model = lambdarank_model([float(2.0**g - 1.0) for g in levels], seed)
    model.fit(x, labels, group=sizes)
    return model


def train_from_judgments(
    backend: TantivyBackend,
    judgments: pd.DataFrame,
    k: int = 10,
    seed: int = 0,
    validation_share: float = VALIDATION_SHARE,
) -> tuple[Ranker, dict]:
    """Fit on the training queries, gate on the validation queries; returns (ranker, report)."""
    judged = judgment_table(judgments)
    train_q, val_q = split_queries(list(judged), validation_share, seed)
    train = {q: judged[q] for q in train_q}
    now = time.time()
    intent = fit_judged_intent(backend, train)
    items = _judged_candidates(backend, train)
    x, y = _training_rows(backend, items, intent, now, seed)
    model = fit_lambdarank(x, y, [len(j.grades) for j in items], seed)
    ranker = Ranker(model=model, depth=backend.window, intent=intent)
    ranker.association = fit_association(items)
    gate, judged_val = evaluate_judged(ranker, backend, val_q, judged, k, now)
    report: dict = {
        "gate_evaluation": "judgments: nDCG of validation queries (split by query), as served",
        "train_queries": len(train_q),
        "validation_queries": len(val_q),
        "judged_queries": judged_val,
        "train_pairs": int(len(y)),
        "train_judged_pairs": int((y > 0).sum()),
        "seed": seed,
        f"ranker_ndcg@{k}": gate["ranker"],
        f"bm25_ndcg@{k}": gate["bm25"],
        f"bm25_same_ndcg@{k}": gate["bm25_same"],
        f"retrieval_ndcg@{k}": gate["retrieval"],
    }
    rivals = [v for name, v in gate.items() if name != "ranker"]
    report["gate_passed"] = bool(gate["ranker"] > max(rivals))
    ranker.metrics = report
    return ranker, report


def train_from_files(
    catalog: pd.DataFrame,
    judgments: pd.DataFrame,
    k: int = 10,
    seed: int = 0,
    validation_share: float = VALIDATION_SHARE,
) -> tuple[Ranker, dict]:
    """Index ``catalog`` into a temporary directory and train from ``judgments`` on it.

    Retrieval is ``evaluate``'s ``storeloop`` configuration (complete queries, no prefix on
    the last word), so the ranker learns to rerank what ``search evaluate --ranker`` and the
    shop serve for a finished query.
    """
    import tempfile
    from pathlib import Path

    from models.search.documents import documents_from_rows
    from models.search.evaluate import configurations

    missing = {"product_id", "title"} - set(catalog.columns)
    if missing:
        raise ValueError(f"catalog lacks columns: {', '.join(sorted(missing))}")
    if k < 1:
        raise ValueError("k must be at least 1")
    docs = documents_from_rows(catalog.to_dict(orient="records"))
    if not docs:
        raise ValueError("catalog has no product with an id and a title")
    with tempfile.TemporaryDirectory(prefix="storeloop-train-ranker-") as tmp:
        backend = TantivyBackend(Path(tmp) / "index", config=configurations()["storeloop"])
        backend.build(docs)
        return train_from_judgments(backend, judgments, k, seed, validation_share)
