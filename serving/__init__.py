"""storeloop serving package."""
