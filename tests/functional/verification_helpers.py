"""Helpers for workflow tests: received and checked prescriptions, staff with tokens."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

from sqlalchemy import func, select, update

from server import users
from server.admin.models import Pharmacy
from server.auth.clients import RegisteredClient
from server.auth.credentials import SecretBox
from server.auth.flows import GrantUser
from server.auth.models import User
from server.auth.oauth import OAUTH
from server.prescriptions.models import Prescription
from server.settings import SETTINGS
from server.worker.checking import Checker
from tests.conftest import Hub
from tests.functional.intake_helpers import post_script
from tests.support.script_samples import newrx_xml

PASSWORD = "a long and private test passphrase"
STAFF_SCOPE = "openid rx:read rx:verify consults"
#: the browser console as a client, for tokens issued to signed-in users
CONSOLE = RegisteredClient(
    client_id="telepharm-console",
    secret_hash=None,
    scopes=frozenset(STAFF_SCOPE.split()),
    grant_types=frozenset({"authorization_code", "refresh_token"}),
    auth_methods=frozenset({"none"}),
    pharmacy_id=None,
)


async def receive(hub: Hub, **message: object) -> uuid.UUID:
    """Post a NewRx to the test pharmacy (created if missing); its prescription's ID."""
    async with hub.db.sessions() as session:
        pharmacies = await session.scalar(select(func.count()).select_from(Pharmacy))
    if not pharmacies:
        await hub.pharmacy()
    today = dt.datetime.now(dt.UTC).date().isoformat()
    message_id = str(message.pop("message_id", uuid.uuid4().hex[:20]))
    message.setdefault("drug_description", "lisinopril 10 MG Oral Tablet")
    message.setdefault("written_date", today)
    body = newrx_xml(message_id=message_id, sent_time=f"{today}T00:00:00Z", **message)
    reply = await (await post_script(hub, body, await hub.sender_token())).read()
    assert b"<Status>" in reply, reply
    async with hub.db.sessions() as session:
        return (
            await session.scalars(
                select(Prescription.id).where(Prescription.message_id == message_id)
            )
        ).one()


async def reviewable(hub: Hub, checker: Checker, **message: object) -> uuid.UUID:
    """A prescription received and checked: in the queue (awaiting_review) with findings."""
    rx_id = await receive(hub, **message)
    assert await asyncio.to_thread(checker.check, rx_id) is not None
    return rx_id


async def staff(
    hub: Hub,
    username: str,
    role: str = "pharmacist",
    *,
    pharmacy: str = "1234567",
    controlled: bool = False,
) -> str:
    """A user created as the CLI does, and an access token as sign-in issues it (the flow
    itself is tested in test_signin; here it would only cost time)."""
    settings = hub.client.app[SETTINGS]
    box = SecretBox.load(settings.keys_dir)
    await users.add_user(
        hub.db, box, pharmacy=pharmacy, username=username, role=role, password=PASSWORD
    )
    async with hub.db.transaction() as session:
        if controlled:
            await session.execute(
                update(User).where(User.username == username).values(controlled_substances=True)
            )
        user = (await session.scalars(select(User).where(User.username == username))).one()
    oauth = hub.client.app[OAUTH]
    family = await oauth.flows.store.start_family(user.id, CONSOLE.client_id, STAFF_SCOPE, None)
    grant_user = GrantUser(user.id, user.pharmacy_id, user.role, user.username, family=family)
    token = oauth.server.generate_token(
        "authorization_code", CONSOLE, grant_user, STAFF_SCOPE, include_refresh_token=False
    )
    return str(token["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
