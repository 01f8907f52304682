"""Backend-neutral query planning: from user words to weighted alternatives per word.

A plan is a list of groups, one per query word (or per multi-word synonym phrase). Each group
lists ways to match it (exact term, typo variant, synonym, prefix) with weights. Backends turn a
plan into their own query objects, which is how raw user text never reaches a query parser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from models.search.analysis import QueryWord, clean_query, query_words, typo_budget
from models.search.synonyms import Synonyms

#: Field boosts: a match in the title says more about the product than one in the description.
DEFAULT_BOOSTS: dict[str, float] = {
    "title": 5.0,
    "brand": 3.0,
    "category": 2.0,
    "attributes": 1.5,
    "description": 1.0,
}
TEXT_FIELDS: tuple[str, ...] = tuple(DEFAULT_BOOSTS)

AltKind = Literal["term", "phrase", "fuzzy", "prefix"]


@dataclass(frozen=True, slots=True)
class Alternative:
    """One way of matching a group: ``terms`` are analysed index terms."""

    kind: AltKind
    terms: tuple[str, ...]
    weight: float = 1.0
    distance: int = 0


@dataclass(slots=True)
class Group:
    """Words the document has to match (in AND mode) through any of the alternatives."""

    words: tuple[str, ...]
    alternatives: list[Alternative]


@dataclass(slots=True)
class RetrievalConfig:
    """Knobs for one retrieval strategy; ``plain_bm25()`` is the evaluation baseline."""

    boosts: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_BOOSTS))
    fuzzy: bool = True
    synonyms: Synonyms | None = None
    prefix_last: bool = True
    phrase_boost: float = 2.0
    phrase_slop: int = 2
    operator: Literal["and", "or"] = "and"
    relax: bool = True
    dismax_tie: float = 0.3
    fuzzy_weight: float = 0.4
    synonym_weight: float = 0.9
    prefix_weight: float = 0.5

    @classmethod
    def plain_bm25(cls) -> RetrievalConfig:
        """Summed BM25 over all text fields, no boosts, typos, synonyms, prefixes or phrases."""
        return cls(
            boosts={name: 1.0 for name in TEXT_FIELDS},
            fuzzy=False,
            synonyms=None,
            prefix_last=False,
            phrase_boost=0.0,
            operator="or",
            relax=False,
            dismax_tie=1.0,
        )


@dataclass(slots=True)
class QueryPlan:
    """The analysed query: groups, the plain words and the terms for the phrase boost."""

    text: str
    words: list[QueryWord]
    groups: list[Group]

    @property
    def is_empty(self) -> bool:
        """True for browse requests (no usable words)."""
        return not self.groups

    @property
    def unmatchable(self) -> bool:
        """Text was typed but nothing searchable survived (only punctuation, 40+ char words).

        Such queries return no results rather than silently turning into "browse everything".
        """
        return bool(self.text) and not self.groups

    @property
    def terms(self) -> list[str]:
        """Stemmed query terms in order (for the phrase boost and LTR features)."""
        return [w.term for w in self.words]


def plan_query(text: str | None, config: RetrievalConfig) -> QueryPlan:
    """Clean ``text`` and expand it into match groups according to ``config``."""
    cleaned = clean_query(text)
    words = query_words(cleaned)
    typing_last = bool(cleaned) and not (text or "").endswith((" ", "\t"))
    groups: list[Group] = []
    synonyms = config.synonyms
    i = 0
    while i < len(words):
        matched = _synonym_phrase(words, i, synonyms) if synonyms else 0
        if matched > 1 and synonyms is not None:
            phrase = tuple(w.term for w in words[i : i + matched])
            alts = [Alternative("phrase", phrase)]
            alts += [_synonym_alt(p, config.synonym_weight) for p in synonyms.alternatives(phrase)]
            groups.append(Group(tuple(w.plain for w in words[i : i + matched]), alts))
            i += matched
            continue
        word = words[i]
        is_last = i == len(words) - 1
        alts = _word_alternatives(word, config, is_last and typing_last)
        groups.append(Group((word.plain,), alts))
        i += 1
    return QueryPlan(text=cleaned, words=words, groups=groups)


def _synonym_phrase(words: list[QueryWord], start: int, synonyms: Synonyms) -> int:
    """Length of the longest multi-word synonym source starting at ``start`` (0 if none)."""
    for length in range(min(synonyms.max_words, len(words) - start), 1, -1):
        phrase = tuple(w.term for w in words[start : start + length])
        if synonyms.alternatives(phrase):
            return length
    return 0


def _synonym_alt(phrase: tuple[str, ...], weight: float) -> Alternative:
    kind: AltKind = "term" if len(phrase) == 1 else "phrase"
    return Alternative(kind, phrase, weight)


def _word_alternatives(word: QueryWord, config: RetrievalConfig, typing: bool) -> list[Alternative]:
    alts = [Alternative("term", (word.term,))]
    if config.fuzzy and word.budget > 0:
        alts.append(Alternative("fuzzy", (word.term,), config.fuzzy_weight, word.budget))
    if config.synonyms is not None:
        for phrase in config.synonyms.alternatives((word.term,)):
            alts.append(_synonym_alt(phrase, config.synonym_weight))
    if config.prefix_last and typing and len(word.plain) >= 2:
        for prefix in _prefix_forms(word):
            budget = typo_budget(prefix) - 1 if config.fuzzy else 0
            alts.append(Alternative("prefix", (prefix,), config.prefix_weight, max(budget, 0)))
    return alts


def _prefix_forms(word: QueryWord) -> list[str]:
    """Prefix candidates: the stem (covers inflections) and the plain form when not covered."""
    forms = sorted({word.term, word.plain}, key=len)
    if len(forms) == 2 and forms[1].startswith(forms[0]):
        forms = forms[:1]
    return [f for f in forms if f.isalnum()]
