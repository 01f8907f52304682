"""storeloop models package."""
