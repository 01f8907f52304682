"""The one partitioning of the lake: UTC days.

Defined once and imported by every partitioned asset, job and schedule so they cannot disagree.
``end_offset=1`` makes today a partition too, so the event sensor can land today's closed
segments within minutes instead of waiting for midnight. The first day is configurable because
a demo shop created today and a production shop with years of history need different starts.
"""

from __future__ import annotations

import os

import dagster as dg

START_DATE = os.environ.get("STORELOOP_LAKE_START_DATE", "2025-01-01")

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=START_DATE, timezone="UTC", end_offset=1, fmt="%Y-%m-%d"
)
