"""The catalog's own word list: "did you mean", typo corrections and compound splits.

Everything here is learned from the indexed titles when the index is built (``vocab.json``),
never typed in for one catalog. Candidates are found with a one-deletion neighbourhood index
(SymSpell-style), then verified with a capped edit distance and ranked by (distance, -document
frequency). Suggesting only words that occur in titles guarantees that following the
suggestion returns products.

Query planning uses the same list to repair words the catalog does not contain: the index holds
stemmed terms, so an edit-distance query on the stem of a misspelling misses ("mechanicl" is
three edits from the stem "mechan"); correcting the unstemmed word against title words first
and stemming the correction finds it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from models.search.analysis import QueryWord, analyze_plain, levenshtein

#: Shortest part a compound is split into ("lightsensor" -> "light" + "sensor").
MIN_PART = 3


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

    def __contains__(self, word: str) -> bool:
        return word in self.doc_freq

    def corrections(self, word: str, budget: int, limit: int = 3) -> list[tuple[str, int]]:
        """Up to ``limit`` known words within ``budget`` edits, best first: (word, distance).

        Empty when ``word`` is itself known: a real word is not a typo of its neighbours.
        """
        if word in self.doc_freq or budget <= 0 or not word.isalpha():
            return []
        probes = {word} | _deletes(word)
        if budget >= 2:
            probes |= {d2 for d1 in _deletes(word) for d2 in _deletes(d1)}
        candidates = {c for probe in probes for c in self._by_delete.get(probe, ())}
        found = []
        for cand in candidates:
            dist = levenshtein(word, cand, budget)
            if dist <= budget:
                found.append((dist, -self.doc_freq[cand], cand))
        found.sort()
        return [(cand, dist) for dist, _, cand in found[:limit]]

    def correct(self, word: str, budget: int = 2) -> str | None:
        """Best known word within ``budget`` edits of ``word``; None if ``word`` is known."""
        found = self.corrections(word, budget, limit=1)
        return found[0][0] if found else None

    def split(self, word: str) -> tuple[str, str] | None:
        """An unknown run-together word as two known words ("zeroturn" -> zero, turn).

        Among the split points whose both parts are title words of at least ``MIN_PART``
        letters, the one whose rarer part is most frequent wins.
        """
        if word in self.doc_freq or len(word) < 2 * MIN_PART or not word.isalpha():
            return None
        best: tuple[int, str, str] | None = None
        for i in range(MIN_PART, len(word) - MIN_PART + 1):
            head, tail = word[:i], word[i:]
            if head in self.doc_freq and tail in self.doc_freq:
                support = min(self.doc_freq[head], self.doc_freq[tail])
                if best is None or support > best[0]:
                    best = (support, head, tail)
        return None if best is None else (best[1], best[2])

    def joined(self, head: str, tail: str, min_df: int = 2) -> str | None:
        """The one title word two query words make together ("sheet rock" -> "sheetrock")."""
        word = head + tail
        if head.isalpha() and tail.isalpha() and self.doc_freq.get(word, 0) >= min_df:
            return word
        return None

    def did_you_mean(self, words: list[QueryWord]) -> str | None:
        """The query with unknown words replaced by their best correction, if any changed."""
        changed = False
        out: list[str] = []
        for word in words:
            fix = self.correct(word.plain, max(word.budget, 1 if len(word.plain) >= 4 else 0))
            changed |= fix is not None
            out.append(fix or word.plain)
        return " ".join(out) if changed else None
