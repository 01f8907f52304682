"""Search priors with a query's own impressions left out (``features.search_priors``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.search_priors import QueryHeldOutPriors


def _impressions(rows: list[tuple[str, str, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["query", "product_id", "clicked", "purchased"])


def test_a_query_own_clicks_and_purchases_are_left_out_of_its_rows() -> None:
    log = _impressions(
        [
            ("comforter", "7", 1, 1),  # the label-making clicks of ("comforter", 7)
            ("comforter", "7", 1, 0),
            ("backpack", "7", 0, 0),
            ("backpack", "7", 1, 0),
            ("backpack", "9", 1, 0),
        ]
    )
    priors = QueryHeldOutPriors.fit(log)
    # The index's priors count every impression: 7 was clicked 3 of 4 times, bought once.
    ctr, conversion = priors.for_query(
        "comforter", ["7", "9", "11"], np.array([0.75, 1.0, 0.2]), np.array([0.25, 0.0, 0.1])
    )
    assert ctr.tolist() == [0.5, 1.0, 0.2]  # 7: only its backpack impressions; 9, 11 untouched
    assert conversion.tolist() == [0.0, 0.0, 0.1]


def test_a_product_shown_under_one_query_only_gets_no_prior_there() -> None:
    priors = QueryHeldOutPriors.fit(_impressions([("quilt", "3", 1, 1), ("quilt", "3", 1, 0)]))
    ctr, conversion = priors.for_query("quilt", ["3"], np.array([1.0]), np.array([0.5]))
    assert ctr.tolist() == [0.0] and conversion.tolist() == [0.0]
    # Another query's rows keep the prior: those clicks are not its labels.
    ctr, _ = priors.for_query("duvet", ["3"], np.array([1.0]), np.array([0.5]))
    assert ctr.tolist() == [1.0]
