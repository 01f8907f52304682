"""Search priors with one query's own impressions left out, for a ranker's training rows.

A product's ``ctr_prior`` and ``conversion_prior`` (``features.warehouse.search_document_rows``)
average every search impression before a cut-off. The ranker's training labels come from the
same impressions, so on a training row (query q, product p) the prior already counts the very
clicks and purchases that make p's label for q: a leaked target. The ranker then leans on the
priors far more than they deserve, and at serving time — priors from the past only — it lifts
products clicked under *other* queries above relevant ones (on the default demo a backpack for
"comforter"). Leaving q's own impressions out of p's prior on q's rows is the usual cure for
such target leakage (leave-one-group-out encoding): the prior keeps what p did elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

_COUNTS = ("shown", "clicked", "purchased")


@dataclass(frozen=True, slots=True)
class QueryHeldOutPriors:
    """Per product and per (query, product): impressions, clicks and purchases."""

    totals: pd.DataFrame  # index product_id; columns shown, clicked, purchased
    per_query: pd.DataFrame  # index (query, product_id); same columns

    @classmethod
    def fit(cls, impressions: pd.DataFrame) -> QueryHeldOutPriors:
        """Count from an impressions frame (``query, product_id, clicked, purchased``)."""
        import pandas as pd  # a training path: serving starts without pandas

        frame = pd.DataFrame(
            {
                "query": impressions["query"].astype(str),
                "product_id": impressions["product_id"].astype(str),
                "shown": 1.0,
                "clicked": impressions["clicked"].astype(np.float64),
                "purchased": impressions["purchased"].astype(np.float64),
            }
        )
        counts = list(_COUNTS)
        return cls(
            totals=frame.groupby("product_id")[counts].sum(),
            per_query=frame.groupby(["query", "product_id"])[counts].sum(),
        )

    def for_query(
        self, query: str, product_ids: list[str], ctr: np.ndarray, conversion: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``ctr`` and ``conversion`` (the index's priors of ``product_ids``) with ``query``'s
        own impressions taken out wherever they count in them.

        Products ``query`` never showed keep the given priors; a product shown under
        ``query`` only gets 0, as a product never shown does in the warehouse.
        """
        ctr = np.array(ctr, dtype=np.float64)
        conversion = np.array(conversion, dtype=np.float64)
        if not len(product_ids):
            return ctr, conversion
        import pandas as pd  # a training path: serving starts without pandas

        keys = pd.MultiIndex.from_arrays([[str(query)] * len(product_ids), product_ids])
        own = self.per_query.reindex(keys).to_numpy()
        hit = ~np.isnan(own[:, 0])
        if not hit.any():
            return ctr, conversion
        total = self.totals.reindex([product_ids[i] for i in np.flatnonzero(hit)]).to_numpy()
        rest = total - own[hit]
        shown = rest[:, 0]
        safe = np.maximum(shown, 1.0)
        ctr[hit] = np.where(shown > 0, rest[:, 1] / safe, 0.0)
        conversion[hit] = np.where(shown > 0, rest[:, 2] / safe, 0.0)
        return ctr, conversion
