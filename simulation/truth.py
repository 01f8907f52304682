"""The true relevance of products to shoppers and to queries: the formula and its tables.

The simulated shoppers act on exactly these numbers (``utility`` drives clicks, carts and
ratings), so a model's ranking can be scored against what shoppers wanted rather than what they
happened to click. Evaluation code imports this module and either reads the Parquet tables or
recomputes a grade for any pair from ``ground_truth/products.parquet`` and ``users.parquet``.

Utility of product p for user u::

    U(u, p) = log(max(A[u, leaf(p)] * L, e^-5))    # category affinity, L leaves
            + B[u, brand(p)]                       # brand affinity: +1.6 likes, -1.2 dislikes
            + T[u] . F[p]                          # taste vector . product latent factors
            + 0.5 * Q[p]                           # product quality
            - S[u] * log(price(p) / median(leaf))  # price sensitivity times relative price

Relevance grade (0..3): 3 if U >= 3, 2 if U >= 2, 1 if U >= 1, else 0.

Query relevance of product p to a query whose intent is (leaf, brand?, attribute?): 3 when p is
in the leaf and matches every constraint the query states, 1 when it is in the leaf but misses a
constraint or is in a sibling leaf (same parent) and meets the constraints, else 0. Queries
made to return nothing (``kind == "zero"``) have no relevant product.

In a search the shopper weighs both: a result is judged by what they like *and* by whether it
is what they typed. Someone who searched "black headphones" passes over grey ones they would
otherwise like, and a sofa they love does not tempt them in a search for headphones::

    U_search(u, p, q) = U(u, p) - QUERY_MISMATCH_COST * (3 - grade(q, p))

(``search_utility``). Without this term no behaviour of a searching shopper depended on the
brand or attribute they asked for, so nothing learned from search logs could ever agree with the
query grades on those constraints.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from simulation.catalog import Catalog
from simulation.queries import QuerySet
from simulation.shoppers import Population

GRADE_THRESHOLDS = (1.0, 2.0, 3.0)
MIN_LOG_AFFINITY = -5.0
#: Utility a search result loses per query-grade point it falls short of 3 (a perfect answer).
QUERY_MISMATCH_COST = 0.75
MAX_QUERY_GRADE = 3


def utility(pop: Population, catalog: Catalog, user: int, products: np.ndarray) -> np.ndarray:
    """U(u, p) for one user and an array of product indices (see the module docstring)."""
    n_leaves = len(catalog.leaves)
    leaf = catalog.leaf[products]
    aff = np.log(np.maximum(pop.cat_aff[user, leaf] * n_leaves, np.exp(MIN_LOG_AFFINITY)))
    return (
        aff
        + pop.brand_aff[user, catalog.brand[products]]
        + catalog.factors[products] @ pop.taste[user]
        + 0.5 * catalog.quality[products]
        - pop.price_sens[user] * catalog.rel_price[products]
    )


def search_utility(utilities: np.ndarray, query_grades: np.ndarray) -> np.ndarray:
    """U_search: the shopper's utility minus what the product misses of the query's intent."""
    shortfall = MAX_QUERY_GRADE - np.asarray(query_grades, dtype=np.float64)
    return np.asarray(utilities, dtype=np.float64) - QUERY_MISMATCH_COST * shortfall


def grade(values: np.ndarray) -> np.ndarray:
    """Relevance grades 0..3 from utilities."""
    return np.searchsorted(np.asarray(GRADE_THRESHOLDS), values, side="right").astype(np.int8)


def utility_from_frames(
    users: pd.DataFrame, products: pd.DataFrame, user_affinity: pd.DataFrame,
    brand_affinity: pd.DataFrame, user_index: int, skus: list[str],
) -> np.ndarray:  # fmt: skip
    """U(u, p) recomputed from the Parquet tables alone, for evaluation code.

    Lets an evaluator grade pairs that are not in ``user_product_relevance.parquet`` (it only
    keeps each user's top N) without importing the generator's in-memory objects.
    """
    n_leaves = products["category"].nunique()
    prods = products.set_index("sku").loc[skus]
    u = users.set_index("user_index").loc[user_index]
    cat = user_affinity[user_affinity.user_index == user_index].set_index("category")["affinity"]
    brands = brand_affinity[brand_affinity.user_index == user_index].set_index("brand")
    b = brands["affinity"].reindex(prods["brand"]).fillna(0.0).to_numpy()
    a = cat.reindex(prods["category"]).fillna(0.0).to_numpy()
    factors = prods[[c for c in prods.columns if c.startswith("f") and c[1:].isdigit()]]
    taste = u[[c for c in users.columns if c.startswith("t") and c[1:].isdigit()]].to_numpy()
    return (
        np.log(np.maximum(a * n_leaves, np.exp(MIN_LOG_AFFINITY)))
        + b
        + factors.to_numpy(dtype=float) @ taste.astype(float)
        + 0.5 * prods["quality"].to_numpy()
        - float(u["price_sensitivity"]) * prods["rel_price"].to_numpy()
    )


def query_grades(catalog: Catalog, queries: QuerySet, q: int) -> np.ndarray:
    """Grades 0..3 of every product for query ``q`` (see the module docstring)."""
    out = np.zeros(len(catalog), dtype=np.int8)
    leaf = queries.leaf[q]
    if leaf < 0:
        return out
    constraint = np.ones(len(catalog), dtype=bool)
    brand = queries.brand[q]
    if brand >= 0:
        constraint &= catalog.brand == brand
    key, value = queries.attr_key[q], queries.attr_value[q]
    if key:
        constraint &= attribute_column(catalog, key) == value
    in_leaf = catalog.leaf == leaf
    parent = catalog.leaves[leaf].path[1]
    siblings = np.array([lf.path[1] == parent for lf in catalog.leaves])[catalog.leaf] & ~in_leaf
    out[in_leaf & constraint] = 3
    out[in_leaf & ~constraint] = 1
    if brand < 0 and not key:
        out[siblings] = 1
    return out


_ATTR_CACHE: dict[tuple[int, str], np.ndarray] = {}


def attribute_column(catalog: Catalog, key: str) -> np.ndarray:
    """Every product's value of one attribute (None where absent), cached per catalog object."""
    cache_key = (id(catalog), key)
    if cache_key not in _ATTR_CACHE:
        column = np.empty(len(catalog), dtype=object)
        column[:] = [a.get(key) for a in catalog.attributes]
        _ATTR_CACHE[cache_key] = column
    return _ATTR_CACHE[cache_key]


def write_ground_truth(
    out_dir: Path,
    catalog: Catalog,
    pop: Population,
    queries: QuerySet,
    product_ids: dict[str, int],
    user_ids: dict[int, int],
    top_n: int = 100,
) -> dict[str, int]:
    """Write every ground-truth table under ``out_dir``; returns row counts per file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}

    def put(name: str, frame: pd.DataFrame) -> None:
        frame.to_parquet(out_dir / f"{name}.parquet", index=False)
        counts[name] = len(frame)

    products = catalog.to_frame()
    products.insert(0, "product_id", [product_ids.get(s) for s in catalog.skus])
    products["product_id"] = products["product_id"].astype("Int64")
    put("products", products)
    put("users", pop.to_frame(user_ids))
    leaf_slugs = [catalog.leaf_slug(i) for i in range(len(catalog.leaves))]
    users_idx, leaves_idx = np.nonzero(pop.cat_aff >= 0)
    put(
        "user_category_affinity",
        pd.DataFrame(
            {
                "user_index": users_idx,
                "category": [leaf_slugs[i] for i in leaves_idx],
                "affinity": pop.cat_aff[users_idx, leaves_idx],
            }
        ),
    )
    bu, bb = np.nonzero(pop.brand_aff)
    put(
        "user_brand_affinity",
        pd.DataFrame(
            {
                "user_index": bu,
                "brand": [catalog.brands[i] for i in bb],
                "affinity": pop.brand_aff[bu, bb],
            }
        ),
    )
    everything = np.arange(len(catalog))
    sku_arr = np.asarray(catalog.skus)
    pid_arr = products["product_id"].to_numpy()
    rows: list[pd.DataFrame] = []
    n = min(top_n, len(catalog))
    for u in range(len(pop)):
        values = utility(pop, catalog, u, everything)
        top = np.argpartition(-values, n - 1)[:n]
        top = top[np.argsort(-values[top], kind="stable")]
        rows.append(
            pd.DataFrame(
                {
                    "user_index": u,
                    "user_id": user_ids.get(u),
                    "rank": np.arange(1, n + 1),
                    "sku": sku_arr[top],
                    "product_id": pid_arr[top],
                    "utility": values[top],
                    "grade": grade(values[top]),
                }
            )
        )
    upr = pd.concat(rows, ignore_index=True)
    upr["user_id"] = upr["user_id"].astype("Int64")
    put("user_product_relevance", upr)
    put("queries", queries.to_frame(catalog))
    qrows = []
    for q in range(len(queries)):
        grades = query_grades(catalog, queries, q)
        hit = np.flatnonzero(grades)
        qrows.append(
            pd.DataFrame(
                {
                    "query_id": q,
                    "query": queries.text[q],
                    "sku": sku_arr[hit],
                    "product_id": pid_arr[hit],
                    "grade": grades[hit],
                }
            )
        )
    put("query_product_relevance", pd.concat(qrows, ignore_index=True))
    return counts
