"""The fill flow on the real app and database: a technician fills an approved prescription
(scanning the stock bottle's GS1 code, counting), a pharmacist checks the product, the fill
waits in its bin and is handed over; partial fills and their completion, refills, returns to
stock, a CancelRx while filling; every refusal; RxFill to a real prescriber endpoint, read
back with the hub's own parser."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import io
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from eprescribe.ncpdp import parse_message
from eprescribe.ncpdp.outbound import CancelRxResponse, RxFill
from eprescribe.verification import VerificationError
from server.audit.models import AuditEvent
from server.db.models import utcnow
from server.dispensing import store as store_module
from server.dispensing.store import FILLS, Stored
from server.outbox.delivery import Deliverer
from server.outbox.models import OutboundMessage
from server.prescriptions.models import Prescription
from server.settings import Settings
from server.worker.checking import Checker
from tests.conftest import OTHER_PHARMACY, Hub
from tests.functional import test_outbox
from tests.functional.check_helpers import history
from tests.functional.fill_helpers import (
    LISINOPRIL,
    LISINOPRIL_20,
    LISINOPRIL_A,
    LISINOPRIL_B,
    OXYCODONE,
    approve,
    approved_directly,
    fill_detail,
    fill_queue,
    gs1,
    hand_over,
    import_products,
    label_contact,
    ok,
    ready_fill,
    receive_as,
    receive_stock,
    scan_and_count,
    sign,
    start,
    step,
    submit,
    submitted_fill,
)
from tests.functional.intake_helpers import post_script
from tests.functional.test_outbox import Prescriber, newrx_from_prescriber
from tests.functional.verification_helpers import bearer, staff
from tests.support.script_samples import cancelrx_xml

ALL = "All Fill Statuses Except Transferred"
#: the prescriber system's SCRIPT endpoint, the delivery tests' fixture
prescriber = test_outbox.prescriber


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings, outbox_timeout=2.0, outbox_retry_first=0.02, outbox_retry_max=0.05
    )


@pytest.fixture
async def products(hub: Hub, settings: Settings, tmp_path: Path) -> None:
    await asyncio.to_thread(import_products, settings, tmp_path)


@pytest.fixture
async def checker(settings: Settings, products: None) -> AsyncIterator[Checker]:
    """Made in a thread: it reads the imported products with a blocking engine, which on the
    event loop would stop the hub's own transactions from finishing (SQLite's lock, waited
    for until its busy timeout)."""
    checker = await asyncio.to_thread(Checker.from_settings, settings)
    yield checker
    await asyncio.to_thread(checker.close)


@dataclasses.dataclass
class Team:
    prescriber_token: str
    alice: str  # pharmacist who verifies
    bob: str  # pharmacist who checks products (no controlled-substance permission)
    tom: str  # technician


@pytest.fixture
async def team(hub: Hub, products: None, prescriber: Prescriber, settings: Settings) -> Team:
    token = await newrx_from_prescriber(hub, prescriber, settings)
    team = Team(
        token,
        await staff(hub, "alice"),
        await staff(hub, "bob"),
        await staff(hub, "tom", role="technician"),
    )
    await label_contact(hub)
    # the lots the flows below scan, on the shelf before anything is filled
    for ndc11, lot in ((LISINOPRIL_A, "LOT42A"), (LISINOPRIL_B, "B7"), (OXYCODONE, "LOT42A")):
        await receive_stock(hub, team.tom, ndc11, lot=lot)
    return team


async def approved(hub: Hub, checker: Checker, team: Team, **fields: Any) -> tuple[uuid.UUID, str]:
    rx_id, message_id = await receive_as(hub, team.prescriber_token, **fields)
    await approve(hub, checker, team.alice, rx_id)
    return rx_id, message_id


async def to_ready(hub: Hub, team: Team, rx_id: uuid.UUID) -> str:
    """Filled by Tom, passed by Bob: ready to hand over; the fill's ID."""
    return await ready_fill(hub, team.tom, team.bob, rx_id)


HAND_OVER = {"collected_by": "the patient", "counselling": "refused"}


async def rx_fills(hub: Hub, rx_id: uuid.UUID) -> list[tuple[str, bytes]]:
    async with hub.db.sessions() as session:
        rows = (
            await session.execute(
                select(OutboundMessage.message_type, OutboundMessage.payload)
                .where(OutboundMessage.prescription_id == rx_id)
                .order_by(OutboundMessage.position)
            )
        ).all()
    return [(t, p) for t, p in rows]


def read_rx_fill(payload: bytes) -> tuple[Any, RxFill]:
    message = parse_message(payload)
    assert message.transaction == "RxFill"
    assert isinstance(message.body, RxFill)
    return message.header, message.body


async def rx_state(hub: Hub, rx_id: uuid.UUID) -> str:
    async with hub.db.sessions() as session:
        state = await session.scalar(select(Prescription.state).where(Prescription.id == rx_id))
    assert state is not None
    return state


# -- the whole flow --------------------------------------------------------------------------


async def test_fill_partial_completion_refill_and_rxfill_to_the_prescriber(
    hub: Hub,
    checker: Checker,
    team: Team,
    prescriber: Prescriber,
    deliverer: Deliverer,
) -> None:
    rx_id, message_id = await approved(hub, checker, team, refills="1", fill_indicator=ALL)
    waiting = await fill_queue(hub, team.tom, state="waiting")
    assert [i["prescription_id"] for i in waiting["items"]] == [str(rx_id)]

    started = await ok(start(hub, team.tom, rx_id))
    assert (started["state"], started["number"], started["rx_number"]) == ("filling", 0, "0000001")
    assert started["prescription_state"] == "filling"
    fill_id = started["id"]
    # one open fill at a time
    status, body = await start(hub, team.tom, rx_id)
    assert (status, body["code"]) == (409, "fill_open")

    # another labeler's lisinopril 10 mg tablets: the same clinical drug, substitution allowed
    await ok(step(hub, team.tom, fill_id, "scan", {"text": gs1(LISINOPRIL_B, lot="B7")}))
    status, body = await step(hub, team.tom, fill_id, "submit")
    assert (status, body["code"]) == (422, "fill_incomplete")
    status, body = await step(hub, team.tom, fill_id, "quantity", {"quantity": "40"})
    assert (status, body["code"]) == (422, "partial_reason_required")
    status, body = await step(hub, team.tom, fill_id, "quantity", {"quantity": "61"})
    assert (status, body["code"]) == (422, "quantity_exceeds_owed")
    counted = await ok(
        step(hub, team.tom, fill_id, "quantity", {"quantity": "40", "reason": "short on stock"})
    )
    assert counted["partial"] is True
    await ok(submit(hub, team.tom, fill_id))
    checking = await fill_queue(hub, team.bob, state="product_check")
    assert [i["id"] for i in checking["items"]] == [fill_id]

    # a technician never checks a product; the pharmacist sends it back, then passes it
    status, body = await step(hub, team.tom, fill_id, "approve")
    assert (status, body["code"]) == (403, "pharmacist_required")
    status, body = await step(hub, team.bob, fill_id, "send-back", {"reason": "recount please"})
    assert (status, body["state"]) == (200, "filling")
    await ok(submit(hub, team.tom, fill_id))
    ready = await ok(step(hub, team.bob, fill_id, "approve"))
    assert (ready["state"], ready["prescription_state"]) == ("ready", "ready")

    await ok(step(hub, team.tom, fill_id, "bin", {"bin": "A-12"}))
    assert [i["bin"] for i in (await fill_queue(hub, team.tom, state="ready"))["items"]] == ["A-12"]
    # no signature drawn: a client's word for it is not taken
    status, body = await step(hub, team.tom, fill_id, "hand-over", {**HAND_OVER, "signature": True})
    assert (status, body["code"]) == (422, "signature_required")
    done = await hand_over(hub, team.tom, fill_id, {**HAND_OVER, "counselling": "accepted"})
    assert (done["state"], done["prescription_state"]) == ("completed", "completed")

    status, fill = await fill_detail(hub, team.tom, fill_id)
    assert status == 200
    assert fill["product"]["ndc11"] == LISINOPRIL_B
    assert (fill["product"]["lot"], fill["quantity"], fill["quantity_owed"]) == ("B7", "40", "60")
    assert fill["hand_over"]["counselling"] == "accepted"
    tom_actor, bob_actor = fill["history"][0]["actor"], fill["history"][2]["actor"]
    assert [(h["from"], h["to"], h["actor"]) for h in fill["history"]] == [
        (None, "filling", tom_actor),
        ("filling", "product_check", tom_actor),
        ("product_check", "filling", bob_actor),
        ("filling", "product_check", tom_actor),
        ("product_check", "ready", bob_actor),
        ("ready", "completed", tom_actor),
    ]
    assert fill["history"][2]["reason"] == "sent back: recount please"
    assert "partial: 40 of 60; short on stock" in fill["history"][1]["reason"]

    # the prescriber asked for every status: PartiallyDispensed, with what was dispensed
    ((kind, payload),) = await rx_fills(hub, rx_id)
    header, sent = read_rx_fill(payload)
    assert (kind, sent.status) == ("RxFill", "PartiallyDispensed")
    assert header.rx_reference_number == "0000001"
    assert header.relates_to_message_id == message_id
    assert sent.medication_dispensed is not None
    assert sent.medication_dispensed.product_code is not None
    assert sent.medication_dispensed.product_code.code == LISINOPRIL_B
    assert sent.medication_dispensed.quantity.value == Decimal(40)
    # 40 of the 60 prescribed for 30 days last 20; the equivalent product described as the
    # drug reference names it, not as the prescribed product
    prescribed = sent.medication_prescribed
    assert (prescribed.quantity.value, prescribed.days_supply) == (Decimal(60), 30)
    assert sent.medication_dispensed.days_supply == 20
    assert sent.medication_dispensed.drug_description == fill["product"]["drug"]
    assert sent.medication_dispensed.drug_db_code is None
    async with hub.db.sessions() as session:
        outbound_id = await session.scalar(
            select(OutboundMessage.id).where(OutboundMessage.prescription_id == rx_id)
        )
    assert outbound_id is not None
    await asyncio.to_thread(deliverer.deliver, outbound_id)
    assert [parse_message(b).transaction for b in prescriber.received] == ["RxFill"]

    # the completion of the partial fill: the same number, the 20 still owed
    completion = await ok(start(hub, team.tom, rx_id))
    assert (completion["number"], completion["rx_number"]) == (0, "0000001")
    status, detail = await fill_detail(hub, team.tom, completion["id"])
    assert detail["quantity_owed"] == "20"
    await scan_and_count(hub, team.tom, completion["id"], quantity="20")
    await ok(submit(hub, team.tom, completion["id"]))
    await ok(step(hub, team.bob, completion["id"], "approve"))
    await hand_over(hub, team.tom, completion["id"], HAND_OVER)

    # the one refill, through the same flow; then none is left
    refill_id = await to_ready(hub, team, rx_id)
    status, detail = await fill_detail(hub, team.tom, refill_id)
    assert (detail["number"], detail["quantity_owed"]) == (1, "60")
    await hand_over(hub, team.tom, refill_id, HAND_OVER)
    status, body = await start(hub, team.tom, rx_id)
    assert (status, body["code"]) == (409, "no_refills_left")

    statuses = [read_rx_fill(p)[1].status for _, p in await rx_fills(hub, rx_id)]
    assert statuses == ["PartiallyDispensed", "Dispensed", "Dispensed"]
    response = await hub.client.get(f"/api/v1/prescriptions/{rx_id}", headers=bearer(team.alice))
    shown = await response.json()
    assert shown["rx_number"] == "0000001"
    assert [(f["number"], f["state"], f["quantity"]) for f in shown["fills"]] == [
        (0, "completed", "40"),
        (0, "completed", "20"),
        (1, "completed", "60"),
    ]
    async with hub.db.sessions() as session:
        waiting = list(
            await session.scalars(
                select(OutboundMessage.id)
                .where(
                    OutboundMessage.prescription_id == rx_id, OutboundMessage.state != "delivered"
                )
                .order_by(OutboundMessage.position)
            )
        )
    for outbound in waiting:
        await asyncio.to_thread(deliverer.deliver, outbound)
    received = [read_rx_fill(body) for body in prescriber.received]
    assert [sent.status for _, sent in received] == statuses
    assert {header.rx_reference_number for header, _ in received} == {"0000001"}
    assert len({header.message_id for header, _ in received}) == 3
    steps = await history(hub, rx_id)
    assert steps[4:] == [
        ("in_review", "approved"),
        ("approved", "filling"),
        ("filling", "product_check"),
        ("product_check", "filling"),
        ("filling", "product_check"),
        ("product_check", "ready"),
        ("ready", "completed"),
        ("completed", "filling"),
        ("filling", "product_check"),
        ("product_check", "ready"),
        ("ready", "completed"),
        ("completed", "filling"),
        ("filling", "product_check"),
        ("product_check", "ready"),
        ("ready", "completed"),
    ]
    # every step audited, in the chain
    async with hub.db.sessions() as session:
        actions = list(
            await session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.resource_id == fill_id)
                .order_by(AuditEvent.seq)
            )
        )
    assert actions[:3] == ["fill.start", "fill.scan", "fill.submit"]
    assert "fill.read" in actions


async def test_rx_numbers_count_up_per_pharmacy_whatever_the_races(
    hub: Hub, checker: Checker, team: Team
) -> None:
    first, _ = await approved(hub, checker, team)
    second, _ = await approved(hub, checker, team)
    assert (await ok(start(hub, team.tom, second)))["rx_number"] == "0000001"
    assert (await ok(start(hub, team.tom, first)))["rx_number"] == "0000002"
    # started at once: each its own number; one prescription started twice: one fill
    more = [(await approved(hub, checker, team))[0] for _ in range(4)]
    racing = await asyncio.gather(*(start(hub, team.tom, rx) for rx in (*more, more[0])))
    statuses = sorted(status for status, _ in racing)
    assert statuses == [200, 200, 200, 200, 409]
    numbers = sorted(body["rx_number"] for status, body in racing if status == 200)
    assert numbers == ["0000003", "0000004", "0000005", "0000006"]


# -- refusals ---------------------------------------------------------------------------------


async def test_the_wrong_product_or_an_expired_lot_is_refused_with_the_reason(
    hub: Hub, checker: Checker, team: Team
) -> None:
    rx_id, _ = await approved(hub, checker, team)
    fill_id = (await ok(start(hub, team.tom, rx_id)))["id"]
    status, body = await step(hub, team.tom, fill_id, "scan", {"text": gs1(LISINOPRIL_20)})
    assert (status, body["code"]) == (422, "wrong_product")
    assert "lisinopril 20 MG" in body["detail"]
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    status, body = await step(
        hub, team.tom, fill_id, "scan", {"text": gs1(LISINOPRIL_A, lot="OLD1", expiry=yesterday)}
    )
    assert (status, body["code"]) == (422, "lot_expired")
    soon = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=10)  # before the 30-day supply ends
    await receive_stock(hub, team.tom, LISINOPRIL_A, lot="SOON1", expiry=soon)
    status, body = await step(
        hub, team.tom, fill_id, "scan", {"text": gs1(LISINOPRIL_A, lot="SOON1", expiry=soon)}
    )
    assert (status, body["code"]) == (422, "lot_expires_too_soon")
    status, body = await step(hub, team.tom, fill_id, "scan", {"text": "not a code"})
    assert (status, body["code"]) == (422, "scan_unreadable")
    status, body = await step(hub, team.tom, fill_id, "scan", {"text": "RX0000999"})
    assert (status, body["code"]) == (422, "not_a_product")
    # the label of this very prescription is recognised as its own, not taken for a product
    status, body = await step(hub, team.tom, fill_id, "scan", {"text": "RX0000001"})
    assert (status, body["code"]) == (422, "own_label")
    await ok(step(hub, team.tom, fill_id, "scan", {"text": gs1(LISINOPRIL_A)}))
    assert await hub.audit_outcomes("fill.scan") == ["refused"] * 6 + ["success"]


async def test_an_equivalent_is_refused_when_the_prescriber_asked_for_no_substitution(
    hub: Hub, checker: Checker, team: Team
) -> None:
    rx_id, _ = await approved(hub, checker, team, substitutions="1")
    fill_id = (await ok(start(hub, team.tom, rx_id)))["id"]
    status, body = await step(hub, team.tom, fill_id, "scan", {"text": gs1(LISINOPRIL_B)})
    assert (status, body["code"]) == (422, "substitution_not_permitted")
    await ok(step(hub, team.tom, fill_id, "scan", {"text": gs1(LISINOPRIL_A)}))


async def test_a_controlled_substance_needs_the_permission_and_an_identity_check(
    hub: Hub, team: Team
) -> None:
    rx_id, _ = await receive_as(
        hub,
        team.prescriber_token,
        controlled=True,
        drug_description="oxycodone hydrochloride 5 MG Oral Tablet",
        ndc=OXYCODONE,
    )
    await approved_directly(hub, rx_id)
    carol = await staff(hub, "carol", controlled=True)
    fill_id = await submitted_fill(hub, team.tom, rx_id, ndc=OXYCODONE)
    status, body = await step(hub, team.bob, fill_id, "approve")
    assert (status, body["code"]) == (403, "controlled_substance_permission")
    await ok(step(hub, carol, fill_id, "approve"))
    await sign(hub, team.tom, fill_id)
    status, body = await step(hub, team.tom, fill_id, "hand-over", HAND_OVER)
    assert (status, body["code"]) == (422, "identity_check_required")
    by_video = {**HAND_OVER, "id_checked": True, "counselling": "video"}
    status, body = await step(hub, team.tom, fill_id, "hand-over", by_video)
    assert (status, body["code"]) == (422, "consult_required")
    status, body = await step(
        hub, team.tom, fill_id, "hand-over", {**by_video, "consult_id": str(uuid.uuid4())}
    )
    assert (status, body["code"]) == (422, "consult_unknown")
    await ok(step(hub, team.tom, fill_id, "hand-over", {**HAND_OVER, "id_checked": True}))


async def test_a_pharmacist_does_not_check_a_fill_of_their_own(
    hub: Hub, checker: Checker, team: Team
) -> None:
    rx_id, _ = await approved(hub, checker, team)
    fill_id = await submitted_fill(hub, team.bob, rx_id)
    status, body = await step(hub, team.bob, fill_id, "approve")
    assert (status, body["code"]) == (403, "own_fill")
    await ok(step(hub, team.alice, fill_id, "approve"))


async def test_who_did_any_filling_step_does_not_check_it(
    hub: Hub, checker: Checker, team: Team
) -> None:
    """Started by a technician, scanned, counted and submitted by a pharmacist: that
    pharmacist filled it, whoever pressed start."""
    rx_id, _ = await approved(hub, checker, team)
    fill_id = (await ok(start(hub, team.tom, rx_id)))["id"]
    await scan_and_count(hub, team.bob, fill_id)
    await ok(submit(hub, team.tom, fill_id))
    status, body = await step(hub, team.bob, fill_id, "approve")
    assert (status, body["code"]) == (403, "own_fill")
    await ok(step(hub, team.alice, fill_id, "approve"))


async def test_a_prescription_past_its_last_fill_day_is_not_filled(
    hub: Hub, checker: Checker, team: Team
) -> None:
    """Approved while valid, then not filled until a year and more after it was written
    (a refill, typically): the fill is refused, as the checks would have at receipt."""
    rx_id, _ = await approved(hub, checker, team)
    written = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=400)
    async with hub.db.transaction() as session:
        await session.execute(
            update(Prescription).where(Prescription.id == rx_id).values(written_date=written)
        )
    status, body = await start(hub, team.tom, rx_id)
    assert (status, body["code"]) == (409, "prescription_expired")
    assert (written + dt.timedelta(days=365)).isoformat() in body["detail"]


#: a body every step would take (each reads its own fields)
ANY_STEP = {"text": "x", "quantity": "1", "reason": "x", "bin": "x", **HAND_OVER}
#: what another pharmacy's staff may try on a fill: (method, path, body); each is 404
ELSEWHERE: tuple[tuple[str, str, dict[str, Any] | None], ...] = (
    ("GET", "/api/v1/fills/{fill}", None),
    *(
        ("POST", f"/api/v1/fills/{{fill}}/{name}", ANY_STEP)
        for name in (
            "scan",
            "quantity",
            "submit",
            "approve",
            "send-back",
            "bin",
            "hand-over",
            "return-to-stock",
        )
    ),
    ("POST", "/api/v1/prescriptions/{rx}/fills", {}),
)


async def test_other_pharmacies_fills_answer_404(hub: Hub, checker: Checker, team: Team) -> None:
    rx_id, _ = await approved(hub, checker, team)
    fill_id = (await ok(start(hub, team.tom, rx_id)))["id"]
    await hub.pharmacy(**OTHER_PHARMACY)
    mallory = await staff(hub, "mallory", pharmacy=OTHER_PHARMACY["ncpdpid"], controlled=True)
    for method, path, body in ELSEWHERE:
        url = path.format(fill=fill_id, rx=rx_id)
        response = await hub.client.request(method, url, json=body, headers=bearer(mallory))
        answer = await response.json()
        assert (response.status, answer["code"]) == (404, "not_found"), (method, path)
    for state in ("filling", "waiting"):
        assert (await fill_queue(hub, mallory, state=state))["items"] == []
    assert (await fill_detail(hub, team.tom, fill_id))[0] == 200


# -- returned to stock, cancelled -------------------------------------------------------------


async def test_a_fill_not_collected_in_time_goes_back_to_stock_and_is_filled_again(
    hub: Hub, checker: Checker, team: Team
) -> None:
    rx_id, _ = await approved(hub, checker, team, fill_indicator="Not Dispensed")
    fill_id = await to_ready(hub, team, rx_id)
    status, body = await step(hub, team.tom, fill_id, "return-to-stock")
    assert (status, body["code"]) == (409, "too_early")
    store = hub.client.app[FILLS]
    assert await store.sweep(utcnow() + dt.timedelta(days=13)) == 0
    assert await store.sweep(utcnow() + dt.timedelta(days=15)) == 1
    status, fill = await fill_detail(hub, team.tom, fill_id)
    assert (fill["state"], fill["prescription_state"]) == ("returned_to_stock", "returned_to_stock")
    assert fill["history"][-1]["actor"] == "system:return_to_stock"
    ((_, payload),) = await rx_fills(hub, rx_id)
    _, sent = read_rx_fill(payload)
    assert (sent.status, sent.medication_dispensed) == ("NotDispensed", None)
    assert [
        i["prescription_id"] for i in (await fill_queue(hub, team.tom, state="waiting"))["items"]
    ] == [str(rx_id)]
    again = await ok(start(hub, team.tom, rx_id))
    assert (again["number"], again["state"]) == (0, "filling")


async def test_a_cancel_while_filling_ends_the_fill_and_tells_the_prescriber(
    hub: Hub, checker: Checker, team: Team
) -> None:
    rx_id, message_id = await approved(hub, checker, team, fill_indicator=ALL)
    fill_id = (await ok(start(hub, team.tom, rx_id)))["id"]
    await ok(step(hub, team.tom, fill_id, "scan", {"text": gs1(LISINOPRIL_A)}))
    today = dt.datetime.now(dt.UTC).date().isoformat()
    body = cancelrx_xml(
        message_id=f"CANCEL-{uuid.uuid4().hex[:12]}",
        order_number=f"ORD-{message_id}"[:35],
        drug_description=LISINOPRIL,
        ndc=LISINOPRIL_A,
        written_date=today,
    )
    reply = await (await post_script(hub, body, team.prescriber_token)).read()
    assert b"<Status>" in reply
    assert await rx_state(hub, rx_id) == "cancelled"
    status, fill = await fill_detail(hub, team.tom, fill_id)
    assert fill["state"] == "cancelled"
    assert fill["history"][-1]["actor"].startswith("client:")
    sent = await rx_fills(hub, rx_id)
    assert [t for t, _ in sent] == ["RxFill", "CancelRxResponse"]
    assert read_rx_fill(sent[0][1])[1].status == "NotDispensed"
    answer = parse_message(sent[1][1]).body
    assert isinstance(answer, CancelRxResponse)
    assert answer.approved
    status, body = await step(hub, team.tom, fill_id, "quantity", {"quantity": "60"})
    assert (status, body["code"]) == (409, "wrong_state")


async def test_a_cancel_after_the_hand_over_is_denied(
    hub: Hub, checker: Checker, team: Team
) -> None:
    rx_id, message_id = await approved(hub, checker, team)
    fill_id = await to_ready(hub, team, rx_id)
    await hand_over(hub, team.tom, fill_id, HAND_OVER)
    body = cancelrx_xml(
        message_id=f"CANCEL-{uuid.uuid4().hex[:12]}",
        order_number=f"ORD-{message_id}"[:35],
        drug_description=LISINOPRIL,
        ndc=LISINOPRIL_A,
        written_date=dt.datetime.now(dt.UTC).date().isoformat(),
    )
    await (await post_script(hub, body, team.prescriber_token)).read()
    assert await rx_state(hub, rx_id) == "completed"
    (answer,) = [
        parse_message(p).body for t, p in await rx_fills(hub, rx_id) if t == "CancelRxResponse"
    ]
    assert isinstance(answer, CancelRxResponse)
    assert answer.reason_codes == ("AH",)


def indicator_change(message_id: str, indicator: str | None) -> bytes:
    """An RxFillIndicatorChange for the order ``message_id``'s NewRx sent: the CancelRx's shape
    (the order repeated), its MedicationPrescribed carrying the new RxFillIndicator."""
    append = (
        {"Body/CancelRx/MedicationPrescribed": f"<RxFillIndicator>{indicator}</RxFillIndicator>"}
        if indicator
        else None
    )
    raw = cancelrx_xml(
        message_id=f"FIC-{uuid.uuid4().hex[:12]}",
        order_number=f"ORD-{message_id}"[:35],
        drug_description=LISINOPRIL,
        ndc=LISINOPRIL_A,
        written_date=dt.datetime.now(dt.UTC).date().isoformat(),
        append=append,
    )
    return raw.replace(b"<CancelRx>", b"<RxFillIndicatorChange>").replace(
        b"</CancelRx>", b"</RxFillIndicatorChange>"
    )


async def test_an_rx_fill_indicator_change_decides_what_is_sent_from_then_on(
    hub: Hub, checker: Checker, team: Team
) -> None:
    rx_id, message_id = await approved(hub, checker, team)  # the NewRx asked for none
    change = indicator_change(message_id, "Dispensed And Partially Dispensed")
    assert parse_message(change).transaction == "RxFillIndicatorChange"
    reply = await (await post_script(hub, change, team.prescriber_token)).read()
    assert b"<Code>000</Code>" in reply, reply
    assert await hub.audit_outcomes("prescription.fill_indicator") == ["success"]
    # not collected: NotDispensed is not wanted any more
    fill_id = await to_ready(hub, team, rx_id)
    assert await hub.client.app[FILLS].sweep(utcnow() + dt.timedelta(days=15)) == 1
    assert await rx_fills(hub, rx_id) == []
    fill_id = await to_ready(hub, team, rx_id)
    await hand_over(hub, team.tom, fill_id, HAND_OVER)
    assert [read_rx_fill(p)[1].status for _, p in await rx_fills(hub, rx_id)] == ["Dispensed"]
    # one that names no prescription is acknowledged, and changes nothing
    reply = await (
        await post_script(hub, indicator_change("NO-SUCH-ORDER", None), team.prescriber_token)
    ).read()
    assert b"<Code>000</Code>" in reply, reply
    assert await hub.audit_outcomes("script.fill_indicator") == ["not_found"]


def datamatrix_photo(ndc11: str, expiry: dt.date) -> bytes:
    """A GS1 DataMatrix of the package, generated here, on a grey card, as a JPEG."""
    gtin = gs1(ndc11)[2:16]
    symbol = zxingcpp.create_barcode(
        f"(01){gtin}(17){expiry:%y%m%d}(10)PH0T0(21)SN77",
        zxingcpp.BarcodeFormat.DataMatrix,
        gs1=True,
    )
    bitmap = zxingcpp.write_barcode_to_image(symbol, scale=6)
    height, width = bitmap.shape
    image = Image.frombytes("L", (width, height), bytes(memoryview(bitmap)))
    card = Image.new("RGB", (width * 2, height * 2), (200, 196, 190))
    card.paste(image.convert("RGB"), (width // 2, height // 2))
    out = io.BytesIO()
    card.save(out, format="JPEG", quality=80)
    return out.getvalue()


async def test_a_photo_of_the_stock_bottle_is_decoded_on_the_server(
    hub: Hub, checker: Checker, team: Team
) -> None:
    rx_id, _ = await approved(hub, checker, team)
    fill_id = (await ok(start(hub, team.tom, rx_id)))["id"]

    async def photo(data: bytes, content_type: str = "image/jpeg") -> tuple[int, dict[str, Any]]:
        response = await hub.client.post(
            f"/api/v1/fills/{fill_id}/scan-photo",
            data=data,
            headers={**bearer(team.tom), "Content-Type": content_type},
        )
        return response.status, await response.json()

    far = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=500)
    await receive_stock(hub, team.tom, LISINOPRIL_A, lot="PH0T0", expiry=far)
    status, body = await photo(datamatrix_photo(LISINOPRIL_20, far))
    assert (status, body["code"]) == (422, "wrong_product")
    status, body = await photo(b"not an image at all")
    assert (status, body["code"]) == (422, "photo_unreadable")
    status, body = await photo(b"x", "text/plain")
    assert status == 415
    await ok(photo(datamatrix_photo(LISINOPRIL_A, far)))
    _, fill = await fill_detail(hub, team.tom, fill_id)
    assert (fill["product"]["ndc11"], fill["product"]["lot"]) == (LISINOPRIL_A, "PH0T0")
    assert fill["product"]["expiry"] == far.isoformat()


async def test_a_plugged_in_piece_may_refuse_a_step_and_nothing_is_written(
    hub: Hub, checker: Checker, team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    def no_stock(session: Session, change: Stored) -> dict[str, str] | None:
        seen.append(change.action)
        assert change.actor.kind == "user"
        if change.action == "quantity":
            raise VerificationError("insufficient_stock", "Only 12 on hand.")
        return {"stock": "moved"} if change.action == "scan" else None

    monkeypatch.setattr(store_module, "ON_CHANGE", [no_stock])
    missing = ["the photo of the counted product"]
    monkeypatch.setattr(store_module, "SUBMIT_CHECKS", [lambda session, fill: missing])
    rx_id, _ = await approved(hub, checker, team)
    fill_id = (await ok(start(hub, team.tom, rx_id)))["id"]
    await ok(step(hub, team.tom, fill_id, "scan", {"text": gs1(LISINOPRIL_A)}))
    status, body = await step(hub, team.tom, fill_id, "quantity", {"quantity": "60"})
    assert (status, body["code"], body["detail"]) == (422, "insufficient_stock", "Only 12 on hand.")
    _, fill = await fill_detail(hub, team.tom, fill_id)
    assert fill["quantity"] is None
    assert await hub.audit_outcomes("fill.quantity") == ["refused"]
    assert seen == ["start", "scan", "quantity"]
    async with hub.db.sessions() as session:
        scanned = await session.scalar(
            select(AuditEvent.detail).where(
                AuditEvent.action == "fill.scan", AuditEvent.outcome == "success"
            )
        )
    assert scanned is not None
    assert scanned["stock"] == "moved"
    monkeypatch.setattr(store_module, "ON_CHANGE", [])
    await ok(step(hub, team.tom, fill_id, "quantity", {"quantity": "60"}))
    status, body = await step(hub, team.tom, fill_id, "submit")
    assert (status, body["code"]) == (422, "fill_incomplete")
    assert "the photo of the counted product" in body["detail"]
