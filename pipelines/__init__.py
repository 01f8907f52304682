"""storeloop pipelines package."""
