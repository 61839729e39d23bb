"""Shared fixtures: the real app on a real database (SQLite always; PostgreSQL when
``TELEPHARM_TEST_DATABASE_URL`` is set), with real OAuth clients and tokens."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select, text

from server import admin, audit
from server.app import create_app
from server.audit.models import AuditEvent
from server.db import Database
from server.db.migrate import upgrade
from server.models import METADATA
from server.settings import Settings

PG_URL = os.environ.get("TELEPHARM_TEST_DATABASE_URL", "")
#: the databases a database-backed test runs on: SQLite always and PostgreSQL when its URL is set;
#: TELEPHARM_TEST_BACKENDS (comma-separated) narrows that, e.g. to ``postgresql`` for a run beside
#: an embedded one that already covers SQLite (.ci/run)
BACKENDS = [
    name
    for name in ["sqlite"] + (["postgresql"] if PG_URL else [])
    if name in os.environ.get("TELEPHARM_TEST_BACKENDS", "sqlite,postgresql").split(",")
]
ISSUER = "http://127.0.0.1:8080"

#: the fixtures through which a functional test reaches the database under test
_ON_A_BACKEND = {"database_url", "migrated_postgres"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A run without SQLite among its backends (PostgreSQL only, beside an embedded run) leaves
    out the functional tests that never reach the backend: the embedded run already ran them,
    on exactly what they would run on here."""
    if "sqlite" in BACKENDS:
        return
    functional = Path(__file__).parent / "functional"
    kept, left = [], []
    for item in items:
        elsewhere = item.path.is_relative_to(functional) and not (
            _ON_A_BACKEND & set(getattr(item, "fixturenames", ()))
        )
        (left if elsewhere else kept).append(item)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "hub.sqlite3"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def migrated_postgres() -> str:
    async def reset() -> None:
        db = Database(PG_URL)
        async with db.engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await db.close()

    asyncio.run(reset())
    upgrade(PG_URL)
    return PG_URL


async def _truncate(url: str) -> None:
    db = Database(url)
    tables = ", ".join(t.name for t in METADATA.sorted_tables)
    async with db.engine.begin() as conn:
        # the audit table refuses TRUNCATE by trigger; the test superuser switches triggers off
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        await conn.execute(
            text("INSERT INTO audit_chain (id, seq, hash) VALUES (:id, 0, :genesis)"),
            {"id": audit.HEAD_ID, "genesis": audit.GENESIS},
        )
    await db.close()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "hub.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
    else:
        url = request.getfixturevalue("migrated_postgres")
        asyncio.run(_truncate(url))
        yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "var", database_url=database_url, issuer=ISSUER)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.database_url)
    yield database
    await database.close()


@pytest.fixture
async def client(aiohttp_client: Callable[..., TestClient], settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(settings))


PHARMACY = {"ncpdpid": "1234567", "npi": "1000000004", "name": "Test Pharmacy"}
OTHER_PHARMACY = {"ncpdpid": "7654321", "npi": "1111111112", "name": "Other Pharmacy"}


@dataclass
class Hub:
    """The app under test plus its operator actions, for concise tests."""

    client: TestClient
    db: Database

    async def audit_outcomes(self, action: str) -> list[str]:
        """The outcomes of the audit entries of ``action``, oldest first."""
        async with self.db.sessions() as session:
            found = await session.scalars(
                select(AuditEvent.outcome)
                .where(AuditEvent.action == action)
                .order_by(AuditEvent.id)
            )
            return list(found)

    async def pharmacy(self, **overrides: str) -> None:
        await admin.add_pharmacy(self.db, **{**PHARMACY, **overrides})

    async def machine_client(
        self, scope: str = "script:send", pharmacy: str | None = None
    ) -> admin.ClientCredentials:
        return await admin.add_client(
            self.db, name="test client", scope=scope, pharmacy_ncpdpid=pharmacy
        )

    async def token(self, credentials: admin.ClientCredentials, scope: str = "script:send") -> str:
        response = await self.client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "scope": scope},
            headers={"Authorization": basic(credentials)},
        )
        assert response.status == 200, await response.text()
        return str((await response.json())["access_token"])

    async def sender_token(self) -> str:
        return await self.token(await self.machine_client("script:send"))


def basic(credentials: admin.ClientCredentials) -> str:
    pair = f"{credentials.client_id}:{credentials.client_secret}".encode()
    return "Basic " + base64.b64encode(pair).decode()


@pytest.fixture
async def hub(client: TestClient, db: Database) -> Hub:
    return Hub(client, db)
