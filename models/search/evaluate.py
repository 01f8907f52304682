"""Offline relevance evaluation of retrieval configurations against graded judgments.

Used by ``storeloop search evaluate``: index a catalog into a temporary directory, run every
judged query through each configuration and report nDCG@k, MRR, precision@k and zero-result
rate. Plain BM25 is always included as the baseline; given a trained ranker directory, full
retrieval reranked by it (``storeloop+ltr``) is scored too, as the shop would serve it.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from models.search.api import SearchRequest
from models.search.documents import documents_from_rows
from models.search.errors import QueryError
from models.search.metrics import ndcg_at_k, precision_at_k, reciprocal_rank
from models.search.retrieval import RetrievalConfig
from models.search.synonyms import load_synonyms


@dataclass(slots=True)
class EvalResult:
    """Mean metrics of one configuration over all judged queries."""

    configuration: str
    backend: str
    queries: int
    k: int
    ndcg: float
    mrr: float
    precision: float
    zero_result_rate: float

    def as_dict(self) -> dict:
        """JSON-ready form (also names the k-dependent metrics explicitly)."""
        data = asdict(self)
        data[f"ndcg@{self.k}"] = data.pop("ndcg")
        data[f"precision@{self.k}"] = data.pop("precision")
        return data


#: Name of the configuration reranked by a trained ranker (``--ranker``).
RERANKED = "storeloop+ltr"


def read_table(path: str | Path) -> pd.DataFrame:
    """Read CSV or Parquet by extension."""
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype={"product_id": str})


def configurations() -> dict[str, RetrievalConfig]:
    """The configurations compared: baseline BM25 and storeloop's full retrieval."""
    full = RetrievalConfig(synonyms=load_synonyms(), prefix_last=False)
    return {"bm25": RetrievalConfig.plain_bm25(), "storeloop": full}


def _judgments(frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    missing = {"query", "product_id", "grade"} - set(frame.columns)
    if missing:
        raise ValueError(f"judgments lack columns: {', '.join(sorted(missing))}")
    out: dict[str, dict[str, float]] = {}
    for row in frame.itertuples(index=False):
        out.setdefault(str(row.query), {})[str(row.product_id)] = float(row.grade)
    return out


def evaluate(
    catalog: pd.DataFrame,
    judgments: pd.DataFrame,
    k: int = 10,
    backend: str = "tantivy",
    elasticsearch_url: str | None = None,
    ranker_dir: str | Path | None = None,
) -> list[EvalResult]:
    """Evaluate every configuration; returns one result per configuration."""
    missing = {"product_id", "title"} - set(catalog.columns)
    if missing:
        raise ValueError(f"catalog lacks columns: {', '.join(sorted(missing))}")
    if ranker_dir is not None and backend != "tantivy":
        raise ValueError("--ranker reranks on the tantivy backend only")
    docs = documents_from_rows(catalog.to_dict(orient="records"))
    graded = _judgments(judgments)
    runs = dict(configurations())
    if ranker_dir is not None:
        runs[RERANKED] = runs["storeloop"]
    results = []
    with tempfile.TemporaryDirectory(prefix="storeloop-search-eval-") as tmp:
        for name, config in runs.items():
            engine = _make_backend(backend, Path(tmp) / name, config, elasticsearch_url, name)
            if name == RERANKED:
                from models.search.ltr import Ranker

                engine.ranker = Ranker.load(ranker_dir)
            engine.build(docs)
            results.append(_score(engine, name, backend, graded, k))
    return results


def _make_backend(kind: str, path: Path, config: RetrievalConfig, url: str | None, name: str):
    if kind == "elasticsearch":
        from models.search.es_backend import ElasticsearchBackend

        if not url:
            raise ValueError("the elasticsearch backend needs ELASTICSEARCH_URL")
        return ElasticsearchBackend(url, index=f"storeloop-eval-{name}", config=config)
    from models.search.tantivy_backend import TantivyBackend

    return TantivyBackend(path, config=config)


def _score(engine, name: str, backend: str, graded: dict[str, dict[str, float]], k: int):
    ndcgs, rrs, precs, zeros = [], [], [], 0
    for query, grades in graded.items():
        request = SearchRequest(query=query, page_size=max(k, 1), facets=False, highlight=False)
        try:
            ranked = [h.product_id for h in engine.search(request).hits]
        except QueryError:
            ranked = []
        zeros += not ranked
        ndcgs.append(ndcg_at_k(ranked, grades, k))
        rrs.append(reciprocal_rank(ranked, grades))
        precs.append(precision_at_k(ranked, grades, k))
    n = max(len(graded), 1)
    return EvalResult(
        configuration=name,
        backend=backend,
        queries=len(graded),
        k=k,
        ndcg=sum(ndcgs) / n,
        mrr=sum(rrs) / n,
        precision=sum(precs) / n,
        zero_result_rate=zeros / n,
    )


def format_table(results: list[EvalResult]) -> str:
    """A fixed-width table for the terminal."""
    if not results:
        return "no results"
    k = results[0].k
    header = (
        f"{'configuration':<14}{'queries':>8}{f'nDCG@{k}':>10}{'MRR':>8}{f'P@{k}':>8}{'zero':>8}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r.configuration:<14}{r.queries:>8}{r.ndcg:>10.4f}{r.mrr:>8.4f}"
            f"{r.precision:>8.4f}{r.zero_result_rate:>8.3f}"
        )
    return "\n".join(lines)
