"""Buy it again on a simulated shop: are the learned consumables right, and does due-ness help?

Reads the orders of a shop's database (a ``storeloop simulate`` run: its shoppers re-buy the
catalog's consumable leaves, ``simulation/vocab.py``, and rarely anything else) and

1. learns consumable categories from repeat rates on all orders (``models/repeat.py``, the
   same model the API refits from its in-memory purchases), reads those the catalog marks
   (product attribute ``consumable: true``, what the simulator's catalog now sets), and
   compares both with the simulator's own ``consumable`` leaves: precision and recall;
2. time split: learns on orders before the last ``--test-days``; for every buyer who re-bought
   in the test days something bought before, ranks the buyer's earlier products and reports
   recall@k of those re-purchases for the buy-again ranking against two baselines over the
   same products: most often bought (ties: most recent) and most recently bought.

    python bench/bench_recs_repeat.py --data-dir /tmp/sim [--test-days 7] [--k 5]

The database is ``DATA_DIR/storeloop.db`` unless ``--database-url`` says otherwise.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._server import machine, write_result  # noqa: E402
from models.repeat import PurchasePairs, RepeatPurchaseModel  # noqa: E402
from serving.db.tables import Category, Product  # noqa: E402
from serving.db.tables.orders import Order, OrderLine  # noqa: E402
from serving.services.ml.catalog_view import NOT_SOLD  # noqa: E402
from serving.services.ml.recs.purchases import marked_consumable_categories  # noqa: E402
from simulation import vocab  # noqa: E402

_DAY = 86_400.0


def load_lines(url: str) -> tuple[list[tuple[int, int, int, str, float]], dict[int, str], set]:
    """(user, product, category, order id, order time) per sold line, category slugs, and the
    categories the catalog marks consumable (product attribute ``consumable: true``)."""
    engine = create_engine(url)
    query = (
        select(Order.user_id, OrderLine.product_id, Product.category_id, Order.id, Order.created_at)
        .join(Order, Order.id == OrderLine.order_id)
        .join(Product, Product.id == OrderLine.product_id)
        .where(Order.status.not_in(NOT_SOLD))
    )
    with engine.connect() as conn:
        rows = [(u, p, c, o, ts.timestamp()) for u, p, c, o, ts in conn.execute(query)]
        slugs = dict(conn.execute(select(Category.id, Category.slug)).all())
        marked = marked_consumable_categories(conn)
    engine.dispose()
    return rows, slugs, marked


def to_pairs(lines) -> tuple[PurchasePairs, dict[tuple[int, int], tuple[int, float, float, int]]]:
    """Pair aggregates as the shop keeps them: distinct orders, first and last order time."""
    orders: dict[tuple[int, int], set[str]] = defaultdict(set)
    first: dict[tuple[int, int], float] = {}
    last: dict[tuple[int, int], float] = {}
    cat: dict[tuple[int, int], int] = {}
    for user, pid, category, order_id, ts in lines:
        key = (user, pid)
        orders[key].add(order_id)
        first[key] = min(first.get(key, ts), ts)
        last[key] = max(last.get(key, ts), ts)
        cat[key] = category
    keys = list(orders)
    stats = {k: (len(orders[k]), first[k], last[k], cat[k]) for k in keys}
    pairs = PurchasePairs(
        user=np.asarray([k[0] for k in keys], np.int64),
        item=np.asarray([k[1] for k in keys], np.int64),
        category=np.asarray([cat[k] for k in keys], np.int64),
        orders=np.asarray([len(orders[k]) for k in keys], np.int64),
        first=np.asarray([first[k] for k in keys]),
        last=np.asarray([last[k] for k in keys]),
    )
    return pairs, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--test-days", type=float, default=7.0)
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{args.data_dir / 'storeloop.db'}"
    lines, slugs, marked_ids = load_lines(url)
    if not lines:
        sys.exit(f"no sold order lines in {url}")
    truth = {leaf.path[2] for leaf in vocab.LEAVES if leaf.consumable}

    model = RepeatPurchaseModel().fit(to_pairs(lines)[0])
    learned = {slugs[c] for c in model.consumable}
    marked = {slugs[c] for c in marked_ids}
    served = learned | marked  # what the API treats as consumable

    def scores(found: set[str]) -> tuple[float, float]:
        hits = len(found & truth)
        return (hits / len(found) if found else 0.0, hits / len(truth) if truth else 0.0)

    precision, recall = scores(learned)
    served_precision, served_recall = scores(served)
    rates = sorted(
        ((slugs.get(c, str(c)), r) for c, r in model.category_rate.items()), key=lambda x: -x[1]
    )

    end = max(ts for *_, ts in lines)
    cutoff = end - args.test_days * _DAY
    train = [row for row in lines if row[4] < cutoff]
    test = [row for row in lines if row[4] >= cutoff]
    split_model = RepeatPurchaseModel().fit(to_pairs(train)[0])
    _, stats = to_pairs(train)
    history: dict[int, list[tuple[int, tuple[int, float, float, int]]]] = defaultdict(list)
    for (user, pid), s in stats.items():
        history[user].append((pid, s))
    rebought: dict[int, set[int]] = defaultdict(set)
    for user, pid, *_ in test:
        if (user, pid) in stats:
            rebought[user].add(pid)
    k = args.k
    recall_at = {"buy_again": [], "most_often": [], "most_recent": []}
    for user, wanted in rebought.items():
        items = history[user]
        pids = np.asarray([p for p, _ in items])
        n = np.asarray([s[0] for _, s in items])
        first = np.asarray([s[1] for _, s in items])
        last = np.asarray([s[2] for _, s in items])
        cats = np.asarray([s[3] for _, s in items])
        due = split_model.due_scores(pids, cats, n, first, last, now=cutoff)
        rankings = {
            # Due consumables first, then the rest most-often-first (what a page would fill).
            "buy_again": np.lexsort((-last, -n, -np.where(np.isfinite(due), due, -1.0))),
            "most_often": np.lexsort((-last, -n)),
            "most_recent": np.argsort(-last, kind="stable"),
        }
        for name, order in rankings.items():
            top = set(pids[order[:k]].tolist())
            recall_at[name].append(len(top & wanted) / min(len(wanted), k))
    figures = {name: round(float(np.mean(v)), 4) for name, v in recall_at.items()}
    print(
        f"consumables learned from {len(lines):,} sold lines: {sorted(learned)}\n"
        f"catalog's consumable leaves: {sorted(truth)}  learned precision {precision:.2f}  "
        f"recall {recall:.2f}; marked by the catalog attribute: {sorted(marked)}; "
        f"served (learned + marked) precision {served_precision:.2f} recall {served_recall:.2f}\n"
        f"top repeat rates: {', '.join(f'{s} {r:.2f}' for s, r in rates[:8])}\n"
        f"time split (last {args.test_days:g} days, {len(rebought)} buyers re-bought): "
        f"recall@{k} buy-again {figures['buy_again']:.4f}  "
        f"most-often {figures['most_often']:.4f}  most-recent {figures['most_recent']:.4f}"
    )
    path = write_result(
        "bench_recs_repeat",
        {
            "database": url.split(":", 1)[0],
            "sold_lines": len(lines),
            "learned_consumables": sorted(learned),
            "catalog_consumables": sorted(truth),
            "marked_consumables": sorted(marked),
            "learned_precision": round(precision, 4),
            "learned_recall": round(recall, 4),
            "served_precision": round(served_precision, 4),
            "served_recall": round(served_recall, 4),
            "repeat_rates": dict(rates),
            "test_days": args.test_days,
            "rebuying_users": len(rebought),
            f"recall_at_{k}": figures,
            "machine": machine(),
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
