"""What the recommendation service reports about itself: the admin status and the live
online report (impressions, clicks and CTR per served version and surface, the A/B arms)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from serving.services.ml.recs.online import ab_report, live_rows

#: The service these reports describe (``service.RecsServing``, which calls them: typed loosely
#: so that the reports do not import the service that imports them).
RecsServing = Any

#: The model version named when no model serves: popularity read from the database.
POPULAR_DB = "popular-db"


def status(recs: RecsServing) -> dict[str, Any]:
    """What serves and how fresh the in-memory state is (admin endpoint, benchmarks)."""
    bundle, live = recs.current, recs.live
    cands = bundle.candidates if bundle is not None else None
    repeat = recs.repeat
    return {
        "model_version": bundle.label if bundle is not None else POPULAR_DB,
        "swaps": recs.models.swaps,
        "refused": dict(recs.refused),
        "catalog": {
            "products": len(live.table.infos),
            "version": live.version,
            "age_s": round(time.monotonic() - live.refreshed_at, 3),
            "updated_watermark": str(live.updated_watermark),
            "stock_watermark": live.stock_watermark,
        },
        "purchases_loaded": recs.purchases.loaded,
        "candidates": None
        if cands is None
        else {
            "size": cands.size,
            "users": len(cands),
            "warmed": cands.warmed,
            "warm_seconds": cands.warm_seconds,
            "hits": cands.hits,
            "computed": cands.computed,
        },
        "warming": None if recs.models.pending is None else pending_status(recs.models.pending),
        "ab_test": ab_status(recs),
        "repeat": {
            **repeat.model.summary(),
            "marked_consumable": sorted(repeat.marked_consumable),
            "repeat_categories": sorted(repeat.categories_allowed),
        },
    }


def pending_status(bundle: Any) -> dict[str, Any]:
    """The version that serves next, once its candidates are warm (``reloader.py``)."""
    cands = bundle.candidates
    return {
        "model_version": bundle.label,
        "users": None if cands is None else len(cands),
        "warmed": None if cands is None else cands.warmed,
    }


def ab_status(recs: RecsServing) -> dict[str, Any] | None:
    ab = recs.models.ab
    if not ab.active:
        return None
    challenger = recs.challenger
    return {
        "challenger_version": ab.challenger,
        "share": ab.share,
        "loaded": challenger.label if challenger is not None else None,
    }


def online_report(recs: RecsServing) -> dict[str, Any]:
    """Live impressions, clicks and CTR per served version and surface, for the ops page,
    and the A/B test's two arms side by side (recs_online.py)."""
    counts, since = recs.online.totals()
    current, challenger = recs.current, recs.challenger
    ab = recs.models.ab
    return {
        "since": datetime.fromtimestamp(since, UTC).isoformat(),
        "by_version_surface": live_rows(counts),
        "ab_test": None
        if not ab.active
        else {
            **(ab_status(recs) or {}),
            **(
                ab_report(
                    counts,
                    current.label if current is not None else None,
                    challenger.label if challenger is not None else None,
                    ab.share,
                )
                or {}
            ),
        },
    }
