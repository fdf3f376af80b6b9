"""Persistence: SQLAlchemy models, engine, repositories, encryption at rest, migrations."""
