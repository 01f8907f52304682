"""ML serving: recommendations and search from published artifacts, catalog sync to the index."""
