"""``storeloop search ...`` commands; logic lives in ``models.search``."""

from __future__ import annotations

import argparse
import json
import os
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
    evaluate.add_argument("--backend", choices=("tantivy", "elasticsearch"), default="tantivy")
    evaluate.add_argument("--json", dest="json_out", help="write results as JSON here")
    evaluate.add_argument(
        "--ranker",
        help="a trained ranker directory (e.g. DATA_DIR/registry/search_ranker/versions/V): "
        "also score storeloop retrieval reranked by it",
    )
    evaluate.set_defaults(func=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    """Run the evaluation, print a table, optionally write JSON; exit code 2 on bad input."""
    from models.search.errors import IndexCorruptError
    from models.search.evaluate import evaluate, format_table, read_table

    if args.k < 1:
        print("--k must be at least 1", file=sys.stderr)
        return 2
    try:
        catalog = read_table(args.catalog)
        judgments = read_table(args.judgments)
        results = evaluate(
            catalog,
            judgments,
            k=args.k,
            backend=args.backend,
            elasticsearch_url=os.environ.get("ELASTICSEARCH_URL"),
            ranker_dir=args.ranker,
        )
    except (OSError, ValueError, KeyError, IndexCorruptError) as exc:
        print(f"search evaluate: {exc}", file=sys.stderr)
        return 2
    print(format_table(results))
    if args.json_out:
        Path(args.json_out).write_text(
            json.dumps([r.as_dict() for r in results], indent=2), encoding="utf-8"
        )
    return 0
