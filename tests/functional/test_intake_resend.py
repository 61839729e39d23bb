"""A resend of a stored message (the sender never saw its acknowledgement) gets the first
outcome again; a different message under a used MessageID is still a duplicate (900/220)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from eprescribe.ncpdp import Error, Message, parse_message
from server.prescriptions.models import InboundMessage, Prescription
from tests.conftest import Hub
from tests.functional.intake_helpers import post_script
from tests.support.script_samples import newrx_xml


async def _reply(hub: Hub, body: bytes, token: str) -> Message:
    response = await post_script(hub, body, token)
    assert response.status == 200
    return parse_message(await response.read())


async def _stored(hub: Hub, message_id: str) -> tuple[int, int]:
    async with hub.db.sessions() as session:
        messages = await session.scalar(
            select(func.count()).where(InboundMessage.message_id == message_id)
        )
        prescriptions = await session.scalar(
            select(func.count()).where(Prescription.message_id == message_id)
        )
    return int(messages or 0), int(prescriptions or 0)


@pytest.mark.parametrize(("receipt", "answer"), [(False, "Status"), (True, "Verify")])
async def test_an_identical_resend_gets_the_first_outcome_again(
    hub: Hub, receipt: bool, answer: str
) -> None:
    await hub.pharmacy()
    token = await hub.sender_token()
    message_id = uuid.uuid4().hex
    body = newrx_xml(message_id=message_id, return_receipt=receipt)
    first = await _reply(hub, body, token)
    again = await _reply(hub, body, token)
    assert (first.transaction, again.transaction) == (answer, answer)
    assert again.header.relates_to_message_id == message_id
    assert again.header.message_id not in (message_id, first.header.message_id)
    if answer == "Status":
        assert getattr(again.body, "code", None) == "000"
    assert await _stored(hub, message_id) == (1, 1)


async def test_a_different_body_under_a_used_message_id_is_still_a_duplicate(hub: Hub) -> None:
    await hub.pharmacy()
    token = await hub.sender_token()
    message_id = uuid.uuid4().hex
    assert (await _reply(hub, newrx_xml(message_id=message_id), token)).transaction == "Status"
    other = newrx_xml(message_id=message_id, drug_description="Something else 10 mg tablet")
    reply = await _reply(hub, other, token)
    assert reply.transaction == "Error"
    assert isinstance(reply.body, Error)
    assert (reply.body.code, reply.body.description_codes) == ("900", ("220",))
    assert reply.header.relates_to_message_id == message_id
    assert await _stored(hub, message_id) == (1, 1)


async def test_the_same_body_from_another_client_is_its_own_message(hub: Hub) -> None:
    await hub.pharmacy()
    message_id = uuid.uuid4().hex
    body = newrx_xml(message_id=message_id)
    assert (await _reply(hub, body, await hub.sender_token())).transaction == "Status"
    assert (await _reply(hub, body, await hub.sender_token())).transaction == "Status"
    assert await _stored(hub, message_id) == (2, 2)
