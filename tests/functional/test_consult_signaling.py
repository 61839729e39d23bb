"""The consult signaling WebSocket through the real app: waiting room, admission, relay,
consent, reconnect, and everything a socket may not do."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import event, func, select, update

from server.app import create_app
from server.audit.models import AuditEvent
from server.consults import ws as ws_module
from server.consults.models import ConsultQualityRow, ConsultRow, ConsultSeatRow, ConsultStepRow
from server.consults.ws import HEARTBEAT, PING_AFTER, ROOMS
from server.db import DATABASE, Database
from server.db.models import utcnow
from server.settings import Settings
from signaling.protocol import MAX_MESSAGE_BYTES
from tests.conftest import ISSUER, Hub
from tests.functional.consult_helpers import (
    CONSENT,
    Consult,
    Side,
    connect,
    patient_joins,
    pharmacist_joins,
    scheduled,
)
from tests.functional.verification_helpers import bearer, staff
from tests.support.media import until

SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n"
STATS = {"bitrate_kbps": 480.0, "fps": 29.5, "packet_loss": 0.2, "rtt_ms": 12.0}


async def history(hub: Hub, consult_id: str) -> list[tuple[str | None, str, str]]:
    async with hub.db.sessions() as session:
        steps = await session.scalars(
            select(ConsultStepRow)
            .where(ConsultStepRow.consult_id == uuid.UUID(consult_id))
            .order_by(ConsultStepRow.id)
        )
        return [(s.from_state, s.to_state, s.reason) for s in steps]


async def admitted_call(hub: Hub) -> tuple[Consult, Side, Side]:
    consult = await scheduled(hub)
    pharmacist = await pharmacist_joins(hub.client, consult)
    patient = await patient_joins(hub.client, consult)
    await pharmacist.expect("peer_joined")
    await pharmacist.send(type="admit")
    await patient.expect("admitted")
    await pharmacist.expect("admitted")
    return consult, pharmacist, patient


async def test_a_whole_consult(hub: Hub) -> None:
    consult = await scheduled(hub)
    patient = await connect(hub.client, invite=consult.invite, consent_version=CONSENT)
    joined = await patient.expect("joined")
    assert (joined["role"], joined["state"], joined["consult_id"]) == (
        "patient",
        "waiting",
        consult.id,
    )
    await patient.expect("waiting")
    # in the waiting room nothing reaches the pharmacist's page but the patient's arrival
    await patient.send(type="offer", sdp=SDP)
    assert (await patient.expect("error"))["code"] == "wrong_state"
    await patient.send(type="admit")
    assert (await patient.expect("error"))["code"] == "not_allowed"

    pharmacist = await pharmacist_joins(hub.client, consult)
    assert (await pharmacist.expect("peer_joined"))["role"] == "patient"
    assert (await patient.expect("peer_joined"))["role"] == "pharmacist"
    await pharmacist.send(type="admit")
    assert (await patient.expect("admitted"))["ice_servers"] == []
    await pharmacist.expect("admitted")

    await patient.send(type="offer", sdp=SDP)
    assert (await pharmacist.expect("offer"))["sdp"] == SDP
    await pharmacist.send(type="answer", sdp=SDP)
    assert (await patient.expect("answer"))["sdp"] == SDP
    candidate = {"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0"}
    await pharmacist.send(type="ice", **candidate)
    relayed = await patient.expect("ice")
    assert relayed == {"type": "ice", **candidate, "sdpMLineIndex": None, "usernameFragment": None}
    await patient.send(type="mute", audio=True, video=False)
    assert (await pharmacist.expect("mute"))["audio"] is True

    await patient.send(type="media", connected=True)
    await pharmacist.send(type="media", connected=True)  # the second report changes nothing
    await patient.send(type="stats", **STATS)
    quality = await pharmacist.expect("quality")
    assert quality == {"type": "quality", "role": "patient", **STATS}
    async with asyncio.timeout(5):  # samples are written in batches, about every second
        while True:
            read = await hub.client.get(
                f"/api/v1/consults/{consult.id}", headers=bearer(consult.pharmacist_token)
            )
            stored = (await read.json())["quality"]
            if stored:
                break
            await asyncio.sleep(0.2)
    assert set(stored) == {"patient"}
    assert {k: v for k, v in stored["patient"].items() if k != "at"} == STATS

    await pharmacist.send(type="recording_consent", consent=True)
    await patient.send(type="recording_consent", consent=True)
    assert (await patient.expect("recording"))["active"] is True
    assert (await pharmacist.expect("recording"))["active"] is True
    await patient.send(type="recording_consent", consent=False)  # withdrawn: it stops
    assert (await pharmacist.expect("recording"))["active"] is False

    await pharmacist.send(type="end", notes="Counselled on dosing.", counselling="accepted")
    await patient.expect("ended")
    await pharmacist.expect("ended")
    assert await patient.closed() == 4000
    assert await pharmacist.closed() == 4000

    assert await history(hub, consult.id) == [
        (None, "scheduled", "scheduled"),
        ("scheduled", "waiting", "joined the waiting room"),
        ("waiting", "admitted", "admitted"),
        ("admitted", "in_call", "media connected"),
        ("in_call", "ended", "ended"),
    ]
    async with hub.db.sessions() as session:
        row = await session.get(ConsultRow, uuid.UUID(consult.id))
        assert row is not None
        assert (row.notes, row.counselling, row.consent_text_version) == (
            "Counselled on dosing.",
            "accepted",
            CONSENT,
        )
        samples = list(await session.scalars(select(ConsultQualityRow)))
        assert [(s.role, s.fps) for s in samples] == [("patient", 29.5)]
        actions = set(
            await session.scalars(
                select(AuditEvent.action).where(AuditEvent.resource_id == consult.id)
            )
        )
    assert {"consult.join", "consult.connect", "consult.admit", "consult.end"} <= actions


@pytest.mark.parametrize("origin", ["", "http://evil.example", "http://127.0.0.1:9999"])
async def test_other_origins_are_refused_before_the_upgrade(hub: Hub, origin: str) -> None:
    headers = {"Origin": origin} if origin else {}
    response = await hub.client.get(
        "/ws/consult",
        headers={
            **headers,
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        },
    )
    assert response.status == 403
    assert response.content_type == "application/problem+json"


async def test_invites_work_once_and_only_while_valid(hub: Hub) -> None:
    consult = await scheduled(hub)
    wrong = await connect(hub.client, invite="not-the-invite", consent_version=CONSENT)
    assert (await wrong.expect("error"))["code"] == "invite_invalid"
    assert await wrong.closed() == 1008
    no_consent = await connect(hub.client, invite=consult.invite)
    assert (await no_consent.expect("error"))["code"] == "consent_required"

    first = await patient_joins(hub.client, consult)
    await first.send(type="leave")
    assert await first.closed() == 1000
    reused = await connect(hub.client, invite=consult.invite, consent_version=CONSENT)
    assert (await reused.expect("error"))["code"] == "invite_used"


async def test_after_the_end_the_invite_says_the_consult_is_over(hub: Hub) -> None:
    consult, pharmacist, patient = await admitted_call(hub)
    await pharmacist.send(type="end", notes="Counselled on dosing.", counselling="accepted")
    await patient.expect("ended")
    again = await connect(hub.client, invite=consult.invite, consent_version=CONSENT)
    assert (await again.expect("error"))["code"] == "consult_over"
    assert await again.closed() == 1008
    checked = await hub.client.post("/api/v1/invites/check", json={"invite": consult.invite})
    assert (checked.status, (await checked.json())["code"]) == (409, "consult_over")


async def test_the_end_of_candidates_is_relayed_as_browsers_send_it(hub: Hub) -> None:
    _, pharmacist, patient = await admitted_call(hub)
    # RTCIceCandidate.toJSON() of the end-of-candidates event: an empty candidate
    end = {"candidate": "", "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "a1b2"}
    await patient.send(type="ice", **end)
    assert await pharmacist.expect("ice") == {"type": "ice", **end}
    await patient.send(type="ice", candidate="")  # the optional fields missing: relayed as null
    relayed = await pharmacist.expect("ice")
    assert relayed == {
        "type": "ice",
        "candidate": "",
        "sdpMid": None,
        "sdpMLineIndex": None,
        "usernameFragment": None,
    }


async def test_an_expired_invite_expires_the_consult(hub: Hub) -> None:
    consult = await scheduled(hub)
    async with hub.db.transaction() as session:
        row = await session.get(ConsultRow, uuid.UUID(consult.id))
        assert row is not None
        row.invite_expires_at = row.created_at
    late = await connect(hub.client, invite=consult.invite, consent_version=CONSENT)
    assert (await late.expect("error"))["code"] == "invite_expired"
    assert [h[:2] for h in await history(hub, consult.id)] == [
        (None, "scheduled"),
        ("scheduled", "expired"),
    ]


async def test_pharmacists_join_with_a_valid_token_for_their_own_consult(hub: Hub) -> None:
    consult = await scheduled(hub)
    bob = await staff(hub, "bob")
    cases = {
        "not_found": {"access_token": bob, "consult_id": consult.id},
        "unauthorized": {"access_token": "not.a.token", "consult_id": consult.id},
    }
    for code, join in cases.items():
        side = await connect(hub.client, **join)
        assert (await side.expect("error"))["code"] == code
        assert await side.closed() == 1008
    missing = await connect(hub.client, access_token=consult.pharmacist_token, consult_id="x")
    assert (await missing.expect("error"))["code"] == "not_found"
    both = await connect(hub.client, invite=consult.invite, resume="r" * 20)
    assert (await both.expect("error"))["code"] == "bad_join"


async def test_a_socket_must_join_first_and_speak_the_protocol(hub: Hub) -> None:
    ws = await hub.client.ws_connect("/ws/consult", headers={"Origin": "http://127.0.0.1:8080"})
    await ws.send_str('{"type": "ping"}')
    assert (await ws.receive_json())["code"] == "join_required"

    consult = await scheduled(hub)
    patient = await patient_joins(hub.client, consult)
    for raw, code in [
        ("not json", "not_json"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "joined", "consult_id": "x", "role": "patient", "resume": "y", '
         '"state": "waiting"}', "not_allowed"),
        ('{"type": "join", "resume": "again"}', "already_joined"),
    ]:  # fmt: skip
        await patient.ws.send_str(raw)
        assert (await patient.expect("error"))["code"] == code
    await patient.ws.send_bytes(b"\x00")
    assert (await patient.expect("error"))["code"] == "not_text"
    await patient.send(type="ping")
    await patient.expect("pong")
    await patient.ws.send_str("x" * (MAX_MESSAGE_BYTES + 1))
    assert await patient.closed() == 1009  # aiohttp refuses the frame itself


async def test_floods_are_refused_then_closed(hub: Hub) -> None:
    consult = await scheduled(hub)
    patient = await patient_joins(hub.client, consult)
    for _ in range(120):
        await patient.send(type="ping")
    assert await patient.closed() == 1008
    assert "rate_limited" in [m.get("code") for m in patient.inbox]


async def test_one_consult_never_sees_anothers_messages(hub: Hub) -> None:
    _, pharmacist_1, patient_1 = await admitted_call(hub)
    consult_2 = await scheduled(hub, "carol")
    pharmacist_2 = await pharmacist_joins(hub.client, consult_2)
    patient_2 = await patient_joins(hub.client, consult_2)
    await pharmacist_2.send(type="admit")
    await patient_2.expect("admitted")
    await patient_1.send(type="offer", sdp=SDP)
    await pharmacist_1.send(type="answer", sdp=SDP)
    await patient_1.send(type="stats", **STATS)
    await patient_2.send(type="offer", sdp=SDP + "a=x\r\n")
    assert (await pharmacist_2.expect("offer"))["sdp"] == SDP + "a=x\r\n"
    assert (await pharmacist_1.expect("offer"))["sdp"] == SDP
    await patient_1.expect("answer")
    await pharmacist_1.expect("quality")
    for side in (pharmacist_2, patient_2):  # flush what each has been sent, then look
        await side.send(type="ping")
        await side.expect("pong")
    seen = [m for side in (pharmacist_2, patient_2) for m in side.inbox]
    assert all(m.get("sdp") in (None, SDP + "a=x\r\n") for m in seen)
    assert not [m for m in seen if m["type"] in ("answer", "quality")]


async def test_cancelling_tells_the_waiting_patient(hub: Hub) -> None:
    consult = await scheduled(hub)
    patient = await patient_joins(hub.client, consult)
    cancelled = await hub.client.post(
        f"/api/v1/consults/{consult.id}/cancel", headers=bearer(consult.pharmacist_token)
    )
    assert cancelled.status == 200
    await patient.expect("ended")
    assert await patient.closed() == 4000
    pharmacist = await connect(
        hub.client, access_token=consult.pharmacist_token, consult_id=consult.id
    )
    assert (await pharmacist.expect("error"))["code"] == "consult_over"


async def test_refusals_of_the_rooms_count_as_strikes(hub: Hub) -> None:
    consult = await scheduled(hub)
    patient = await patient_joins(hub.client, consult)
    for _ in range(25):
        await patient.send(type="media", connected=True)  # no call yet: wrong_state each time
    assert await patient.closed() == 1008
    async with hub.db.sessions() as session:
        refused = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.resource_id == consult.id, AuditEvent.outcome == "refused")
        )
    assert refused == 0  # decided on what the socket knows, without touching the database


async def test_a_socket_that_never_joins_is_closed(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ws_module, "JOIN_TIMEOUT", 0.2)
    ws = await hub.client.ws_connect("/ws/consult", headers={"Origin": ISSUER})
    assert (await ws.receive_json())["code"] == "join_timeout"
    await ws.receive()
    assert ws.close_code == 1008


async def _pharmacist_without_autoping(hub: Hub) -> aiohttp.ClientWebSocketResponse:
    """A pharmacist's socket, joined, that sees pings and answers them only when told."""
    consult = await scheduled(hub)
    ws = await hub.client.ws_connect("/ws/consult", headers={"Origin": ISSUER}, autoping=False)
    await ws.ping(b"before the join")
    pong = await ws.receive()
    assert (pong.type, pong.data) == (aiohttp.WSMsgType.PONG, b"before the join")
    await ws.send_json(
        {"type": "join", "access_token": consult.pharmacist_token, "consult_id": consult.id}
    )
    assert (await ws.receive_json())["type"] == "joined"
    return ws


async def test_what_comes_with_the_join_is_served_once_the_socket_is_seated(hub: Hub) -> None:
    """Frames sent behind the join wait while it is seated, then are served in order; ping
    frames are answered before and after (the seated socket's frames come by callback)."""
    consult = await scheduled(hub)
    ws = await hub.client.ws_connect("/ws/consult", headers={"Origin": ISSUER}, autoping=False)
    await ws.send_json(
        {"type": "join", "access_token": consult.pharmacist_token, "consult_id": consult.id}
    )
    await ws.ping(b"with the join")
    for _ in range(3):
        await ws.send_json({"type": "ping"})
    got: list[tuple[str, object]] = []
    async with asyncio.timeout(10):
        while len(got) < 5:
            frame = await ws.receive()
            if frame.type is aiohttp.WSMsgType.PONG:
                got.append(("PONG", frame.data))
            else:
                got.append((frame.json()["type"], None))
    assert sorted(got, key=str) == sorted(
        [("joined", None), ("PONG", b"with the join"), *[("pong", None)] * 3], key=str
    )
    await ws.ping(b"seated")
    pong = await ws.receive()
    assert (pong.type, pong.data) == (aiohttp.WSMsgType.PONG, b"seated")
    await ws.close()


async def test_silent_sockets_are_pinged_and_kept_while_they_answer(hub: Hub) -> None:
    ws = await _pharmacist_without_autoping(hub)
    heartbeat, now = hub.client.app[HEARTBEAT], asyncio.get_running_loop().time()
    heartbeat.beat(now + 1)  # not silent for long enough
    heartbeat.beat(now + PING_AFTER + 1)
    ping = await ws.receive()
    assert ping.type is aiohttp.WSMsgType.PING
    await ws.pong(ping.data)
    await ws.send_json({"type": "ping"})
    assert (await ws.receive_json())["type"] == "pong"  # the hub has read the pong too
    heartbeat.beat(now + PING_AFTER * 1.5 + 1)  # answered: pinged again, not dropped
    assert (await ws.receive()).type is aiohttp.WSMsgType.PING
    await ws.close()


async def test_a_socket_that_does_not_answer_a_ping_is_dropped(hub: Hub) -> None:
    ws = await _pharmacist_without_autoping(hub)
    heartbeat, now = hub.client.app[HEARTBEAT], asyncio.get_running_loop().time()
    heartbeat.beat(now + PING_AFTER + 1)
    assert (await ws.receive()).type is aiohttp.WSMsgType.PING
    # half an interval and a little more: (now + a + b) - (now + a) may round to just below b
    heartbeat.beat(now + PING_AFTER + 1 + PING_AFTER / 2 + 0.5)
    async with asyncio.timeout(5):
        assert (await ws.receive()).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    # and the hub lets the socket go as any lost connection's
    await until(lambda: not hub.client.app[ROOMS].participants)


@pytest.fixture
async def patient_hub(
    aiohttp_client: Callable[..., Awaitable[TestClient]], settings: Settings, db: Database
) -> Hub:
    """A hub whose dropped sockets keep their seat for half a second."""
    return Hub(await aiohttp_client(create_app(replace(settings, consult_grace=0.5))), db)


async def test_a_dropped_patient_resumes_within_the_grace_period(patient_hub: Hub) -> None:
    hub, client = patient_hub, patient_hub.client
    consult, pharmacist, patient = await admitted_call(hub)
    first = next(m for m in patient.inbox if m["type"] == "joined")["resume"]
    await patient.ws.close()
    assert (await pharmacist.expect("peer_left"))["role"] == "patient"

    back = await connect(client, resume=first)
    second = await back.expect("joined")
    assert second["state"] == "admitted"  # where they were: no new admission needed
    await back.expect("admitted")
    assert (await pharmacist.expect("peer_joined"))["role"] == "patient"
    # the new token was never used (its ``joined`` may have been lost): the old one still
    # works, takes the seat over, and the unused one is retired
    retry = await connect(client, resume=first)
    third = await retry.expect("joined")
    assert await back.closed() == 4001
    stale = await connect(client, resume=second["resume"])
    assert (await stale.expect("error"))["code"] == "resume_invalid"

    await retry.ws.close()  # away for longer than the grace period this time
    await asyncio.sleep(1.0)
    again = await connect(client, resume=third["resume"])
    assert (await again.expect("joined"))["state"] == "waiting"  # to be admitted anew
    old = await connect(client, resume=first)  # its successor was used: retired
    assert (await old.expect("error"))["code"] == "resume_invalid"
    assert [h[:2] for h in await history(hub, consult.id)][2:] == [
        ("waiting", "admitted"),
        ("admitted", "waiting"),
        ("waiting", "scheduled"),
        ("scheduled", "waiting"),
    ]


async def test_a_pharmacist_resumes_only_a_dropped_socket_within_the_grace(
    patient_hub: Hub,
) -> None:
    hub, client = patient_hub, patient_hub.client
    consult = await scheduled(hub)
    pharmacist = await pharmacist_joins(hub.client, consult)
    token = pharmacist.inbox[0]["resume"]
    taken = await connect(client, resume=token)  # still connected: no, sign in instead
    assert (await taken.expect("error"))["code"] == "resume_expired"
    await pharmacist.ws.close()
    back = await connect(client, resume=token)
    token = (await back.expect("joined"))["resume"]
    await back.send(type="leave")
    assert await back.closed() == 1000
    after_leave = await connect(client, resume=token)
    assert (await after_leave.expect("error"))["code"] == "resume_invalid"

    again = await pharmacist_joins(hub.client, consult)
    token = again.inbox[0]["resume"]
    await again.ws.close()
    await asyncio.sleep(1.0)  # past the grace period
    late = await connect(client, resume=token)
    assert (await late.expect("error"))["code"] == "resume_expired"


async def test_a_second_socket_takes_over_the_seat(hub: Hub) -> None:
    consult = await scheduled(hub)
    first = await pharmacist_joins(hub.client, consult)
    second = await pharmacist_joins(hub.client, consult)
    assert await first.closed() == 4001
    await second.send(type="ping")
    await second.expect("pong")


async def test_seats_left_by_a_process_that_died_are_released_by_the_sweep(
    patient_hub: Hub,
) -> None:
    hub = patient_hub
    consult = await scheduled(hub)
    patient = await patient_joins(hub.client, consult)
    await patient.send(type="leave")
    await patient.closed()
    back = await connect(hub.client, resume=patient.inbox[0]["resume"])
    await back.expect("waiting")
    async with hub.db.transaction() as session:  # as if another process held it, then died
        await session.execute(
            update(ConsultSeatRow)
            .where(ConsultSeatRow.consult_id == uuid.UUID(consult.id))
            .values(conn_id="a-dead-process", disconnected_at=utcnow() - dt.timedelta(minutes=1))
        )
    async with asyncio.timeout(10):  # the sweep runs about every second here
        while (await history(hub, consult.id))[-1][1] != "scheduled":  # noqa: ASYNC110
            await asyncio.sleep(0.2)
    steps = await history(hub, consult.id)
    assert steps[-1] == ("waiting", "scheduled", "left the waiting room")
    await asyncio.sleep(1.5)  # released once: the next sweeps leave it alone
    assert await history(hub, consult.id) == steps


async def test_a_hub_that_stops_tells_its_sockets_and_lets_their_seats_go(
    aiohttp_client: Callable[..., Awaitable[TestClient]], settings: Settings, db: Database
) -> None:
    client = await aiohttp_client(create_app(settings))
    consult = await scheduled(Hub(client, db))
    patient = await patient_joins(client, consult)
    stopping = asyncio.create_task(client.server.close())  # the hub's shutdown, not the client's
    assert await patient.closed() == 1001
    await stopping
    async with db.sessions() as session:
        seat = await session.get(ConsultSeatRow, (uuid.UUID(consult.id), "patient"))
    assert seat is not None
    assert seat.disconnected_at is not None  # the grace period runs from the restart


async def test_an_admission_reads_the_fee_only_when_it_must_be_paid_first(hub: Hub) -> None:
    """Every admission asks whether a fee holds the patient back; under the default policy
    (paid after the consult) the answer is the pharmacy's setting alone: no ledger, price or
    payment is read on the way in."""
    consult = await scheduled(hub)
    pharmacist = await pharmacist_joins(hub.client, consult)
    patient = await patient_joins(hub.client, consult)
    await pharmacist.expect("peer_joined")
    read: list[str] = []
    engine = hub.client.app[DATABASE].engine.sync_engine

    def note(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        read.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        await pharmacist.send(type="admit")
        await patient.expect("admitted")
    finally:
        event.remove(engine, "before_cursor_execute", note)
    touched = {t for t in ("payment_settings", "ledger_entries", "payment_prices",
                           "payment_intents") if any(t in s for s in read)}  # fmt: skip
    assert touched == {"payment_settings"}
