"""The demo prescriber system (``TELEPHARM_DEMO_EHR=1``, ``make run`` only): the hub's own
outbox delivers a pharmacist's question and a CancelRx's answer to it, it answers Status 000,
and its page shows the prescriber's side of the conversation. Off, its routes do not exist."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import html
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from eprescribe.ncpdp import parse_message
from server import admin, demo_ehr, serve
from server.app import create_app
from server.auth.credentials import SecretBox
from server.auth.models import OAuthClient
from server.commands import CliError
from server.outbox import endpoint_context, store
from server.outbox.delivery import Deliverer
from server.settings import Settings
from server.worker.checking import Checker
from tests.conftest import Hub
from tests.functional.intake_helpers import post_script
from tests.functional.test_outbox import (
    QUESTION,
    ask_the_prescriber,
    deliver_until_finished,
    messages,
    receive,
    row,
)
from tests.functional.verification_helpers import bearer
from tests.support.script_samples import cancelrx_xml, newrx_xml

TOKEN = "demo-ehr-endpoint-token-0123456789"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The demo EHR on; short waits, so retries take milliseconds."""
    return dataclasses.replace(
        settings,
        demo_ehr=True,
        outbox_timeout=5.0,
        outbox_retry_first=0.02,
        outbox_retry_max=0.05,
        outbox_dead_after=30.0,
    )


async def ehr_with_demo_endpoint(hub: Hub, settings: Settings) -> tuple[str, str]:
    """A prescriber system whose endpoint is the demo EHR of the hub under test (its port is
    the test server's, not the issuer's); its client ID and access token."""
    await hub.pharmacy()
    credentials = await hub.machine_client("script:send")
    url = str(hub.client.make_url(demo_ehr.SCRIPT_PATH))
    await admin.set_endpoint(
        hub.db, credentials.client_id, admin.Endpoint(url, TOKEN), SecretBox.load(settings.keys_dir)
    )
    return credentials.client_id, await hub.token(credentials)


async def page(hub: Hub) -> str:
    response = await hub.client.get(demo_ehr.PAGE_PATH)
    assert response.status == 200
    assert response.content_type == "text/html"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    return await response.text()


async def test_the_demo_ehr_receives_the_question_and_the_cancels_answer(
    hub: Hub, checker: Checker, deliverer: Deliverer, settings: Settings
) -> None:
    _, token = await ehr_with_demo_endpoint(hub, settings)
    assert "Nothing yet" in await page(hub)
    rx_id = await receive(hub, token)
    assert await asyncio.to_thread(checker.check, rx_id) is not None
    await ask_the_prescriber(hub, rx_id)
    (question,) = await messages(hub, rx_id)
    await deliver_until_finished(deliverer, question.id)
    delivered = await row(hub, question.id)
    assert (delivered.state, delivered.attempts) == ("delivered", 1)
    assert (delivered.reply_type, delivered.reply_code) == ("Status", "000")
    reply = parse_message(delivered.reply or b"")
    assert reply.header.relates_to_message_id == question.message_id
    assert reply.header.sender_software.product == demo_ehr.SOFTWARE.product

    # the prescriber cancels instead of answering: the hub's answer follows the question
    cancel = cancelrx_xml(
        message_id="DEMO-CANCEL-0001",
        order_number=f"ORD-{question.relates_to_message_id}"[:35],
        drug_description="lisinopril 10 MG Oral Tablet",
        written_date=dt.datetime.now(dt.UTC).date().isoformat(),
    )
    assert b"<Status>" in await (await post_script(hub, cancel, token)).read()
    _, answer = await messages(hub, rx_id)
    await deliver_until_finished(deliverer, answer.id)
    assert (await row(hub, answer.id)).state == "delivered"

    shown = await page(hub)
    question_at = shown.index(html.escape(question.message_id))
    answer_at = shown.index(html.escape(answer.message_id))
    assert answer_at < question_at  # the newest first
    assert html.escape(f"script clarification: Clarification (strength): {QUESTION}") in shown
    assert "<td>RxChangeRequest</td>" in shown
    assert f"<td>{question.relates_to_message_id}</td>" in shown  # the NewRx's MessageID
    assert "<td>CancelRxResponse</td><td>" in shown
    assert "<td>DEMO-CANCEL-0001</td><td>cancel approved</td>" in shown
    assert await hub.audit_outcomes("outbound.delivered") == ["success", "success"]


async def test_a_message_dead_for_want_of_an_endpoint_reaches_the_demo_ehr_once_registered(
    hub: Hub, checker: Checker, settings: Settings
) -> None:
    """What a newcomer without the demo EHR saw: dead. The endpoint registered, then the
    message sent again: delivered, with the same MessageID."""
    await hub.pharmacy()
    credentials = await hub.machine_client("script:send")
    rx_id = await receive(hub, await hub.token(credentials))
    assert await asyncio.to_thread(checker.check, rx_id) is not None
    await ask_the_prescriber(hub, rx_id)
    (question,) = await messages(hub, rx_id)
    impatient = Deliverer.from_settings(dataclasses.replace(settings, outbox_dead_after=0.01))
    try:
        await deliver_until_finished(impatient, question.id)
    finally:
        impatient.close()
    dead = await row(hub, question.id)
    assert (dead.state, dead.last_error) == ("dead", "the client has no endpoint registered")

    url = str(hub.client.make_url(demo_ehr.SCRIPT_PATH))
    box = SecretBox.load(settings.keys_dir)
    await admin.set_endpoint(hub.db, credentials.client_id, admin.Endpoint(url, TOKEN), box)
    async with hub.db.transaction() as session:
        await session.run_sync(lambda s: store.retry(s, question.id, admin.OPERATOR))
    deliverer = Deliverer.from_settings(settings)
    try:
        await deliver_until_finished(deliverer, question.id)
    finally:
        deliverer.close()
    assert (await row(hub, question.id)).state == "delivered"
    assert f"<td>{question.message_id}</td>" in await page(hub)


async def test_the_demo_ehr_takes_only_the_registered_token(hub: Hub, settings: Settings) -> None:
    client_id, _ = await ehr_with_demo_endpoint(hub, settings)
    body = newrx_xml(message_id="DEMO-AUTH-0001")
    xml = {"Content-Type": "application/xml"}
    for authorization in ({}, bearer("not-the-token"), {"Authorization": f"Basic {TOKEN}"}):
        response = await hub.client.post(
            demo_ehr.SCRIPT_PATH, data=body, headers={**xml, **authorization}
        )
        assert response.status == 401, authorization
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # the endpoint removed: its token no longer opens the door
    await admin.set_endpoint(hub.db, client_id, None)
    response = await hub.client.post(
        demo_ehr.SCRIPT_PATH, data=body, headers={**xml, **bearer(TOKEN)}
    )
    assert response.status == 401
    assert "DEMO-AUTH-0001" not in await page(hub)


async def test_the_demo_ehr_answers_what_it_cannot_read_with_a_script_error(
    hub: Hub, settings: Settings
) -> None:
    await ehr_with_demo_endpoint(hub, settings)
    headers = {"Content-Type": "application/xml", **bearer(TOKEN)}
    response = await hub.client.post(demo_ehr.SCRIPT_PATH, data=b"<Message>", headers=headers)
    assert response.status == 200
    reply = parse_message(await response.read())
    assert reply.transaction == "Error"
    assert "Nothing yet" in await page(hub)
    wrong_type = await hub.client.post(
        demo_ehr.SCRIPT_PATH, data=b"x", headers={**headers, "Content-Type": "text/plain"}
    )
    assert wrong_type.status == 415


async def test_telepharm_demo_registers_the_demo_endpoint_once(
    hub: Hub, settings: Settings
) -> None:
    """The endpoint ``telepharm demo`` registers: the issuer's demo EHR with a generated token
    that works there; kept on later runs; moved with the issuer; an operator's own kept."""
    box = SecretBox.load(settings.keys_dir)
    credentials = await hub.machine_client("script:send")
    client_id = credentials.client_id

    async def registered() -> tuple[str | None, str | None]:
        async with hub.db.sessions() as session:
            found = await session.scalar(
                select(OAuthClient).where(OAuthClient.client_id == client_id)
            )
        assert found is not None
        return found.endpoint, found.endpoint_token

    url = await demo_ehr.register_endpoint(hub.db, box, settings, client_id)
    assert url == f"{settings.issuer}/demo/ehr/script"
    endpoint, sealed = await registered()
    assert (endpoint, sealed is not None) == (url, True)
    assert await demo_ehr.register_endpoint(hub.db, box, settings, client_id) == url
    assert await registered() == (endpoint, sealed)  # the same token: nothing changed
    assert await hub.audit_outcomes("client.endpoint") == ["success"]

    # the generated token is what the demo EHR asks for (the hub presents it there)
    assert sealed is not None
    token = box.open(sealed, endpoint_context(client_id))
    body = newrx_xml(message_id="DEMO-TOKEN-0001")
    response = await hub.client.post(
        demo_ehr.SCRIPT_PATH,
        data=body,
        headers={"Content-Type": "application/xml", **bearer(token)},
    )
    assert response.status == 200
    assert parse_message(await response.read()).transaction == "Status"
    assert "<td>NewRx</td><td>DEMO-TOKEN-0001</td>" in await page(hub)

    moved = dataclasses.replace(settings, issuer="http://127.0.0.1:9999")
    assert await demo_ehr.register_endpoint(hub.db, box, moved, client_id) == (
        "http://127.0.0.1:9999/demo/ehr/script"
    )
    operators = "https://ehr.example/ncpdp/script"
    await admin.set_endpoint(hub.db, client_id, admin.Endpoint(operators))
    assert await demo_ehr.register_endpoint(hub.db, box, settings, client_id) == operators
    assert await registered() == (operators, None)
    with pytest.raises(admin.AdminError, match="no client nobody"):
        await demo_ehr.register_endpoint(hub.db, box, settings, "nobody")


@pytest.mark.parametrize("path", [demo_ehr.PAGE_PATH, demo_ehr.SCRIPT_PATH])
async def test_off_the_demo_ehr_does_not_exist(
    aiohttp_client: Callable[..., Any], settings: Settings, path: str
) -> None:
    client = await aiohttp_client(create_app(dataclasses.replace(settings, demo_ehr=False)))
    assert (await client.get(path)).status == 404
    headers = {"Content-Type": "application/xml", **bearer(TOKEN)}
    assert (await client.post(path, data=b"<Message/>", headers=headers)).status == 404


def test_serve_refuses_the_demo_ehr_on_a_network_address(settings: Settings) -> None:
    """Its page has no sign-in, so a loopback issuer is not enough: the bind must be loopback
    too (``--host 0.0.0.0`` would show the demo prescriber's page to the network)."""
    args = argparse.Namespace(
        host="0.0.0.0",  # noqa: S104
        port=0,
        no_worker=True,
        reuse_port=False,
        metrics_port=None,
    )
    with pytest.raises(CliError, match="loopback only"):
        serve.cmd_serve(args, settings)
