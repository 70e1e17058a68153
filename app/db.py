"""Database engine, sessions and schema migrations (Alembic, run programmatically)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from app.db_locks import NamedLocks

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # noqa: ANN001 - DBAPI types
            cursor = dbapi_connection.cursor()
            # WAL lets the UI read while an ingest job writes; foreign keys make cascades real.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    # Each writer lock (app.db_locks) holds a connection of its own while held: room for those
    # beside the sessions of many concurrent requests.
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=40)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_schema(engine: Engine, locks: NamedLocks | None = None) -> None:
    """Bring the database to the newest schema; safe to call on every start, also by several
    replicas starting at once (one migrates, the others then find the schema current)."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    locks = locks or NamedLocks(engine)
    with locks.hold("schema-migration"), engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class Database:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.locks = NamedLocks(self.engine)
        upgrade_schema(self.engine, self.locks)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
