"""The Alembic migrations build exactly the schema app/models.py describes, and 0003 upgrades old data."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from app.db import Database, alembic_config, make_engine
from app.models import Base


def _migrate(engine, revision: str, down: bool = False) -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def test_migrated_schema_matches_the_models(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with database.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    database.dispose()
    assert differences == []


def test_0003_keeps_existing_chunks_and_collections_and_downgrades(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    _migrate(engine, "0002")
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO collections (id, name, description, created_at) VALUES (1, 'old', '', '2026-01-01')")
        )
        connection.execute(
            text(
                "INSERT INTO documents (id, collection_id, sha256, filename, size_bytes, status, created_at, updated_at) "
                "VALUES (1, 1, 'ab', 'a.pdf', 1, 'ready', '2026-01-01', '2026-01-01')"
            )
        )
        connection.execute(
            text("INSERT INTO chunks (id, document_id, collection_id, kind, ordinal, text) VALUES (1, 1, 1, 'text', 0, 'hello')")
        )
    _migrate(engine, "head")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT text, heading_path FROM chunks")).one() == ("hello", "")
        assert connection.execute(text("SELECT chunk_tokens, chunk_overlap_tokens FROM collections")).one() == (None, None)
    _migrate(engine, "0002", down=True)
    with engine.connect() as connection:
        columns = [row[1] for row in connection.execute(text("PRAGMA table_info(chunks)"))]
        assert "heading_path" not in columns and connection.execute(text("SELECT text FROM chunks")).scalar() == "hello"
    engine.dispose()
