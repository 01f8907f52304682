"""The query set shoppers type, with the intent behind each query, and a client-side matcher.

Queries are drawn from a fixed, seeded set so that every query in the log has a known intent
and hence a true relevance for every product (``truth.query_grades``). The set mixes what real
search logs hold: bare category nouns and their synonyms, brand + noun, attribute + noun,
misspellings, words cut short, and queries for things the shop does not sell.

``KeywordIndex`` is the fallback when the server has no search endpoint yet: a browser-side
keyword match over the catalog listing, so search events exist downstream from day one.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulation import vocab
from simulation.catalog import Catalog

_TOKEN = re.compile(r"[a-z0-9]+")


@dataclass
class QuerySet:
    """Parallel lists, one entry per query; ``leaf == -1`` means no product is relevant."""

    text: list[str]
    kind: list[str]  # noun | synonym | brand | attribute | typo | partial | zero
    leaf: list[int]
    brand: list[int]
    attr_key: list[str]
    attr_value: list[str | int | bool | None]
    by_leaf: dict[int, list[int]]

    def __len__(self) -> int:
        return len(self.text)

    def to_frame(self, catalog: Catalog) -> pd.DataFrame:
        """The query table written to ``ground_truth/queries.parquet``."""
        return pd.DataFrame(
            {
                "query_id": np.arange(len(self)),
                "query": self.text,
                "kind": self.kind,
                "category": [catalog.leaf_slug(i) if i >= 0 else None for i in self.leaf],
                "brand": [catalog.brands[b] if b >= 0 else None for b in self.brand],
                "attr_key": [k or None for k in self.attr_key],
                "attr_value": [None if v is None else str(v) for v in self.attr_value],
            }
        )


def typo(word: str, rng: random.Random) -> str:
    """One keyboard slip: a dropped, doubled, swapped or replaced letter."""
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        return word[:i] + word[i + 1 :]
    if kind == 1:
        return word[:i] + word[i] + word[i:]
    if kind == 2:
        return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]
    return word[:i] + rng.choice("aeiourstnl") + word[i + 1 :]


def _attr_word(key: str, value: str | int | bool) -> str | None:
    if isinstance(value, bool):
        return key.replace("_", " ") if value else None
    if key in ("color", "material", "resolution", "roast", "tea_type", "fit"):
        return str(value)
    if key == "screen_size":
        return f"{value} inch"
    if key in ("storage_gb",):
        return f"{value}gb"
    if key == "spf":
        return f"spf {value}"
    return None


def generate_queries(catalog: Catalog, seed: int = 7, per_leaf: int = 14) -> QuerySet:
    """About ``per_leaf`` queries per leaf category plus the zero-result set."""
    rng = random.Random(f"queries:{seed}")
    qs = QuerySet([], [], [], [], [], [], defaultdict(list))
    seen: set[str] = set()

    def add(text: str, kind: str, leaf: int, brand: int = -1, key: str = "", value=None) -> None:
        text = " ".join(text.lower().split())
        if not text or text in seen:
            return
        seen.add(text)
        index = len(qs.text)
        qs.text.append(text)
        qs.kind.append(kind)
        qs.leaf.append(leaf)
        qs.brand.append(brand)
        qs.attr_key.append(key)
        qs.attr_value.append(value)
        if leaf >= 0:
            qs.by_leaf[leaf].append(index)

    for li, leaf in enumerate(catalog.leaves):
        for noun in leaf.nouns:
            add(noun, "noun" if noun == leaf.nouns[0] else "synonym", li)
        for word in vocab.QUERY_SYNONYMS.get(leaf.path[2], ()):
            add(word, "synonym", li)
        brands = sorted({int(b) for b in catalog.brand[catalog.products_in_leaf(li)]})
        for b in rng.sample(brands, min(3, len(brands))):
            add(f"{catalog.brands[b]} {rng.choice(leaf.nouns)}", "brand", li, brand=b)
        for key, values in leaf.attrs.items():
            value = rng.choice(values)
            word = _attr_word(key, value)
            if word:
                add(f"{word} {leaf.nouns[0]}", "attribute", li, key=key, value=value)
        noun = leaf.nouns[0]
        longest = max(noun.split(), key=len)
        add(noun.replace(longest, typo(longest, rng)), "typo", li)
        if brands:
            b = rng.choice(brands)
            add(f"{typo(catalog.brands[b].lower(), rng)} {noun}", "typo", li, brand=b)
        if len(longest) >= 6:
            add(noun.replace(longest, longest[: max(4, len(longest) - 3)]), "partial", li)
        trimmed = qs.by_leaf[li][per_leaf:]
        for index in trimmed:  # keep the set bounded per leaf
            qs.by_leaf[li].remove(index)
    for text in vocab.ZERO_RESULT_QUERIES:
        add(text, "zero", -1)
    qs.by_leaf = dict(qs.by_leaf)
    return qs


def tokens(text: str) -> list[str]:
    """Lower-case alphanumeric tokens; what the client-side matcher compares."""
    return _TOKEN.findall(text.lower())


def _stem(token: str) -> str:
    """Plural to singular, crudely ("sneakers" -> "sneaker"), as any shop search does."""
    return (
        token[:-1] if len(token) > 3 and token.endswith("s") and not token.endswith("ss") else token
    )


class KeywordIndex:
    """A browser-side keyword match over the catalog: AND of tokens, prefixes allowed.

    Deliberately simple (no stemming, no typo tolerance): it only has to produce plausible result
    lists until the server's search endpoint answers.
    """

    def __init__(self, catalog: Catalog) -> None:
        self._postings: dict[str, set[int]] = defaultdict(set)
        for i, title in enumerate(catalog.titles):
            leaf = catalog.leaves[int(catalog.leaf[i])]
            words = f"{title} {catalog.brands[int(catalog.brand[i])]} {leaf.name}"
            words += " " + catalog.descriptions[i] + " " + " ".join(leaf.nouns)
            for token in tokens(words):
                self._postings[_stem(token)].add(i)
        self._vocab = sorted(self._postings)

    def _match(self, token: str) -> set[int]:
        token = _stem(token)
        if token in self._postings:
            return self._postings[token]
        if len(token) < 3:
            return set()
        hits: set[int] = set()
        for word in self._vocab:
            if word.startswith(token):
                hits |= self._postings[word]
        return hits

    def search(self, query: str, limit: int = 20) -> tuple[list[int], int]:
        """Matching product indices (best first, at most ``limit``) and the total count."""
        sets = [self._match(t) for t in tokens(query)]
        if not sets:
            return [], 0
        found = set.intersection(*sets) if all(sets) else set()
        ordered = sorted(found)
        return ordered[:limit], len(ordered)
