"""The audit entry format is part of the audit contract: migration 0006 froze the one it chained
existing entries with, and the live code must still hash entries the same way (a new format
needs a migration that re-chains, and then this test moves to that migration)."""

from __future__ import annotations

import datetime as dt
import decimal
import importlib.util
import uuid
from types import ModuleType
from typing import Any

import pytest

from server import audit
from server.db.migrate import MIGRATIONS

MIGRATION = MIGRATIONS / "versions" / "0006_audit_chain.py"


def _migration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("migration_0006", MIGRATION)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(**overrides: Any) -> dict[str, Any]:
    row = {
        "seq": 7,
        "at": dt.datetime(2026, 12, 6, 3, 4, 5, 678901, tzinfo=dt.UTC),
        "actor": "user:3f1c",
        "pharmacy_id": uuid.UUID(int=5),
        "action": "prescription.read",
        "resource_type": "prescription",
        "resource_id": "9a8b",
        "outcome": "success",
        "ip": "127.0.0.1",
        "detail": {"codes": ["DRUG_INTERACTION"], "quantity": decimal.Decimal("30.50")},
    }
    return row | overrides


@pytest.mark.parametrize(
    "row",
    [
        _row(),
        _row(pharmacy_id=None, ip=None, detail={}),
        _row(at=dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=-5)))),
        _row(detail={"note": "Zoë ㎯", "nested": {"b": 1, "a": [None, True]}}),
    ],
)
def test_the_live_format_is_the_one_migration_0006_froze(row: dict[str, Any]) -> None:
    frozen = _migration()
    assert frozen.GENESIS == audit.GENESIS
    assert frozen.HEAD_ID == audit.HEAD_ID
    assert frozen.entry_hash(audit.GENESIS, row) == audit.entry_hash(audit.GENESIS, row)


def test_the_migration_does_not_import_the_live_code() -> None:
    assert "from server" not in MIGRATION.read_text()
