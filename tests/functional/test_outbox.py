"""Outbound delivery through the transactional outbox, to a real prescriber endpoint (an aiohttp
server on 127.0.0.1 started by the test): a pharmacist's clarification becomes an
RxChangeRequest written with the state change, delivered with retries and backoff, the same
MessageID on every attempt, dead-lettered when it cannot be, and visible on its prescription.
Every message the endpoint receives is checked with the hub's own SCRIPT parser."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import subprocess
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select, update

from eprescribe import prescriptions as rules
from eprescribe.ncpdp import SenderSoftware, build_error, build_status, parse_message
from eprescribe.ncpdp.outbound import ChangeRequestCode, RxChangeRequest
from eprescribe.ncpdp.replies import build_verify, reply_context
from server import admin
from server.admin.models import Pharmacy
from server.app import create_app
from server.auth.credentials import SecretBox
from server.db import Database
from server.db.models import utcnow
from server.outbox import store
from server.outbox.delivery import Deliverer, Next
from server.outbox.models import OutboundMessage
from server.outbox.sweep import OutboxSweep
from server.prescriptions import outbound
from server.prescriptions.models import Prescription
from server.settings import Settings
from server.worker.checking import Checker
from tests.conftest import Hub
from tests.functional.intake_helpers import post_script
from tests.functional.verification_helpers import bearer, staff
from tests.support.processes import TELEPHARM, telepharm_env
from tests.support.script_samples import cancelrx_xml, newrx_xml

PRESCRIBER = SenderSoftware("Test", "Test EHR", "1.0")
ENDPOINT_TOKEN = "prescriber-issued-token-0123456789"
QUESTION = "Please confirm the strength: 10 mg or 20 mg?"

Behaviour = str  # "status", "status-010", "verify", "500", "timeout", "error-602",
# "error-900", "seen-then-timeout" (kept, then no answer in time), "duplicate" (Error 900/220)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Short timeouts and waits, so retries take milliseconds."""
    return dataclasses.replace(
        settings,
        outbox_timeout=0.5,
        outbox_retry_first=0.02,
        outbox_retry_max=0.05,
        outbox_dead_after=30.0,
    )


@dataclasses.dataclass
class Prescriber:
    """The prescriber system's endpoint: answers as ``plan`` says, one entry a request (then
    Status 000), and keeps what it received."""

    url: str = ""
    plan: list[Behaviour] = dataclasses.field(default_factory=list)
    received: list[bytes] = dataclasses.field(default_factory=list)
    authorizations: list[str | None] = dataclasses.field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(body)
        self.authorizations.append(request.headers.get("Authorization"))
        behaviour = self.plan.pop(0) if self.plan else "status"
        message = parse_message(body)  # what the hub sends is valid SCRIPT, always
        if behaviour in ("timeout", "seen-then-timeout"):
            await asyncio.sleep(2)
        if behaviour == "500":
            return web.Response(status=500, text="internal error")
        ctx = reply_context(message.header)
        common: dict[str, Any] = {
            "message_id": uuid.uuid4().hex,
            "sent_time": dt.datetime.now(dt.UTC),
            "software": PRESCRIBER,
        }
        if behaviour.startswith("error-") or behaviour == "duplicate":
            code = "900" if behaviour == "duplicate" else behaviour.removeprefix("error-")
            description_code = "220" if behaviour == "duplicate" else "2000"
            reply = build_error(
                ctx, code=code, description_code=description_code, description="x", **common
            )
        elif behaviour == "verify":
            reply = build_verify(ctx, **common)
        else:
            reply = build_status(ctx, code="010" if behaviour == "status-010" else "000", **common)
        return web.Response(body=reply, content_type="application/xml")

    def message_ids(self) -> list[str]:
        return [parse_message(body).header.message_id for body in self.received]


@pytest.fixture
async def prescriber() -> Any:
    """The prescriber system's SCRIPT endpoint (a real aiohttp server on 127.0.0.1)."""
    endpoint = Prescriber()
    app = web.Application()
    app.router.add_post("/script", endpoint.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    endpoint.url = str(server.make_url("/script"))
    yield endpoint
    await server.close()


async def newrx_from_prescriber(hub: Hub, prescriber: Prescriber, settings: Settings) -> str:
    """The pharmacy, and the prescriber system as a client with its endpoint registered (as
    `telepharm client add --endpoint URL --endpoint-token-stdin` does); its token."""
    async with hub.db.sessions() as session:
        pharmacy = await session.scalar(select(Pharmacy.id))
    if pharmacy is None:
        await hub.pharmacy()
    credentials = await admin.add_client(
        hub.db,
        name="prescriber EHR",
        scope="script:send",
        pharmacy_ncpdpid=None,
        endpoint=admin.Endpoint(prescriber.url, ENDPOINT_TOKEN),
        box=SecretBox.load(settings.keys_dir),
    )
    return await hub.token(credentials)


async def receive(hub: Hub, token: str) -> uuid.UUID:
    today = dt.datetime.now(dt.UTC).date().isoformat()
    message_id = uuid.uuid4().hex[:20]
    body = newrx_xml(
        message_id=message_id,
        sent_time=f"{today}T00:00:00Z",
        drug_description="lisinopril 10 MG Oral Tablet",
        written_date=today,
    )
    reply = await (await post_script(hub, body, token)).read()
    assert b"<Status>" in reply, reply
    async with hub.db.sessions() as session:
        return (
            await session.scalars(
                select(Prescription.id).where(Prescription.message_id == message_id)
            )
        ).one()


async def ask_the_prescriber(hub: Hub, rx_id: uuid.UUID) -> str:
    """The pharmacist alice claims the checked prescription and asks its prescriber
    ``QUESTION``, as the console does (the prescriptions API); her token."""
    alice = await staff(hub, "alice")
    for action, body in (
        ("claim", {}),
        ("clarify", {"reason_code": "strength", "text": QUESTION}),
    ):
        response = await hub.client.post(
            f"/api/v1/prescriptions/{rx_id}/{action}", json=body, headers=bearer(alice)
        )
        assert response.status == 200, await response.text()
    return alice


async def clarified(
    hub: Hub, checker: Checker, prescriber: Prescriber, settings: Settings
) -> tuple[uuid.UUID, uuid.UUID, str]:
    """A prescription the pharmacist asked the prescriber about: its ID, the outbound
    message's, and the pharmacist's token."""
    token = await newrx_from_prescriber(hub, prescriber, settings)
    rx_id = await receive(hub, token)
    assert await asyncio.to_thread(checker.check, rx_id) is not None
    alice = await ask_the_prescriber(hub, rx_id)
    (message,) = await messages(hub, rx_id)
    return rx_id, message.id, alice


async def messages(hub: Hub, rx_id: uuid.UUID) -> list[OutboundMessage]:
    async with hub.db.sessions() as session:
        return list(
            await session.scalars(
                select(OutboundMessage)
                .where(OutboundMessage.prescription_id == rx_id)
                .order_by(OutboundMessage.position)
            )
        )


async def row(hub: Hub, message_id: uuid.UUID) -> OutboundMessage:
    async with hub.db.sessions() as session:
        found = await session.get(OutboundMessage, message_id)
    assert found is not None
    return found


async def deliver_until_finished(
    deliverer: Deliverer, message_id: uuid.UUID, most: int = 20
) -> list[Next]:
    """Deliver as a worker does: each retry after its countdown, until nothing follows;
    what followed the last attempt (the next message in line)."""
    follow = await asyncio.to_thread(deliverer.deliver, message_id)
    for _ in range(most):
        retry = [n for n in follow if n.id == message_id and n.countdown is not None]
        if not retry:
            return follow
        await asyncio.sleep(retry[0].countdown or 0)
        follow = await asyncio.to_thread(deliverer.deliver, message_id)
    raise AssertionError("still retrying")


def assert_change_request(body: bytes, rx_message_id: str) -> None:
    message = parse_message(body)
    assert message.transaction == "RxChangeRequest"
    assert isinstance(message.body, RxChangeRequest)
    assert message.body.request_code == ChangeRequestCode.SCRIPT_CLARIFICATION
    assert message.header.relates_to_message_id == rx_message_id
    (requested,) = message.body.medication_requested
    assert requested.note == f"Clarification (strength): {QUESTION}"


async def test_clarification_is_written_with_its_change_and_delivered_once(
    hub: Hub, checker: Checker, deliverer: Deliverer, prescriber: Prescriber, settings: Settings
) -> None:
    rx_id, message_id, alice = await clarified(hub, checker, prescriber, settings)
    pending = await row(hub, message_id)
    assert (pending.state, pending.attempts, pending.message_type) == (
        "pending",
        0,
        "RxChangeRequest",
    )
    assert await deliver_until_finished(deliverer, message_id) == []
    delivered = await row(hub, message_id)
    assert (delivered.state, delivered.attempts, delivered.last_error) == ("delivered", 1, None)
    assert (delivered.reply_type, delivered.reply_code) == ("Status", "000")
    assert prescriber.received == [delivered.payload]  # the exact bytes stored
    assert prescriber.authorizations == [f"Bearer {ENDPOINT_TOKEN}"]
    async with hub.db.sessions() as session:
        rx = await session.get(Prescription, rx_id)
    assert rx is not None
    assert_change_request(prescriber.received[0], rx.message_id)
    # delivered is final: a duplicated task sends nothing
    assert await asyncio.to_thread(deliverer.deliver, message_id) == []
    assert len(prescriber.received) == 1

    response = await hub.client.get(f"/api/v1/prescriptions/{rx_id}", headers=bearer(alice))
    (shown,) = (await response.json())["outbound"]
    assert shown["id"] == str(message_id)
    assert (shown["state"], shown["attempts"], shown["message_id"]) == (
        "delivered",
        1,
        delivered.message_id,
    )
    assert shown["reply"]["transaction"] == "Status"
    assert shown["reply"]["code"] == "000"
    assert await hub.audit_outcomes("outbound.delivered") == ["success"]


@pytest.mark.parametrize(
    ("plan", "reply"),
    [
        (["500", "timeout", "error-602", "status-010"], ("Status", "010")),
        (["500", "verify"], ("Verify", "010")),
    ],
)
async def test_failures_are_retried_with_the_same_message_id(
    hub: Hub,
    checker: Checker,
    deliverer: Deliverer,
    prescriber: Prescriber,
    settings: Settings,
    plan: list[str],
    reply: tuple[str, str | None],
) -> None:
    prescriber.plan = list(plan)
    _, message_id, _ = await clarified(hub, checker, prescriber, settings)
    await deliver_until_finished(deliverer, message_id)
    delivered = await row(hub, message_id)
    assert (delivered.state, delivered.attempts) == ("delivered", len(plan))
    assert (delivered.reply_type, delivered.reply_code) == reply
    assert len(set(prescriber.message_ids())) == 1  # one MessageID, every attempt
    assert set(prescriber.received) == {delivered.payload}
    assert len(prescriber.received) == len(plan)


async def test_an_endpoint_that_answers_twice_has_the_message_once(
    hub: Hub, checker: Checker, deliverer: Deliverer, prescriber: Prescriber, settings: Settings
) -> None:
    """The receiver kept the first attempt but its answer never came back in time; the
    second attempt, the same MessageID, is answered Error 900/220 (duplicate): delivered."""
    prescriber.plan = ["seen-then-timeout", "duplicate"]
    _, message_id, _ = await clarified(hub, checker, prescriber, settings)
    await deliver_until_finished(deliverer, message_id)
    delivered = await row(hub, message_id)
    assert (delivered.state, delivered.attempts) == ("delivered", 2)
    assert (delivered.reply_type, delivered.reply_code, delivered.reply_description_code) == (
        "Error",
        "900",
        "220",
    )
    assert len(set(prescriber.message_ids())) == 1


async def test_a_permanent_error_is_dead_lettered_visible_and_can_be_sent_again(
    hub: Hub, checker: Checker, deliverer: Deliverer, prescriber: Prescriber, settings: Settings
) -> None:
    prescriber.plan = ["error-900"]
    rx_id, message_id, alice = await clarified(hub, checker, prescriber, settings)
    await deliver_until_finished(deliverer, message_id)
    dead = await row(hub, message_id)
    assert (dead.state, dead.attempts, dead.last_error) == ("dead", 1, "Error 900/2000")
    response = await hub.client.get(f"/api/v1/prescriptions/{rx_id}", headers=bearer(alice))
    (shown,) = (await response.json())["outbound"]
    assert (shown["state"], shown["last_error"], shown["next_attempt_at"]) == (
        "dead",
        "Error 900/2000",
        None,
    )
    assert await hub.audit_outcomes("outbound.dead") == ["success"]

    async with hub.db.transaction() as session:
        await session.run_sync(lambda s: store.retry(s, message_id, admin.OPERATOR))
    with pytest.raises(store.NotRetryable):
        async with hub.db.transaction() as session:
            await session.run_sync(lambda s: store.retry(s, message_id, admin.OPERATOR))
    await deliver_until_finished(deliverer, message_id)
    delivered = await row(hub, message_id)
    assert (delivered.state, delivered.attempts) == ("delivered", 2)
    assert len(set(prescriber.message_ids())) == 1
    assert await hub.audit_outcomes("outbound.retry") == ["success"]


async def test_failing_past_the_bound_is_dead_lettered(
    hub: Hub, checker: Checker, prescriber: Prescriber, settings: Settings
) -> None:
    prescriber.plan = ["500"] * 100
    _, message_id, _ = await clarified(hub, checker, prescriber, settings)
    # long enough for a retry or two however slow the first attempt is, short for a test
    deliverer = Deliverer.from_settings(dataclasses.replace(settings, outbox_dead_after=1.5))
    try:
        await deliver_until_finished(deliverer, message_id, most=100)
    finally:
        deliverer.close()
    dead = await row(hub, message_id)
    assert dead.state == "dead"
    assert dead.last_error == "HTTP 500"
    assert dead.attempts >= 2
    assert len(prescriber.received) == dead.attempts


async def test_a_prescriptions_messages_leave_in_order(
    hub: Hub, checker: Checker, deliverer: Deliverer, prescriber: Prescriber, settings: Settings
) -> None:
    prescriber.plan = ["500"]
    rx_id, first, _ = await clarified(hub, checker, prescriber, settings)

    def second_message(session: Any) -> uuid.UUID:
        # a later transition's message about the same prescription, written as the store
        # writes one: the prescription locked, in the unit of work of its change
        assert session.get(Prescription, rx_id, with_for_update=True) is not None
        asked = rules.ClarificationAsked(str(uuid.uuid4()), "dose", "And the dose?", utcnow())
        return outbound.change_request(session, rx_id, asked).id

    async with hub.db.transaction() as session:
        second = await session.run_sync(second_message)
    assert [m.id for m in await messages(hub, rx_id)] == [first, second]
    (retry,) = await asyncio.to_thread(deliverer.deliver, first)
    assert retry.id == first
    assert retry.countdown is not None
    assert 0.01 <= retry.countdown <= 0.02
    # the first is retrying: the second waits behind it
    assert await asyncio.to_thread(deliverer.deliver, second) == []
    assert (await row(hub, second)).state == "pending"
    later = utcnow() + dt.timedelta(hours=1)
    async with hub.db.sessions() as session:  # nor does the sweep queue it
        assert await session.run_sync(lambda s: store.due(s, later, 10)) == [first]
    await asyncio.sleep(retry.countdown)
    follow = await deliver_until_finished(deliverer, first)
    assert follow == [Next(second)]  # the worker publishes the next in line
    await deliver_until_finished(deliverer, second)
    received = prescriber.message_ids()
    first_id, second_id = (await row(hub, first)).message_id, (await row(hub, second)).message_id
    assert received == [first_id, first_id, second_id]


async def test_a_cancel_answers_the_prescriber_after_the_question_asked_before_it(
    hub: Hub, checker: Checker, deliverer: Deliverer, prescriber: Prescriber, settings: Settings
) -> None:
    """The prescriber cancels instead of answering the pharmacist's question: the cancel is
    approved, and its CancelRxResponse reaches the prescriber's endpoint after the question."""
    token = await newrx_from_prescriber(hub, prescriber, settings)
    rx_id = await receive(hub, token)
    assert await asyncio.to_thread(checker.check, rx_id) is not None
    await ask_the_prescriber(hub, rx_id)
    ((question, order),) = [(m.id, m.relates_to_message_id) for m in await messages(hub, rx_id)]
    cancel = cancelrx_xml(
        message_id="CANCEL-AFTER-QUESTION",
        order_number=f"ORD-{order}"[:35],
        drug_description="lisinopril 10 MG Oral Tablet",
        written_date=dt.datetime.now(dt.UTC).date().isoformat(),
    )
    reply = await (await post_script(hub, cancel, token)).read()
    assert b"<Status>" in reply, reply
    question_row, answer_row = await messages(hub, rx_id)
    assert (question_row.id, answer_row.message_type) == (question, "CancelRxResponse")
    assert await deliver_until_finished(deliverer, question) == [Next(answer_row.id)]
    await deliver_until_finished(deliverer, answer_row.id)
    sent = [parse_message(body) for body in prescriber.received]
    assert [m.transaction for m in sent] == ["RxChangeRequest", "CancelRxResponse"]
    assert sent[1].header.relates_to_message_id == "CANCEL-AFTER-QUESTION"
    assert (await row(hub, answer_row.id)).state == "delivered"
    async with hub.db.sessions() as session:
        assert (await session.get(Prescription, rx_id)).state == "cancelled"  # type: ignore[union-attr]


class Recorded:
    """A queue that keeps what the sweep hands it."""

    def __init__(self) -> None:
        self.ids: list[uuid.UUID] = []

    def submit(self, ids: Any) -> None:
        self.ids.extend(ids)


async def test_a_worker_killed_mid_delivery_loses_nothing(
    hub: Hub, checker: Checker, deliverer: Deliverer, prescriber: Prescriber, settings: Settings
) -> None:
    """A worker claimed the message and died before concluding: while its claim holds,
    nobody else sends it; once it lapses, the sweep queues it and it is delivered, with the
    same MessageID."""
    _, message_id, _ = await clarified(hub, checker, prescriber, settings)
    async with hub.db.transaction() as session:
        claimed = await session.run_sync(
            lambda s: store.claim_many(
                s, [message_id], utcnow(), 60.0, settings.outbox_dead_after, room=1
            )
        )
    assert [c.id for c in claimed] == [message_id]  # ... and the worker is killed here
    assert await asyncio.to_thread(deliverer.deliver, message_id) == []
    sweep = OutboxSweep(hub.db, queue := Recorded(), late=1.0)
    assert await sweep() == 0
    async with hub.db.transaction() as session:  # a minute later: the claim lapsed
        await session.execute(
            update(OutboundMessage)
            .where(OutboundMessage.id == message_id)
            .values(next_attempt_at=utcnow() - dt.timedelta(seconds=5))
        )
    assert await sweep() == 1
    assert queue.ids == [message_id]
    await deliver_until_finished(deliverer, message_id)
    delivered = await row(hub, message_id)
    assert (delivered.state, delivered.attempts) == ("delivered", 2)
    assert prescriber.message_ids() == [delivered.message_id]


async def test_a_broker_outage_loses_nothing(
    aiohttp_client: Callable[..., Any],
    settings: Settings,
    checker: Checker,
    deliverer: Deliverer,
    prescriber: Prescriber,
) -> None:
    """With the broker away the clarification still commits, its message with it; the
    sweep finds it once it is overdue."""
    down = dataclasses.replace(settings, broker_url="redis://127.0.0.1:9/0")
    db = Database(settings.database_url)
    try:
        hub = Hub(await aiohttp_client(create_app(down)), db)
        _, message_id, _ = await clarified(hub, checker, prescriber, settings)
        assert (await row(hub, message_id)).state == "pending"
        queue = Recorded()
        await asyncio.sleep(0.05)
        assert await OutboxSweep(hub.db, queue, late=0.01)() == 1
        assert queue.ids == [message_id]
        await deliver_until_finished(deliverer, message_id)
        assert (await row(hub, message_id)).state == "delivered"
    finally:
        await db.close()


def cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TELEPHARM, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120
    )


async def wait_state(hub: Hub, message_id: uuid.UUID, state: str, seconds: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while (await row(hub, message_id)).state != state:
        assert asyncio.get_running_loop().time() < deadline, (await row(hub, message_id)).state
        await asyncio.sleep(0.2)


@pytest.mark.slow
async def test_operators_register_the_endpoint_and_see_and_retry_deliveries(
    aiohttp_client: Callable[..., Any],
    queue_settings: Settings,
    checker: Checker,
    prescriber: Prescriber,
    worker: Callable[[], Any],
) -> None:
    """The whole path with real processes: `telepharm client add --endpoint`, the hub
    publishing after the commit, a `telepharm worker` delivering, `telepharm outbox list`,
    `show` and `retry`."""
    env = telepharm_env(queue_settings)
    db = Database(queue_settings.database_url)
    try:
        hub = Hub(await aiohttp_client(create_app(queue_settings)), db)
        await hub.pharmacy()
        bad = await asyncio.to_thread(
            cli, env, "client", "add", "--name", "EHR", "--scope", "script:send",
            "--endpoint", "http://prescriber.example/script",
        )  # fmt: skip
        assert bad.returncode == 1
        assert bad.stderr.strip() == (
            "telepharm: --endpoint must use https unless it is on loopback"
        )
        added = await asyncio.to_thread(
            cli, env, "client", "add", "--name", "EHR", "--scope", "script:send",
            "--endpoint", prescriber.url, "--endpoint-token-stdin", stdin=ENDPOINT_TOKEN + "\n",
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        credentials = admin.ClientCredentials(**json.loads(added.stdout))
        token = await hub.token(credentials)
        prescriber.plan = ["error-900"]
        worker()
        rx_id = await receive(hub, token)
        assert await asyncio.to_thread(checker.check, rx_id) is not None
        await ask_the_prescriber(hub, rx_id)
        (message,) = await messages(hub, rx_id)
        await wait_state(hub, message.id, "dead")

        listed = await asyncio.to_thread(cli, env, "outbox", "list", "--state", "dead")
        assert listed.returncode == 0, listed.stderr
        _, line = listed.stdout.strip().splitlines()
        assert line.split("\t")[:5] == [
            str(message.id),
            "dead",
            "1",
            "RxChangeRequest",
            message.message_id,
        ]
        shown = await asyncio.to_thread(cli, env, "outbox", "show", message.message_id)
        assert shown.returncode == 0, shown.stderr
        detail = json.loads(shown.stdout)
        assert (detail["state"], detail["reply"]["code"]) == ("dead", "900")
        assert await hub.audit_outcomes("outbound.read") == ["success"]

        retried = await asyncio.to_thread(cli, env, "outbox", "retry", str(message.id))
        assert retried.returncode == 0, retried.stderr
        await wait_state(hub, message.id, "delivered")
        again = await asyncio.to_thread(cli, env, "outbox", "retry", str(message.id))
        assert again.returncode == 1
        assert again.stderr.strip() == (
            f"telepharm: outbound message {message.id} is delivered, not dead"
        )
        assert prescriber.authorizations == [f"Bearer {ENDPOINT_TOKEN}"] * 2
        assert set(prescriber.message_ids()) == {message.message_id}
        missing = await asyncio.to_thread(cli, env, "outbox", "show", str(uuid.uuid4()))
        assert missing.returncode == 1
        assert missing.stderr.startswith("telepharm: no outbound message ")
    finally:
        await db.close()


async def test_a_batch_is_claimed_and_concluded_together_in_each_prescriptions_order(
    hub: Hub, checker: Checker, deliverer: Deliverer, prescriber: Prescriber, settings: Settings
) -> None:
    """One task carrying several messages (the hub publishes those that arrive together in
    one): each due one is sent once; a prescription's second waits for its first, which lets
    it go when it is delivered; the others of the batch do not wait for it."""
    rx_id, first, _ = await clarified(hub, checker, prescriber, settings)

    def second_message(session: Any) -> uuid.UUID:
        assert session.get(Prescription, rx_id, with_for_update=True) is not None
        asked = rules.ClarificationAsked(str(uuid.uuid4()), "dose", "And the dose?", utcnow())
        return outbound.change_request(session, rx_id, asked).id

    async with hub.db.transaction() as session:
        second = await session.run_sync(second_message)
    follow = await asyncio.to_thread(deliverer.deliver_many, [second, first, first])
    assert follow == [Next(second)]
    assert [(await row(hub, i)).state for i in (first, second)] == ["delivered", "pending"]
    assert await asyncio.to_thread(deliverer.deliver_many, [second, first]) == []
    first_id, second_id = (await row(hub, first)).message_id, (await row(hub, second)).message_id
    assert prescriber.message_ids() == [first_id, second_id]
    assert await hub.audit_outcomes("outbound.delivered") == ["success", "success"]


async def test_an_attempt_takes_other_due_messages_with_it(
    hub: Hub, checker: Checker, deliverer: Deliverer, prescriber: Prescriber, settings: Settings
) -> None:
    """A backlog (publishes lost, or tasks behind): the first task's attempt takes the other
    due messages too, each sent once; their own tasks then find them finished."""
    _, first, _ = await clarified(hub, checker, prescriber, settings)
    bob = await staff(hub, "bob")
    more = []
    for _ in range(2):
        rx_id = await receive(hub, await newrx_from_prescriber(hub, prescriber, settings))
        assert await asyncio.to_thread(checker.check, rx_id) is not None
        for action, body in (("claim", {}), ("clarify", {"reason_code": "dose", "text": "?"})):
            response = await hub.client.post(
                f"/api/v1/prescriptions/{rx_id}/{action}", json=body, headers=bearer(bob)
            )
            assert response.status == 200, await response.text()
        more += [m.id for m in await messages(hub, rx_id)]
    assert await asyncio.to_thread(deliverer.deliver, first) == []
    assert [(await row(hub, i)).state for i in [first, *more]] == ["delivered"] * 3
    for message_id in more:  # their own tasks
        assert await asyncio.to_thread(deliverer.deliver, message_id) == []
    assert len(prescriber.received) == 3
    assert len(set(prescriber.message_ids())) == 3
    assert await hub.audit_outcomes("outbound.delivered") == ["success"] * 3


async def test_a_receiver_that_answers_garbage_fails_that_attempt_only(
    hub: Hub, checker: Checker, deliverer: Deliverer, settings: Settings
) -> None:
    """An endpoint that answers something that is not HTTP at all (a malformed status line,
    which urllib raises past its own errors): that attempt failed and is tried again; the
    worker's batch is concluded, nothing is left ``sending``."""

    async def not_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.write(b"SSH-2.0-NotAPrescriberSystem\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(not_http, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        endpoint = Prescriber(url=f"http://127.0.0.1:{port}/script")
        token = await newrx_from_prescriber(hub, endpoint, settings)
        rx_id = await receive(hub, token)
        assert await asyncio.to_thread(checker.check, rx_id) is not None
        alice = await staff(hub, "alice")
        for action, body in (("claim", {}), ("clarify", {"reason_code": "strength", "text": "?"})):
            response = await hub.client.post(
                f"/api/v1/prescriptions/{rx_id}/{action}", json=body, headers=bearer(alice)
            )
            assert response.status == 200, await response.text()
        (message,) = await messages(hub, rx_id)
        (retry,) = await asyncio.to_thread(deliverer.deliver, message.id)
        assert retry.id == message.id
        assert retry.countdown is not None
        failed = await row(hub, message.id)
        assert failed.state == "retrying"
        assert failed.last_error is not None
        assert failed.last_error.startswith("the attempt failed")
    finally:
        server.close()
        await server.wait_closed()
