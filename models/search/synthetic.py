"""Deterministic synthetic catalogs, judgments and click logs for tests, benches and demos.

Generated data has a known ground truth (which product a query is about), which is what lets
tests assert that typo tolerance, synonyms and the click model actually help.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.search.documents import ProductDocument

#: (category path, product nouns, synonym a user may type instead of the noun)
CATEGORIES: list[tuple[str, str, str | None]] = [
    ("Electronics > Audio > Headphones", "headphones", "headset"),
    ("Electronics > Audio > Earbuds", "earbuds", "earphones"),
    ("Electronics > TV & Video > Televisions", "television", "tv"),
    ("Electronics > Computers > Laptops", "laptop", "notebook"),
    ("Fashion > Shoes > Sneakers", "sneakers", "trainers"),
    ("Home > Living Room > Sofas", "sofa", "couch"),
    ("Home > Kitchen > Refrigerators", "refrigerator", "fridge"),
    ("Fashion > Clothing > Sweaters", "sweater", "jumper"),
    ("Outdoor > Bags > Backpacks", "backpack", "rucksack"),
    ("Home > Cleaning > Vacuums", "vacuum", "hoover"),
    ("Electronics > Phones > Smartphones", "smartphone", "cellphone"),
    ("Fashion > Clothing > Trousers", "trousers", "pants"),
]
BRANDS = [
    "Acme",
    "Northwind",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Vandelay",
    "Stark",
    "Wayne",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Wonka",
    "Gringotts",
    "Oscorp",
    "Aperture",
]
ADJECTIVES = [
    "wireless",
    "compact",
    "premium",
    "classic",
    "ultra",
    "portable",
    "smart",
    "slim",
    "deluxe",
    "vintage",
    "modern",
    "rugged",
    "lightweight",
    "ergonomic",
    "foldable",
    "waterproof",
    "organic",
    "professional",
    "essential",
    "signature",
]
COLORS = ["black", "white", "red", "blue", "green", "grey", "silver", "brown"]
FILLER = [
    "designed",
    "for",
    "everyday",
    "use",
    "with",
    "durable",
    "materials",
    "and",
    "a",
    "two",
    "year",
    "warranty",
    "comfortable",
    "stylish",
    "reliable",
    "quality",
]


def generate_catalog(n: int, seed: int = 7) -> list[ProductDocument]:
    """``n`` products spread over the categories above, each with brand, colour and adjectives."""
    rng = np.random.default_rng(seed)
    cat_idx = rng.integers(0, len(CATEGORIES), n)
    brand_idx = rng.integers(0, len(BRANDS), n)
    adj = rng.integers(0, len(ADJECTIVES), (n, 2))
    color_idx = rng.integers(0, len(COLORS), n)
    price = (rng.lognormal(9.0, 1.0, n)).astype(np.int64)
    rating = np.round(rng.uniform(2.5, 5.0, n), 1)
    popularity = rng.pareto(1.5, n) * 10
    created = 1_700_000_000 + rng.integers(0, 400 * 86_400, n)
    in_stock = rng.random(n) > 0.1
    fill = rng.integers(0, len(FILLER), (n, 8))
    docs = []
    for i in range(n):
        path, noun, _ = CATEGORIES[cat_idx[i]]
        color = COLORS[color_idx[i]]
        title = (
            f"{BRANDS[brand_idx[i]]} {ADJECTIVES[adj[i, 0]]} {ADJECTIVES[adj[i, 1]]} "
            f"{color} {noun} {i % 97}"
        )
        docs.append(
            ProductDocument(
                product_id=f"P{i:06d}",
                title=title,
                brand=BRANDS[brand_idx[i]],
                category_path=path,
                attributes={"color": color},
                description=" ".join(FILLER[j] for j in fill[i]),
                price=int(price[i]),
                in_stock=bool(in_stock[i]),
                rating=float(rating[i]),
                created_at=int(created[i]),
                popularity=float(popularity[i]),
            )
        )
    return docs


def _typo(word: str, rng: np.random.Generator) -> str:
    """One random edit inside the word (never the first letter)."""
    if len(word) < 5:
        return word
    i = int(rng.integers(1, len(word) - 1))
    op = rng.integers(0, 3)
    if op == 0:
        return word[:i] + word[i + 1 :]
    if op == 1:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + "x" + word[i + 1 :]


def generate_judgments(
    docs: list[ProductDocument], n_queries: int = 60, seed: int = 11
) -> pd.DataFrame:
    """Queries "brand noun", "adjective noun" with typo and synonym variants, graded 0–3.

    Grade 3: same brand/adjective and category; 1: right category only.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for q in range(n_queries):
        cat = CATEGORIES[q % len(CATEGORIES)]
        path, noun, synonym = cat
        brand = BRANDS[int(rng.integers(0, len(BRANDS)))]
        variant = q % 3
        noun_typed = noun if variant == 0 else (_typo(noun, rng) if variant == 1 else synonym)
        query = f"{brand.lower()} {noun_typed}"
        for d in docs:
            if d.category_path != path:
                continue
            grade = 3 if d.brand == brand else 1
            rows.append({"query": query, "product_id": d.product_id, "grade": grade})
    return pd.DataFrame(rows).drop_duplicates(["query", "product_id"])


def true_relevance(doc: ProductDocument) -> int:
    """Hidden 0–3 relevance for click simulation: driven by rating, invisible to BM25."""
    return int(np.digitize(doc.rating, [3.2, 3.8, 4.4]))


def generate_click_log(
    ranked: dict[str, list[ProductDocument]],
    sessions_per_query: int = 200,
    days: int = 10,
    shown: int = 10,
    explore: float = 0.3,
    seed: int = 5,
) -> pd.DataFrame:
    """Simulate searches under a position-based click model.

    ``ranked`` maps each query to the production ranking (e.g. BM25 top 20). Most sessions show
    that fixed order, a share ``explore`` shows a random slice, so positions and products vary
    enough for a click model to separate the two effects. Clicks: θ_k · attract(relevance).
    """
    rng = np.random.default_rng(seed)
    attract = np.array([0.05, 0.2, 0.5, 0.85])
    cart_p = np.array([0.0, 0.1, 0.3, 0.5])
    examine = 1.0 / np.arange(1, shown + 1) ** 0.9
    start = pd.Timestamp("2025-01-01")
    rows = []
    sid = 0
    for query, docs in ranked.items():
        rel = np.array([true_relevance(d) for d in docs])
        for _ in range(sessions_per_query):
            sid += 1
            if rng.random() < explore:
                order = rng.permutation(len(docs))[:shown]
            else:
                order = np.arange(min(shown, len(docs)))
            ts = start + pd.Timedelta(seconds=int(rng.integers(0, days * 86_400)))
            for pos, i in enumerate(order, 1):
                click = rng.random() < examine[pos - 1] * attract[rel[i]]
                cart = click and rng.random() < cart_p[rel[i]]
                buy = cart and rng.random() < 0.5
                rows.append(
                    (f"s{sid}", query, ts, docs[i].product_id, pos, int(click), int(cart), int(buy))
                )
    return pd.DataFrame(
        rows,
        columns=[
            "search_id",
            "query",
            "ts",
            "product_id",
            "position",
            "clicked",
            "added_to_cart",
            "purchased",
        ],
    )
