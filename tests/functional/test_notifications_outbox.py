"""The notification outbox: a notification written in the unit of work of its change, sent by
the worker's sender to a real SMTP server (aiosmtpd) and to a local stand-in for the SMS
provider (an aiohttp server on 127.0.0.1), retried, dead-lettered, held past the patient's
quiet hours, and moved by the provider's signed status callbacks. Synthetic data only."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import email
import email.policy
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import func, select, update

from eprescribe.notifications import EventKind, QuietHours, TemplateError
from server.admin.models import Pharmacy
from server.app import create_app
from server.audit.models import AuditEvent
from server.db import Database
from server.db.models import utcnow
from server.notifications import NOTIFY, STATUS_PATH, store
from server.notifications.models import Notification
from server.notifications.sending import NO_SMS, Next, Sender
from server.notifications.sms import signature
from server.notifications.store import Channel, Recipient
from server.outbox.sweep import OutboxSweep
from server.patients.models import PatientProfile
from server.settings import Settings
from tests.conftest import ISSUER, Hub
from tests.support.processes import launch, stop, telepharm_env
from tests.support.smtp import smtp_server

NEW_YORK = ZoneInfo("America/New_York")
PATIENT_EMAIL = "pat.synthetic@example.net"
PATIENT_PHONE = "+15555550123"
AUTH_TOKEN = "synthetic-auth-token-0123456789"
ACCOUNT = "AC" + "0" * 32
CONTEXT = {
    "pharmacy_name": "Main St Pharmacy",
    "pharmacy_phone": "555-0100",
    "first_name": "Pat",
    "manage_url": "https://pharmacy.example.org/prefs",
    "pickup_by": "December 20",
    "code": "482913",
    "minutes": "10",
}


@dataclasses.dataclass
class Mailbox:
    received: list[Envelope] = dataclasses.field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(envelope)
        return "250 2.0.0 Ok: queued as SYNTH1"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server(Mailbox()) as served:
        yield served


@dataclasses.dataclass
class Provider:
    """The SMS provider's Messages API: answers as ``plan`` says, one entry a request (then
    201 queued), and keeps the forms it received."""

    url: str = ""
    plan: list[str] = dataclasses.field(default_factory=list)
    received: list[dict[str, str]] = dataclasses.field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        assert request.match_info["account"] == ACCOUNT
        self.received.append(dict(await request.post()))  # type: ignore[arg-type]
        behaviour = self.plan.pop(0) if self.plan else "queued"
        if behaviour == "503":
            return web.json_response({"code": 20500}, status=503)
        if behaviour == "400":
            return web.json_response({"code": 21211, "message": "invalid To"}, status=400)
        sid = f"SM{len(self.received):032x}"
        return web.json_response({"sid": sid, "status": "queued"}, status=201)


@pytest.fixture
async def provider() -> AsyncIterator[Provider]:
    api = Provider()
    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/{account}/Messages.json", api.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    api.url = str(server.make_url("")).rstrip("/")
    yield api
    await server.close()


@pytest.fixture
def settings(settings: Settings, mailbox: tuple[Mailbox, int], provider: Provider) -> Settings:
    """Both channels on loopback; waits of milliseconds."""
    return dataclasses.replace(
        settings,
        smtp_host="127.0.0.1",
        smtp_port=mailbox[1],
        smtp_security="none",
        smtp_timeout=5.0,
        mail_from="Main St Pharmacy <notify@pharmacy.example.org>",
        sms_api_url=provider.url,
        sms_account_sid=ACCOUNT,
        sms_auth_token=AUTH_TOKEN,
        sms_from="+15555550100",
        sms_timeout=2.0,
        outbox_retry_first=0.02,
        outbox_retry_max=0.05,
        outbox_dead_after=30.0,
    )


@pytest.fixture
async def sender(settings: Settings) -> AsyncIterator[Sender]:
    sender = Sender.from_settings(settings)
    yield sender
    await asyncio.to_thread(sender.close)


@pytest.fixture
async def patient(hub: Hub) -> tuple[uuid.UUID, uuid.UUID]:
    return await add_patient(hub)


async def add_patient(hub: Hub) -> tuple[uuid.UUID, uuid.UUID]:
    """A pharmacy and a synthetic patient's profile: their IDs."""
    await hub.pharmacy()
    async with hub.db.transaction() as session:
        pharmacy_id = await session.scalar(select(Pharmacy.id))
        assert pharmacy_id is not None
        profile = PatientProfile(
            pharmacy_id=pharmacy_id,
            last_name_key="SYNTHETIC",
            first_name_key="PAT",
            date_of_birth=dt.date(1980, 1, 1),
            gender="U",
            postal_code="00000",
            demographics={},
        )
        session.add(profile)
    return pharmacy_id, profile.id


class Published(list[uuid.UUID]):
    """The hub's publish hook as a list: what was published, after which commit."""

    def __call__(self, ids: list[uuid.UUID]) -> None:
        self.extend(ids)


def last_daytime(moment: dt.datetime) -> dt.datetime:
    """``moment``, or the last minute before it outside 21:00-08:00 in New York."""
    local = moment.astimezone(NEW_YORK)
    if dt.time(8) <= local.time() < dt.time(21):
        return moment
    day = local.date() if local.time() >= dt.time(21) else local.date() - dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(20, 59), NEW_YORK).astimezone(dt.UTC)


async def enqueue(
    hub: Hub,
    patient: tuple[uuid.UUID, uuid.UUID],
    published: Callable[[list[uuid.UUID]], None],
    *,
    channel: Channel = Channel.EMAIL,
    kind: EventKind = EventKind.READY_FOR_PICKUP,
    address: str = PATIENT_EMAIL,
    now: dt.datetime | None = None,
) -> uuid.UUID:
    """Written in a unit of work as a feature's store would, published after its commit; by
    default at the last moment outside the patient's quiet hours (due at once, whatever the
    time of day the tests run)."""
    pharmacy_id, patient_id = patient
    recipient = Recipient(address, NEW_YORK, "en", QuietHours(dt.time(21), dt.time(8)))
    if now is None:
        now = last_daytime(utcnow())
    async with hub.db.transaction() as session:
        notification_id = await session.run_sync(
            lambda s: store.enqueue(
                s,
                pharmacy_id=pharmacy_id,
                patient_id=patient_id,
                kind=kind,
                channel=channel,
                recipient=recipient,
                context=CONTEXT,
                now=now,
            )
        )
        written = store.enqueued(session)
    published(written)
    return notification_id


async def row(hub: Hub, notification_id: uuid.UUID) -> Notification:
    async with hub.db.sessions() as session:
        found = await session.get(Notification, notification_id)
    assert found is not None
    return found


async def send_until_finished(sender: Sender, notification_id: uuid.UUID, most: int = 20) -> int:
    """Send as a worker does, each retry after its countdown; how many attempts it took."""
    follow: list[Next] = await asyncio.to_thread(sender.send_many, [notification_id])
    for attempts in range(1, most):
        if not follow:
            return attempts
        await asyncio.sleep(follow[0].countdown)
        follow = await asyncio.to_thread(sender.send_many, [notification_id])
    raise AssertionError("still retrying")


async def audit_details(hub: Hub, resource_id: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
    async with hub.db.sessions() as session:
        found = await session.execute(
            select(AuditEvent.action, AuditEvent.detail)
            .where(AuditEvent.resource_id == str(resource_id))
            .order_by(AuditEvent.id)
        )
        return [(action, detail) for action, detail in found]


async def post_status(hub: Hub, params: dict[str, str], token: str = AUTH_TOKEN) -> Any:
    return await hub.client.post(
        STATUS_PATH,
        data=params,
        headers={"X-Twilio-Signature": signature(ISSUER + STATUS_PATH, params, token)},
    )


async def test_an_email_written_with_its_change_reaches_the_smtp_server(
    hub: Hub, patient: Any, sender: Sender, mailbox: tuple[Mailbox, int]
) -> None:
    published = Published()
    notification_id = await enqueue(hub, patient, published)
    assert published == [notification_id]
    stored = await row(hub, notification_id)
    assert (stored.state, stored.channel, stored.subject) == (
        "pending",
        "email",
        "Your prescription is ready",
    )
    assert "Please pick it up by December 20." in stored.body

    assert await send_until_finished(sender, notification_id) == 1
    (envelope,) = mailbox[0].received
    assert envelope.rcpt_tos == [PATIENT_EMAIL]
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)  # type: ignore[arg-type]
    assert message["Message-ID"] == f"<{notification_id}@pharmacy.example.org>"
    assert message["Subject"] == stored.subject
    sent = await row(hub, notification_id)
    assert (sent.state, sent.attempts, sent.last_error) == ("sent", 1, None)
    assert sent.sent_at is not None
    # audited without the address or the words
    ((action, detail),) = await audit_details(hub, notification_id)
    assert action == "notification.sent"
    assert detail == {
        "kind": "ready_for_pickup",
        "channel": "email",
        "state": "sent",
        "attempts": 1,
        "patient_id": str(patient[1]),
    }
    # sent once: another task for it does nothing
    assert await asyncio.to_thread(sender.send_many, [notification_id]) == []
    assert len(mailbox[0].received) == 1


async def test_an_sms_goes_to_the_provider_and_its_signed_callback_marks_it_delivered(
    hub: Hub, patient: Any, sender: Sender, provider: Provider
) -> None:
    notification_id = await enqueue(
        hub, patient, Published(), channel=Channel.SMS, address=PATIENT_PHONE
    )
    assert await send_until_finished(sender, notification_id) == 1
    (form,) = provider.received
    assert form["To"] == PATIENT_PHONE
    assert form["StatusCallback"] == ISSUER + STATUS_PATH
    assert form["Body"].startswith("Main St Pharmacy: your prescription is ready")
    sent = await row(hub, notification_id)
    assert (sent.state, sent.provider_status) == ("sent", "queued")
    assert sent.provider_id is not None

    status = {"MessageSid": sent.provider_id, "MessageStatus": "sent", "AccountSid": ACCOUNT}
    response = await post_status(hub, status)
    assert response.status == 200, await response.text()
    assert await response.json() == {"known": True}
    progressed = await row(hub, notification_id)
    assert (progressed.state, progressed.provider_status) == ("sent", "sent")
    delivered = {**status, "MessageStatus": "delivered"}
    for _ in range(2):  # the provider may post it twice: the second changes nothing
        response = await post_status(hub, delivered)
        assert response.status == 200
    done = await row(hub, notification_id)
    assert (done.state, done.provider_status) == ("delivered", "delivered")
    assert done.delivered_at is not None
    # a late "sent" does not move it back
    assert (await post_status(hub, status)).status == 200
    assert (await row(hub, notification_id)).state == "delivered"
    actions = [action for action, _ in await audit_details(hub, notification_id)]
    assert actions == ["notification.sent", "notification.delivered"]
    # a status for a message the hub never sent: accepted, nothing to do
    other = {"MessageSid": "SM" + "f" * 32, "MessageStatus": "delivered"}
    response = await post_status(hub, other)
    assert await response.json() == {"known": False}


async def test_a_callback_without_a_valid_signature_is_refused_and_changes_nothing(
    hub: Hub, patient: Any, sender: Sender
) -> None:
    notification_id = await enqueue(
        hub, patient, Published(), channel=Channel.SMS, address=PATIENT_PHONE
    )
    await send_until_finished(sender, notification_id)
    sid = (await row(hub, notification_id)).provider_id
    assert sid is not None
    params = {"MessageSid": sid, "MessageStatus": "delivered"}
    forged = await post_status(hub, params, token="not-the-auth-token")
    assert forged.status == 403
    assert forged.content_type == "application/problem+json"
    unsigned = await hub.client.post(STATUS_PATH, data=params)
    assert unsigned.status == 403
    # signed for other parameters than those posted
    tampered = await hub.client.post(
        STATUS_PATH,
        data=params,
        headers={
            "X-Twilio-Signature": signature(
                ISSUER + STATUS_PATH, {**params, "MessageStatus": "sent"}, AUTH_TOKEN
            )
        },
    )
    assert tampered.status == 403
    still = await row(hub, notification_id)
    assert (still.state, still.provider_status) == ("sent", "queued")
    # bad input never fails the hub: not a form, or a signed form without what it needs
    assert (await hub.client.post(STATUS_PATH, json=params)).status == 415
    assert (await post_status(hub, {"MessageSid": sid})).status == 400
    garbage = await hub.client.post(
        STATUS_PATH,
        data=b"\xff\xfe=%%%",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert garbage.status in (400, 403)


async def test_a_permanent_refusal_is_dead_lettered(
    hub: Hub, patient: Any, sender: Sender, provider: Provider
) -> None:
    provider.plan = ["400"]
    notification_id = await enqueue(
        hub, patient, Published(), channel=Channel.SMS, address=PATIENT_PHONE
    )
    assert await send_until_finished(sender, notification_id) == 1
    dead = await row(hub, notification_id)
    assert (dead.state, dead.attempts, dead.last_error) == ("dead", 1, "HTTP 400 (error 21211)")
    ((action, detail),) = await audit_details(hub, notification_id)
    assert action == "notification.dead"
    assert detail["error"] == "HTTP 400 (error 21211)"
    assert PATIENT_PHONE not in str(detail)


async def test_a_failure_that_may_pass_is_retried_with_backoff_then_sent(
    hub: Hub, patient: Any, sender: Sender, provider: Provider
) -> None:
    provider.plan = ["503", "503"]
    notification_id = await enqueue(
        hub, patient, Published(), channel=Channel.SMS, address=PATIENT_PHONE
    )
    before = utcnow()
    follow = await asyncio.to_thread(sender.send_many, [notification_id])
    (retry,) = follow
    assert 0.01 <= retry.countdown <= 0.02
    waiting = await row(hub, notification_id)
    assert (waiting.state, waiting.attempts, waiting.last_error) == (
        "retrying",
        1,
        "HTTP 503 (error 20500)",
    )
    assert waiting.next_attempt_at > before
    await asyncio.sleep(retry.countdown)
    assert await send_until_finished(sender, notification_id) == 2
    sent = await row(hub, notification_id)
    assert (sent.state, sent.attempts, sent.last_error) == ("sent", 3, None)
    assert len(provider.received) == 3
    assert [a for a, _ in await audit_details(hub, notification_id)] == ["notification.sent"]


async def test_an_unconfigured_channel_leaves_the_message_retrying_and_says_why(
    hub: Hub, patient: Any, settings: Settings
) -> None:
    notification_id = await enqueue(
        hub, patient, Published(), channel=Channel.SMS, address=PATIENT_PHONE
    )
    without = Sender.from_settings(
        dataclasses.replace(settings, sms_account_sid="", sms_auth_token="")
    )
    try:
        follow = await asyncio.to_thread(without.send_many, [notification_id])
    finally:
        await asyncio.to_thread(without.close)
    assert [n.id for n in follow] == [notification_id]
    waiting = await row(hub, notification_id)
    assert (waiting.state, waiting.last_error) == ("retrying", NO_SMS)


async def test_quiet_hours_hold_a_message_until_eight_but_an_immediate_kind_goes_at_once(
    hub: Hub, patient: Any, sender: Sender, mailbox: tuple[Mailbox, int]
) -> None:
    late = dt.datetime(2030, 1, 10, 23, 0, tzinfo=NEW_YORK)  # in the future: the sender waits
    held = await enqueue(hub, patient, Published(), now=late)
    code = await enqueue(hub, patient, Published(), kind=EventKind.SIGN_IN_CODE, now=utcnow())
    eight = dt.datetime(2030, 1, 11, 8, 0, tzinfo=NEW_YORK)
    assert (await row(hub, held)).next_attempt_at == eight
    async with hub.db.sessions() as session:
        before_eight = await session.run_sync(
            lambda s: store.due(s, eight - dt.timedelta(seconds=1), 10)
        )
        at_eight = await session.run_sync(lambda s: store.due(s, eight, 10))
    assert held not in before_eight
    assert held in at_eight
    # the worker sends the code now, and not the held message
    assert await asyncio.to_thread(sender.send_many, [held, code]) == []
    assert [(await row(hub, i)).state for i in (held, code)] == ["pending", "sent"]
    (envelope,) = mailbox[0].received
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)  # type: ignore[arg-type]
    assert message["Subject"] == "Your sign-in code"
    # at 08:00 New York time (moving the clock: the claim's ``now``), it is taken
    async with hub.db.transaction() as session:
        claimed = await session.run_sync(
            lambda s: store.claim_many(s, [held], eight, 60.0, 3600.0, 1)
        )
    assert [c.id for c in claimed] == [held]


async def test_a_unit_of_work_rolled_back_writes_and_publishes_nothing(
    hub: Hub, patient: Any
) -> None:
    published = Published()

    class Undone(Exception):
        pass

    async def change_that_fails() -> None:
        async with hub.db.transaction() as session:
            await session.run_sync(
                lambda s: store.enqueue(
                    s,
                    pharmacy_id=pharmacy_id,
                    patient_id=patient_id,
                    kind=EventKind.READY_FOR_PICKUP,
                    channel=Channel.EMAIL,
                    recipient=Recipient(PATIENT_EMAIL, NEW_YORK),
                    context=CONTEXT,
                )
            )
            raise Undone  # the change that caused it failed after it was written
        published(store.enqueued(session))  # after the commit: never reached

    pharmacy_id, patient_id = patient
    with pytest.raises(Undone):
        await change_that_fails()
    assert published == []
    async with hub.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Notification)) == 0


@pytest.mark.slow
async def test_the_hub_publishes_after_the_commit_and_a_worker_sends_it(
    aiohttp_client: Callable[..., Any],
    queue_settings: Settings,
    mailbox: tuple[Mailbox, int],
) -> None:
    """The whole path with real processes: the hub's publisher after the commit, the broker,
    a `telepharm worker` consuming the notifications' queue, the SMTP server."""
    env = telepharm_env(queue_settings)
    env.update(
        TELEPHARM_SMTP_HOST="127.0.0.1",
        TELEPHARM_SMTP_PORT=str(mailbox[1]),
        TELEPHARM_SMTP_SECURITY="none",
        TELEPHARM_MAIL_FROM=queue_settings.mail_from,
    )
    db = Database(queue_settings.database_url)
    worker = launch(env, "worker", "--concurrency", "1")
    try:
        hub = Hub(await aiohttp_client(create_app(queue_settings)), db)
        patient = await add_patient(hub)
        notification_id = await enqueue(hub, patient, hub.client.app[NOTIFY])
        async with asyncio.timeout(60):
            while (await row(hub, notification_id)).state != "sent":  # noqa: ASYNC110
                await asyncio.sleep(0.2)
        (envelope,) = mailbox[0].received
        assert envelope.rcpt_tos == [PATIENT_EMAIL]
    finally:
        await asyncio.to_thread(stop, [worker])
        await db.close()


async def test_an_undelivered_text_is_failed_with_the_carriers_code_until_it_arrives(
    hub: Hub, patient: Any, sender: Sender
) -> None:
    notification_id = await enqueue(
        hub, patient, Published(), channel=Channel.SMS, address=PATIENT_PHONE
    )
    await send_until_finished(sender, notification_id)
    sid = (await row(hub, notification_id)).provider_id
    assert sid is not None
    failed = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    assert (await post_status(hub, failed)).status == 200
    undelivered = await row(hub, notification_id)
    assert (undelivered.state, undelivered.last_error) == ("failed", "undelivered (error 30003)")
    # a later report that the handset has it after all wins
    arrived = {"MessageSid": sid, "MessageStatus": "delivered"}
    assert (await post_status(hub, arrived)).status == 200
    done = await row(hub, notification_id)
    assert (done.state, done.last_error) == ("delivered", None)
    actions = [action for action, _ in await audit_details(hub, notification_id)]
    assert actions == ["notification.sent", "notification.failed", "notification.delivered"]


class Recorded:
    def __init__(self) -> None:
        self.ids: list[uuid.UUID] = []

    def submit(self, ids: Any) -> None:
        self.ids.extend(ids)


async def test_a_worker_killed_mid_send_loses_nothing(
    hub: Hub, patient: Any, sender: Sender, mailbox: tuple[Mailbox, int]
) -> None:
    """A worker claimed it and died before sending: while its claim holds nobody sends it;
    once it lapses, the sweep queues it and it is sent once."""
    notification_id = await enqueue(hub, patient, Published())
    async with hub.db.transaction() as session:
        claimed = await session.run_sync(
            lambda s: store.claim_many(s, [notification_id], utcnow(), 60.0, 3600.0, 1)
        )
    assert [c.id for c in claimed] == [notification_id]  # ... and the worker is killed here
    assert PATIENT_EMAIL not in repr(claimed)
    assert await asyncio.to_thread(sender.send_many, [notification_id]) == []
    sweep = OutboxSweep(hub.db, queue := Recorded(), late=1.0, due=store.due, name="notify")
    assert await sweep() == 0
    async with hub.db.transaction() as session:  # a minute later: the claim lapsed
        await session.execute(
            update(Notification)
            .where(Notification.id == notification_id)
            .values(next_attempt_at=utcnow() - dt.timedelta(seconds=5))
        )
    assert await sweep() == 1
    assert queue.ids == [notification_id]
    await send_until_finished(sender, notification_id)
    sent = await row(hub, notification_id)
    assert (sent.state, sent.attempts) == ("sent", 2)
    assert len(mailbox[0].received) == 1


async def test_a_notification_that_cannot_be_rendered_is_refused_at_enqueue(
    hub: Hub, patient: Any
) -> None:
    """An email of an SMS-only kind, a value the template needs missing: refused in the
    caller's unit of work, before anything is written."""
    pharmacy_id, patient_id = patient
    for kind, channel, context in (
        (EventKind.OPTED_OUT, Channel.EMAIL, CONTEXT),
        (EventKind.READY_FOR_PICKUP, Channel.SMS, {"pharmacy_name": "Main St Pharmacy"}),
    ):
        with pytest.raises(TemplateError):
            async with hub.db.transaction() as session:
                await session.run_sync(
                    lambda s, kind=kind, channel=channel, context=context: store.enqueue(
                        s,
                        pharmacy_id=pharmacy_id,
                        patient_id=patient_id,
                        kind=kind,
                        channel=channel,
                        recipient=Recipient(PATIENT_PHONE, NEW_YORK),
                        context=context,
                    )
                )
    async with hub.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Notification)) == 0
