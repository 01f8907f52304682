"""``storeloop recs``: offline evaluation and the model registry.

A thin layer: argument parsing and printing only; all logic lives in ``models``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``recs`` command group with ``evaluate``, ``list``, ``promote``, ``rollback``."""
    recs = subparsers.add_parser("recs", help="recommendation models: evaluate, registry")
    sub = recs.add_subparsers(dest="recs_command", required=True, metavar="SUBCOMMAND")

    ev = sub.add_parser("evaluate", help="evaluate models on a ratings/interactions file")
    ev.add_argument("path", help="Parquet or CSV with columns user, item, timestamp[, rating]")
    ev.add_argument("--protocol", choices=["time", "per-user", "per-item"], default="per-user")
    ev.add_argument("--test-fraction", type=float, default=0.25)
    ev.add_argument("--k", type=int, default=10)
    ev.add_argument("--seed", type=int, default=42)
    ev.add_argument("--min-rating", type=float, default=None)
    ev.add_argument(
        "--models",
        default="ease,rp3beta,item2item,als,blend,popular",
        help="comma-separated: als,blend,bpr,ease,item2item,popular,rp3beta,trending,"
        "bought_together",
    )
    ev.add_argument(
        "--repeat",
        action="store_true",
        help="repeat-aware (consumables): keep repeated pairs, recommend seen items, "
        "count re-purchases in the test part",
    )
    ev.add_argument(
        "--min-test-users",
        type=int,
        default=50,
        help="warn when the test or validation part has fewer users with relevant items",
    )
    ev.add_argument("--json", dest="json_out", default=None, help="write results JSON here")
    ev.add_argument("--no-tune", action="store_true", help="use default hyperparameters")
    ev.add_argument("--tune-trials", type=int, default=6, help="max search trials per model")
    ev.add_argument(
        "--tune-seconds", type=float, default=60.0, help="search budget per model (CPU seconds)"
    )
    ev.set_defaults(func=_evaluate)

    reg_help = "registry root (default DATA_DIR/registry, DATA_DIR as the server reads it)"
    ls = sub.add_parser("list", help="list registered model versions")
    ls.add_argument("--registry", default=None, help=reg_help)
    ls.set_defaults(func=_list)

    pr = sub.add_parser("promote", help="promote a model version to serving (gated)")
    pr.add_argument("name")
    pr.add_argument("version")
    pr.add_argument("--registry", default=None, help=reg_help)
    pr.add_argument("--metric", default="ndcg@10")
    pr.add_argument("--max-drop", type=float, default=0.01)
    pr.add_argument("--relative", action="store_true", help="read --max-drop as a fraction")
    pr.add_argument("--force", action="store_true", help="skip the gate (still verified)")
    pr.set_defaults(func=_promote)

    rb = sub.add_parser("rollback", help="serve the previous version again")
    rb.add_argument("name")
    rb.add_argument("--registry", default=None, help=reg_help)
    rb.set_defaults(func=_rollback)


def _evaluate(args: argparse.Namespace) -> int:
    from models.evaluation.runner import (
        EvaluationWarning,
        evaluate_models,
        load_ratings,
        results_json,
        results_table,
    )
    from models.exceptions import UnknownModelError
    from models.factory import available_models
    from serving.cli import inputs

    names = [n.strip().lower() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in available_models()]
    if unknown:
        print(UnknownModelError(unknown[0], available_models()), file=sys.stderr)
        return 2
    try:
        inputs.require_k(args.k)
        inputs.require_fraction("--test-fraction", args.test_fraction)
        inputs.require_positive("--tune-trials", args.tune_trials)
        inputs.require_positive("--tune-seconds", args.tune_seconds)
        json_out = inputs.output_path("--json", args.json_out)
    except inputs.InputError as exc:
        print(f"recs evaluate: {exc}", file=sys.stderr)
        return 2
    try:
        frame = load_ratings(args.path)
    except (OSError, ValueError) as exc:
        print(f"cannot read {args.path}: {exc}", file=sys.stderr)
        return 2
    try:
        frame = inputs.ratings(frame, path=args.path, min_rating=args.min_rating)
    except inputs.InputError as exc:
        print(f"recs evaluate: {exc}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EvaluationWarning)
        try:
            results = evaluate_models(
                frame,
                models=names,
                protocol=args.protocol,
                test_fraction=args.test_fraction,
                k=args.k,
                seed=args.seed,
                min_rating=args.min_rating,
                tune_models=not args.no_tune,
                max_trials=args.tune_trials,
                budget_seconds=args.tune_seconds,
                repeat=args.repeat,
                min_test_users=args.min_test_users,
            )
        except ValueError as exc:
            print(f"cannot evaluate {args.path}: {exc}", file=sys.stderr)
            return 2
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    print(
        f"{args.path}: {len(frame)} rows, protocol={args.protocol}, "
        f"test_fraction={args.test_fraction}, k={args.k}, seed={args.seed}, "
        f"repeat={args.repeat}"
    )
    print(results_table(results, args.k))
    print(f"total {time.perf_counter() - start:.1f}s")
    if json_out is not None:
        meta = {
            "protocol": args.protocol,
            "test_fraction": args.test_fraction,
            "seed": args.seed,
            "min_rating": args.min_rating,
            "repeat": args.repeat,
            "path": str(args.path),
        }
        text = json.dumps(results_json(results, args.k, meta), indent=2)
        try:
            inputs.write_output("--json", json_out, text)
        except inputs.InputError as exc:
            print(f"recs evaluate: {exc}", file=sys.stderr)
            return 2
    return 0


def _registry(args: argparse.Namespace):  # -> models.registry.ModelRegistry
    from models.registry import ModelRegistry
    from serving.core.config import Settings

    root = args.registry
    if root is None:  # the one Settings: DATA_DIR or STORELOOP_DATA_DIR, as the server reads it
        root = Settings().registry_path
    return ModelRegistry(root, kind="recs")


def _list(args: argparse.Namespace) -> int:
    registry = _registry(args)
    for name in registry.names():
        serving = registry.serving_version(name)
        for version in registry.versions(name):
            manifest = registry.manifest(name, version)
            gate = manifest.get("metrics", {}).get("ndcg@10")
            mark = "*" if version == serving else " "
            score = f"ndcg@10={gate:.4f}" if gate is not None else ""
            print(f"{mark} {name:<16} {version:<8} {manifest.get('created_at', '')}  {score}")
    return 0


def _promote(args: argparse.Namespace) -> int:
    from models.exceptions import ModelError
    from models.registry import PromotionGate

    registry = _registry(args)
    gate = PromotionGate(metric=args.metric, max_drop=args.max_drop, relative=args.relative)
    try:
        record = registry.promote(args.name, args.version, gate=gate, force=args.force)
    except ModelError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    print(f"{args.name}: serving {record['version']} (was {record['from']})")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from models.exceptions import ModelError

    registry = _registry(args)
    try:
        record = registry.rollback(args.name)
    except ModelError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    print(f"{args.name}: serving {record['version']} (was {record['from']})")
    return 0
