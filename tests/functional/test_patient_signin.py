"""The patient page's sign-in: a one-time code to a verified contact point, then a session
cookie bound to the patient and the pharmacy. Every refusal: a wrong code, an expired one, a
used one, five wrong tries, throttling, an unknown or opted-out address (the same answer as a
known one, and nothing sent), a cross-site POST, a patient session on the staff API and a
staff token on the patient API. Synthetic data only."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from server.app import create_app
from server.audit.models import AuditEvent
from server.auth.throttle import CLOCK
from server.db import Database
from server.patient_page.codes import CODES
from server.patients.models import PatientContact
from server.settings import Settings
from server.worker.checking import Checker
from tests.conftest import PHARMACY, Hub
from tests.functional.patient_page_helpers import (
    EMAIL,
    ORIGIN,
    ask_code,
    change,
    codes_sent,
    last_code,
    linked,
    sign_in,
    signed_in,
    verified_email,
)
from tests.functional.verification_helpers import bearer, staff

SENT = "If this matches an email or mobile number your pharmacy has verified"


class Clock:
    """The time the patient page goes by: the real time, moved on by the test."""

    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += dt.timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def hub(
    aiohttp_client: Callable[..., TestClient], settings: Settings, db: Database, clock: Clock
) -> Hub:
    app = create_app(settings)
    app[CLOCK] = clock
    return Hub(await aiohttp_client(app), db)


@pytest.fixture
async def patient(hub: Hub, checker: Checker) -> str:
    """A patient with a verified email; the technician's token."""
    _, patient_id = await linked(hub, checker)
    tech = await staff(hub, "terry", role="technician")
    await verified_email(hub, tech, patient_id)
    return tech


async def actions(hub: Hub, action: str) -> list[tuple[str, str | None]]:
    async with hub.db.sessions() as session:
        rows = await session.execute(
            select(AuditEvent.outcome, AuditEvent.actor)
            .where(AuditEvent.action == action)
            .order_by(AuditEvent.seq)
        )
        return [(outcome, actor) for outcome, actor in rows]


async def test_a_code_signs_the_patient_in_once(hub: Hub, patient: str) -> None:
    status, body = await ask_code(hub)
    assert status == 200
    assert body["detail"].startswith(SENT)
    code = await last_code(hub, EMAIL)
    status, body = await sign_in(hub, code)
    assert status == 200, body
    cookie = hub.client.session.cookie_jar.filter_cookies(hub.client.make_url("/"))
    assert "tp_patient" in cookie
    response = await hub.client.get("/api/v1/me")
    assert response.status == 200
    me = await response.json()
    assert me["first_name"] == "Pat"
    assert me["pharmacy"] == "Test Pharmacy"
    assert me["csrf"] == body["csrf"]
    # the same code again: refused (single use), after signing out too
    response = await hub.client.post("/api/v1/me/sign-out", headers=change(body["csrf"]))
    assert response.status == 200
    assert (await hub.client.get("/api/v1/me")).status == 401
    status, again = await sign_in(hub, code)
    assert (status, again["code"]) == (422, "code_invalid")
    assert [o for o, _ in await actions(hub, "patient.sign_in")] == ["success", "refused"]
    assert (await actions(hub, "patient.me.read"))[0][1].startswith("patient:")


async def test_the_cookie_is_httponly_and_strict(hub: Hub, patient: str) -> None:
    await ask_code(hub)
    body = {"pharmacy": "1234567", "address": EMAIL, "code": await last_code(hub, EMAIL)}
    response = await hub.client.post("/api/v1/me/sign-in", json=body, headers=ORIGIN)
    assert response.status == 200
    header = response.headers["Set-Cookie"]
    assert "HttpOnly" in header
    assert "SameSite=Strict" in header
    assert "Path=/" in header


async def test_a_wrong_code_and_five_tries_kill_it(hub: Hub, patient: str, clock: Clock) -> None:
    await ask_code(hub)
    code = await last_code(hub, EMAIL)
    assert code is not None
    wrong = f"{(int(code) + 1) % 1000000:06d}"
    for _ in range(5):
        clock.advance(minutes=1)  # past the throttle's waits: the tries are what is tested
        status, body = await sign_in(hub, wrong)
        assert (status, body["code"]) == (422, "code_invalid")
    clock.advance(minutes=1)
    status, body = await sign_in(hub, code)  # the right one, too late: dead
    assert (status, body["code"]) == (422, "code_invalid")


async def test_an_expired_code_is_refused(hub: Hub, patient: str, clock: Clock) -> None:
    await ask_code(hub)
    clock.advance(minutes=10, seconds=1)
    status, body = await sign_in(hub, await last_code(hub, EMAIL))
    assert (status, body["code"]) == (422, "code_invalid")


async def test_an_unknown_address_gets_the_same_answer_and_nothing(hub: Hub, patient: str) -> None:
    known = await ask_code(hub)
    unknown = await ask_code(hub, "nobody.synthetic@example.net")
    typo = await ask_code(hub, "not an address")
    other_pharmacy = await ask_code(hub, EMAIL, pharmacy="7654321")
    assert known == unknown == typo == other_pharmacy
    assert await codes_sent(hub, "nobody.synthetic@example.net") == 0
    # only the one code (plus the verification's): another pharmacy's page sends nothing
    assert await codes_sent(hub, EMAIL) == 2
    status, body = await sign_in(hub, "123456", "nobody.synthetic@example.net")
    assert (status, body["code"]) == (422, "code_invalid")


async def test_an_opted_out_address_is_sent_nothing(hub: Hub, patient: str) -> None:
    from server import audit
    from server.patients.contacts import opt_out

    async with hub.db.transaction() as session:
        assert await opt_out(session, "email", EMAIL, audit.SYSTEM) == 1
    before = await codes_sent(hub, EMAIL)
    status, body = await ask_code(hub)
    assert status == 200
    assert body["detail"].startswith(SENT)
    assert await codes_sent(hub, EMAIL) == before


async def test_asking_for_codes_is_throttled(hub: Hub, patient: str, clock: Clock) -> None:
    answers = [(await ask_code(hub))[0] for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    clock.advance(seconds=2)
    assert (await ask_code(hub))[0] == 200
    # at most three live codes a contact point, however slowly they are asked for
    assert await codes_sent(hub, EMAIL) == 1 + 3


async def test_guessing_codes_is_throttled(hub: Hub, patient: str) -> None:
    await ask_code(hub)
    statuses = [(await sign_in(hub, "000001"))[0] for _ in range(4)]
    assert statuses == [422, 422, 422, 429]
    response = await hub.client.post(
        "/api/v1/me/sign-in",
        json={"pharmacy": "1234567", "address": EMAIL, "code": "000001"},
        headers=ORIGIN,
    )
    assert response.status == 429
    assert int(response.headers["Retry-After"]) >= 1


async def test_a_cross_site_post_is_refused(hub: Hub, patient: str) -> None:
    for headers in ({}, {"Origin": "https://elsewhere.example"}):
        response = await hub.client.post(
            "/api/v1/me/sign-in/code",
            json={"pharmacy": "1234567", "address": EMAIL},
            headers=headers,
        )
        assert response.status == 403
    assert await codes_sent(hub, EMAIL) == 1  # the verification's only
    csrf = await signed_in(hub)
    url = "/api/v1/me/consent"
    body = {"switches": [{"kind": "ready_for_pickup", "channel": "sms", "allowed": False}]}
    for headers in (
        ORIGIN,
        {"Origin": "https://elsewhere.example", "X-CSRF-Token": csrf},
        {**ORIGIN, "X-CSRF-Token": "x" * 43},
    ):
        assert (await hub.client.put(url, json=body, headers=headers)).status == 403
    assert (await hub.client.put(url, json=body, headers=change(csrf))).status == 200


async def test_sessions_do_not_cross_staff_and_patient_apis(hub: Hub, patient: str) -> None:
    tech = patient
    await signed_in(hub)
    # the patient's cookie opens no staff route
    for url in ("/api/v1/prescriptions", "/api/v1/refill-requests", "/api/v1/fills"):
        assert (await hub.client.get(url)).status == 401
    await hub.client.post("/api/v1/me/sign-out", headers=change(await _csrf(hub)))
    # a staff token opens no patient route
    for url in ("/api/v1/me", "/api/v1/me/prescriptions", "/api/v1/me/preferences"):
        assert (await hub.client.get(url, headers=bearer(tech))).status == 401


async def _csrf(hub: Hub) -> str:
    return str((await (await hub.client.get("/api/v1/me")).json())["csrf"])


async def test_a_session_ends_after_idle_time(hub: Hub, patient: str, clock: Clock) -> None:
    await signed_in(hub)
    clock.advance(minutes=29)
    assert (await hub.client.get("/api/v1/me")).status == 200
    clock.advance(minutes=29)
    assert (await hub.client.get("/api/v1/me")).status == 200
    clock.advance(minutes=31)
    assert (await hub.client.get("/api/v1/me")).status == 401


async def test_a_session_ends_four_hours_after_sign_in(
    hub: Hub, patient: str, clock: Clock
) -> None:
    await signed_in(hub)
    for _ in range(8):  # used every 29 minutes: 232 minutes in all
        clock.advance(minutes=29)
        assert (await hub.client.get("/api/v1/me")).status == 200
    clock.advance(minutes=9)
    assert (await hub.client.get("/api/v1/me")).status == 401


async def test_both_answers_come_before_the_code_is_written_or_sent(hub: Hub, patient: str) -> None:
    """The known address's code cannot be written while its contact point is locked (a code
    row refers to it): both answers come all the same, alike, before anything is written or
    published; the code follows once the lock goes, and the hub's drain waits for it."""
    if hub.db.engine.dialect.name != "postgresql":
        pytest.skip("holds a row lock the code's write must wait for (PostgreSQL)")
    before = await codes_sent(hub, EMAIL)
    async with hub.db.transaction() as held:
        await held.execute(
            select(PatientContact.id).where(PatientContact.value == EMAIL).with_for_update()
        )
        answers = []
        for address in (EMAIL, "nobody.synthetic@example.net"):
            response = await asyncio.wait_for(
                hub.client.post(
                    "/api/v1/me/sign-in/code",
                    json={"pharmacy": PHARMACY["ncpdpid"], "address": address},
                    headers=ORIGIN,
                ),
                timeout=10,
            )
            answers.append((response.status, await response.json()))
        assert answers[0] == answers[1]
        assert answers[0][0] == 200
        await asyncio.sleep(0.5)
        assert await codes_sent(hub, EMAIL) == before  # not written yet: waiting for the lock
    await hub.client.app[CODES].drain()
    assert await codes_sent(hub, EMAIL) == before + 1
    assert await codes_sent(hub, "nobody.synthetic@example.net") == 0
