"""The generated world (catalog, shoppers, queries, ground truth) without any server.

These properties are what make the simulated data worth modelling: a deep category tree,
searchable synonyms, prices that differ by category and brand, concentrated preferences.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulation import truth
from simulation.catalog import category_specs, generate_catalog
from simulation.queries import KeywordIndex, generate_queries
from simulation.shoppers import generate_population


def test_same_seed_same_catalog_and_users() -> None:
    a, b = generate_catalog(11, 600), generate_catalog(11, 600)
    assert a.skus == b.skus and a.titles == b.titles and a.attributes == b.attributes
    assert np.array_equal(a.price_minor, b.price_minor) and np.array_equal(a.factors, b.factors)
    assert generate_catalog(12, 600).titles != a.titles
    pa, pb = generate_population(a, 50, 11), generate_population(b, 50, 11)
    assert pa.emails == pb.emails and np.array_equal(pa.cat_aff, pb.cat_aff)


def test_category_tree_is_deep_and_wide() -> None:
    specs = category_specs()
    depth = {s.slug: s.depth for s in specs}
    leaves = [s for s in specs if s.depth == 2]
    assert max(depth.values()) == 2 and len(leaves) >= 20  # three levels: 0, 1, 2
    assert all(s.parent in depth and depth[s.parent] == s.depth - 1 for s in specs if s.parent)
    assert len({s.slug for s in specs}) == len(specs)


def test_titles_carry_synonyms_brands_and_model_numbers() -> None:
    catalog = generate_catalog(7, 3000)
    text = " ".join(catalog.titles).lower()
    for word in ("earbuds", "earphones", "sofa", "couch", "tv", "television", "sneakers",
                 "trainers"):  # fmt: skip
        assert word in text, word
    assert all(
        catalog.brands[int(b)] in t for b, t in zip(catalog.brand, catalog.titles, strict=True)
    )
    assert sum(any(c.isdigit() for c in t.split()[1]) for t in catalog.titles) == len(catalog)


def test_prices_are_lognormal_by_category_and_brand_level() -> None:
    catalog = generate_catalog(7, 5000)
    frame = catalog.to_frame()
    assert (frame.price_minor > 0).all() and frame.price_minor.dtype == np.int64
    medians = frame.groupby("category").price_minor.median()
    assert medians["televisions"] > 10 * medians["t-shirts"]
    log_prices = np.log(frame[frame.category == "headphones"].price_minor)
    assert abs(float(pd.Series(log_prices).skew())) < 1.0  # roughly symmetric in log space
    levels = catalog.brand_price_level[catalog.brand]
    assert np.corrcoef(levels, catalog.rel_price)[0, 1] > 0.3


def test_preferences_are_concentrated() -> None:
    catalog = generate_catalog(7, 800)
    pop = generate_population(catalog, 300, 7)
    top3 = np.sort(pop.cat_aff, axis=1)[:, -3:].sum(axis=1)
    assert np.median(top3) > 0.6  # a few strong categories, a long tail
    assert (pop.brand_aff > 0.5).any(axis=1).mean() > 0.95  # nearly all have a favourite brand


def test_utility_follows_affinity() -> None:
    catalog = generate_catalog(7, 2000)
    pop = generate_population(catalog, 100, 7)
    everything = np.arange(len(catalog))
    wins = 0
    for u in range(100):
        values = truth.utility(pop, catalog, u, everything)
        favourite = int(np.argmax(pop.cat_aff[u]))
        wins += values[catalog.leaf == favourite].mean() > values.mean()
    assert wins >= 95


def test_query_set_and_relevance() -> None:
    catalog = generate_catalog(7, 3000)
    queries = generate_queries(catalog, 7)
    kinds = set(queries.kind)
    assert {"noun", "synonym", "brand", "attribute", "typo", "partial", "zero"} <= kinds
    for q in range(len(queries)):
        grades = truth.query_grades(catalog, queries, q)
        if queries.kind[q] == "zero":
            assert not grades.any()
        elif queries.kind[q] in ("noun", "brand"):
            assert (grades == 3).any(), queries.text[q]
    index = KeywordIndex(catalog)
    hits, total = index.search("earphones")
    assert total > 0 and all(catalog.leaf_slug(int(catalog.leaf[h])) == "earbuds" for h in hits)
    assert index.search("qzxvbn") == ([], 0)


def test_ground_truth_files(tmp_path) -> None:
    catalog = generate_catalog(7, 300)
    pop = generate_population(catalog, 20, 7)
    queries = generate_queries(catalog, 7)
    ids = {sku: i + 1 for i, sku in enumerate(catalog.skus)}
    counts = truth.write_ground_truth(tmp_path, catalog, pop, queries, ids, {0: 5}, top_n=30)
    upr = pd.read_parquet(tmp_path / "user_product_relevance.parquet")
    assert counts["user_product_relevance"] == 20 * 30
    assert set(upr.grade.unique()) <= {0, 1, 2, 3}
    assert upr.groupby("user_index").utility.is_monotonic_decreasing.all()
    # The table agrees with recomputation from the Parquet files alone.
    row = upr[upr.user_index == 3].head(5)
    again = truth.utility_from_frames(
        pd.read_parquet(tmp_path / "users.parquet"),
        pd.read_parquet(tmp_path / "products.parquet"),
        pd.read_parquet(tmp_path / "user_category_affinity.parquet"),
        pd.read_parquet(tmp_path / "user_brand_affinity.parquet"),
        3,
        list(row.sku),
    )
    assert np.allclose(again, row.utility)
    qpr = pd.read_parquet(tmp_path / "query_product_relevance.parquet")
    assert qpr.grade.between(1, 3).all() and qpr.product_id.notna().all()


def test_shards_split_users_once_and_even_out_every_day() -> None:
    from dataclasses import replace

    from simulation.context import SimConfig
    from simulation.runner import day_schedule, shard_owners

    config = SimConfig(users=600, products=300, days=8)
    pop = generate_population(generate_catalog(7, 300), 600, 7)
    owners = shard_owners(replace(config, shards=2), pop)
    assert np.array_equal(owners, shard_owners(replace(config, shards=2), pop))  # reproducible
    for day in range(config.days):
        every = day_schedule(config, pop, day)
        parts = [day_schedule(replace(config, shard=k, shards=2), pop, day) for k in (0, 1)]
        assert {**parts[0], **parts[1]} == every and not set(parts[0]) & set(parts[1])
        visits = [sum(len(starts) for starts in part.values()) for part in parts]
        assert abs(visits[0] - visits[1]) <= 2, (day, visits)  # u % 2 was off by ~10%
