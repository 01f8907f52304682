"""The doc table saves incrementally and loads back exactly, facet codes included."""

from __future__ import annotations

import numpy as np
from search_catalog import CATALOG, doc

from models.search.doc_table import DocTable


def assert_same(a: DocTable, b: DocTable) -> None:
    assert a.text == b.text and a.terms == b.terms
    for name, values in a.numeric.items():
        assert np.array_equal(values, b.numeric[name]), name
    rows = np.arange(len(a))
    assert a.facets is not None and b.facets is not None
    stock, price = a.numeric["in_stock"], a.numeric["price"]
    assert a.facets.count(rows, price, stock) == b.facets.count(rows, price, stock)


def test_appends_after_a_save_and_a_load_round_trip(tmp_path) -> None:
    path = tmp_path / "table.parquet"
    table = DocTable.from_documents(CATALOG[:10])
    table.save(path)
    table.append([doc("n1", "Bamboo Yoga Block", "Zen", "sports/yoga", 990)])
    table.save(path)  # only the new row is converted
    loaded = DocTable.load(path)
    assert_same(table, loaded)
    loaded.append(CATALOG[10:])
    loaded.save(path)
    again = DocTable.load(path)
    assert_same(loaded, again)
    assert again.row_of["n1"] == 10 and len(again) == len(CATALOG) + 1
    assert again.numeric["signature"][again.row_of["n1"]] != 0


def test_an_empty_table_grows(tmp_path) -> None:
    path = tmp_path / "table.parquet"
    table = DocTable.from_documents([])
    table.save(path)
    table.append(CATALOG[:2])
    table.save(path)
    loaded = DocTable.load(path)
    assert loaded.text["product_id"] == ["p1", "p2"]
    loaded.append(CATALOG[2:3])
    loaded.save(path)
    assert DocTable.load(path).text["product_id"] == ["p1", "p2", "p3"]


def test_title_pieces_split_glued_model_numbers_as_queries_do() -> None:
    table = DocTable.from_documents(
        [doc("d1", "LG LVV6014ER 18-Volt Dryer", "LG", "home/dryers", 1)]
    )
    assert table.title_pieces[0] == ("lg", "lvv", "6014", "er", "18", "volt", "dryer")
    table.append([doc("d2", "Dryer Vent 4x8", "Acme", "home/vents", 1)])
    assert table.title_pieces[1] == ("dryer", "vent", "4", "x", "8")


def test_title_idf_counts_pieces_and_stays_current_after_appends() -> None:
    table = DocTable.from_documents([doc("d1", "LVV6014ER Dryer", "LG", "home/dryers", 1)])
    first = table.title_idf(["lvv", "dryer", "vent"])
    assert first[0] == first[1] < first[2]  # the glued model number's run is a known piece
    table.append([doc("d2", "Dryer Vent", "Acme", "home/vents", 1)])
    grown = DocTable.from_documents(
        [
            doc("d1", "LVV6014ER Dryer", "LG", "home/dryers", 1),
            doc("d2", "Dryer Vent", "Acme", "home/vents", 1),
        ]
    )
    assert table.title_idf(["lvv", "dryer", "vent"]) == grown.title_idf(["lvv", "dryer", "vent"])


def test_gathered_piece_ids_spell_the_title_pieces_of_the_asked_rows() -> None:
    table = DocTable.from_documents(CATALOG[:10])
    table.append([doc("g1", "LVV6014ER Dryer", "LG", "home/dryers", 1)])
    words = {i: w for w, i in table.piece_id.items()}
    rows = np.asarray([10, 3, 3, 0])
    owner, ids = table.gather_pieces(rows)
    for k, row in enumerate(rows.tolist()):
        assert tuple(words[i] for i in ids[owner == k].tolist()) == table.title_pieces[row]
