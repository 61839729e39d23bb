"""Pharmacy admins change roles and controlled-substance permissions, with a fresh sign-in."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from server.audit.models import AuditEvent
from server.auth.models import User
from tests.conftest import OTHER_PHARMACY, Hub
from tests.functional.signin_helpers import Console, console, enrol
from tests.functional.verification_helpers import bearer


async def _patch(hub: Hub, token: str, user_id: object, body: dict[str, Any]) -> Any:
    return await hub.client.patch(f"/api/v1/users/{user_id}", json=body, headers=bearer(token))


async def _user_id(hub: Hub, username: str) -> str:
    async with hub.db.sessions() as session:
        return str((await session.scalars(select(User.id).where(User.username == username))).one())


async def test_admin_grants_controlled_substances_with_a_fresh_sign_in(hub: Hub) -> None:
    app = await console(hub, role="pharmacy_admin", username="admin")
    await enrol(hub, "bob")
    tokens = await app.tokens()
    listing = await hub.client.get("/api/v1/users", headers=bearer(tokens["access_token"]))
    assert [u["username"] for u in (await listing.json())["items"]] == ["admin", "bob"]
    bob = await _user_id(hub, "bob")
    response = await _patch(hub, tokens["access_token"], bob, {"controlled_substances": True})
    assert response.status == 200, await response.text()
    assert (await response.json())["controlled_substances"] is True
    async with hub.db.sessions() as session:
        event = (
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "user.permissions"))
        ).one()
    assert event.resource_id == bob
    assert event.detail == {
        "before": {"role": "pharmacist", "controlled_substances": False, "refunds": False},
        "after": {"role": "pharmacist", "controlled_substances": True, "refunds": False},
    }


async def test_a_refreshed_token_is_not_fresh_enough(hub: Hub) -> None:
    app = await console(hub, role="pharmacy_admin", username="admin")
    await enrol(hub, "bob")
    status, refreshed = await app.refresh((await app.tokens())["refresh_token"])
    assert status == 200
    response = await _patch(
        hub, refreshed["access_token"], await _user_id(hub, "bob"), {"role": "technician"}
    )
    assert response.status == 401
    challenge = response.headers["WWW-Authenticate"]
    assert 'error="insufficient_user_authentication"' in challenge
    assert "max_age=300" in challenge


async def test_step_up_asks_for_password_and_code_again(hub: Hub) -> None:
    app = await console(hub, role="pharmacy_admin", username="admin")
    await app.tokens()  # signed in
    again = await hub.client.get("/oauth/authorize", params=app.authorize_params(max_age="0"))
    assert again.url.path == "/login"
    assert "max_age" not in (await app.form(again))["return_to"]


async def test_a_max_age_that_is_not_ascii_digits_is_ignored(hub: Hub) -> None:
    app = await console(hub, role="pharmacy_admin", username="admin")
    await app.tokens()  # signed in
    for odd in ("²", "\u0661\u0662"):  # str.isdigit() takes both; the first made int() raise (500)
        response = await hub.client.get(
            "/oauth/authorize", params=app.authorize_params(max_age=odd), allow_redirects=False
        )
        assert response.status == 302


async def test_only_admins_of_the_same_pharmacy(hub: Hub) -> None:
    app = await console(hub, role="pharmacist", username="alice")
    tokens = await app.tokens()
    response = await _patch(
        hub, tokens["access_token"], await _user_id(hub, "alice"), {"controlled_substances": True}
    )
    assert response.status == 403

    await hub.pharmacy(**OTHER_PHARMACY)
    from server import users
    from server.auth.credentials import SecretBox
    from server.settings import SETTINGS

    box = SecretBox.load(hub.client.app[SETTINGS].keys_dir)
    await users.add_user(
        hub.db,
        box,
        pharmacy=OTHER_PHARMACY["ncpdpid"],
        username="mallory",
        role="pharmacist",
        password="another long test passphrase",
    )
    admin_app = await console_admin(hub)
    admin_tokens = await admin_app.tokens()
    response = await _patch(
        hub, admin_tokens["access_token"], await _user_id(hub, "mallory"), {"role": "technician"}
    )
    assert response.status == 404
    response = await _patch(
        hub, admin_tokens["access_token"], await _user_id(hub, "boss"), {"role": "pharmacist"}
    )
    assert (response.status, (await response.json())["code"]) == (422, "cannot_demote_self")
    for bad in ({}, {"role": "owner"}, {"controlled_substances": "yes"}, {"name": "x"}):
        response = await _patch(
            hub, admin_tokens["access_token"], await _user_id(hub, "alice"), bad
        )
        assert response.status == 400, bad


async def console_admin(hub: Hub) -> Any:
    from tests.functional.signin_helpers import Console

    first = await console_client_of(hub)
    app = Console(hub, first[0], first[1], "boss")
    app.seed = await enrol(hub, "boss", "pharmacy_admin")
    hub.client.session.cookie_jar.clear()
    return app


async def console_client_of(hub: Hub) -> tuple[str, str]:
    from server.auth.models import OAuthClient

    async with hub.db.sessions() as session:
        row = (
            await session.scalars(select(OAuthClient).where(OAuthClient.name == "Console"))
        ).one()
    return row.client_id, row.redirect_uris.split()[0]


async def test_a_refused_staff_change_is_audited(hub: Hub) -> None:
    admin = await console(hub, role="pharmacy_admin", username="admin")
    tokens = await admin.tokens()
    hub.client.session.cookie_jar.clear()
    pharmacist = Console(hub, admin.client_id, admin.redirect_uri, "alice")
    pharmacist.seed = await enrol(hub, "alice")
    alice = await _user_id(hub, "alice")
    response = await _patch(
        hub, (await pharmacist.tokens())["access_token"], alice, {"role": "technician"}
    )
    assert response.status == 403
    status, refreshed = await admin.refresh(tokens["refresh_token"])
    assert status == 200
    response = await _patch(hub, refreshed["access_token"], alice, {"controlled_substances": True})
    assert response.status == 401
    admin_id = await _user_id(hub, "admin")
    response = await _patch(hub, tokens["access_token"], admin_id, {"role": "pharmacist"})
    assert response.status == 422
    async with hub.db.sessions() as session:
        refused = await session.execute(
            select(AuditEvent.actor, AuditEvent.resource_id, AuditEvent.outcome, AuditEvent.detail)
            .where(AuditEvent.action == "user.permissions")
            .order_by(AuditEvent.seq)
        )
        entries = [(actor.split(":")[0], *rest) for actor, *rest in refused]
    assert entries == [
        ("user", alice, "refused", {"refused": "not_admin", "requested": {"role": "technician"}}),
        (
            "user",
            alice,
            "refused",
            {"refused": "stale_sign_in", "requested": {"controlled_substances": True}},
        ),
        (
            "user",
            admin_id,
            "refused",
            {"refused": "cannot_demote_self", "requested": {"role": "pharmacist"}},
        ),
    ]
    async with hub.db.sessions() as session:
        role = await session.scalar(select(User.role).where(User.username == "admin"))
    assert role == "pharmacy_admin"
