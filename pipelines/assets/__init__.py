"""Asset modules by layer: raw (Parquet), warehouse (DuckDB), ml (features, models, search)."""
