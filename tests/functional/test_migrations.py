"""Migrations and models agree, and the schema goes down and up again cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command

from server.db.migrate import alembic_config, downgrade, upgrade
from server.prescriptions import models
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


def test_the_profiles_free_text_allergies_become_entries_and_back(tmp_path: Path) -> None:
    """0033: each entry of ``patients.allergies`` becomes a free-text row of
    ``patient_allergies`` (added by nobody known); going down, the rows not removed become the
    list again."""
    import json
    import sqlite3
    import uuid

    path = tmp_path / "hub.sqlite3"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url, "0030")
    pharmacy, patient = uuid.uuid4().hex, uuid.uuid4().hex
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO pharmacies (id, ncpdpid, npi, name, created_at)"
            " VALUES (?, '1234567', '1111111112', 'Synthetic', '2026-01-01 00:00:00')",
            (pharmacy,),
        )
        db.execute(
            "INSERT INTO patients (id, pharmacy_id, last_name_key, first_name_key, date_of_birth,"
            " gender, postal_code, demographics, allergies, created_at, updated_at) VALUES"
            " (?, ?, 'synthetic', 'pat', '1980-01-01', 'U', '00000', '{}',"
            " '[\"penicillin\", \"latex\"]', '2026-01-01 00:00:00.000000',"
            " '2026-01-01 00:00:00.000000')",
            (patient, pharmacy),
        )
    upgrade(url, "0033")
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT text, code_system, added_by FROM patient_allergies ORDER BY text"
        ).fetchall()
        columns = {r[1] for r in db.execute("PRAGMA table_info(patients)")}
    assert rows == [("latex", "free_text", None), ("penicillin", "free_text", None)]
    assert "allergies" not in columns
    downgrade(url, "0032")
    with sqlite3.connect(path) as db:
        (kept,) = db.execute("SELECT allergies FROM patients").fetchone()
    assert sorted(json.loads(kept)) == ["latex", "penicillin"]


def test_the_sweep_indexes_are_written_as_the_queries_write_their_predicates() -> None:
    """The planner uses a partial index only for a query whose predicate implies the index's:
    migration 0042 repeats the models' predicates, which the sweep's queries use as they are."""
    import importlib

    migration = importlib.import_module("server.db.migrations.versions.0042_sweep_indexes")
    assert migration.UNCHECKED == models.UNCHECKED
    assert migration.REVIEWABLE == models.REVIEWABLE_STATES
