"""Text analysis shared by indexing and querying.

The same tantivy ``TextAnalyzer`` objects analyse documents (registered on the index) and query
words (called from Python), so stemming, lowercasing and ASCII folding can never drift apart.
User text is cleaned here and turned into plain tokens; it is never handed to a query parser.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import tantivy

#: Name of the stemming analyzer registered on every tantivy index.
TEXT_ANALYZER = "sl_text"
#: Name of the non-stemming analyzer used for suggestions and spelling.
PLAIN_ANALYZER = "sl_plain"

MAX_QUERY_CHARS = 1000
MAX_QUERY_WORDS = 32
_WORD = re.compile(r"[^\W_]+")


def _builder(stem: bool) -> tantivy.TextAnalyzer:
    builder = (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
    )
    if stem:
        builder = builder.filter(tantivy.Filter.stemmer("english"))
    return builder.build()


_STEM = _builder(stem=True)
_PLAIN = _builder(stem=False)


def text_analyzer() -> tantivy.TextAnalyzer:
    """The stemming analyzer (simple tokenizer, lowercase, ASCII fold, English stemmer)."""
    return _STEM


def plain_analyzer() -> tantivy.TextAnalyzer:
    """The same chain without stemming: what users see in suggestions and "did you mean"."""
    return _PLAIN


@lru_cache(maxsize=200_000)
def stem_word(word: str) -> str:
    """Analyse one word to its index term ('' when the analyzer drops it)."""
    tokens = _STEM.analyze(word)
    return tokens[0] if tokens else ""


@lru_cache(maxsize=200_000)
def plain_word(word: str) -> str:
    """Lowercased, ASCII-folded form of one word."""
    tokens = _PLAIN.analyze(word)
    return tokens[0] if tokens else ""


def analyze(text: str) -> list[str]:
    """Index terms of a text (stemmed)."""
    return _STEM.analyze(text) if text else []


def analyze_plain(text: str) -> list[str]:
    """Unstemmed folded words of a text."""
    return _PLAIN.analyze(text) if text else []


def typo_budget(word: str) -> int:
    """Edits tolerated for a word: 0 under 5 letters, 1 up to 8, 2 beyond.

    Short words get none because one edit turns them into other real words ("cat" → "hat").
    """
    n = len(word)
    if n < 5:
        return 0
    if n <= 8:
        return 1
    return 2


def clean_query(text: str | None) -> str:
    """Normalise user text: NFKC, control/format characters to spaces, collapsed whitespace.

    Raises ``QueryTooLongError`` past ``MAX_QUERY_CHARS`` so the API can answer 4xx instead of
    spending time on a pasted document.
    """
    from models.search.errors import QueryTooLongError

    if not text:
        return ""
    if len(text) > MAX_QUERY_CHARS:
        raise QueryTooLongError(f"query is {len(text)} characters; the limit is {MAX_QUERY_CHARS}")
    text = unicodedata.normalize("NFKC", text)
    text = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in text)
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class QueryWord:
    """One user word with its forms: ``plain`` (folded), ``term`` (stemmed), typo ``budget``."""

    plain: str
    term: str
    budget: int


def raw_words(text: str) -> list[str]:
    """The first ``MAX_QUERY_WORDS`` words of cleaned text, split as the index tokenizer does."""
    return _WORD.findall(text)[:MAX_QUERY_WORDS]


def make_word(raw: str) -> QueryWord | None:
    """Analyse one raw word (None when the analyzer drops it, e.g. 40+ characters)."""
    plain = plain_word(raw)
    term = stem_word(raw)
    if plain and term:
        return QueryWord(plain=plain, term=term, budget=typo_budget(plain))
    return None


def query_words(text: str) -> list[QueryWord]:
    """Split cleaned query text into words the way the index tokenizer does."""
    return [w for w in map(make_word, raw_words(text)) if w is not None]


def levenshtein(a: str, b: str, limit: int = 3) -> int:
    """Optimal-string-alignment distance (transposition = 1), capped at ``limit + 1``.

    Capped so callers comparing against many words stop early; only small budgets matter here.
    """
    if a == b:
        return 0
    la, lb = len(a), len(b)
    if abs(la - lb) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(lb + 1))
    for i in range(1, la + 1):
        cur = [i] + [0] * lb
        best = i
        ca = a[i - 1]
        for j in range(1, lb + 1):
            cost = 0 if ca == b[j - 1] else 1
            value = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == b[j - 1]:
                value = min(value, prev2[j - 2] + 1)
            cur[j] = value
            best = min(best, value)
        if best > limit:
            return limit + 1
        prev2, prev = prev, cur
    return min(prev[lb], limit + 1)
