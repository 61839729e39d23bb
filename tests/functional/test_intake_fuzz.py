"""Property: no input bytes make the intake raise; every answer is valid SCRIPT."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eprescribe.ncpdp import SenderSoftware, parse_message
from server import admin
from server.db import Database
from server.intake.service import IntakeService, Sender
from tests.conftest import PHARMACY
from tests.support.script_samples import newrx_xml

VALID = newrx_xml(message_id="FUZZ-BASE")


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid NewRx, truncated, with flipped bytes, or with a slice cut out."""
    data = bytearray(VALID)
    kind = draw(st.sampled_from(["truncate", "flip", "cut"]))
    at = draw(st.integers(0, len(data) - 1))
    if kind == "truncate":
        return bytes(data[:at])
    if kind == "flip":
        data[at] = draw(st.integers(0, 255))
        return bytes(data)
    return bytes(data[:at] + data[at + draw(st.integers(1, 200)) :])


@pytest.fixture(scope="module")
def database_file(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("fuzz") / "hub.sqlite3"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite+aiosqlite:///{path}"

    async def seed() -> None:
        db = Database(url)
        await admin.add_pharmacy(db, **PHARMACY)
        await db.close()

    asyncio.run(seed())
    return url


def _answer(url: str, raw: bytes) -> bytes:
    async def run() -> bytes:
        db = Database(url)
        try:
            service = IntakeService(db, SenderSoftware("T", "T", "1"), pharmacy_ttl=30)
            return await service.receive(raw, Sender("fuzzer", "127.0.0.1"))
        finally:
            await db.close()

    return asyncio.run(run())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.one_of(st.binary(max_size=2048), mutated()))
def test_intake_answers_any_bytes_with_valid_script(database_file: str, raw: bytes) -> None:
    reply = parse_message(_answer(database_file, raw))
    assert reply.transaction in ("Status", "Error")
