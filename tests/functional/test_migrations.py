"""Migrations and models agree, and the schema goes down and up again cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command

from server.db.migrate import alembic_config, downgrade, upgrade
from tests.conftest import PG_URL


def _round_trip(url: str) -> None:
    upgrade(url)
    command.check(alembic_config(url))  # raises if the models need a migration
    downgrade(url, "base")
    upgrade(url)


def test_sqlite_schema_matches_models(tmp_path: Path) -> None:
    _round_trip(f"sqlite+aiosqlite:///{tmp_path / 'hub.sqlite3'}")


@pytest.mark.skipif(not PG_URL, reason="needs TELEPHARM_TEST_DATABASE_URL")
def test_postgresql_schema_matches_models(migrated_postgres: str) -> None:
    _round_trip(migrated_postgres)  # ends at head, as the other tests expect
