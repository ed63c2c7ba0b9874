"""Persistence: SQLAlchemy models, the engine, token encryption and migrations."""
