"""HTTP layer: routers (thin), dependencies, schemas, error rendering."""
