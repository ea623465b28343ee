"""Storage: the SQLAlchemy models, the engine and sessions, the migrations."""
