"""Spelling suggestions ("did you mean") from the index's own title vocabulary.

Candidates are found with a one-deletion neighbourhood index (SymSpell-style), then verified with
a capped edit distance and ranked by (distance, -document frequency). Suggesting only words that
occur in titles guarantees that following the suggestion returns products.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from models.search.analysis import QueryWord, analyze_plain, levenshtein


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


class SpellingVocabulary:
    """Title words with document frequencies and a deletion index for fast lookups."""

    def __init__(self, doc_freq: dict[str, int]) -> None:
        self.doc_freq = doc_freq
        self._by_delete: dict[str, list[str]] = defaultdict(list)
        for word in doc_freq:
            if len(word) >= 3 and word.isalpha():
                for variant in _deletes(word) | {word}:
                    self._by_delete[variant].append(word)

    @classmethod
    def from_titles(cls, titles: Iterable[str]) -> SpellingVocabulary:
        """Count, per word, the number of titles containing it."""
        counts: Counter[str] = Counter()
        for title in titles:
            counts.update(set(analyze_plain(title)))
        return cls(dict(counts))

    def correct(self, word: str, budget: int = 2) -> str | None:
        """Best known word within ``budget`` edits of ``word``; None if ``word`` is known."""
        if word in self.doc_freq or budget <= 0 or not word.isalpha():
            return None
        probes = {word} | _deletes(word)
        if budget >= 2:
            probes |= {d2 for d1 in _deletes(word) for d2 in _deletes(d1)}
        candidates = {c for probe in probes for c in self._by_delete.get(probe, ())}
        best: tuple[int, int, str] | None = None
        for cand in candidates:
            dist = levenshtein(word, cand, budget)
            if dist <= budget:
                key = (dist, -self.doc_freq[cand], cand)
                if best is None or key < best:
                    best = key
        return best[2] if best else None

    def did_you_mean(self, words: list[QueryWord]) -> str | None:
        """The query with unknown words replaced by their best correction, if any changed."""
        changed = False
        out: list[str] = []
        for word in words:
            fix = self.correct(word.plain, max(word.budget, 1 if len(word.plain) >= 4 else 0))
            changed |= fix is not None
            out.append(fix or word.plain)
        return " ".join(out) if changed else None
