"""What a message says is stored whole: a ``From`` as long as the parser accepts round-trips,
and two that differ late are two senders (PostgreSQL once cut them to 80 characters)."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from eprescribe.ncpdp.types import PARTY_VALUE_MAX
from server.prescriptions.models import InboundMessage
from tests.conftest import Hub
from tests.functional.intake_helpers import post_script
from tests.support.script_samples import newrx_xml


async def _send(hub: Hub, token: str, message_id: str, sender: str, qualifier: str) -> bytes:
    body = newrx_xml(
        message_id=message_id, from_=sender, replace={"Header/From/@Qualifier": qualifier}
    )
    return await (await post_script(hub, body, token)).read()


async def _senders(hub: Hub) -> list[str]:
    async with hub.db.sessions() as session:
        return list(await session.scalars(select(InboundMessage.sender)))


async def test_a_from_of_the_longest_accepted_length_is_stored_whole(hub: Hub) -> None:
    await hub.pharmacy()
    address = "a" * (PARTY_VALUE_MAX - len("@direct.example")) + "@direct.example"
    reply = await _send(hub, await hub.sender_token(), "LONG-FROM", address, "DIRECT")
    assert b"<Status>" in reply
    assert f'<To Qualifier="DIRECT">{address}</To>'.encode() in reply
    assert await _senders(hub) == [f"DIRECT:{address}"]


async def test_froms_that_differ_after_80_characters_are_not_duplicates(hub: Hub) -> None:
    await hub.pharmacy()
    token = await hub.sender_token()
    message_id = uuid.uuid4().hex[:20]
    common = "9" * 90
    for last in "12":
        reply = await _send(hub, token, message_id, common + last, "D")
        assert b"<Status>" in reply, reply  # not Error 900/220
    assert sorted(await _senders(hub)) == [f"D:{common}1", f"D:{common}2"]
