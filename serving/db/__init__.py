"""Storage: SQLAlchemy tables, engine/session set-up and Alembic migrations."""
