"""Features, models and search assets (filled in below)."""

from __future__ import annotations

import dagster as dg

ml_assets: list[dg.AssetsDefinition] = []
