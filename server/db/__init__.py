"""Database access: one async engine per process, opened and closed with the application."""

from __future__ import annotations

import decimal
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from sqlalchemy import Engine, event, text
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from ..settings import SETTINGS, Settings

log = logging.getLogger(__name__)

# SQLite in the embedded mode: WAL lets readers run beside the writer; synchronous=FULL makes
# every commit durable before the hub acknowledges a message.
_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=15000",
)


def on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling starts transactions late (reads run outside
    # them); switch it off and let SQLAlchemy's "begin" event issue BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def use_sqlite_transactions(sync_engine: Any, begin: str = "BEGIN") -> None:
    """Real SQLite transactions for ``sync_engine``: ``BEGIN IMMEDIATE`` takes the write lock
    up front (for writers that read, then write: no stale snapshot can write)."""
    event.listen(sync_engine, "connect", on_sqlite_connect)
    event.listen(sync_engine, "begin", lambda conn: conn.exec_driver_sql(begin))


#: what watches each engine this process makes (its metrics, its traces), by name: a blocking
#: engine, or an async engine's ``sync_engine``
ENGINE_HOOKS: dict[str, Callable[[Engine], None]] = {}


def _made(engine: Engine) -> None:
    for hook in ENGINE_HOOKS.values():
        hook(engine)


def json_default(value: Any) -> str:
    if isinstance(value, decimal.Decimal):
        return str(value)  # exact, as written in the message
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_dumps(value: Any) -> str:
    """JSON for JSON columns. Frozen dataclasses (the domain's value objects) serialise as
    objects of their fields, dates as ISO 8601 and decimals as exact strings."""
    return orjson.dumps(value, default=json_default).decode()


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An async engine that never puts bound parameters (patient data) into error messages."""
    parsed = make_url(url)
    options: dict[str, Any] = {
        "hide_parameters": True,
        "json_serializer": json_dumps,
        "json_deserializer": orjson.loads,
    }
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, **options)
        # IMMEDIATE: a transaction that reads, then writes (an audited read) must not find its
        # snapshot stale at the first write, which SQLite reports at once, without waiting
        use_sqlite_transactions(engine.sync_engine, "BEGIN IMMEDIATE")
    else:
        engine = create_async_engine(
            url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, **options
        )
    _made(engine.sync_engine)
    return engine


def sync_engine(url: str) -> Engine:
    """A blocking engine for workers, configured like the hub's (hidden parameters, JSON)."""
    engine = create_sync_engine(
        url,
        hide_parameters=True,
        json_serializer=json_dumps,
        # a picture reads the medications of the patient's other prescriptions: orjson reads
        # them several times faster than the standard library
        json_deserializer=orjson.loads,
        pool_pre_ping=True,
    )
    if engine.dialect.name == "sqlite":
        use_sqlite_transactions(engine, "BEGIN IMMEDIATE")
    _made(engine)
    return engine


class Database:
    """The engine and session factory of one process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: committed on success, rolled back on any exception."""
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()


def insert_ignoring_conflicts(model: Any, dialect: str) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the backends the hub runs on."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(model).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(model).on_conflict_do_nothing()


#: the process's database pool, opened by setup()'s cleanup context
DATABASE: web.AppKey[Database] = web.AppKey("database")


def setup(app: web.Application, settings: Settings) -> None:
    """The shared database pool: opened before the features that use it, closed after them."""
    app.cleanup_ctx.append(_database_ctx)


async def _database_ctx(app: web.Application) -> AsyncIterator[None]:
    database = Database(app[SETTINGS].database_url)
    app[DATABASE] = database
    yield
    await database.close()
