"""Acknowledgements a database failure makes unclear (PostgreSQL, through a relay the test
fails): a commit whose answer is lost, and a database that stalls past the intake's deadline.
The sender must hear the truth in time, and a resend must get a positive acknowledgement."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from eprescribe.ncpdp import Error, Message, Status, parse_message
from server.db import Database
from server.prescriptions.models import InboundMessage
from server.settings import Settings
from tests.conftest import Hub
from tests.functional.intake_helpers import post_script
from tests.support.faultproxy import FaultProxy
from tests.support.script_samples import newrx_xml

STORE_TIMEOUT = 1.5


@pytest.fixture
def relay(database_url: str) -> Iterator[FaultProxy]:
    if not database_url.startswith("postgresql"):
        pytest.skip("needs a network connection to the database to fail: PostgreSQL only")
    url = make_url(database_url)
    with FaultProxy(url.host or "127.0.0.1", url.port or 5432) as relay:
        yield relay


@pytest.fixture
def settings(settings: Settings, relay: FaultProxy) -> Settings:
    url = make_url(settings.database_url).set(port=relay.port)
    return dataclasses.replace(
        settings,
        database_url=url.render_as_string(hide_password=False),
        store_timeout=STORE_TIMEOUT,
        pharmacy_cache_ttl=3600.0,  # the receiving pharmacy is not looked up again mid-fault
    )


@pytest.fixture
async def direct(database_url: str) -> AsyncIterator[Database]:
    """The database without the relay, to see what was stored."""
    database = Database(database_url)
    yield database
    await database.close()


async def _reply(hub: Hub, body: bytes, token: str) -> Message:
    response = await post_script(hub, body, token)
    assert response.status == 200
    return parse_message(await response.read())


async def _stored(db: Database, message_id: str) -> int:
    async with db.sessions() as session:
        found = await session.scalar(
            select(func.count()).where(InboundMessage.message_id == message_id)
        )
    return int(found or 0)


async def _ready(hub: Hub) -> str:
    """A sender's token, after two messages: the intake's connection and statements are in
    place, so the next thing the database answers is a message's commit."""
    await hub.pharmacy()
    token = await hub.sender_token()
    for _ in range(2):
        reply = await _reply(hub, newrx_xml(message_id=uuid.uuid4().hex), token)
        assert reply.transaction == "Status"
    return token


def _is_status_000(reply: Message, message_id: str) -> bool:
    return (
        isinstance(reply.body, Status)
        and reply.body.code == "000"
        and reply.header.relates_to_message_id == message_id
    )


async def test_a_commit_whose_answer_is_lost_is_acknowledged(
    hub: Hub, relay: FaultProxy, direct: Database
) -> None:
    token = await _ready(hub)
    message_id = uuid.uuid4().hex
    body = newrx_xml(message_id=message_id)
    relay.drop_next_answer()
    first = await _reply(hub, body, token)
    assert relay.answers_dropped == 1
    assert await _stored(direct, message_id) == 1
    assert _is_status_000(first, message_id), first  # found out, not a blind "resend"
    assert _is_status_000(await _reply(hub, body, token), message_id)
    assert await _stored(direct, message_id) == 1


@pytest.mark.slow
async def test_a_stalled_database_is_answered_in_time_and_a_resend_learns_the_outcome(
    hub: Hub, relay: FaultProxy, direct: Database
) -> None:
    token = await _ready(hub)
    message_id = uuid.uuid4().hex
    body = newrx_xml(message_id=message_id)
    relay.stall()
    start = time.monotonic()
    try:
        reply = await asyncio.wait_for(_reply(hub, body, token), STORE_TIMEOUT + 5)
        elapsed = time.monotonic() - start
    finally:
        relay.resume()
    assert STORE_TIMEOUT <= elapsed < STORE_TIMEOUT + 1
    assert isinstance(reply.body, Error)
    assert (reply.body.code, reply.body.description_codes) == ("602", ("008",))
    assert "nothing was stored" not in (reply.body.description or "")
    assert reply.header.relates_to_message_id == message_id
    # the write went on once the database answered: the resend is acknowledged
    for _ in range(100):
        if await _stored(direct, message_id):
            break
        await asyncio.sleep(0.1)
    assert await _stored(direct, message_id) == 1
    assert _is_status_000(await _reply(hub, body, token), message_id)
