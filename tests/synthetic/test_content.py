"""The demo catalog reads like a shop: no doubled words, agreeing verbs, no Python booleans."""

from __future__ import annotations

import random
import re

from simulation.catalog import generate_catalog
from simulation.context import Context
from simulation.grammar import is_plural, this, with_article, without_repeats


def test_titles_never_repeat_a_word() -> None:
    catalog = generate_catalog(7, 3000)
    for title in catalog.titles:
        words = [w.lower().strip(",") for w in title.split()]
        assert all(a != b for a, b in zip(words, words[1:], strict=False)), title
        assert "wireless wireless" not in title.lower()
        assert "mechanical mechanical" not in title.lower()


def test_descriptions_agree_and_show_no_python_values() -> None:
    catalog = generate_catalog(7, 3000)
    for text in catalog.descriptions:
        assert "True" not in text and "False" not in text, text
        assert not re.search(r"\ba (headphones|earbuds|sneakers|jeans|boots)\b", text), text
        assert not re.search(r"\b(headphones|earbuds|sneakers) has\b", text), text


def test_grammar_helpers() -> None:
    assert is_plural("in-ear headphones") and not is_plural("mattress") and not is_plural("tv")
    assert with_article("oled tv") == "an oled tv"
    assert with_article("bass headphones") == "bass headphones"
    assert this("earbuds") == "these earbuds" and this("laptop") == "this laptop"
    assert without_repeats(["wireless", "wireless", "headphones"]) == ["wireless", "headphones"]
    assert without_repeats(["mechanical", "mechanical keyboard"]) == ["mechanical keyboard"]


def test_reviews_agree_with_plural_nouns() -> None:
    world = Context.__new__(Context)
    world.catalog = generate_catalog(7, 400)
    rng = random.Random(3)
    for index in range(400):
        for rating in (1, 3, 5):
            _, body = world.review_text(rating, index, rng)
            assert not re.search(r"\b(This|this) \w+s has\b", body), body
            assert not re.search(r"\bA decent \w+s\b", body), body
