"""HTML highlighting with ``<mark>``: every piece of product text is escaped first.

Highlighting is done in Python against the analysed query terms (not with tantivy's snippet
generator) because fuzzy, prefix and synonym matches must light up too and the markup must be
``<mark>``; the cost is a few microseconds per word on a page of 20 hits.
"""

from __future__ import annotations

import html
import re

from models.search.analysis import levenshtein, stem_word
from models.search.retrieval import QueryPlan

_WORD = re.compile(r"[^\W_]+")


class Highlighter:
    """Decides which words of a text match a query plan."""

    def __init__(self, plan: QueryPlan) -> None:
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
        term = stem_word(word)
        if not term:
            return False
        if term in self.exact:
            return True
        if any(term.startswith(p) for p in self.prefixes):
            return True
        return any(levenshtein(term, t, d) <= d for t, d in self.fuzzy)

    def to_html(self, text: str, max_chars: int = 300) -> str:
        """Escaped ``text`` (cut at ``max_chars``) with matching words wrapped in ``<mark>``."""
        text = text[:max_chars]
        out: list[str] = []
        last = 0
        for m in _WORD.finditer(text):
            if self.matches(m.group()):
                out.append(html.escape(text[last : m.start()]))
                out.append(f"<mark>{html.escape(m.group())}</mark>")
                last = m.end()
        out.append(html.escape(text[last:]))
        return "".join(out)
