"""Recommendations as the API serves them: the served model kept true to the shop."""

from serving.services.ml.recs.activity import RecentActivity, record_activity
from serving.services.ml.recs.service import RecsServing

__all__ = ["RecentActivity", "RecsServing", "record_activity"]
