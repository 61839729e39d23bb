"""Status, Error and Verify posted later to the intake (``POST /ncpdp/script``) for the hub's
own outbound messages: stored as received, audited, matched by RelatesToMessageID to the
message sent to the same client, the message's delivery state moved as docs/outbound.md
says, shown on its prescription; and never answered with an Error (§6 of the standard),
whatever they are."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from eprescribe.ncpdp import (
    Party,
    ReplyContext,
    Status,
    build_error,
    build_status,
    parse_message,
)
from eprescribe.ncpdp.replies import build_verify, reply_context
from server.outbox.delivery import Deliverer
from server.outbox.models import OutboundMessage
from server.prescriptions.models import InboundMessage
from server.settings import Settings
from server.worker.checking import Checker
from tests.conftest import Hub
from tests.functional import test_outbox
from tests.functional.intake_helpers import post_script
from tests.functional.test_outbox import (
    PRESCRIBER,
    Prescriber,
    ask_the_prescriber,
    deliver_until_finished,
    newrx_from_prescriber,
    receive,
    row,
)
from tests.functional.verification_helpers import bearer

# the delivery tests' fixtures: short timeouts (the worker's checker and deliverer, the
# conftest's, take them) and the prescriber system's endpoint
settings = test_outbox.settings
prescriber = test_outbox.prescriber


async def asked(
    hub: Hub, checker: Checker, prescriber: Prescriber, settings: Settings
) -> tuple[uuid.UUID, OutboundMessage, str, str]:
    """A prescription the pharmacist asked the prescriber about: its ID, the outbound
    message, the prescriber system's token and the pharmacist's."""
    token = await newrx_from_prescriber(hub, prescriber, settings)
    rx_id = await receive(hub, token)
    assert await asyncio.to_thread(checker.check, rx_id) is not None
    alice = await ask_the_prescriber(hub, rx_id)
    async with hub.db.sessions() as session:
        message = (
            await session.scalars(
                select(OutboundMessage).where(OutboundMessage.prescription_id == rx_id)
            )
        ).one()
    return rx_id, message, token, alice


def answer_to(message: OutboundMessage, kind: str, message_id: str | None = None) -> bytes:
    """What the prescriber system posts later about ``message``: ``status``, ``status-010``,
    ``status-001``, ``verify``, ``error-CODE`` or ``error-CODE-DESCRIPTION``."""
    ctx = reply_context(parse_message(message.payload).header)
    common: dict[str, Any] = {
        "message_id": message_id or uuid.uuid4().hex,
        "sent_time": dt.datetime.now(dt.UTC),
        "software": PRESCRIBER,
    }
    if kind == "verify":
        return build_verify(ctx, **common)
    if kind.startswith("error-"):
        code, _, description_code = kind.removeprefix("error-").partition("-")
        return build_error(
            ctx,
            code=code,
            description_code=description_code or "2000",
            description="Dr Zoë Müller could not read it",
            **common,
        )
    code = kind.removeprefix("status-") if kind.startswith("status-") else "000"
    return build_status(ctx, code=code, **common)


async def post(hub: Hub, body: bytes, token: str) -> bytes:
    response = await post_script(hub, body, token)
    assert response.status == 200
    return await response.read()


def assert_status_to(answer: bytes, posted: bytes) -> None:
    """The hub's answer is a Status 000 relating to what was posted, never an Error."""
    reply = parse_message(answer)
    assert reply.transaction == "Status", answer
    assert isinstance(reply.body, Status)
    assert reply.body.code == "000"
    assert reply.header.relates_to_message_id == parse_message(posted).header.message_id


async def shown(hub: Hub, rx_id: uuid.UUID, alice: str) -> dict[str, Any]:
    response = await hub.client.get(f"/api/v1/prescriptions/{rx_id}", headers=bearer(alice))
    assert response.status == 200
    (found,) = (await response.json())["outbound"]
    return dict(found)


async def stored(hub: Hub, message_id: str) -> list[InboundMessage]:
    async with hub.db.sessions() as session:
        return list(
            await session.scalars(
                select(InboundMessage).where(InboundMessage.message_id == message_id)
            )
        )


async def inbound_count(hub: Hub) -> int:
    async with hub.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(InboundMessage)) or 0)


@pytest.mark.parametrize(
    ("kind", "reply"),
    [
        ("status", ("Status", "000")),
        ("status-010", ("Status", "010")),
        ("verify", ("Verify", "010")),
    ],
)
async def test_a_later_yes_delivers_a_message_whose_attempt_timed_out(
    hub: Hub,
    checker: Checker,
    deliverer: Deliverer,
    prescriber: Prescriber,
    settings: Settings,
    kind: str,
    reply: tuple[str, str],
) -> None:
    """The attempt reached the receiver but timed out; the receiver's Status (or Verify)
    comes later to the intake: the message is delivered, not sent again."""
    prescriber.plan = ["timeout"]
    rx_id, message, token, alice = await asked(hub, checker, prescriber, settings)
    (retry,) = await asyncio.to_thread(deliverer.deliver, message.id)
    assert retry.countdown is not None
    assert (await row(hub, message.id)).state == "retrying"

    posted = answer_to(message, kind, message_id="LATER-0001")
    assert_status_to(await post(hub, posted, token), posted)
    delivered = await row(hub, message.id)
    assert (delivered.state, delivered.attempts, delivered.last_error) == ("delivered", 1, None)
    assert (delivered.reply_type, delivered.reply_code, delivered.reply) == (*reply, posted)
    (inbound,) = await stored(hub, "LATER-0001")
    assert delivered.reply_inbound_message_id == inbound.id
    assert (inbound.raw, inbound.sha256) == (posted, hashlib.sha256(posted).hexdigest())
    assert (inbound.transaction, inbound.relates_to_message_id) == (reply[0], message.message_id)
    assert inbound.sender_client_id == message.client_id

    await asyncio.sleep(retry.countdown)
    assert await asyncio.to_thread(deliverer.deliver, message.id) == []  # finished: not sent
    assert len(prescriber.received) == 1
    view = await shown(hub, rx_id, alice)
    assert (view["state"], view["next_attempt_at"]) == ("delivered", None)
    assert view["reply"]["transaction"] == reply[0]
    assert view["reply"]["code"] == reply[1]
    assert view["reply"]["received_later"] is True
    assert await hub.audit_outcomes("script.reply") == ["success"]
    assert await hub.audit_outcomes("outbound.delivered") == ["success"]


async def test_an_error_after_delivery_dead_letters_the_message_visibly(
    hub: Hub, checker: Checker, deliverer: Deliverer, prescriber: Prescriber, settings: Settings
) -> None:
    """The receiver's transport said Status 000, its application refused the message later:
    dead, with why, for an operator; and the Error is answered with a Status."""
    rx_id, message, token, alice = await asked(hub, checker, prescriber, settings)
    await deliver_until_finished(deliverer, message.id)
    assert (await row(hub, message.id)).state == "delivered"

    posted = answer_to(message, "error-900-2000")
    assert_status_to(await post(hub, posted, token), posted)
    dead = await row(hub, message.id)
    assert (dead.state, dead.last_error) == ("dead", "Error 900/2000 after delivery")
    assert dead.delivered_at is not None  # it was delivered, then refused
    view = await shown(hub, rx_id, alice)
    assert (view["state"], view["last_error"]) == ("dead", "Error 900/2000 after delivery")
    assert (view["reply"]["transaction"], view["reply"]["code"]) == ("Error", "900")
    assert view["reply"]["received_later"] is True
    assert await hub.audit_outcomes("outbound.dead") == ["success"]

    # a Verify after that: the receiver has it after all
    again = answer_to(message, "verify")
    assert_status_to(await post(hub, again, token), again)
    assert (await row(hub, message.id)).state == "delivered"
    assert await hub.audit_outcomes("outbound.delivered") == ["success", "success"]


async def test_errors_before_the_end_follow_the_codes(
    hub: Hub, checker: Checker, deliverer: Deliverer, prescriber: Prescriber, settings: Settings
) -> None:
    """While the delivery still runs, an Error 601 (may pass) is recorded and the retries go
    on; an Error 900 ends it dead; a Status 001 changes nothing; a yes after that delivers."""
    prescriber.plan = ["500"]
    _, message, token, _ = await asked(hub, checker, prescriber, settings)
    await asyncio.to_thread(deliverer.deliver, message.id)
    assert (await row(hub, message.id)).state == "retrying"

    for kind, state, error in (
        ("error-601", "retrying", "Error 601/2000, answered later"),
        ("status-001", "retrying", "Error 601/2000, answered later"),
        ("error-900-1000", "dead", "Error 900/1000, answered later"),
        ("error-602", "dead", "Error 900/1000, answered later"),
    ):
        posted = answer_to(message, kind)
        assert_status_to(await post(hub, posted, token), posted)
        now = await row(hub, message.id)
        assert (now.state, now.last_error) == (state, error), kind
    assert len(prescriber.received) == 1
    assert await hub.audit_outcomes("script.reply") == ["success"] * 4
    assert await hub.audit_outcomes("outbound.dead") == ["success"]


async def test_unmatched_replies_are_stored_and_change_nothing(
    hub: Hub, checker: Checker, prescriber: Prescriber, settings: Settings
) -> None:
    """A reply to a MessageID the hub never sent, or to a message sent to another client,
    is stored, audited as unmatched and answered with a Status; no message moves."""
    _, message, token, _ = await asked(hub, checker, prescriber, settings)
    other = await hub.token(await hub.machine_client())

    nothing = ReplyContext(
        to=parse_message(message.payload).header.from_,
        from_=Party("D", "9999999999001"),
        relates_to_message_id="NEVER-SENT-BY-THE-HUB",
    )
    posted = build_status(
        nothing, message_id="UNMATCHED-1", sent_time=dt.datetime.now(dt.UTC), software=PRESCRIBER
    )
    assert_status_to(await post(hub, posted, token), posted)
    foreign = answer_to(message, "error-900", message_id="UNMATCHED-2")
    assert_status_to(await post(hub, foreign, other), foreign)

    assert (await row(hub, message.id)).state == "pending"
    assert [m.raw for m in await stored(hub, "UNMATCHED-1")] == [posted]
    assert [m.raw for m in await stored(hub, "UNMATCHED-2")] == [foreign]
    assert await hub.audit_outcomes("script.reply") == ["unmatched", "unmatched"]


async def test_a_resent_reply_counts_once(
    hub: Hub, checker: Checker, deliverer: Deliverer, prescriber: Prescriber, settings: Settings
) -> None:
    """The same reply twice: stored once, applied once, both answered with a Status. A
    MessageID reused with other bytes is not stored, not applied, and not answered with an
    Error (an empty 200)."""
    _, message, token, _ = await asked(hub, checker, prescriber, settings)
    await deliver_until_finished(deliverer, message.id)
    posted = answer_to(message, "error-900", message_id="ERR-ONCE")
    assert_status_to(await post(hub, posted, token), posted)
    assert_status_to(await post(hub, posted, token), posted)
    assert len(await stored(hub, "ERR-ONCE")) == 1
    assert await hub.audit_outcomes("outbound.dead") == ["success"]

    reused = answer_to(message, "verify", message_id="ERR-ONCE")
    assert await post(hub, reused, token) == b""
    assert (await row(hub, message.id)).state == "dead"
    assert [m.raw for m in await stored(hub, "ERR-ONCE")] == [posted]
    assert await hub.audit_outcomes("script.reply") == ["success"]


HOSTILE = [
    # an entity expansion in a Status: refused by the parser before anything is read
    b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaaaaaaaa">]><Message><Header/>'
    b"<Body><Status><Code>&a;</Code></Status></Body></Message>",
    # an Error code the standard does not have, namespace-prefixed
    b'<ns:Message xmlns:ns="urn:x"><ns:Header/><ns:Body> <ns:Error><ns:Code>999</ns:Code>'
    b"</ns:Error></ns:Body></ns:Message>",
    # a Verify cut short
    b"<Message><Header><MessageID>CUT</MessageID></Header><Body><Verify><VerifyStatus>",
]


@pytest.mark.parametrize("body", HOSTILE)
async def test_malformed_replies_get_no_error(
    hub: Hub, checker: Checker, prescriber: Prescriber, settings: Settings, body: bytes
) -> None:
    """A Status, Error or Verify the parser refuses is answered with an empty 200, never an
    Error (which the sender might answer in turn); nothing is stored, nothing moves."""
    _, message, token, _ = await asked(hub, checker, prescriber, settings)
    before = await inbound_count(hub)
    response = await post_script(hub, body, token)
    assert (response.status, await response.read()) == (200, b"")
    assert await inbound_count(hub) == before
    assert (await row(hub, message.id)).state == "pending"


async def test_a_reply_naming_nothing_here_is_not_answered_with_an_error(
    hub: Hub, checker: Checker, prescriber: Prescriber, settings: Settings
) -> None:
    """Unmatched and addressed to a pharmacy that is not on this hub: nowhere to store it,
    so no Status either (it would claim responsibility): an empty 200."""
    _, message, token, _ = await asked(hub, checker, prescriber, settings)
    nowhere = ReplyContext(
        to=Party("P", "7654321"), from_=Party("D", "9999999999001"), relates_to_message_id="X-1"
    )
    posted = build_error(
        nowhere,
        message_id="NOWHERE-1",
        sent_time=dt.datetime.now(dt.UTC),
        software=PRESCRIBER,
        code="900",
        description_code="1000",
        description="unknown",
    )
    assert await post(hub, posted, token) == b""
    assert await stored(hub, "NOWHERE-1") == []
    # while a transaction that is not a reply still gets its Error
    assert b"<Error>" in await post(hub, message.payload, token)
