"""Learning to rank: train, gate, save and load the reranker for the top candidates.

Training rows are what the backend would rerank: the top ``window`` candidates of full retrieval
for every query searched on the training days. Shown pairs are labelled from their clicks
(``click_model``: the click rate shrunk towards what their positions predict, carts and
purchases weigh more; the PBM's examination curve weighs the intent evidence); candidates
the log never showed are kept as weak negatives (label 0, weight ``UNSHOWN_WEIGHT``), so the
model also learns to keep deep, rarely relevant candidates down — it reranks 200, not the 20
shoppers saw. Features come from ``features.search_features`` — the same function the backend
calls at serve time — including the query's category intent learned from the training days'
clicks (``features.query_intent``), which the artifact carries.

The gate scores the ranker on the held-out days exactly as it will be served. With graded
judgments it is ``evaluate_judged`` (nDCG@k of the held-out queries); the ranker must beat plain
BM25, BM25 ordering the same candidates and the retrieval order. Without, it is the held-out
clicks (``evaluate_held_out``, ``ltr_eval``), which favour the ranking that produced the log and
so make a conservative gate. The backend passed in must be built from data as of the cut-off
(``features.warehouse.search_document_rows(con, as_of=...)``): priors that include held-out
clicks would leak the answers into the features.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from threadpoolctl import ThreadpoolController

from features.query_intent import QueryIntent
from features.search_features import (
    FEATURE_NAMES,
    EncodedTokens,
    monotonic_constraints,
    search_features,
)
from features.search_priors import QueryHeldOutPriors
from features.term_association import TermAssociation
from models.search import forest
from models.search.api import SearchRequest
from models.search.click_model import check_impressions, fit_pbm
from models.search.doc_table import DocTable
from models.search.errors import IndexCorruptError
from models.search.ltr_eval import MIN_PROPENSITY, IpsNdcg, holdout_cutoff, search_gains
from models.search.metrics import ndcg_at_k
from models.search.retrieval import QueryPlan, RetrievalConfig
from models.search.tantivy_backend import TantivyBackend, tiered_order

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingRegressor

MODEL_FILE = "ranker.pkl"
INTENT_FILE = "intent.json"
ASSOCIATION_FILE = "associations.json"
MANIFEST_FILE = "manifest.json"
#: Weight of a candidate the log never showed (label 0): evidence that it is worse than what
#: was shown, but weak — nobody looked at it.
UNSHOWN_WEIGHT = 0.3
_THREADS = ThreadpoolController()  # scanning loaded libraries once, not per request


def _one_openmp_thread() -> Any:
    """Limit OpenMP pools (scikit-learn's tree predict) to one thread while in effect."""
    return _THREADS.limit(limits=1, user_api="openmp")


def table_features(
    terms: list[str],
    rows: np.ndarray,
    scores: np.ndarray,
    table: DocTable,
    now: float,
    intent: QueryIntent | None = None,
    association: TermAssociation | None = None,
    ranks: np.ndarray | None = None,
    priors: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Gather candidate columns from the doc table and compute the shared feature matrix.

    ``ranks``: the rows' positions in the retrieval order when ``rows`` is in another order.
    ``priors``: (CTR, conversion) of the rows instead of the table's (training rows: with the
    query's own impressions left out, ``features.search_priors``).
    """
    num = table.numeric
    ctr, conversion = (
        priors if priors is not None else (num["ctr_prior"][rows], num["conversion_prior"][rows])
    )
    owner, ids = table.gather_pieces(rows)
    titles = EncodedTokens(owner, ids, table.piece_words, table.piece_id)
    brands, categories = (_encoded(table, k, rows) for k in ("brand_terms", "category_terms"))
    scores_of_intent = None
    if intent is not None:
        paths = [table.text["category_path"][r] for r in rows.tolist()]
        scores_of_intent = intent.scores(terms, paths)
    return search_features(
        terms,
        scores,
        (),
        (),
        (),
        num["popularity"][rows],
        ctr,
        conversion,
        num["price"][rows],
        num["rating"][rows],
        num["created_at"][rows],
        num["in_stock"][rows],
        now,
        scores_of_intent,
        _association(association, terms, len(rows), (owner, ids), table),
        table.title_idf(list(dict.fromkeys(terms))),
        ranks,
        encoded_titles=titles,
        encoded_brands=brands,
        encoded_categories=categories,
    )


def _encoded(table: DocTable, column: str, rows: np.ndarray) -> EncodedTokens:
    """The ``rows``' tokens of one of the table's encoded term columns."""
    tokens = table.encoded[column]
    return EncodedTokens(*tokens.gather(rows), tokens.words, tokens.id_of)


def _association(
    association: TermAssociation | None,
    terms: list[str],
    n: int,
    pieces: tuple[np.ndarray, np.ndarray],
    table: DocTable,
) -> np.ndarray | None:
    """Term-association features of ``n`` candidates from their integer title ``pieces``
    (``DocTable.gather_pieces``)."""
    if association is None:
        return None
    owner, ids = pieces
    return association.scores_encoded(terms, owner, ids, n, table.piece_id)


@dataclass(slots=True)
class Candidates:
    """What the backend reranks for one query: rows in retrieval order, with both scores."""

    plan: QueryPlan
    rows: np.ndarray
    scores: np.ndarray  # full retrieval (boosts, synonyms, typos)
    bm25: np.ndarray  # plain BM25 of the same rows (0 where plain BM25 does not retrieve it)
    #: Leading rows matching every word; the rest are recall fill, reranked behind them.
    leading: int = -1

    def __post_init__(self) -> None:
        if self.leading < 0:
            self.leading = len(self.rows)


def candidates(backend: TantivyBackend, query: str) -> Candidates:
    """The top ``backend.window`` candidates of full retrieval for ``query``."""
    request = SearchRequest(query=query)
    plan, _, rows, scores, _, _, leading = backend.tiered_candidates(request, backend.window)
    _, _, b_rows, b_scores, _, _ = backend.candidates(
        request, backend.window, RetrievalConfig.plain_bm25()
    )
    plain = dict(zip(b_rows.tolist(), b_scores.tolist(), strict=True))
    bm25 = np.asarray([plain.get(r, 0.0) for r in rows.tolist()], dtype=np.float64)
    return Candidates(plan, rows, scores, bm25, leading)


@dataclass(slots=True)
class Ranker:
    """A fitted tree ensemble that reorders the top ``depth`` candidates."""

    #: ``ranker_model`` (clicks) or ``lambdarank_model`` (judgments): tree ensembles over
    #: ``FEATURE_NAMES`` whose ``predict`` ``forest`` compiles.
    model: Any
    depth: int = 200
    metrics: dict = field(default_factory=dict)
    intent: QueryIntent | None = None
    #: Query-term / title-term lifts learned from judgments (``judged_ltr``); None from clicks.
    association: TermAssociation | None = None

    def predict(
        self,
        plan: QueryPlan,
        rows: np.ndarray,
        scores: np.ndarray,
        table: DocTable,
        now: float,
        ranks: np.ndarray | None = None,
    ) -> np.ndarray:
        """Model scores for candidates at time ``now`` (epoch seconds).

        ``ranks``: the rows' positions in retrieval order, when ``rows`` is not in that order.
        """
        features = table_features(
            plan.terms, rows, scores, table, now, self.intent, self.association, ranks
        )
        # ``forest.predict`` gives the same numbers without a Python call per tree. A model it
        # cannot compile predicts on one thread: for 200 rows OpenMP start-up costs far more
        # than it saves (~1 ms/tree).
        return forest.predict(self.model, features, _one_openmp_thread)

    def rerank_scores(
        self, plan: QueryPlan, rows: np.ndarray, scores: np.ndarray, table: DocTable
    ) -> np.ndarray:
        """Model scores for candidates (the backend sorts by them)."""
        return self.predict(plan, rows, scores, table, time.time())

    def save(self, directory: str | Path) -> Path:
        """Write the model, the query-intent tables and a manifest with checksums and metrics."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        blobs = {MODEL_FILE: pickle.dumps(self.model)}
        if self.intent is not None:
            blobs[INTENT_FILE] = self.intent.to_json().encode("utf-8")
        if self.association is not None:
            blobs[ASSOCIATION_FILE] = self.association.to_json().encode("utf-8")
        for name, blob in blobs.items():
            (directory / name).write_bytes(blob)
        manifest = {
            "version": time.strftime("%Y%m%dT%H%M%S", time.gmtime()),
            "features": list(FEATURE_NAMES),
            "depth": self.depth,
            "metrics": self.metrics,
            "files": {name: hashlib.sha256(blob).hexdigest() for name, blob in blobs.items()},
        }
        (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Ranker:
        """Load after checking checksums and feature list (refuse anything else)."""
        directory = Path(directory)
        manifest = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
        if manifest["features"] != list(FEATURE_NAMES):
            raise IndexCorruptError(f"{directory}: ranker trained on other features")
        blobs = {}
        for name, digest in manifest["files"].items():
            blob = (directory / name).read_bytes()
            if hashlib.sha256(blob).hexdigest() != digest:
                raise IndexCorruptError(f"{directory}: ranker checksum mismatch ({name})")
            blobs[name] = blob
        model = pickle.loads(blobs[MODEL_FILE])  # noqa: S301 - our own checksummed artifact
        intent = None
        if INTENT_FILE in blobs:
            intent = QueryIntent.from_json(blobs[INTENT_FILE].decode("utf-8"))
        association = None
        if ASSOCIATION_FILE in blobs:
            association = TermAssociation.from_json(blobs[ASSOCIATION_FILE].decode("utf-8"))
        forest.prepare(model)
        return cls(
            model=model,
            depth=manifest["depth"],
            metrics=manifest["metrics"],
            intent=intent,
            association=association,
        )


def ranker_model(seed: int = 0) -> HistGradientBoostingRegressor:
    """The ranker family every trainer fits (clicks here, judgments in ``judged_ltr``): one
    definition, so a ranker from either source loads, serves and gates the same way.

    scikit-learn is imported here, not at module level: every shop process imports this module
    to serve search, but only training builds a model (a server start paid ~0.5-2 s for it)."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(
        max_iter=100,
        learning_rate=0.1,
        max_leaf_nodes=15,
        min_samples_leaf=20,
        monotonic_cst=monotonic_constraints(),
        random_state=seed,
    )


def lambdarank_model(label_gain: list[float], seed: int = 0) -> Any:
    """LambdaMART over the same features and monotonic constraints, for graded judgments.

    ``ranker_model`` regresses every candidate's grade, and on judged catalogs most of its
    effort went into the ~190 unjudged candidates of each query, which no metric looks at: on
    the hardware-store dev set it matched the retrieval order on held-out queries. LambdaMART
    optimises nDCG within each query, where the top ten are decided (docs/search.md has the
    figures). ``label_gain[i]`` is the gain of integer label ``i`` (nDCG's 2^grade − 1 of the
    grade it stands for). One thread: predictions go through ``forest`` anyway, and training
    shares the machine with serving.
    """
    from lightgbm import LGBMRanker

    return LGBMRanker(
        objective="lambdarank",
        n_estimators=150,
        learning_rate=0.1,
        num_leaves=15,
        min_child_samples=20,
        monotone_constraints=monotonic_constraints(),
        lambdarank_truncation_level=20,
        label_gain=list(label_gain),
        n_jobs=1,
        random_state=seed,
        verbose=-1,
    )


def _terms(backend: TantivyBackend, queries: pd.Series) -> dict[str, list[str]]:
    """Analysed terms per distinct query text (the serving-time analysis)."""
    return {q: backend.plan(q).terms for q in queries.astype(str).unique()}


def fit_intent(
    impressions: pd.DataFrame, examination: np.ndarray, backend: TantivyBackend
) -> QueryIntent:
    """Query → category evidence: clicks, carts and purchases over the position's propensity."""
    table = backend.table
    assert table is not None
    rows = backend.snapshot_rows(impressions["product_id"].astype(str).tolist())
    known = rows >= 0
    part = impressions[known]
    terms = _terms(backend, part["query"])
    pos = np.clip(part["position"].to_numpy(dtype=np.int64), 1, len(examination)) - 1
    value = (
        part["clicked"].to_numpy(dtype=np.float64)
        + part["added_to_cart"].to_numpy(dtype=np.float64)
        + 2.0 * part["purchased"].to_numpy(dtype=np.float64)
    )
    evidence = value / np.maximum(examination[pos], MIN_PROPENSITY)
    return QueryIntent.fit(
        [terms[q] for q in part["query"].astype(str)],
        [table.text["category_path"][r] for r in rows[known].tolist()],
        evidence,
        universe=table.text["category_path"],
    )


def training_set(
    labels: pd.DataFrame,
    backend: TantivyBackend,
    ranker: Ranker,
    now: float,
    priors: QueryHeldOutPriors | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, labels and weights over every training query's served candidates.

    ``priors``: the training impressions' counts; each query's rows then get CTR and
    conversion priors without that query's own impressions, which are its labels
    (``features.search_priors``). Without, the index's priors are used as they are.
    """
    table = backend.table
    assert table is not None
    ids = table.text["product_id"]
    num = table.numeric
    xs, ys, ws = [], [], []
    for query, part in labels.groupby("query", sort=True):
        cand = candidates(backend, str(query))
        if not len(cand.rows):
            continue
        label_of = dict(zip(part["product_id"], part["label"], strict=True))
        pids = [ids[r] for r in cand.rows.tolist()]
        own = None
        if priors is not None:
            own = priors.for_query(
                str(query), pids, num["ctr_prior"][cand.rows], num["conversion_prior"][cand.rows]
            )
        xs.append(
            table_features(
                cand.plan.terms, cand.rows, cand.scores, table, now, ranker.intent, priors=own
            )
        )
        ys.append(np.asarray([label_of.get(p, 0.0) for p in pids]))
        ws.append(np.asarray([1.0 if p in label_of else UNSHOWN_WEIGHT for p in pids]))
    if not xs:
        raise ValueError("no training query retrieves any candidate")
    return np.vstack(xs), np.concatenate(ys), np.concatenate(ws)


def _gather(values: np.ndarray, pick: np.ndarray) -> np.ndarray:
    """``values[pick]``, 0 where ``pick`` is −1 (not among the candidates)."""
    out = np.zeros(len(pick))
    hit = pick >= 0
    out[hit] = values[pick[hit]]
    return out


def evaluate_held_out(
    ranker: Ranker, test: pd.DataFrame, examination: np.ndarray, backend: TantivyBackend, k: int
) -> tuple[dict[str, float], int, int]:
    """IPS-nDCG@k of ranker, plain BM25 and retrieval order on held-out searches (``ltr_eval``).

    Each ranking reorders what the search showed, with the scores it would have at serve time
    (a shown product outside the served candidates scores 0, as it would never be reranked).
    """
    table = backend.table
    assert table is not None
    ids = table.text["product_id"]
    import pandas as pd  # training and evaluation only: serving never loads pandas

    now = float(pd.to_datetime(test["ts"], utc=True).max().timestamp())
    metric = IpsNdcg(("ranker", "bm25", "retrieval"), k)
    cache: dict[str, tuple[Candidates, dict[int, int]]] = {}
    queries = set()
    for (_, query), search in test.groupby(["search_id", "query"], sort=True):
        query = str(query)
        queries.add(query)
        if query not in cache:
            cand = candidates(backend, query)
            cache[query] = (cand, {r: i for i, r in enumerate(cand.rows.tolist())})
        cand, at = cache[query]
        search = search.sort_values("position", kind="stable")
        rows = backend.snapshot_rows(search["product_id"].astype(str).tolist())
        rows = rows[rows >= 0]
        if not len(rows):
            continue
        pick = np.asarray([at.get(r, -1) for r in rows.tolist()], dtype=np.int64)
        scores, bm25 = _gather(cand.scores, pick), _gather(cand.bm25, pick)
        # Shown products come in logged order: their retrieval rank is where the served
        # candidates have them (a product outside them ranks after all of them).
        ranks = np.where(pick >= 0, pick, len(cand.rows))
        predicted = ranker.predict(cand.plan, rows, scores, table, now, ranks)
        # As served: the ranker never lifts a recall-fill row over a full match.
        fill = (pick < 0) | (pick >= cand.leading)
        rankings = {
            name: [ids[r] for r in rows[np.argsort(-values, kind="stable")].tolist()]
            for name, values in (("bm25", bm25), ("retrieval", scores))
        }
        rankings["ranker"] = [ids[r] for r in rows[np.lexsort((-predicted, fill))].tolist()]
        metric.add(search_gains(search, examination), rankings)
    return metric.scores(), metric.searches, len(queries)


def evaluate_judged(
    ranker: Ranker,
    backend: TantivyBackend,
    queries: Iterable[str],
    judgments: Mapping[str, Mapping[str, float]],
    k: int,
    now: float,
) -> tuple[dict[str, float], int]:
    """Mean nDCG@k against graded judgments over ``queries``, every ranking as served.

    ``ranker``: the top ``window`` candidates of full retrieval, reranked; ``bm25``: plain BM25
    retrieval on its own (``storeloop search evaluate``'s baseline); ``bm25_same``: plain BM25
    ordering the ranker's candidates; ``retrieval``: the candidates in retrieval order (what is
    served without a ranker). Queries without a positively graded product are skipped.
    """
    table = backend.table
    assert table is not None
    ids = table.text["product_id"]
    scores: dict[str, list[float]] = {"ranker": [], "bm25": [], "bm25_same": [], "retrieval": []}
    for query in sorted({str(q) for q in queries}):
        graded = judgments.get(query, {})
        if not any(g > 0 for g in graded.values()):
            continue
        cand = candidates(backend, query)
        plain = backend.candidates(SearchRequest(query=query), k, RetrievalConfig.plain_bm25())[2]
        order = {"bm25": plain, "retrieval": cand.rows, "ranker": cand.rows, "bm25_same": cand.rows}
        if len(cand.rows):
            predicted = ranker.predict(cand.plan, cand.rows, cand.scores, table, now)
            order["ranker"] = cand.rows[tiered_order(predicted, cand.leading)]
            order["bm25_same"] = cand.rows[np.argsort(-cand.bm25, kind="stable")]
        for name, rows in order.items():
            scores[name].append(ndcg_at_k([ids[r] for r in rows[:k].tolist()], graded, k))
    n = len(scores["ranker"])
    return {name: float(np.mean(v)) if n else 0.0 for name, v in scores.items()}, n


def train_ranker(
    impressions: pd.DataFrame,
    backend: TantivyBackend,
    holdout_days: int = 2,
    k: int = 10,
    seed: int = 0,
    judgments: Mapping[str, Mapping[str, float]] | None = None,
    label_prior: Literal["position", "attractiveness"] = "position",
) -> tuple[Ranker, dict]:
    """Fit on all but the last ``holdout_days``, score it on them against BM25, set the gate.

    ``label_prior``: what the shown pairs' labels grade (``click_model.fit_pbm``); the
    attractiveness label is kept to measure against (``bench/bench_search_ranker_gate.py``).

    With graded ``judgments`` (query → product id → grade, e.g. a rater panel's, or the
    simulator's hidden grades) the gate is ``evaluate_judged`` over the queries searched on the
    held-out days: the ranker must beat plain BM25, BM25 on its own candidates and the retrieval
    order. Without, it is the held-out clicks (``evaluate_held_out``), which favour whatever
    ranking produced the log — a conservative gate. Both are reported when judgments exist.
    """
    check_impressions(impressions)
    import pandas as pd  # training and evaluation only: serving never loads pandas

    ts = pd.to_datetime(impressions["ts"], utc=True)
    cutoff = holdout_cutoff(ts, holdout_days)
    train, test = impressions[ts < cutoff], impressions[ts >= cutoff]
    if train.empty or test.empty:
        raise ValueError("need impressions both before and within the held-out days")
    clicks = fit_pbm(train, label_prior=label_prior)
    ranker = Ranker(
        model=ranker_model(seed),
        depth=backend.window,
        intent=fit_intent(train, clicks.examination, backend),
    )
    trained_at = float(ts[ts < cutoff].max().timestamp())
    held_out = QueryHeldOutPriors.fit(train)
    x, y, w = training_set(clicks.labels, backend, ranker, trained_at, held_out)
    ranker.model.fit(x, y, sample_weight=w)
    ips, searches, queries = evaluate_held_out(ranker, test, clicks.examination, backend, k)
    report: dict = {
        f"clicks_ranker_ndcg@{k}": ips["ranker"],
        f"clicks_bm25_ndcg@{k}": ips["bm25"],
        f"clicks_retrieval_ndcg@{k}": ips["retrieval"],
        "train_pairs": int(len(y)),
        "train_shown_pairs": int((w == 1.0).sum()),
        "test_searches": searches,
        "test_queries": queries,
        "holdout_from": cutoff.isoformat(),
        "click_continuation": clicks.continuation,
        "label_prior": label_prior,
    }
    if judgments is None:
        gate = {"ranker": ips["ranker"], "bm25": ips["bm25"], "retrieval": ips["retrieval"]}
        report["gate_evaluation"] = "held-out clicks: IPS-nDCG of each search's shown products"
    else:
        now = float(ts.max().timestamp())
        gate, judged = evaluate_judged(ranker, backend, test["query"], judgments, k, now)
        report["gate_evaluation"] = "judgments: nDCG of held-out queries, as served"
        report["judged_queries"] = judged
        report[f"bm25_same_ndcg@{k}"] = gate["bm25_same"]
    report[f"ranker_ndcg@{k}"] = gate["ranker"]
    report[f"bm25_ndcg@{k}"] = gate["bm25"]
    report[f"retrieval_ndcg@{k}"] = gate["retrieval"]
    rivals = {name: v for name, v in gate.items() if name != "ranker"}
    best = max(rivals, key=lambda name: rivals[name])
    #: What the ranker had to beat: the best of its rivals (often the retrieval order, not BM25).
    report["gate_rival"] = f"{best} {rivals[best]:.4f}"
    report["gate_passed"] = bool(gate["ranker"] > rivals[best])
    ranker.metrics = report
    return ranker, report
