"""A pharmacy admin's own notification templates on the real app: saved after a preview with
synthetic values, every refusal a 422 naming its rule, reset to the default, audited with the
versions before and after; admins of the pharmacy only; the drug-name setting, and the
template used by a real send (to a real SMTP server), never leaking a drug name once the
setting is off. Synthetic data only."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import email.policy
from typing import Any

from sqlalchemy import select, update

from eprescribe.notifications import DEFAULT_TEMPLATES, EventKind
from server.audit.models import AuditEvent
from server.db.models import utcnow
from server.notifications.models import Notification
from server.notifications.sending import Sender
from server.settings import Settings
from server.worker.checking import Checker
from tests.conftest import OTHER_PHARMACY, Hub
from tests.functional.test_fills import (  # noqa: F401 (fixtures)
    Team,
    approved,
    checker,
    prescriber,
    products,
    team,
    to_ready,
)
from tests.functional.test_notification_triggers import notices, patient_of, reachable
from tests.functional.test_notifications_outbox import Mailbox, mailbox  # noqa: F401 (fixture)
from tests.functional.test_patient_contacts import call
from tests.functional.verification_helpers import staff

BASE = "/api/v1/notifications/templates"
READY_ES = f"{BASE}/ready_for_pickup/es"
READY_EN = f"{BASE}/ready_for_pickup/en"
SETTINGS = "/api/v1/notifications/settings"
SMS_ES = "$pharmacy_name: su receta le espera hasta el $pickup_by. Responda STOP para salir."
TEXTS_ES = {
    "sms": SMS_ES,
    "email_subject": "Su receta está lista",
    "email_text": "Hola, $first_name:\n\nSu receta está lista hasta el $pickup_by.",
}


async def _audits(hub: Hub, prefix: str) -> list[AuditEvent]:
    async with hub.db.sessions() as session:
        return list(
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action.startswith(prefix))
                .order_by(AuditEvent.id)
            )
        )


def _item(listing: dict[str, Any], kind: str, language: str) -> dict[str, Any]:
    return next(i for i in listing["items"] if (i["kind"], i["language"]) == (kind, language))


async def test_an_admin_previews_saves_and_resets_a_template(hub: Hub) -> None:
    await hub.pharmacy()
    admin = await staff(hub, "boss", role="pharmacy_admin")
    status, listing = await call(hub, "GET", BASE, admin)
    assert status == 200, listing
    assert listing["allow_drug_names"] is False
    assert listing["sms_max_segments"] == 3
    assert len(listing["items"]) == len(DEFAULT_TEMPLATES)
    default = DEFAULT_TEMPLATES[(EventKind.READY_FOR_PICKUP, "es")]
    item = _item(listing, "ready_for_pickup", "es")
    assert (item["custom"], item["version"], item["sms"]) == (False, 0, default.sms)
    assert "pickup_by" in item["placeholders"]
    assert "drug_name" in item["placeholders"]

    status, shown = await call(hub, "POST", f"{READY_ES}/preview", admin, TEXTS_ES)
    assert status == 200, shown
    assert shown["sms"]["text"].startswith("Farmacia Comunitaria Calle Mayor: su receta le espera")
    assert (shown["sms"]["encoding"], shown["sms"]["segments"]) == ("GSM-7", 1)
    assert shown["email"]["subject"] == "Su receta está lista"
    assert shown["email"]["text"].startswith("Hola, Alejandra:")
    assert await _audits(hub, "notification_template") == []  # a preview changes nothing

    status, saved = await call(hub, "PUT", READY_ES, admin, TEXTS_ES)
    assert status == 200, saved
    assert (saved["custom"], saved["version"], saved["sms"]) == (True, 1, SMS_ES)
    status, saved = await call(
        hub, "PUT", READY_ES, admin, {**TEXTS_ES, "sms": SMS_ES + " Gracias."}
    )
    assert (status, saved["version"]) == (200, 2)
    status, listing = await call(hub, "GET", BASE, admin)
    assert _item(listing, "ready_for_pickup", "es")["sms"] == SMS_ES + " Gracias."
    assert _item(listing, "ready_for_pickup", "en")["custom"] is False

    status, reset = await call(hub, "DELETE", READY_ES, admin)
    assert status == 200, reset
    assert (reset["custom"], reset["version"], reset["sms"]) == (False, 3, default.sms)
    status, again = await call(hub, "DELETE", READY_ES, admin)  # already the default
    assert (status, again["version"]) == (200, 3)

    events = await _audits(hub, "notification_template")
    assert [(e.action, e.outcome) for e in events] == [
        ("notification_template.save", "success"),
        ("notification_template.save", "success"),
        ("notification_template.reset", "success"),
    ]
    assert [(e.detail["before"], e.detail["after"]) for e in events] == [
        (None, {"version": 1, "custom": True}),
        ({"version": 1, "custom": True}, {"version": 2, "custom": True}),
        ({"version": 2, "custom": True}, {"version": 3, "custom": False}),
    ]
    assert len({e.resource_id for e in events}) == 1  # the one row, kind and language
    assert all(SMS_ES not in str(e.detail) for e in events)  # versions, not texts


async def test_every_refusal_is_a_422_naming_its_rule(hub: Hub) -> None:
    await hub.pharmacy()
    admin = await staff(hub, "boss", role="pharmacy_admin")
    cases = [
        ({"sms": "$pharmacy_name: lista, $"}, "invalid_placeholder"),
        ({"sms": "$pharmacy_name: lista hasta el ${pickup_by"}, "unbalanced_braces"),
        ({"sms": "$pharmacy_name: lista hasta el {pickup_by}"}, "unbalanced_braces"),
        ({"sms": "$pharmacy_name: lista, código $code"}, "unknown_placeholder"),
        ({"sms": "$pharmacy_name: su $drug_name está lista"}, "drug_name_not_allowed"),
        ({"email_subject": "Su $drug_name está lista"}, "drug_name_not_allowed"),
        ({"sms": "$pharmacy_name: $first_name, lista"}, "not_minimum_necessary"),
        ({"email_subject": "$first_name, su receta"}, "not_minimum_necessary"),
        ({"sms": "$pharmacy_name: ¡lista! " + "á" * 200}, "too_many_segments"),
        ({"email_subject": ""}, "empty"),
    ]
    for change, code in cases:
        for method, url in (("POST", f"{READY_ES}/preview"), ("PUT", READY_ES)):
            status, problem = await call(hub, method, url, admin, {**TEXTS_ES, **change})
            assert (status, problem["code"]) == (422, code), (change, problem)
            assert problem["detail"]
    status, problem = await call(hub, "PUT", f"{BASE}/help/en", admin, TEXTS_ES)
    assert (status, problem["code"]) == (422, "sms_only")
    for bad in ({}, {"sms": 1}, {**TEXTS_ES, "extra": "x"}):
        assert (await call(hub, "PUT", READY_ES, admin, bad))[0] == 400
    for url in (f"{BASE}/no_such_kind/es", f"{BASE}/ready_for_pickup/fr"):
        assert (await call(hub, "PUT", url, admin, TEXTS_ES))[0] == 404
    refused = await _audits(hub, "notification_template")
    assert len(refused) == len(cases) + 1  # the saves, not the previews
    assert {e.outcome for e in refused} == {"refused"}
    assert refused[0].detail == {
        "kind": "ready_for_pickup",
        "language": "es",
        "refused": "invalid_placeholder",
    }
    async with hub.db.sessions() as session:
        from server.notifications.template_models import PharmacyTemplate

        assert list(await session.scalars(select(PharmacyTemplate))) == []


async def test_only_the_pharmacys_admins(hub: Hub) -> None:
    await hub.pharmacy()
    await hub.pharmacy(**OTHER_PHARMACY)
    admin = await staff(hub, "boss", role="pharmacy_admin")
    other = await staff(hub, "rival", role="pharmacy_admin", pharmacy=OTHER_PHARMACY["ncpdpid"])
    for role in ("pharmacist", "technician"):
        token = await staff(hub, f"a-{role}", role=role)
        assert (await call(hub, "GET", BASE, token))[0] == 403
        assert (await call(hub, "POST", f"{READY_ES}/preview", token, TEXTS_ES))[0] == 403
        assert (await call(hub, "PUT", READY_ES, token, TEXTS_ES))[0] == 403
        assert (await call(hub, "DELETE", READY_ES, token))[0] == 403
        settings = {"allow_drug_names": True}
        assert (await call(hub, "PUT", SETTINGS, token, settings))[0] == 403
    assert await hub.audit_outcomes("notification_template.save") == ["refused"] * 2
    assert await hub.audit_outcomes("notification_settings.update") == ["refused"] * 2

    assert (await call(hub, "PUT", READY_ES, admin, TEXTS_ES))[0] == 200
    status, body = await call(hub, "PUT", SETTINGS, admin, {"allow_drug_names": True})
    assert (status, body["allow_drug_names"]) == (200, True)
    # the other pharmacy's admin sees and changes only their own
    status, listing = await call(hub, "GET", BASE, other)
    assert listing["allow_drug_names"] is False
    assert _item(listing, "ready_for_pickup", "es")["custom"] is False
    status, reset = await call(hub, "DELETE", READY_ES, other)
    assert (status, reset["version"]) == (200, 0)
    status, listing = await call(hub, "GET", BASE, admin)
    mine = _item(listing, "ready_for_pickup", "es")
    assert (mine["custom"], mine["version"], listing["allow_drug_names"]) == (True, 1, True)


async def test_the_settings_route_changes_each_setting_by_its_role(hub: Hub) -> None:
    await hub.pharmacy()
    admin = await staff(hub, "boss", role="pharmacy_admin")
    pharmacist = await staff(hub, "alice")
    technician = await staff(hub, "tom", role="technician")
    off = {"switches": [{"kind": "refill_due", "enabled": False}]}

    # both roles read both settings; a technician neither
    for token in (admin, pharmacist):
        status, body = await call(hub, "GET", SETTINGS, token)
        assert (status, body["allow_drug_names"], body["enabled"]["refill_due"]) == (
            200,
            False,
            True,
        )
    assert (await call(hub, "GET", SETTINGS, technician))[0] == 403

    # the switches are the pharmacists', the drug names the admins': the other is refused
    assert (await call(hub, "PUT", SETTINGS, admin, off))[0] == 403
    assert (await call(hub, "PUT", SETTINGS, technician, off))[0] == 403
    both = {**off, "allow_drug_names": True}
    assert (await call(hub, "PUT", SETTINGS, pharmacist, both))[0] == 403
    assert (await call(hub, "PUT", SETTINGS, admin, both))[0] == 403
    assert (await call(hub, "PUT", SETTINGS, pharmacist, {}))[0] == 400
    assert await hub.audit_outcomes("pharmacy.notifications.changed") == ["refused"] * 3
    assert await hub.audit_outcomes("notification_settings.update") == ["refused"]

    status, body = await call(hub, "PUT", SETTINGS, pharmacist, off)
    assert (status, body["enabled"]["refill_due"], body["allow_drug_names"]) == (200, False, False)
    status, body = await call(hub, "PUT", SETTINGS, admin, {"allow_drug_names": True})
    assert (status, body["enabled"]["refill_due"], body["allow_drug_names"]) == (200, False, True)
    assert await hub.audit_outcomes("pharmacy.notifications.changed") == [
        "refused",
        "refused",
        "refused",
        "success",
    ]
    assert await hub.audit_outcomes("notification_settings.update") == ["refused", "success"]
    # the old path is gone
    assert (await hub.client.get("/api/v1/notification-settings")).status == 404


async def _send(hub: Hub, settings: Settings, port: int, row: Notification) -> None:
    """``row`` sent now, through the worker's sender, to the test's SMTP server."""
    async with hub.db.transaction() as session:
        await session.execute(
            update(Notification).where(Notification.id == row.id).values(next_attempt_at=utcnow())
        )
    sending = dataclasses.replace(
        settings,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="none",
        smtp_timeout=5.0,
        mail_from="Main St Pharmacy <notify@pharmacy.example.org>",
        issuer="https://hub.example.org",
    )
    sender = Sender.from_settings(sending)
    try:
        await asyncio.to_thread(sender.send_many, [row.id])
    finally:
        await asyncio.to_thread(sender.close)


async def test_the_pharmacys_template_is_sent_and_never_leaks_a_drug_name_once_disallowed(
    hub: Hub,
    checker: Checker,  # noqa: F811
    team: Team,  # noqa: F811
    settings: Settings,
    mailbox: tuple[Mailbox, int],  # noqa: F811
) -> None:
    admin = await staff(hub, "boss", role="pharmacy_admin")
    assert (await call(hub, "PUT", SETTINGS, admin, {"allow_drug_names": True}))[0] == 200
    named = {
        "sms": "$pharmacy_name: your $drug_name is ready until $pickup_by.",
        "email_subject": "Your $drug_name is ready",
        "email_text": "Hello $first_name,\n\nYour $drug_name is ready until $pickup_by.",
    }
    status, saved = await call(hub, "PUT", READY_EN, admin, named)
    assert status == 200, saved

    # allowed: the pharmacy's template, naming the drug, is what the patient gets
    rx_id, _ = await approved(hub, checker, team)
    patient = await patient_of(hub, rx_id)
    await reachable(hub, team.tom, patient)
    await to_ready(hub, team, rx_id)
    (first,) = await notices(hub, EventKind.READY_FOR_PICKUP)
    assert first.subject is not None
    assert first.subject.startswith("Your ")
    assert "lisinopril" in first.subject.lower()
    assert "lisinopril" in first.body.lower()
    handler, port = mailbox
    await _send(hub, settings, port, first)
    messages = [
        email.message_from_bytes(e.content, policy=email.policy.default) for e in handler.received
    ]
    sent = [m for m in messages if "lisinopril" in str(m["Subject"]).lower()]
    assert len(sent) == 1
    assert "is ready until" in sent[0].get_body(("plain",)).get_content()

    # switched off: the stored template is not used again (the default, naming no drug)
    assert (await call(hub, "PUT", SETTINGS, admin, {"allow_drug_names": False}))[0] == 200
    rx_id, _ = await approved(hub, checker, team)
    await to_ready(hub, team, rx_id)
    _, second = await notices(hub, EventKind.READY_FOR_PICKUP)
    assert second.subject == DEFAULT_TEMPLATES[(EventKind.READY_FOR_PICKUP, "en")].email_subject
    text = f"{second.subject}\n{second.body}\n{second.html or ''}".lower()
    assert "lisinopril" not in text
    # the stored template is as it was: allowed again, it is used again
    status, listing = await call(hub, "GET", BASE, admin)
    assert _item(listing, "ready_for_pickup", "en")["version"] == 1
    assert await hub.audit_outcomes("notification_settings.update") == ["success", "success"]
    # and a save of it now is refused
    status, problem = await call(hub, "PUT", READY_EN, admin, named)
    assert (status, problem["code"]) == (422, "drug_name_not_allowed")


async def test_the_editor_handles_a_failed_payments_notice(hub: Hub) -> None:
    """``payment_failed`` in the admin's list, previewed with synthetic values, saved; a
    template asking for the card's digits or the drug is refused (no such placeholder)."""
    await hub.pharmacy()
    admin = await staff(hub, "boss", role="pharmacy_admin")
    status, listing = await call(hub, "GET", BASE, admin)
    assert status == 200, listing
    for language in ("en", "es"):
        item = _item(listing, "payment_failed", language)
        assert {"amount", "pay_url"} <= set(item["placeholders"])
        assert "drug_name" not in item["placeholders"]
    url = f"{BASE}/payment_failed/en"
    texts = {
        "sms": "$pharmacy_name: your payment of $amount did not go through: $pay_url",
        "email_subject": "Your payment did not go through",
        "email_text": "Hello $first_name,\n\nYour payment of $amount did not go through. "
        "Update your card: $pay_url",
    }
    status, shown = await call(hub, "POST", f"{url}/preview", admin, texts)
    assert status == 200, shown
    assert shown["sms"]["text"] == (
        "Main Street Community Pharmacy: your payment of 1234.56 USD did not go through: "
        "https://hub.example.org/me/0000000"
    )
    assert shown["email"]["text"].startswith("Hello Alexandra,")
    status, saved = await call(hub, "PUT", url, admin, texts)
    assert (status, saved["custom"]) == (200, True)
    for name in ("last4", "drug_name"):
        status, problem = await call(
            hub, "PUT", url, admin, {**texts, "email_text": f"Card ${name}: $amount"}
        )
        assert (status, problem["code"]) == (422, "unknown_placeholder"), problem
