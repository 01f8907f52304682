"""Learned query-word / title-word lifts (``features.term_association``)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from features.term_association import TermAssociation


def test_a_title_word_that_marks_the_graded_products_gets_a_positive_lift():
    # "l bracket" is sold as "angle": among each query's candidates the graded ones say angle.
    titles = [("steel", "angl"), ("steel", "shelf"), ("wood", "shelf"), ("zinc", "angl")] * 3
    relevant = np.array([w[1] == "angl" for w in titles])
    table = TermAssociation.fit(
        [["l", "bracket"]] * 2, [titles[:6], titles[6:]], [relevant[:6], relevant[6:]]
    )
    assert table.weights["bracket"]["angl"] > 0 > table.weights["bracket"]["shelf"]
    scores = table.scores(["bracket"], [("galvan", "angl"), ("pine", "shelf")])
    assert scores[0, 0] > 0 > scores[1, 0]
    assert scores[:, 1].tolist() == [1.0, 1.0]  # every query term is known
    assert TermAssociation.from_json(table.to_json()).weights == table.weights


def test_scores_sum_each_distinct_title_word_over_the_query_terms():
    rng = random.Random(2)
    words = [f"w{i}" for i in range(12)]
    weights = {q: {t: rng.uniform(-1, 1) for t in rng.sample(words, 6)} for q in ("a", "b", "c")}
    table = TermAssociation(weights)
    titles = [tuple(rng.choice(words) for _ in range(rng.randint(0, 7))) for _ in range(50)]
    query = ["a", "c", "a", "zzz"]
    got = table.scores(query, titles)
    for i, title in enumerate(titles):
        expected = sum(weights[q].get(t, 0.0) for q in ("a", "c") for t in set(title))
        assert math.isclose(got[i, 0], expected, abs_tol=1e-12)
    assert got[:, 1].tolist() == pytest.approx([2 / 3] * len(titles))
    assert not table.scores(["zzz"], titles).any()


def test_encoded_scores_equal_the_token_scores():
    """The serving path (integer pieces from the doc table) gives ``scores``' values."""
    rng = random.Random(5)
    words = [f"w{i}" for i in range(15)]
    weights = {q: {t: rng.uniform(-1, 1) for t in rng.sample(words, 7)} for q in ("a", "b")}
    weights["b"]["unseen"] = 0.5  # a lift for a word no title has
    table = TermAssociation(weights)
    token_id = {w: i for i, w in enumerate(reversed(words))}
    for _ in range(50):
        titles = [tuple(rng.choice(words) for _ in range(rng.randint(0, 6))) for _ in range(20)]
        owner = np.asarray([i for i, t in enumerate(titles) for _ in t], dtype=np.int64)
        ids = np.asarray([token_id[w] for t in titles for w in t], dtype=np.int64)
        for query in (["a"], ["b", "a", "x"], ["x"]):
            expected = table.scores(query, titles)
            got = table.scores_encoded(query, owner, ids, len(titles), token_id)
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_encoded_scores_see_words_the_vocabulary_gains_later():
    table = TermAssociation({"bracket": {"angl": 1.0, "zinc": 0.5}})
    token_id = {"angl": 0, "steel": 1}
    one = np.asarray([0], dtype=np.int64)
    assert table.scores_encoded(["bracket"], one * 0, one * 0, 1, token_id)[0, 0] == 1.0
    token_id["zinc"] = 2  # a catalog append brings a new title word
    ids = np.asarray([0, 2], dtype=np.int64)
    got = table.scores_encoded(["bracket"], np.zeros(2, dtype=np.int64), ids, 1, token_id)
    assert got[0, 0] == 1.5
