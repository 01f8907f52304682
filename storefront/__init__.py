"""The web shop: templates and static files; a client of the public API (nothing of ours)."""
