"""Query-time synonym expansion from a plain-text file.

Expanding at query time (not at index time) keeps the index independent of the synonym list,
so editing the list is a config change rather than a reindex.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from models.search.analysis import analyze

DEFAULT_SYNONYMS_PATH = Path(__file__).with_name("synonyms.txt")

Phrase = tuple[str, ...]


@dataclass(slots=True)
class Synonyms:
    """Maps an analysed phrase (tuple of index terms) to its alternative phrases."""

    table: dict[Phrase, set[Phrase]] = field(default_factory=dict)
    #: (table size, longest source phrase) as last measured: the query planner asks for
    #: every query word, and measuring thousands of phrases each time was ~4 % of a search.
    _longest: tuple[int, int] = field(default=(-1, 1), init=False, repr=False, compare=False)

    @property
    def max_words(self) -> int:
        """Longest source phrase, bounding how far the query matcher has to look."""
        size, longest = self._longest
        if size != len(self.table):  # phrases are only ever added (``add_group``)
            longest = max((len(k) for k in self.table), default=1)
            self._longest = (len(self.table), longest)
        return longest

    def add_group(self, sources: list[str], targets: list[str]) -> None:
        """Register ``sources`` as expanding to ``targets`` (analysed, empties ignored)."""
        src = [p for p in (tuple(analyze(s)) for s in sources) if p]
        dst = [p for p in (tuple(analyze(t)) for t in targets) if p]
        self._longest = (-1, 1)
        for phrase in src:
            alternatives = self.table.setdefault(phrase, set())
            alternatives.update(p for p in dst if p != phrase)

    def alternatives(self, phrase: Phrase) -> set[Phrase]:
        """Alternative phrases for an analysed phrase (empty set when none)."""
        return self.table.get(phrase, set())

    def as_solr_lines(self) -> list[str]:
        """Render as ``a => b, c`` lines (what the Elasticsearch synonym filter accepts)."""
        lines = []
        for source, targets in sorted(self.table.items()):
            if targets:
                rhs = ", ".join(" ".join(t) for t in sorted(targets | {source}))
                lines.append(f"{' '.join(source)} => {rhs}")
        return lines


def parse_synonyms(text: str) -> Synonyms:
    """Parse the synonyms file format documented at the top of ``synonyms.txt``."""
    synonyms = Synonyms()
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if "=>" in line:
            lhs, rhs = line.split("=>", 1)
            synonyms.add_group(lhs.split(","), rhs.split(","))
        else:
            group = [t for t in line.split(",") if t.strip()]
            synonyms.add_group(group, group)
    return synonyms


def load_synonyms(path: str | Path | None = None) -> Synonyms:
    """Load a synonyms file (the packaged default when ``path`` is None)."""
    return parse_synonyms(Path(path or DEFAULT_SYNONYMS_PATH).read_text(encoding="utf-8"))
