"""HTML highlighting with ``<mark>``: every piece of product text is escaped first.

Highlighting is done in Python against the analysed query terms (not with tantivy's snippet
generator) because fuzzy, prefix and synonym matches must light up too and the markup must be
``<mark>``; the cost is a few microseconds per word on a page of 20 hits.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

from models.search.analysis import levenshtein, stem_word
from models.search.retrieval import QueryPlan

_WORD = re.compile(r"[^\W_]+")


@lru_cache(maxsize=200_000)
def _near(term: str, target: str, distance: int) -> bool:
    """Whether a title term is a typo variant of a query term (memoised across queries:
    catalog titles share their words, and every new query's highlighter asks again)."""
    return levenshtein(term, target, distance) <= distance


class Highlighter:
    """Decides which words of a text match a query plan.

    One highlighter is reused for every request of the same query (the backend caches it
    with the results), so it remembers its verdict per word and its markup per text: titles
    of one result list share most of their words, the fuzzy check is an edit-distance
    computation in Python, and the same page of titles is marked up again on every request.
    Both memos are bounded by the texts of one query's results.
    """

    def __init__(self, plan: QueryPlan, max_texts: int = 200) -> None:
        self._seen: dict[str, bool] = {}
        self._html: dict[str, str] = {}
        self._max_texts = max_texts
        self.exact: set[str] = set()
        self.fuzzy: list[tuple[str, int]] = []
        self.prefixes: list[str] = []
        for group in plan.groups:
            for alt in group.alternatives:
                if alt.kind in ("term", "phrase"):
                    self.exact.update(alt.terms)
                elif alt.kind == "fuzzy":
                    self.fuzzy.append((alt.terms[0], alt.distance))
                elif alt.kind == "prefix":
                    self.prefixes.append(alt.terms[0])

    def matches(self, word: str) -> bool:
        """Whether one raw word of document text matches the query."""
        seen = self._seen.get(word)
        if seen is None:
            seen = self._seen[word] = self._matches(word)
        return seen

    def _matches(self, word: str) -> bool:
        term = stem_word(word)
        if not term:
            return False
        if term in self.exact:
            return True
        if any(term.startswith(p) for p in self.prefixes):
            return True
        size = len(term)
        # Lengths first: most title words are too long or short to be a typo of the term.
        return any(abs(size - len(t)) <= d and _near(term, t, d) for t, d in self.fuzzy)

    def to_html(self, text: str, max_chars: int = 300) -> str:
        """Escaped ``text`` (cut at ``max_chars``) with matching words wrapped in ``<mark>``."""
        text = text[:max_chars]
        done = self._html.get(text)
        if done is None:
            done = self._mark(text)
            if len(self._html) < self._max_texts:
                self._html[text] = done
        return done

    def _mark(self, text: str) -> str:
        matches = self.matches
        out: list[str] = []
        last = 0
        for start, end, word in _words(text):
            if matches(word):
                out.append(html.escape(text[last:start]))
                out.append(f"<mark>{html.escape(word)}</mark>")
                last = end
        if not out:
            return _escaped(text)
        out.append(html.escape(text[last:]))
        return "".join(out)


@lru_cache(maxsize=100_000)
def _words(text: str) -> tuple[tuple[int, int, str], ...]:
    """Word spans of a text (memoised: a title is split again for every query it answers)."""
    return tuple((m.start(), m.end(), m.group()) for m in _WORD.finditer(text))


@lru_cache(maxsize=100_000)
def _escaped(text: str) -> str:
    """``html.escape(text)``, memoised for texts without a match (most of a long tail's)."""
    return html.escape(text)
