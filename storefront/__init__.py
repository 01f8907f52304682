"""storeloop storefront package."""
