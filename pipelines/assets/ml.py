"""Features, recommenders and the search index, wired to the models/ public APIs.

Thin on purpose: the interaction weighting lives in ``features.interactions``, the models in
``models.factory``, evaluation in ``models.evaluation.runner``, gated promotion in
``models.registry`` and the index build in ``models.search.service``. These assets only move
data between the warehouse, the lake and the registry and describe what happened.
"""

import dataclasses
import json
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
from dagster import AssetExecutionContext

from features import atomic
from features.interactions import Interactions, build_interactions
from features.layout import SEARCH_INDEX_SUBDIR, SEARCH_RANKER_SUBDIR
from features.warehouse import interactions_range, read_interactions, search_document_rows
from models.exceptions import PromotionRefused
from models.factory import build_model, load_model
from models.registry import ModelRegistry
from models.selection import select_candidate
from pipelines.resources import (
    LakeDir,
    RecsGate,
    RegistryDir,
    SearchJudgments,
    Trainer,
    Warehouse,
)

#: Models trained nightly; each becomes an asset ``<name>_model``.
TRAINED = {"als": "als", "popularity": "popular"}
#: Models evaluated (and tuned on a validation split carved from training) for the gate;
#: the one with the best validation score is offered to the registry, blends included.
CANDIDATES = ("als", "ease", "rp3beta", "blend", "popular")
#: Registry name that serving loads (``Settings.recs_model_name``); the chosen model of any
#: kind is published under it, and its manifest records which model it is.
SERVING_NAME = "als"
#: Evaluation needs this many interactions to say anything; below it the gate is not run.
MIN_INTERACTIONS_TO_EVALUATE = 200
EVAL_K = 10
#: The search ranker trains on all but the last days and must beat BM25 on those to be served.
RANKER_HOLDOUT_DAYS = 3
#: Searches needed before / within the held-out days; below either the ranker is not trained.
MIN_SEARCHES_TO_TRAIN = 200
MIN_SEARCHES_TO_GATE = 50
#: Where serving looks for rankers (the layout's default ``search_ranker`` sub-folder).
RANKER_SUBDIR = SEARCH_RANKER_SUBDIR


def _features_dir(lake: LakeDir) -> Path:
    return lake.directory / "features" / "interactions"


def _model_dir(lake: LakeDir, name: str) -> Path:
    return lake.directory / "models" / name


@dg.asset(group_name="features", deps=["interactions"], kinds={"scipy"})
def interaction_matrix(warehouse: Warehouse, lake: LakeDir) -> dg.MaterializeResult:
    """The decayed, type-weighted user × product matrix every recommender trains on."""
    with warehouse.connect(read_only=True) as con:
        frame = read_interactions(con)
    matrix = build_interactions(frame)
    # Matrix and id maps swap in together: a run killed half-way never pairs new rows with old ids.
    atomic.replace_dir(_features_dir(lake), matrix.save)
    users, items = matrix.shape
    return dg.MaterializeResult(
        metadata={"users": users, "items": items, "non_zeros": int(matrix.matrix.nnz)}
    )


def _model_asset(asset_name: str, model_name: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"{asset_name}_model",
        group_name="models",
        deps=[interaction_matrix],
        kinds={"python"},
        description=f"`{model_name}` recommender fitted on the interaction matrix (candidate).",
    )
    def _asset(lake: LakeDir, trainer: Trainer) -> dg.MaterializeResult:
        interactions = Interactions.load(_features_dir(lake))
        model = trainer.fit(model_name, interactions)
        atomic.replace_dir(_model_dir(lake, model_name), model.save)
        metadata = {"params": json.dumps(model.get_params())}
        spark = getattr(model, "spark_info", None)
        if spark:
            metadata["trainer"] = f"spark {spark['master']}"
            metadata["spark_fit_seconds"] = round(spark["fit_seconds"], 2)
        return dg.MaterializeResult(metadata=metadata)

    return _asset


model_assets = [_model_asset(a, m) for a, m in TRAINED.items()]


@dg.asset(group_name="models", deps=["interactions", *(a.key for a in model_assets)])
def recs_evaluation(
    context: AssetExecutionContext, warehouse: Warehouse, lake: LakeDir
) -> dg.MaterializeResult:
    """Offline metrics of every trained model on a time split of the warehouse interactions."""
    from models.evaluation.runner import evaluate_models

    with warehouse.connect(read_only=True) as con:
        frame = read_interactions(con)
    out = lake.directory / "models" / "evaluation.json"
    if len(frame) < MIN_INTERACTIONS_TO_EVALUATE:
        atomic.write_text(out, json.dumps({"skipped": f"{len(frame)} interactions"}))
        context.log.info("too few interactions to evaluate; promotion will be skipped")
        return dg.MaterializeResult(metadata={"skipped": True, "interactions": len(frame)})
    ratings = frame.rename(columns={"user_id": "user", "product_id": "item", "ts": "timestamp"})
    epoch = pd.Timestamp(0, tz="UTC")
    stamps = pd.to_datetime(ratings["timestamp"], utc=True)
    ratings["timestamp"] = (stamps - epoch).dt.total_seconds()
    try:
        results = evaluate_models(
            ratings, CANDIDATES, protocol="time", k=EVAL_K, max_trials=3, budget_seconds=20.0
        )
    except ValueError as exc:  # e.g. a validation split with no inner-training rows
        atomic.write_text(out, json.dumps({"skipped": str(exc)}))
        return dg.MaterializeResult(metadata={"skipped": True, "reason": str(exc)})
    report = {r.model: r.metrics for r in results}
    selection = select_candidate(results)
    document = {
        "k": EVAL_K,
        "metrics": report,
        "validation": {r.model: r.tuning for r in results},
        "params": {r.model: r.params for r in results},
        "selected": None if selection is None else dataclasses.asdict(selection),
    }
    atomic.write_text(out, json.dumps(document, indent=2, sort_keys=True, default=str))
    if selection is not None:
        context.log.info(f"offered to the gate: {selection.reason}")
    lines = ["| model | " + " | ".join(sorted(next(iter(report.values())))) + " |"]
    lines.append("|---|" + "---|" * len(next(iter(report.values()))))
    lines += [
        f"| {m} | " + " | ".join(f"{v:.4f}" for _, v in sorted(ms.items())) + " |"
        for m, ms in report.items()
    ]
    return dg.MaterializeResult(metadata={"metrics": dg.MetadataValue.md("\n".join(lines))})


@dg.asset(group_name="models", deps=[recs_evaluation])
def recs_promotion(
    context: AssetExecutionContext,
    lake: LakeDir,
    registry: RegistryDir,
    warehouse: Warehouse,
    trainer: Trainer,
    recs_gate: RecsGate,
) -> dg.MaterializeResult:
    """Publish the model chosen on validation (a blend, too) and promote it only if it beats
    popularity on the held-out days (and is not worse than the serving one by more than
    ``recs_gate`` allows)."""
    evaluation = json.loads((lake.directory / "models" / "evaluation.json").read_text())
    if "metrics" not in evaluation:
        return dg.MaterializeResult(metadata={"promoted": False, "reason": evaluation["skipped"]})
    metrics = evaluation["metrics"]
    selected = evaluation.get("selected") or {"model": "als", "params": {}, "reason": "default"}
    chosen = selected["model"]
    reg = ModelRegistry(registry.directory, kind="recs")
    if chosen == "als" and trainer.kind == "spark":
        # The candidate is the Spark fit of ``als_model``: an in-process refit would undo the
        # operator's choice of trainer.
        model = load_model(_model_dir(lake, "als"))
    else:
        # Refit with the params tuned on validation, on the whole (decayed) interaction matrix.
        interactions = Interactions.load(_features_dir(lake))
        model = build_model(chosen, **selected["params"]).fit(interactions)
    with warehouse.connect(read_only=True) as con:
        data_range = interactions_range(con)
    manifest = reg.publish_model(
        model,
        name=SERVING_NAME,
        metrics=metrics[chosen],
        baselines={"popular": metrics["popular"]},
        evaluation={"protocol": "time", "k": evaluation["k"]},
        data_range=data_range,
        extra={"model": chosen, "selection": selected["reason"]},
    )
    try:
        decision = reg.promote(SERVING_NAME, manifest["version"], gate=recs_gate.gate())
    except PromotionRefused as refused:
        context.log.warning(f"{chosen} {manifest['version']} not promoted: {refused}")
        metadata = {
            "version": manifest["version"],
            "model": chosen,
            "promoted": False,
            "reason": str(refused),
        }
        fallback = _popularity_fallback(reg, lake, metrics, chosen, data_range)
        if fallback is not None:
            context.log.warning(f"serving popularity {fallback} instead: {chosen} lost to it")
            metadata["fallback"] = f"popular {fallback}"
        return dg.MaterializeResult(metadata=metadata)
    return dg.MaterializeResult(
        metadata={
            "version": manifest["version"],
            "model": chosen,
            "promoted": True,
            "decision": str(decision),
            "selection": selected["reason"],
        }
    )


def _popularity_fallback(
    reg: ModelRegistry,
    lake: LakeDir,
    metrics: dict[str, dict[str, float]],
    chosen: str,
    data_range: Any,
) -> str | None:
    """Serve a fresh popularity model when the chosen one lost to popularity on the held-out
    days while an older learned model still serves.

    The older model was trained on less data than the candidate that just lost, so the newest
    evidence says popularity serves shoppers better; keeping the stale model would leave the
    worse of the two in place. With nothing serving, serving already falls back to popularity,
    so nothing is published. Returns the version now serving, or ``None``.
    """
    current = reg.serving_version(SERVING_NAME)
    if current is None or chosen == "popular":
        return None
    if reg.manifest(SERVING_NAME, current).get("model") == "popular":
        return None  # popularity already serves; a retrain of it is not worth a swap
    ndcg = f"ndcg@{EVAL_K}"
    lost_by = metrics["popular"].get(ndcg, 0.0) - metrics[chosen].get(ndcg, 0.0)
    if lost_by < 0:
        return None  # refused for another reason (a drop against the serving model)
    model = build_model("popular").fit(Interactions.load(_features_dir(lake)))
    manifest = reg.publish_model(
        model,
        name=SERVING_NAME,
        metrics=metrics["popular"],
        baselines={"popular": metrics["popular"]},
        evaluation={"protocol": "time", "k": EVAL_K},
        data_range=data_range,
        extra={"model": "popular", "selection": f"fallback: {chosen} lost to popularity"},
    )
    # Popularity cannot beat itself strictly, so the gate is skipped on purpose (the history
    # records the promotion as forced; the manifest says why).
    reg.promote(SERVING_NAME, manifest["version"], force=True)
    return manifest["version"]


@dg.asset(group_name="search", deps=["dim_product", "search_impressions"], kinds={"tantivy"})
def search_index(warehouse: Warehouse, registry: RegistryDir) -> dg.MaterializeResult:
    """A new tantivy index version of the active catalog with behavioural priors, published."""
    from models.search.documents import documents_from_rows
    from models.search.index_store import IndexStore
    from models.search.service import SearchService

    with warehouse.connect(read_only=True) as con:
        rows = search_document_rows(con)
    # Only builds: opening the served version here would just race the shop editing it.
    service = SearchService(
        IndexStore(registry.directory / SEARCH_INDEX_SUBDIR), open_current=False
    )
    version = service.build(documents_from_rows(rows))
    return dg.MaterializeResult(metadata={"version": version, "documents": len(rows)})


@dg.asset(
    group_name="search",
    deps=["search_impressions", "dim_product", "fact_order_item"],
    kinds={"scikit-learn"},
)
def search_ranker(
    context: AssetExecutionContext,
    warehouse: Warehouse,
    registry: RegistryDir,
    judgments: SearchJudgments,
) -> dg.MaterializeResult:
    """The learning-to-rank reranker from search clicks, published only if it beats BM25 and
    the retrieval order (what serving does without it).

    It is trained and gated on an index of the catalog *as of* the first held-out day (priors
    from earlier behaviour only), so the held-out clicks it is judged on cannot leak into its
    features; serving then feeds it the live index's up-to-date priors. The gate uses graded
    judgments when the shop has them (``SearchJudgments``), held-out clicks otherwise.
    """
    import tempfile

    from models.search.documents import documents_from_rows
    from models.search.index_store import IndexStore
    from models.search.ltr import train_ranker
    from models.search.ltr_eval import holdout_cutoff
    from models.search.tantivy_backend import TantivyBackend

    with warehouse.connect(read_only=True) as con:
        impressions = con.execute("SELECT * FROM search_impressions").df()
        if impressions.empty:
            return dg.MaterializeResult(metadata={"published": False, "reason": "no searches"})
        cutoff = holdout_cutoff(impressions["ts"], RANKER_HOLDOUT_DAYS)
        rows = search_document_rows(con, as_of=cutoff)
    # The warehouse counts positions from 0; the click model's contract counts from 1.
    impressions["position"] = impressions["position"] + 1
    held_out = pd.to_datetime(impressions["ts"], utc=True) >= cutoff
    before = impressions.loc[~held_out, "search_id"].nunique()
    within = impressions.loc[held_out, "search_id"].nunique()
    if before < MIN_SEARCHES_TO_TRAIN or within < MIN_SEARCHES_TO_GATE:
        reason = f"{before} searches to train on, {within} held out"
        context.log.info(f"search ranker not trained: {reason}")
        return dg.MaterializeResult(metadata={"published": False, "reason": reason})
    with tempfile.TemporaryDirectory(prefix="storeloop-ranker-") as tmp:
        backend = TantivyBackend(Path(tmp) / "index")
        backend.build(documents_from_rows(rows))
        ranker, report = train_ranker(
            impressions,
            backend,
            holdout_days=RANKER_HOLDOUT_DAYS,
            k=EVAL_K,
            judgments=judgments.load(),
        )
    metadata = {
        key: value
        for key, value in report.items()
        if isinstance(value, (int, float, str)) and not isinstance(value, bool)
    }
    metadata["gate_passed"] = report["gate_passed"]
    context.log.info(
        f"search ranker on the held-out days ({report['gate_evaluation']}): nDCG@{EVAL_K} "
        f"ranker {report[f'ranker_ndcg@{EVAL_K}']:.4f}, BM25 {report[f'bm25_ndcg@{EVAL_K}']:.4f}, "
        f"retrieval order {report[f'retrieval_ndcg@{EVAL_K}']:.4f}"
    )
    if not report["gate_passed"]:
        context.log.warning(
            f"search ranker ({report[f'ranker_ndcg@{EVAL_K}']:.4f}) did not beat its best rival "
            f"on the held-out days ({report['gate_rival']}); not published"
        )
        return dg.MaterializeResult(metadata={**metadata, "published": False})
    store = IndexStore(registry.directory / RANKER_SUBDIR)
    directory = store.new_version_dir()
    ranker.save(directory)
    store.publish(directory.name)
    return dg.MaterializeResult(metadata={**metadata, "published": True, "version": directory.name})


ml_assets = [
    interaction_matrix,
    *model_assets,
    recs_evaluation,
    recs_promotion,
    search_index,
    search_ranker,
]
