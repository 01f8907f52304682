"""``storeloop search ...`` commands; logic lives in ``models.search``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``search`` group and its ``evaluate`` subcommand."""
    group = subparsers.add_parser("search", help="product search tools")
    commands = group.add_subparsers(dest="search_command", required=True, metavar="COMMAND")
    evaluate = commands.add_parser(
        "evaluate", help="relevance of BM25 vs storeloop retrieval (and a ranker) on judgments"
    )
    evaluate.add_argument("--catalog", required=True, help="CSV or Parquet of products")
    evaluate.add_argument(
        "--judgments", required=True, help="CSV or Parquet with query, product_id, grade"
    )
    evaluate.add_argument("--k", type=int, default=10, help="cut-off for nDCG and precision")
    evaluate.add_argument(
        "--backend",
        choices=("tantivy", "elasticsearch"),
        default=None,
        help="default: elasticsearch when ELASTICSEARCH_URL is set (as the server does), "
        "else tantivy",
    )
    evaluate.add_argument("--json", dest="json_out", help="write results as JSON here")
    evaluate.add_argument(
        "--ranker",
        help="a trained ranker directory (e.g. DATA_DIR/registry/search_ranker/versions/V): "
        "also score storeloop retrieval reranked by it",
    )
    evaluate.set_defaults(func=run_evaluate)
    train = commands.add_parser(
        "train-ranker",
        help="train the search reranker from graded judgments (query split, gated vs BM25)",
    )
    train.add_argument("--catalog", required=True, help="CSV or Parquet of products")
    train.add_argument(
        "--judgments", required=True, help="CSV or Parquet with query, product_id, grade"
    )
    train.add_argument("--out", required=True, help="directory to write the ranker to")
    train.add_argument("--k", type=int, default=10, help="cut-off of the gate's nDCG")
    train.add_argument("--seed", type=int, default=0, help="seed of the query split and trees")
    train.add_argument(
        "--validation", type=float, default=0.2, help="share of queries held out for the gate"
    )
    train.add_argument(
        "--publish",
        action="store_true",
        help="also publish it as the shop's ranker (DATA_DIR/registry/search_ranker) "
        "if it passed its gate",
    )
    train.set_defaults(func=run_train_ranker)


def run_evaluate(args: argparse.Namespace) -> int:
    """Run the evaluation, print a table, optionally write JSON; exit code 2 on bad input."""
    from models.search.errors import IndexCorruptError
    from models.search.evaluate import evaluate, format_table, read_table
    from serving.cli import inputs
    from serving.core.config import Settings

    try:
        inputs.require_k(args.k)
        json_out = inputs.output_path("--json", args.json_out)
        catalog = read_table(args.catalog)
        judgments = read_table(args.judgments)
        warnings = inputs.judgments(
            judgments, catalog, path=args.judgments, catalog_path=args.catalog
        )
    except inputs.InputError as exc:
        print(f"search evaluate: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"search evaluate: cannot read: {exc}", file=sys.stderr)
        return 2
    for warning in warnings:
        print(warning, file=sys.stderr)
    # The one Settings, as the server reads it: ELASTICSEARCH_URL (or STORELOOP_...) picks both
    # the cluster and, unless --backend says otherwise, the backend.
    url = Settings().elasticsearch_url
    backend = args.backend or ("elasticsearch" if url else "tantivy")
    try:
        results = evaluate(
            catalog,
            judgments,
            k=args.k,
            backend=backend,
            elasticsearch_url=url,
            ranker_dir=args.ranker,
        )
    except (OSError, ValueError, KeyError, IndexCorruptError) as exc:
        print(f"search evaluate: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if not type(exc).__module__.startswith(("elasticsearch", "elastic_transport")):
            raise
        print(
            f"search evaluate: Elasticsearch at {url} failed: {type(exc).__name__}", file=sys.stderr
        )
        return 2
    print(format_table(results))
    if json_out is not None:
        text = json.dumps([r.as_dict() for r in results], indent=2)
        try:
            inputs.write_output("--json", json_out, text)
        except inputs.InputError as exc:
            print(f"search evaluate: {exc}", file=sys.stderr)
            return 2
    return 0


def run_train_ranker(args: argparse.Namespace) -> int:
    """Train, gate and save; exit 0 if the gate passed, 1 if not, 2 on bad input."""
    from models.search.errors import IndexCorruptError
    from models.search.evaluate import read_table
    from models.search.judged_ltr import train_from_files

    if args.k < 1:
        print("--k must be at least 1", file=sys.stderr)
        return 2
    if not 0 < args.validation < 1:
        print("--validation must be between 0 and 1", file=sys.stderr)
        return 2
    try:
        catalog = read_table(args.catalog)
        judgments = read_table(args.judgments)
        ranker, report = train_from_files(
            catalog, judgments, k=args.k, seed=args.seed, validation_share=args.validation
        )
        directory = ranker.save(args.out)
    except (OSError, ValueError, KeyError, IndexCorruptError) as exc:
        print(f"search train-ranker: {exc}", file=sys.stderr)
        return 2
    k = args.k
    print(
        f"validation queries {report['judged_queries']}: nDCG@{k} "
        f"ranker {report[f'ranker_ndcg@{k}']:.4f}, bm25 {report[f'bm25_ndcg@{k}']:.4f}, "
        f"bm25 same candidates {report[f'bm25_same_ndcg@{k}']:.4f}, "
        f"retrieval order {report[f'retrieval_ndcg@{k}']:.4f}"
    )
    print(f"gate {'passed' if report['gate_passed'] else 'FAILED'}; ranker written to {directory}")
    if not report["gate_passed"]:
        return 1
    if args.publish:
        print(f"published as {_publish(directory)}")
    return 0


def _publish(directory: Path) -> str:
    """Copy a gated ranker into the registry the shop loads rankers from and make it current."""
    import shutil

    from models.search.index_store import IndexStore
    from serving.core.config import get_settings

    settings = get_settings()
    store = IndexStore(settings.layout.search_ranker)
    target = store.new_version_dir()
    shutil.copytree(directory, target, dirs_exist_ok=True)
    store.publish(target.name)
    return target.name
