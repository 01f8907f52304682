"""The vectorised text features equal their plain per-candidate definitions.

``search_features`` computes title/brand/category match features for a whole candidate block
with numpy (it runs for the top 200 of every search). The reference below states each feature
one candidate at a time, the way docs/search.md describes them; random blocks must agree
exactly, since the ranker is trained on the same function's output.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from features.search_features import (
    FEATURE_NAMES,
    EncodedTokens,
    _budget,
    _within,
    search_features,
)

WORDS = ["headphon", "headphonx", "wireless", "wirelss", "black", "blak", "pro", "x200", "tv"]


def reference_text_features(query, title, brand, category) -> dict[str, float]:
    q = list(dict.fromkeys(query))
    nq = max(len(q), 1)
    exact = [t in title for t in q]
    fuzzy = [
        hit or any(_within(t, w, _budget(t)) for w in title)
        for t, hit in zip(q, exact, strict=True)
    ]
    k = len(query)
    phrase = k >= 2 and any(
        list(title[i : i + k]) == list(query) for i in range(len(title) - k + 1)
    )
    first = min((title.index(t) for t in q if t in title), default=len(title) + 1)
    last = max((i for i, w in enumerate(title) if w in q), default=None)
    head = [t for t in query if not t.isdigit()]
    return {
        "title_coverage": sum(exact) / nq,
        "title_fuzzy_coverage": sum(fuzzy) / nq,
        "title_phrase": float(phrase),
        "title_first_position": 1.0 / (1.0 + first),
        "brand_match": float(bool(set(brand) & set(q))),
        "category_coverage": sum(t in category for t in q) / nq,
        "title_length": float(len(title)),
        "title_last_position": 0.0 if last is None else 1.0 / (len(title) - last),
        "head_term_match": float(bool(head) and head[-1] in title),
    }


def test_block_features_match_the_per_candidate_definitions():
    rng = random.Random(3)

    def terms(n: int) -> tuple[str, ...]:
        return tuple(rng.choice(WORDS) for _ in range(n))

    for _ in range(300):
        n = rng.randint(1, 30)
        query = list(terms(rng.randint(0, 3)))
        titles = [terms(rng.randint(0, 8)) for _ in range(n)]
        if len(query) >= 2:
            titles[0] = ("pro", *query, "tv")  # make sure phrases occur
        brands = [terms(rng.randint(0, 2)) for _ in range(n)]
        categories = [terms(rng.randint(0, 3)) for _ in range(n)]
        ones = np.ones(n)
        out = search_features(
            query, ones, titles, brands, categories, ones, ones, ones, ones, ones, ones, ones, 0.0
        )
        for i in range(n):
            expected = reference_text_features(query, titles[i], brands[i], categories[i])
            got = {name: out[i, FEATURE_NAMES.index(name)] for name in expected}
            assert got == expected, (query, titles[i])


def test_retrieval_rank_follows_the_retrieval_order_not_the_row_order():
    """Rows handed over in another order (a logged search's shown products) keep the rank
    retrieval gave them; before, ``retrieval_rank`` was their position in that other order."""
    titles = [("red", "mug"), ("blue", "mug"), ("mug",), ("tea", "mug")]
    n = len(titles)
    ones, empty = np.ones(n), [()] * n
    at = FEATURE_NAMES.index("retrieval_rank")
    in_order = search_features(
        ["mug"], ones, titles, empty, empty, ones, ones, ones, ones, ones, ones, ones, 0.0
    )
    shown = [2, 0, 3, 1]  # the order a search showed them in
    reordered = search_features(
        ["mug"],
        ones,
        [titles[i] for i in shown],
        empty,
        empty,
        ones,
        ones,
        ones,
        ones,
        ones,
        ones,
        ones,
        0.0,
        ranks=np.asarray(shown),
    )
    assert reordered[:, at].tolist() == in_order[shown, at].tolist()
    assert in_order[:, at].tolist() == np.log1p(np.arange(n)).tolist()


def encode_catalog(titles: list[tuple[str, ...]]) -> EncodedTokens:
    """The titles as a catalog would hold them: ids in first-seen order over a larger
    catalog (unrelated words first, so catalog ids differ from the block's own)."""
    id_of: dict[str, int] = {}
    for word in ["zzz", "tv", "aaa", *(w for t in titles for w in t)]:
        id_of.setdefault(word, len(id_of))
    owner = [i for i, t in enumerate(titles) for _ in t]
    ids = [id_of[w] for t in titles for w in t]
    return EncodedTokens(np.asarray(owner, int), np.asarray(ids, int), list(id_of), id_of)


def test_titles_brands_and_categories_as_catalog_ids_give_the_same_features():
    rng = random.Random(4)

    def terms(n: int) -> tuple[str, ...]:
        return tuple(rng.choice([*WORDS, "unseen"]) for _ in range(n))

    for _ in range(300):
        n = rng.randint(1, 30)
        query = [w for w in terms(rng.randint(0, 4)) if w != "zzz"]
        titles = [tuple(w for w in terms(rng.randint(0, 8)) if w != "unseen") for _ in range(n)]
        if len(query) >= 2 and rng.random() < 0.5:
            titles[0] = ("pro", *query, "tv")
        brands = [terms(rng.randint(0, 2)) for _ in range(n)]
        categories = [terms(rng.randint(0, 3)) for _ in range(n)]
        x = np.arange(n, dtype=float)
        args = (brands, categories, x, x, x, x, x, x, x, 0.0)
        plain = search_features(query, x, titles, *args)
        encoded = search_features(query, x, (), *args, encoded_titles=encode_catalog(titles))
        assert np.array_equal(plain, encoded), (query, titles)
        all_encoded = search_features(
            query,
            x,
            (),
            (),
            (),
            *args[2:],
            encoded_titles=encode_catalog(titles),
            encoded_brands=encode_catalog(brands),
            encoded_categories=encode_catalog(categories),
        )
        assert np.array_equal(plain, all_encoded), (query, brands, categories)


@pytest.mark.parametrize(
    ("a", "b", "budget", "within"),
    [
        ("keyboard", "keyboard", 0, True),
        ("keybaord", "keyboard", 1, False),  # a swap is two Levenshtein edits
        ("keybaord", "keyboard", 2, True),
        ("mechanicl", "mechanical", 1, True),
        ("hamer", "hammer", 0, False),
        ("drill", "grill", 1, True),
        ("drill", "drills", 1, True),
        ("abc", "abcdef", 2, False),  # the length gap alone is over budget
    ],
)
def test_title_word_edit_budget(a: str, b: str, budget: int, within: bool) -> None:
    assert _within(a, b, budget) is within


@pytest.mark.parametrize(
    ("a", "b", "limit", "distance"),
    [
        ("keybaord", "keyboard", 3, 1),  # optimal string alignment: a swap is one edit
        ("mechanicl", "mechanical", 2, 1),
        ("sheetrock", "sheet rock", 2, 1),
        ("abcdef", "badcfe", 3, 3),
        ("abcdef", "fedcba", 2, 3),  # capped at limit + 1
        ("", "abc", 3, 3),
        ("screw", "screw", 0, 0),
    ],
)
def test_typo_distance_counts_a_swap_once_and_is_capped(
    a: str, b: str, limit: int, distance: int
) -> None:
    from models.search.analysis import levenshtein

    assert levenshtein(a, b, limit) == distance
