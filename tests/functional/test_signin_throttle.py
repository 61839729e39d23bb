"""Sign-in throttling under attack: concurrent bursts, decay, shared addresses, known devices."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable

import pyotp
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from sqlalchemy import delete, select

from server.app import create_app
from server.audit.models import AuditEvent
from server.auth.models import LoginThrottle
from server.auth.throttle import CLOCK
from server.db import Database
from server.settings import Settings
from tests.conftest import Hub
from tests.functional.signin_helpers import Console, console, enrol
from tests.functional.verification_helpers import PASSWORD

#: failures a burst may have evaluated: the three free ones, and one more each time a growing
#: wait (1, 2, 4 ... s) ends while the burst is still being answered
BURST_ALLOWANCE = 8


class Clock:
    """The time the sign-in pages go by, moved on by the test."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
async def clock() -> Clock:
    return Clock()


@pytest.fixture
async def timed_hub(
    aiohttp_client: Callable[..., TestClient], settings: Settings, db: Database, clock: Clock
) -> Hub:
    app = create_app(settings)
    app[CLOCK] = clock
    return Hub(await aiohttp_client(app), db)


async def login_entries(hub: Hub) -> list[tuple[str, dict[str, str]]]:
    """The outcome and detail of every sign-in attempt's audit entry, oldest first."""
    async with hub.db.sessions() as session:
        rows = await session.execute(
            select(AuditEvent.outcome, AuditEvent.detail)
            .where(AuditEvent.action == "login")
            .order_by(AuditEvent.seq)
        )
        return [(outcome, detail) for outcome, detail in rows]


async def login_outcomes(hub: Hub, factor: str) -> list[str]:
    return [o for o, detail in await login_entries(hub) if detail["factor"] == factor]


async def password_attempt(app: Console, username: str, password: str) -> ClientResponse:
    fields = await app.form(await app.hub.client.get("/login"))
    return await app.hub.client.post(
        "/login", data={**fields, "username": username, "password": password}
    )


def wrong_code(seed: str) -> str:
    """A code valid in none of the steps the hub accepts now."""
    totp, now = pyotp.TOTP(seed), time.time()
    valid = {totp.at(now + shift) for shift in (-30, 0, 30)}
    return next(c for c in (f"{n:06d}" for n in range(1, 10)) if c not in valid)


@pytest.mark.slow
async def test_a_burst_of_wrong_passwords_gets_the_few_tries_a_sequence_would(hub: Hub) -> None:
    app = await console(hub)
    fields = await app.form(await hub.client.get("/login"))
    data = {**fields, "username": "alice", "password": "guess " + PASSWORD}
    responses = await asyncio.gather(*(hub.client.post("/login", data=data) for _ in range(150)))
    statuses = [r.status for r in responses]
    assert set(statuses) == {401, 429}
    evaluated = (await login_outcomes(hub, "password")).count("failure")
    assert 3 <= evaluated <= BURST_ALLOWANCE, evaluated
    assert statuses.count(401) == evaluated
    assert "throttled" not in await login_outcomes(hub, "password")  # none took the chain's lock
    await hub.client.close()  # the refusals are audited as one summary when the hub stops
    summaries = [d for o, d in await login_entries(hub) if o == "throttled"]
    assert [(s["factor"], s["count"]) for s in summaries] == [("password", 150 - evaluated)]


@pytest.mark.slow
async def test_a_burst_of_wrong_codes_gets_the_few_tries_a_sequence_would(hub: Hub) -> None:
    app = await console(hub)
    page = await hub.client.get("/oauth/authorize", params=app.authorize_params())
    mfa = await hub.client.post(
        "/login", data={**await app.form(page), "username": "alice", "password": PASSWORD}
    )
    assert mfa.url.path == "/login/mfa"
    data = {**await app.form(mfa), "code": wrong_code(app.seed)}
    responses = await asyncio.gather(
        *(hub.client.post("/login/mfa", data=data) for _ in range(200))
    )
    assert {r.status for r in responses} == {401, 429}
    evaluated = (await login_outcomes(hub, "totp")).count("failure")
    assert 3 <= evaluated <= BURST_ALLOWANCE, evaluated


async def test_failures_are_forgotten_with_time(timed_hub: Hub, clock: Clock) -> None:
    app = await console(timed_hub)
    for _ in range(3):
        assert (await password_attempt(app, "alice", "typo " + PASSWORD)).status == 401
    assert (await password_attempt(app, "alice", PASSWORD)).status == 429
    clock.advance(minutes=10, seconds=1)  # one failure forgotten: one more try, then a wait
    assert (await password_attempt(app, "alice", "typo " + PASSWORD)).status == 401
    assert (await password_attempt(app, "alice", PASSWORD)).status == 429
    clock.advance(minutes=30, seconds=1)  # all forgotten: the free tries are back
    for _ in range(2):
        assert (await password_attempt(app, "alice", "typo " + PASSWORD)).status == 401
    signed = await password_attempt(app, "alice", PASSWORD)
    assert signed.url.path == "/login/mfa"


async def test_a_sign_in_from_an_address_forgives_its_typos(hub: Hub) -> None:
    app = await console(hub)
    for username in ("bob", "carol"):
        await enrol(hub, username)
    for _ in range(2):  # a colleague behind the same address mistypes
        assert (await password_attempt(app, "bob", "typo " + PASSWORD)).status == 401
    assert (await app.sign_in()).url.path == "/console/callback"  # alice signs in
    hub.client.session.cookie_jar.clear()
    assert (await password_attempt(app, "carol", "typo " + PASSWORD)).status == 401
    signed = await password_attempt(app, "carol", PASSWORD)  # not locked out by one typo
    assert signed.url.path == "/login/mfa"


async def test_a_known_device_gets_in_while_an_attacker_keeps_the_account_throttled(
    timed_hub: Hub,
) -> None:
    hub = timed_hub  # the clock stands still: the attacker's wait does not end during the test
    app = await console(hub)
    assert (await app.sign_in()).url.path == "/console/callback"
    jar = hub.client.session.cookie_jar
    device = {c.key: c.value for c in jar if c.key == "tp_device"}
    assert device, "a sign-in marks the browser as a known device"
    jar.clear()
    statuses = [
        (await password_attempt(app, "alice", f"guess {n} {PASSWORD}")).status for n in range(5)
    ]
    assert statuses[-1] == 429  # the attacker is slowed down
    assert (await password_attempt(app, "alice", PASSWORD)).status == 429

    jar.clear()
    jar.update_cookies(device)  # the owner, from her own browser
    code = pyotp.TOTP(app.seed).at(time.time() + 30)  # newer than the code already used
    assert (await app.sign_in(code=code)).url.path == "/console/callback"
    assert ("success", {"factor": "totp", "device": "known"}) in await login_entries(hub)

    jar.clear()  # the attacker is still slowed down: the owner's sign-in cleared nothing of his
    assert (await password_attempt(app, "alice", PASSWORD)).status == 429


async def test_a_device_cookie_of_another_user_or_forged_is_no_known_device(
    timed_hub: Hub,
) -> None:
    hub = timed_hub
    app = await console(hub)
    await enrol(hub, "bob")
    assert (await app.sign_in()).url.path == "/console/callback"
    jar = hub.client.session.cookie_jar
    device = {c.key: c.value for c in jar if c.key == "tp_device"}
    for cookie in (device, {"tp_device": "forged" + device["tp_device"][6:]}):
        jar.clear()
        jar.update_cookies(cookie)
        statuses = [
            (await password_attempt(app, "bob", f"guess {n} {PASSWORD}")).status for n in range(4)
        ]
        assert statuses[-1] == 429
        hub.client.session.cookie_jar.clear()
        async with hub.db.transaction() as session:  # the next round starts unthrottled
            await session.execute(delete(LoginThrottle))
