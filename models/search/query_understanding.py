"""E-commerce query rules that hold for any catalog: sizes, dimensions and units.

Shoppers type ``30x80``, ``3/4"``, ``24inch`` or ``18 gal`` where titles say ``30 in. x 80 in.``,
``3/4 in.``, ``24-Inch`` and ``18 Gal.``. The index tokenizer splits on punctuation only, so a
glued token such as ``30x80`` or ``18volt`` never meets the title's separate tokens, and a unit
written one way never meets another spelling of it. Here a mixed letter/digit word is split
into its runs (kept whole as an alternative too: some titles write model numbers glued), inch and
foot marks after a number become unit words, and a unit after a number matches its other
spellings. Nothing here is tied to one catalog: what is (vocabulary, misspellings, compounds)
is learned from the catalog by ``spelling.SpellingVocabulary``.
"""

from __future__ import annotations

import re
from functools import lru_cache

from features.text_runs import runs
from models.search.analysis import stem_word

__all__ = ["UNIT_GROUPS", "is_number", "mark_units", "runs", "unit_spellings"]

#: Spellings of one unit; matched after a number only ("foot stool" keeps its foot).
UNIT_GROUPS: tuple[tuple[str, ...], ...] = (
    ("in", "inch", "inches"),
    ("ft", "foot", "feet"),
    ("yd", "yard", "yards"),
    ("gal", "gallon", "gallons"),
    ("qt", "quart", "quarts"),
    ("oz", "ounce", "ounces"),
    ("lb", "lbs", "pound", "pounds"),
    ("v", "volt", "volts"),
    ("w", "watt", "watts"),
    ("amp", "amps", "ampere"),
    ("mm", "millimeter", "millimeters"),
    ("cm", "centimeter", "centimeters"),
    ("sq", "square"),
    ("pk", "pack"),
    ("pc", "pcs", "piece", "pieces"),
)
_INCH_MARK = re.compile(r"(\d)\s*(?:\"|''|”|″)")
_FOOT_MARK = re.compile(r"(\d)\s*(?:'|’|′)(?!\w)")


@lru_cache(maxsize=1)
def _unit_table() -> dict[str, tuple[str, ...]]:
    """Stemmed spelling -> every stemmed spelling of the same unit."""
    table: dict[str, tuple[str, ...]] = {}
    for group in UNIT_GROUPS:
        stems = tuple(dict.fromkeys(stem_word(u) for u in group))
        for stem in stems:
            table[stem] = stems
    return table


def mark_units(text: str) -> str:
    """``3/4"`` -> ``3/4 in``, ``8'`` -> ``8 ft``: the marks the tokenizer would drop."""
    return _FOOT_MARK.sub(r"\1 ft ", _INCH_MARK.sub(r"\1 in ", text))


def unit_spellings(term: str) -> tuple[str, ...]:
    """Other stemmed spellings of a unit term (empty for anything else)."""
    return tuple(t for t in _unit_table().get(term, ()) if t != term)


def is_number(term: str) -> bool:
    """Digits only: what may precede a unit."""
    return term.isdigit()
