"""Shared infrastructure every domain uses: email outbox, read cache, event quotas, ops report."""
