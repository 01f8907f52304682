"""English for generated shop text: plural nouns, articles, and no word said twice.

The demo catalog glues words together (brand, model, attributes, an adjective, a noun); without
these rules it wrote "Wireless Wireless Headphones", "a bass headphones" and "This earbuds has",
which make a demo look broken however good the shop behind it is.
"""

from __future__ import annotations

from collections.abc import Iterable

#: Plural-looking nouns that are singular.
_SINGULAR_S = frozenset({"glass", "lens", "bus", "dress", "mattress", "canvas", "chess"})


def is_plural(noun: str) -> bool:
    """True for "headphones", "coffee beans", "jeans"; False for "tv", "mattress"."""
    last = noun.split()[-1].lower() if noun.split() else ""
    return last.endswith("s") and not last.endswith(("ss", "us")) and last not in _SINGULAR_S


def with_article(phrase: str) -> str:
    """ "a laptop", "an oled tv"; plurals take none ("headphones")."""
    if is_plural(phrase):
        return phrase
    return f"{'an' if phrase[:1].lower() in 'aeiou' else 'a'} {phrase}"


def verb(noun: str, singular: str, plural: str) -> str:
    """The verb form that agrees with ``noun`` ("has"/"have", "is"/"are")."""
    return plural if is_plural(noun) else singular


def this(noun: str) -> str:
    """ "this laptop", "these headphones"."""
    return f"{'these' if is_plural(noun) else 'this'} {noun}"


def without_repeats(parts: Iterable[str], keep_last: int = 1) -> list[str]:
    """Drop any part whose words all appear in a later part (the last ``keep_last`` stay).

    Later parts win because the noun comes last and must stay whole: "mechanical" before
    "mechanical keyboard" goes, "wireless" (an attribute) before "wireless" (an adjective) goes.
    """
    items = [p for p in parts if p]
    kept: list[str] = []
    seen: set[str] = set()
    for index in range(len(items) - 1, -1, -1):
        part = items[index]
        words = {w.lower() for w in part.split()}
        if index < len(items) - keep_last and words <= seen:
            continue
        kept.append(part)
        seen |= words
    return kept[::-1]
