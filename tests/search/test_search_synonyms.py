"""The synonym table's longest phrase follows groups added after it was first asked."""

from __future__ import annotations

from models.search.synonyms import Synonyms


def test_max_words_follows_added_groups() -> None:
    synonyms = Synonyms()
    assert synonyms.max_words == 1
    synonyms.add_group(["tv"], ["television"])
    assert synonyms.max_words == 1
    synonyms.add_group(["flat screen tv"], ["television"])
    assert synonyms.max_words == 3
    assert synonyms.alternatives(("flat", "screen", "tv")) == {("televis",)}
