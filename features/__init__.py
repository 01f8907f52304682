"""storeloop features package."""
