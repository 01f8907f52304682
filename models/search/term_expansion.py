"""Fuzzy and prefix alternatives resolved to the index's own terms, once per word.

Why: tantivy runs a fuzzy or prefix query as an automaton over a field's term dictionary and
then reads *every* posting of every term the automaton accepts into a bitset before a boolean
query can intersect anything. It does so for each of the five text fields and on every
execution, and one search can execute its query three times (the AND query, the recall fill,
the facet aggregation). The exact query term is among the accepted terms, so a common word's
whole posting list was decoded again for every fuzzy alternative, however rare the other
words of the query were.

The same alternative written as a max over constant-score term queries scores identically
(tantivy scores an automaton match 1.0, times its boost) but is an ordinary union of posting
lists, which an intersection skips through. The accepted terms are found by the same automaton
(tantivy's Levenshtein DFA, with the same distance, transpositions and prefix mode) run over a
small in-memory index holding each distinct term of the fields once, so an expansion is
exactly the set tantivy would accept (pinned by ``tests/search/test_search_term_expansion.py``).
Expansions are kept per word until the fields gain a term; an alternative accepting more than
``max_terms`` terms of a field stays an automaton (a long union costs more than the bitset).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence

import tantivy

_TERM = "term"
_ID = "id"


class TermExpander:
    """The terms a fuzzy or prefix alternative accepts in each text field of one index."""

    def __init__(
        self,
        fields: Sequence[str],
        analyzer: tantivy.TextAnalyzer,
        max_terms: int = 64,
        cache_entries: int = 65_536,
    ) -> None:
        self.fields = tuple(fields)
        self.max_terms = max_terms
        self._analyzer = analyzer
        self._cache_entries = cache_entries
        self._field_terms: dict[str, set[str]] = {f: set() for f in self.fields}
        self._terms: list[str] = []  # id -> term, over all fields
        self._known: set[str] = set()
        self._expansions: dict[tuple[str, int, bool], dict[str, list[str]] | None] = {}
        self._version = 0  # bumped when terms are added: older computations are not kept
        self._lock = threading.Lock()
        builder = tantivy.SchemaBuilder()
        builder.add_text_field(_TERM, tokenizer_name="raw", index_option="basic")
        builder.add_unsigned_field(_ID, fast=True)
        self._schema = builder.build()
        self._index = tantivy.Index(self._schema)
        self._searcher = self._index.searcher()

    @classmethod
    def from_searcher(
        cls,
        searcher: tantivy.Searcher,
        fields: Sequence[str],
        analyzer: tantivy.TextAnalyzer,
        max_terms: int = 64,
    ) -> TermExpander:
        """An expander over the terms ``searcher``'s index holds in ``fields``."""
        expander = cls(fields, analyzer, max_terms)
        expander.add_terms({f: (t for t, _ in searcher.terms_with_prefix(f, "")) for f in fields})
        return expander

    def add_texts(self, texts: Iterable[Mapping[str, str]]) -> None:
        """Add the terms of documents' field texts (as indexed: analysed by ``analyzer``)."""
        per_field: dict[str, set[str]] = {f: set() for f in self.fields}
        for doc in texts:
            for field, text in doc.items():
                if field in per_field and text:
                    per_field[field].update(self._analyzer.analyze(text))
        self.add_terms(per_field)

    def add_terms(self, per_field: Mapping[str, Iterable[str]]) -> None:
        """Record terms of each field; the expansions seen so far are dropped if any is new."""
        with self._lock:
            fresh: list[str] = []
            grew = False
            for field, terms in per_field.items():
                known = self._field_terms.get(field)
                if known is None:
                    continue
                new = set(terms).difference(known)
                if not new:
                    continue
                grew = True
                known.update(new)
                fresh.extend(new.difference(self._known))
                self._known.update(new)
            if fresh:
                writer = self._index.writer(heap_size=15_000_000, num_threads=1)
                for term in dict.fromkeys(fresh):
                    doc = tantivy.Document()
                    doc.add_text(_TERM, term)
                    doc.add_unsigned(_ID, len(self._terms))
                    self._terms.append(term)
                    writer.add_document(doc)
                writer.commit()
                writer.wait_merging_threads()
                self._index.reload()
                self._searcher = self._index.searcher()
            if grew:
                self._version += 1
                self._expansions = {}

    def expand(self, field: str, term: str, distance: int, prefix: bool) -> list[str] | None:
        """Terms of ``field`` within ``distance`` edits of ``term`` (of a prefix of theirs when
        ``prefix``), transpositions counting one; None when more than ``max_terms`` match."""
        key = (term, distance, prefix)
        expansions, version = self._expansions, self._version
        found = expansions.get(key)
        if found is None and key not in expansions:
            found = self._compute(term, distance, prefix)
            if version == self._version:
                if len(expansions) >= self._cache_entries:
                    expansions.clear()
                expansions[key] = found
        if found is None:
            return None
        return found.get(field, [])

    def _compute(self, term: str, distance: int, prefix: bool) -> dict[str, list[str]] | None:
        searcher, terms = self._searcher, self._terms
        query = tantivy.Query.fuzzy_term_query(self._schema, _TERM, term, distance, True, prefix)
        cap = self.max_terms * len(self.fields)
        result = searcher.search(query, cap + 1)
        if len(result.hits) > cap:
            return None
        ids = searcher.fast_field_values(_ID, [address for _, address in result.hits])
        accepted = sorted(terms[i] for i in ids if i is not None)
        out: dict[str, list[str]] = {}
        for field, known in self._field_terms.items():
            matched = [t for t in accepted if t in known]
            if len(matched) > self.max_terms:
                return None
            if matched:
                out[field] = matched
        return out
