"""Learning-to-rank features for (query, product) pairs, shared by training and serving.

One function computes the matrix from plain arrays, so the model is trained on exactly the
numbers it sees online. Inputs are analysed (stemmed) terms; no search-engine objects leak in.
The query-intent columns (``features.query_intent``) are the ones BM25 has no counterpart for:
which category the shoppers typing this query actually went for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain

import numpy as np

from features.query_intent import INTENT_FEATURES
from features.term_association import ASSOCIATION_FEATURES

FEATURE_NAMES: tuple[str, ...] = (
    "retrieval_score",
    "retrieval_score_rel",
    "title_coverage",
    "title_fuzzy_coverage",
    "title_phrase",
    "title_first_position",
    "brand_match",
    "category_coverage",
    "log_popularity",
    "ctr_prior",
    "conversion_prior",
    "price_percentile",
    "log_price",
    "rating",
    "log_age_days",
    "in_stock",
    "title_length",
    *INTENT_FEATURES,
    *ASSOCIATION_FEATURES,
    "retrieval_rank",
    "title_idf_coverage",
    "number_coverage",
    "title_last_position",
    "head_term_match",
)
#: Features whose increase may never lower a score: matching more of the query, or a category
#: more of its searchers chose, is never worse. The constraint keeps a small click log from
#: teaching the model otherwise through noise.
INCREASING: frozenset[str] = frozenset(
    {
        "title_coverage",
        "title_fuzzy_coverage",
        "title_phrase",
        "brand_match",
        "category_coverage",
        "intent_category_share",
        "intent_parent_share",
        "term_association",
        "title_idf_coverage",
        "number_coverage",
        "head_term_match",
    }
)


_INTENT_AT = FEATURE_NAMES.index(INTENT_FEATURES[0])
_ASSOCIATION_AT = FEATURE_NAMES.index(ASSOCIATION_FEATURES[0])
_RANK_AT = FEATURE_NAMES.index("retrieval_rank")


def monotonic_constraints() -> list[int]:
    """Per feature +1 (increasing) or 0, in ``FEATURE_NAMES`` order, for the regressor."""
    return [1 if name in INCREASING else 0 for name in FEATURE_NAMES]


@lru_cache(maxsize=500_000)
def _within(a: str, b: str, budget: int) -> bool:
    """True when ``a`` and ``b`` differ by at most ``budget`` edits (capped DP, cached)."""
    if a == b:
        return True
    if budget <= 0 or abs(len(a) - len(b)) > budget:
        return False
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        if min(cur) > budget:
            return False
        prev = cur
    return prev[-1] <= budget


def _budget(term: str) -> int:
    return 0 if len(term) < 5 else (1 if len(term) <= 8 else 2)


def _encode(lists: Sequence[Sequence[str]], vocab: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Token lists as a padded id matrix (−1 = no token) and their lengths; grows ``vocab``."""
    n = len(lists)
    lengths = np.fromiter(map(len, lists), dtype=np.intp, count=n)
    tokens = list(chain.from_iterable(lists))
    for word in dict.fromkeys(tokens):
        vocab.setdefault(word, len(vocab))
    flat = np.fromiter(map(vocab.__getitem__, tokens), dtype=np.intp, count=len(tokens))
    block = np.full((n, max(int(lengths.max(initial=0)), 1)), -1, dtype=np.intp)
    block[np.arange(block.shape[1]) < lengths[:, None]] = flat  # row-major, as ``flat`` is
    return block, lengths


@dataclass(frozen=True, slots=True)
class EncodedTokens:
    """The candidates' tokens (title pieces, brand or category terms) as catalog-wide
    integer ids, kept beside the index.

    Why: turning 200 titles' token strings into ids again on every search was the largest
    part of the title features; the catalog's ids already exist. ``owner[i]`` is the
    candidate (0..n−1) of token ``ids[i]``, tokens in order, candidates in order;
    ``words[id]`` is a token's text and ``id_of`` its inverse.
    """

    owner: np.ndarray
    ids: np.ndarray
    words: Sequence[str]
    id_of: Mapping[str, int]


def _title_block(
    encoded: EncodedTokens, n: int, vocab: dict[str, int]
) -> tuple[np.ndarray, np.ndarray]:
    """``_encode`` of the titles from their catalog ids: the same padded block, query terms
    keeping their ids ``0..m−1`` and other words numbered after them (in another order than
    ``_encode`` would, which no feature depends on: ids only say which words are equal)."""
    m = len(vocab)
    lengths = np.bincount(encoded.owner, minlength=n).astype(np.intp)
    uniq, inverse = np.unique(encoded.ids, return_inverse=True)
    local = np.full(len(uniq), -1, dtype=np.intp)
    if len(uniq):
        wanted = np.fromiter((encoded.id_of.get(t, -1) for t in vocab), dtype=np.int64, count=m)
        at = np.minimum(np.searchsorted(uniq, wanted), len(uniq) - 1)
        hit = (wanted >= 0) & (uniq[at] == wanted)
        local[at[hit]] = np.flatnonzero(hit)
    others = np.flatnonzero(local < 0)
    local[others] = m + np.arange(len(others))
    for g in uniq[others].tolist():
        vocab[encoded.words[g]] = len(vocab)
    block = np.full((n, max(int(lengths.max(initial=0)), 1)), -1, dtype=np.intp)
    block[np.arange(block.shape[1]) < lengths[:, None]] = local[inverse]
    return block, lengths


def _has_term_encoded(encoded: EncodedTokens, query: Sequence[str], n: int) -> np.ndarray:
    """(candidates × m) whether each candidate's encoded tokens hold query term j."""
    m = len(query)
    found = np.zeros((n, m), dtype=bool)
    if m and len(encoded.ids):
        wanted = np.fromiter((encoded.id_of.get(t, -1) for t in query), dtype=np.int64, count=m)
        at, term = np.nonzero(encoded.ids[:, None] == wanted[None, :])
        found[encoded.owner[at], term] = True
    return found


def _has_term(block: np.ndarray, m: int) -> np.ndarray:
    """(candidates × m) whether each row of ``block`` holds query term id 0..m−1."""
    found = np.zeros((len(block), m), dtype=bool)
    rows, cols = np.nonzero((block >= 0) & (block < m))
    found[rows, block[rows, cols]] = True
    return found


def _text_features(
    query_terms: Sequence[str],
    title_terms: Sequence[Sequence[str]],
    brand_terms: Sequence[Sequence[str]],
    category_terms: Sequence[Sequence[str]],
    out: np.ndarray,
    term_idf: Sequence[float] | None = None,
    encoded: EncodedTokens | None = None,
    encoded_brands: EncodedTokens | None = None,
    encoded_categories: EncodedTokens | None = None,
) -> None:
    """Fill the title/brand/category columns of ``out`` for the whole candidate block.

    Why vectorised: this runs for the top 200 candidates of every search at serve time; the
    per-candidate Python loop it replaces took most of the rerank's CPU. Token strings become
    ids (query terms first, so "is a query term" is ``id < m``), then every feature is a few
    numpy operations over the (candidates × tokens) id matrix.
    """
    q = list(dict.fromkeys(query_terms))
    m, nq = len(q), max(len(q), 1)
    vocab = {t: i for i, t in enumerate(q)}
    if encoded is not None:
        title, lengths = _title_block(encoded, len(out), vocab)
    else:
        title, lengths = _encode(title_terms, vocab)
    in_title = (title >= 0) & (title < m)
    found = _has_term(title, m)
    out[:, 2] = found.sum(axis=1) / nq
    # Rare words say more than "in" or "x": coverage weighted by the catalog's title IDF.
    idf = np.ones(m) if term_idf is None else np.asarray(term_idf, dtype=np.float64)
    out[:, _RANK_AT + 1] = found @ idf / idf.sum() if m and idf.sum() > 0 else 0.0
    # Sizes and model numbers: a "30" query wants "30", not the "32" next to it.
    numeric = np.fromiter((t.isdigit() for t in q), dtype=bool, count=m)
    count = int(numeric.sum())
    out[:, _RANK_AT + 2] = found[:, numeric].sum(axis=1) / count if count else 1.0
    # Fuzzy: which distinct title words are within the typo budget of each query term. Only
    # words whose length is within the budget can be, so only those reach the edit distance.
    words = list(vocab)
    near = np.zeros((m, len(words) + 1), dtype=bool)  # last column: padding
    near[np.arange(m), np.arange(m)] = True  # every term is within any budget of itself
    present = np.unique(title[title >= 0])
    sizes = np.fromiter(map(len, words), dtype=np.intp, count=len(words))[present]
    for t, term in enumerate(q):
        budget = _budget(term)
        if budget:
            for w in present[np.abs(sizes - len(term)) <= budget].tolist():
                near[t, w] = _within(term, words[w], budget)
    padded = np.where(title >= 0, title, len(words))
    out[:, 3] = near[:, padded].any(axis=2).sum(axis=0) / nq
    # Phrase: the query terms, in order, at consecutive title positions.
    k, width = len(query_terms), title.shape[1]
    if k >= 2 and width >= k:
        match = np.ones((len(title), width - k + 1), dtype=bool)
        for j, term in enumerate(query_terms):
            match &= title[:, j : width - k + 1 + j] == vocab[term]
        out[:, 4] = match.any(axis=1)
    first = np.where(in_title.any(axis=1), in_title.argmax(axis=1), lengths + 1)
    out[:, 5] = 1.0 / (1.0 + first)
    if encoded_brands is not None:
        out[:, 6] = _has_term_encoded(encoded_brands, q, len(out)).any(axis=1)
    else:
        brand, _ = _encode(brand_terms, vocab)
        out[:, 6] = ((brand >= 0) & (brand < m)).any(axis=1)
    if encoded_categories is not None:
        out[:, 7] = _has_term_encoded(encoded_categories, q, len(out)).sum(axis=1) / nq
    else:
        category, _ = _encode(category_terms, vocab)
        out[:, 7] = _has_term(category, m).sum(axis=1) / nq
    out[:, 16] = lengths
    # Titles name the product type last ("Simpson Strong-Tie 12-Gauge Angle") and queries
    # usually end with it ("galvanized angle"): how close to the title's end a query term
    # matches, and whether the query's last word (numbers and units aside) is in the title.
    last = np.where(in_title.any(axis=1), width - 1 - in_title[:, ::-1].argmax(axis=1), -1)
    out[:, _RANK_AT + 3] = np.where(last >= 0, 1.0 / (lengths - last), 0.0)
    head = [t for t in query_terms if not t.isdigit()]
    if head:
        out[:, _RANK_AT + 4] = found[:, vocab[head[-1]]]


def search_features(
    query_terms: Sequence[str],
    scores: np.ndarray,
    title_terms: Sequence[Sequence[str]],
    brand_terms: Sequence[Sequence[str]],
    category_terms: Sequence[Sequence[str]],
    popularity: np.ndarray,
    ctr_prior: np.ndarray,
    conversion_prior: np.ndarray,
    price: np.ndarray,
    rating: np.ndarray,
    created_at: np.ndarray,
    in_stock: np.ndarray,
    now: float,
    intent: np.ndarray | None = None,
    association: np.ndarray | None = None,
    term_idf: Sequence[float] | None = None,
    ranks: np.ndarray | None = None,
    encoded_titles: EncodedTokens | None = None,
    encoded_brands: EncodedTokens | None = None,
    encoded_categories: EncodedTokens | None = None,
) -> np.ndarray:
    """Feature matrix (candidates × ``FEATURE_NAMES``) for one query's candidate set.

    ``price_percentile`` is relative to the candidate set, which is why features are computed per
    query rather than per product. ``intent`` holds ``QueryIntent.scores`` for the candidates
    (zeros without an intent model), ``association`` ``TermAssociation.scores`` (zeros
    without one), ``term_idf`` the title IDF of each distinct query term in order (None:
    all 1). ``ranks``: each row's 0-based position in the retrieval order (None: rows are in
    retrieval order). Reordered rows, such as a logged search's shown products, must say it,
    or ``retrieval_rank`` would be their position in that other order. ``encoded_titles``:
    the same titles as catalog ids (then ``title_terms`` is not read; the features are equal),
    ``encoded_brands`` and ``encoded_categories`` likewise.
    """
    n = len(scores)
    out = np.zeros((n, len(FEATURE_NAMES)), dtype=np.float64)
    if n == 0:
        return out
    scores = np.asarray(scores, dtype=np.float64)
    out[:, 0] = scores
    top = scores.max()
    out[:, 1] = scores / top if top > 0 else 0.0
    _text_features(
        query_terms,
        title_terms,
        brand_terms,
        category_terms,
        out,
        term_idf,
        encoded_titles,
        encoded_brands,
        encoded_categories,
    )
    out[:, _RANK_AT] = np.log1p(np.arange(n) if ranks is None else np.asarray(ranks, np.float64))
    out[:, 8] = np.log1p(np.maximum(np.asarray(popularity, dtype=np.float64), 0))
    out[:, 9] = ctr_prior
    out[:, 10] = conversion_prior
    price = np.asarray(price, dtype=np.float64)
    # Ties share their mean rank: a catalog without prices gives 0.5 everywhere, not the
    # retrieval order in disguise (which a ranker would learn and misuse on priced catalogs).
    ordered = np.sort(price)
    below = np.searchsorted(ordered, price, side="left")
    upto = np.searchsorted(ordered, price, side="right")
    out[:, 11] = (below + upto) / (2.0 * n)
    out[:, 12] = np.log1p(np.maximum(price, 0))
    out[:, 13] = rating
    age_days = np.maximum(now - np.asarray(created_at, dtype=np.float64), 0) / 86_400.0
    out[:, 14] = np.log1p(age_days)
    out[:, 15] = np.asarray(in_stock, dtype=np.float64)
    if intent is not None:
        out[:, _INTENT_AT : _INTENT_AT + len(INTENT_FEATURES)] = intent
    if association is not None:
        out[:, _ASSOCIATION_AT : _ASSOCIATION_AT + len(ASSOCIATION_FEATURES)] = association
    return out
