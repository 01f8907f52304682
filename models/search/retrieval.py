"""Backend-neutral query planning: from user words to weighted alternatives per word.

A plan is a list of groups, one per query word (or per multi-word synonym phrase). Each group
lists ways to match it (exact term, typo variant, synonym, prefix) with weights. Backends turn a
plan into their own query objects, which is how raw user text never reaches a query parser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from models.search.analysis import (
    QueryWord,
    clean_query,
    make_word,
    raw_words,
    stem_word,
    typo_budget,
)
from models.search.query_understanding import is_number, mark_units, runs, unit_spellings
from models.search.spelling import SpellingVocabulary
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
#: Cap on the spellings one glued word is tried in ("24inch": 24 in, 24 inch).
MAX_VARIANTS = 4


@dataclass(frozen=True, slots=True)
class Alternative:
    """One way of matching a group: ``terms`` are analysed index terms."""

    kind: AltKind
    terms: tuple[str, ...]
    weight: float = 1.0
    distance: int = 0  # edits (fuzzy, prefix, spelling corrections)
    slop: int = 0  # phrases: how far apart their terms may be


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
    #: Corrections of words the catalog lacks, from its title vocabulary (weight / edits).
    spelling: bool = True
    spelling_weight: float = 0.8
    #: Split run-together words, join words the catalog writes as one.
    compounds: bool = True
    #: Sizes and units: glued runs ("30x80"), inch/foot marks, unit spellings.
    units: bool = True
    #: Recall first: when the AND query has fewer hits than asked for, append OR matches.
    fill: bool = True

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
            spelling=False,
            compounds=False,
            units=False,
            fill=False,
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


def plan_query(
    text: str | None, config: RetrievalConfig, lexicon: SpellingVocabulary | None = None
) -> QueryPlan:
    """Clean ``text`` and expand it into match groups according to ``config``.

    ``lexicon`` is the index's title vocabulary: with it, words the catalog does not contain
    are corrected, split ("zeroturn") or joined with their neighbour ("sheet rock").
    """
    cleaned = clean_query(text)
    typing_last = bool(cleaned) and not (text or "").endswith((" ", "\t"))
    raws = raw_words(mark_units(cleaned) if config.units else cleaned)
    tokens = [(w, _pieces(raw, w, config)) for raw in raws if (w := make_word(raw)) is not None]
    words = [p for _, pieces in tokens for p in pieces]
    groups: list[Group] = []
    synonyms = config.synonyms
    token_words = [w for w, _ in tokens]
    i = 0
    prev_number = False
    while i < len(tokens):
        word, pieces = tokens[i]
        is_last = i == len(tokens) - 1
        matched = _synonym_phrase(token_words, i, synonyms) if synonyms else 0
        if matched > 1 and synonyms is not None:
            phrase = tuple(w.term for w in token_words[i : i + matched])
            alts = [Alternative("phrase", phrase)]
            alts += [_synonym_alt(p, config.synonym_weight) for p in synonyms.alternatives(phrase)]
            groups.append(Group(tuple(w.plain for w in token_words[i : i + matched]), alts))
            i += matched
            prev_number = False
            continue
        joined = _joined(tokens, i, config, lexicon)
        if joined is not None:
            groups.append(joined)
            i += 2
            prev_number = False
            continue
        if len(pieces) > 1:
            groups.append(_pieces_group(word, pieces, config, prev_number))
            prev_number = is_number(pieces[-1].term)
        else:
            typing = is_last and typing_last
            alts = _word_alternatives(word, config, typing, lexicon, prev_number)
            groups.append(Group((word.plain,), alts))
            prev_number = is_number(word.term)
        i += 1
    return QueryPlan(text=cleaned, words=words, groups=groups)


def _pieces(raw: str, word: QueryWord, config: RetrievalConfig) -> list[QueryWord]:
    """A glued word's letter/digit runs ("30x80" -> 30, x, 80), or the word itself."""
    if not config.units:
        return [word]
    parts = [p for p in map(make_word, runs(raw)) if p is not None]
    return parts if len(parts) > 1 else [word]


def _pieces_group(
    word: QueryWord, pieces: list[QueryWord], config: RetrievalConfig, prev_number: bool
) -> Group:
    """Match a glued word whole or as its runs in order (units in any spelling)."""
    alts = [Alternative("term", (word.term,))]
    variants: list[tuple[str, ...]] = [()]
    for n, piece in enumerate(pieces):
        after_number = is_number(pieces[n - 1].term) if n else prev_number
        forms = (piece.term, *(unit_spellings(piece.term) if after_number else ()))
        variants = [(*v, f) for v in variants for f in forms][:MAX_VARIANTS]
    alts += [Alternative("phrase", v, slop=1) for v in variants]
    return Group((word.plain,), alts)


def _joined(
    tokens: list[tuple[QueryWord, list[QueryWord]]],
    i: int,
    config: RetrievalConfig,
    lexicon: SpellingVocabulary | None,
) -> Group | None:
    """Two words the catalog writes as one ("sheet rock" -> "sheetrock"), else None."""
    if not config.compounds or lexicon is None or i + 1 >= len(tokens):
        return None
    (head, hp), (tail, tp) = tokens[i], tokens[i + 1]
    if len(hp) > 1 or len(tp) > 1:
        return None
    word = lexicon.joined(head.plain, tail.plain)
    term = stem_word(word) if word else ""
    if not term:
        return None
    alts = [Alternative("phrase", (head.term, tail.term)), Alternative("term", (term,))]
    return Group((head.plain, tail.plain), alts)


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


def _word_alternatives(
    word: QueryWord,
    config: RetrievalConfig,
    typing: bool,
    lexicon: SpellingVocabulary | None = None,
    after_number: bool = False,
) -> list[Alternative]:
    alts = [Alternative("term", (word.term,))]
    unknown = lexicon is not None and word.plain not in lexicon
    if config.fuzzy and word.budget > 0:
        alts.append(Alternative("fuzzy", (word.term,), config.fuzzy_weight, word.budget))
    if config.spelling and unknown and lexicon is not None:
        seen = {word.term}
        for fix, distance in lexicon.corrections(word.plain, word.budget):
            term = stem_word(fix)
            if term and term not in seen:
                seen.add(term)
                weight = config.spelling_weight / distance
                alts.append(Alternative("term", (term,), weight, distance))
    if config.compounds and unknown and lexicon is not None:
        parts = lexicon.split(word.plain)
        if parts is not None:
            alts.append(Alternative("phrase", tuple(stem_word(p) for p in parts)))
    if config.units and after_number:
        alts += [Alternative("term", (u,)) for u in unit_spellings(word.term)]
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
