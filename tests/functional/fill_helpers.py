"""Helpers for the fill flow's tests: drug products imported as an operator does, GS1 codes of
them, prescriptions driven to approved, and each fill step over HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import uuid
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import select, update

from server import admin
from server.db import sync_engine
from server.drugs import import_fda
from server.prescriptions.models import Prescription
from server.settings import Settings
from server.worker.checking import Checker
from tests.conftest import PHARMACY, Hub
from tests.functional.intake_helpers import post_script
from tests.functional.verification_helpers import bearer
from tests.support.script_samples import newrx_xml

_PRODUCT_HEADER = (
    "PRODUCTID\tPRODUCTNDC\tPRODUCTTYPENAME\tPROPRIETARYNAME\tPROPRIETARYNAMESUFFIX\t"
    "NONPROPRIETARYNAME\tDOSAGEFORMNAME\tROUTENAME\tSTARTMARKETINGDATE\tENDMARKETINGDATE\t"
    "MARKETINGCATEGORYNAME\tAPPLICATIONNUMBER\tLABELERNAME\tSUBSTANCENAME\t"
    "ACTIVE_NUMERATOR_STRENGTH\tACTIVE_INGRED_UNIT\tPHARM_CLASSES\tDEASCHEDULE\t"
    "NDC_EXCLUDE_FLAG\tLISTING_RECORD_CERTIFIED_THROUGH"
)
_PACKAGE_HEADER = (
    "PRODUCTID\tPRODUCTNDC\tNDCPACKAGECODE\tPACKAGEDESCRIPTION\tSTARTMARKETINGDATE\t"
    "ENDMARKETINGDATE\tNDC_EXCLUDE_FLAG\tSAMPLE_PACKAGE"
)
#: (product NDC, package NDC, name, substance, strength, DEA schedule), all fictional labelers
PRODUCTS = (
    ("11111-104", "11111-104-30", "Lisinopril", "LISINOPRIL", "10", ""),
    ("22222-204", "22222-204-90", "Lisinopril", "LISINOPRIL", "10", ""),
    ("33333-305", "33333-305-30", "Lisinopril", "LISINOPRIL", "20", ""),
    ("44444-406", "44444-406-30", "Oxycodone Hydrochloride", "OXYCODONE HYDROCHLORIDE", "5", "CII"),
)
#: the 11-digit NDCs of those packages (5-3-2 padded to 5-4-2)
LISINOPRIL_A = "11111010430"
LISINOPRIL_B = "22222020490"
LISINOPRIL_20 = "33333030530"
OXYCODONE = "44444040630"
LISINOPRIL = "lisinopril 10 MG Oral Tablet"
GS = "\x1d"


def import_products(settings: Settings, directory: Path) -> None:
    """The FDA NDC Directory files of :data:`PRODUCTS`, imported as ``telepharm drugs import``
    does."""
    products, packages = [_PRODUCT_HEADER], [_PACKAGE_HEADER]
    for number, (product, package, name, substance, strength, schedule) in enumerate(PRODUCTS):
        product_id = f"{product}_00000000-0000-4000-8000-{number:012d}"
        products.append(
            "\t".join(
                (
                    product_id,
                    product,
                    "HUMAN PRESCRIPTION DRUG",
                    name,
                    "",
                    name,
                    "TABLET",
                    "ORAL",
                    "20200101",
                    "",
                    "ANDA",
                    f"ANDA99{number:04d}",
                    "Fictional Test Pharma LLC",
                    substance,
                    strength,
                    "mg/1",
                    "",
                    schedule,
                    "N",
                    "20991231",
                )
            )
        )
        packages.append(
            "\t".join(
                (
                    product_id,
                    product,
                    package,
                    f"30 TABLET in 1 BOTTLE ({package})",
                    "20200101",
                    "",
                    "N",
                    "N",
                )
            )
        )
    (directory / "product.txt").write_text("\n".join(products) + "\n")
    (directory / "package.txt").write_text("\n".join(packages) + "\n")
    engine = sync_engine(settings.sync_database_url)
    try:
        import_fda(engine, directory / "product.txt", directory / "package.txt")
    finally:
        engine.dispose()


def gtin_of(ndc11: str) -> str:
    """The GTIN-14 of a package: indicator 0, ``03``, the 10-digit NDC as labelled (5-3-2 here),
    the GS1 check digit."""
    ndc10 = ndc11[:5] + ndc11[6:]
    body = "003" + ndc10
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def gs1(
    ndc11: str, *, lot: str = "LOT42A", expiry: dt.date | None = None, serial: str = "SN1"
) -> str:
    """A GS1 DataMatrix element string as a keyboard-wedge scanner types it: (01) GTIN,
    (17) expiry YYMMDD, (10) lot ended by GS, (21) serial."""
    when = expiry or default_expiry()
    return f"01{gtin_of(ndc11)}17{when:%y%m%d}10{lot}{GS}21{serial}"


def default_expiry() -> dt.date:
    """The expiry :func:`gs1` codes and :func:`receive_stock` lots have unless told."""
    return dt.datetime.now(dt.UTC).date() + dt.timedelta(days=400)


async def receive_stock(
    hub: Hub,
    token: str,
    ndc11: str,
    *,
    lot: str = "LOT42A",
    expiry: dt.date | None = None,
    quantity: int | str = 1000,
) -> dict[str, Any]:
    """Put a fill's product on the pharmacy's shelf as a technician receives it (the lot and
    expiry :func:`gs1` scans by default), so the fill flow has stock to take."""
    body = {
        "ndc": ndc11,
        "lot": lot,
        "expiry": (expiry or default_expiry()).isoformat(),
        "quantity": quantity,
    }
    response = await hub.client.post("/api/v1/inventory/receipts", json=body, headers=bearer(token))
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def receive_as(hub: Hub, token: str, **fields: Any) -> tuple[uuid.UUID, str]:
    """Post a NewRx as the client of ``token``; its prescription's ID and MessageID."""
    today = dt.datetime.now(dt.UTC).date().isoformat()
    message_id = uuid.uuid4().hex[:20]
    fields.setdefault("drug_description", LISINOPRIL)
    fields.setdefault("ndc", LISINOPRIL_A)
    fields.setdefault("written_date", today)
    indicator = fields.pop("fill_indicator", None)
    append = (
        {"Body/NewRx/MedicationPrescribed": f"<RxFillIndicator>{indicator}</RxFillIndicator>"}
        if indicator
        else None
    )
    body = newrx_xml(message_id=message_id, sent_time=f"{today}T00:00:00Z", append=append, **fields)
    reply = await (await post_script(hub, body, token)).read()
    assert b"<Status>" in reply, reply
    async with hub.db.sessions() as session:
        rx_id = (
            await session.scalars(
                select(Prescription.id).where(Prescription.message_id == message_id)
            )
        ).one()
    return rx_id, message_id


async def approve(hub: Hub, checker: Checker, pharmacist: str, rx_id: uuid.UUID) -> None:
    """Check, claim and approve (overriding every warning) as the pharmacist would."""
    assert await asyncio.to_thread(checker.check, rx_id) is not None
    response = await hub.client.get(f"/api/v1/prescriptions/{rx_id}", headers=bearer(pharmacist))
    findings = (await response.json())["findings"]
    assert not [f for f in findings if f["severity"] == "hard_stop"], findings
    overrides = {f["code"]: "checked" for f in findings if f["severity"] == "warning"}
    for action, body in (("claim", {}), ("approve", {"overrides": overrides})):
        response = await hub.client.post(
            f"/api/v1/prescriptions/{rx_id}/{action}", json=body, headers=bearer(pharmacist)
        )
        assert response.status == 200, await response.text()


async def approved_directly(hub: Hub, rx_id: uuid.UUID) -> None:
    """For the refusals about controlled substances only: the prescription set to approved
    without review (its verification is test_verification's business)."""
    async with hub.db.transaction() as session:
        await session.execute(
            update(Prescription).where(Prescription.id == rx_id).values(state="approved")
        )


async def step(
    hub: Hub, token: str, fill_id: object, name: str, body: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    response = await hub.client.post(
        f"/api/v1/fills/{fill_id}/{name}", json=body or {}, headers=bearer(token)
    )
    return response.status, await response.json()


#: the test pharmacy's label address and phone (fictional)
LABEL_ADDRESS = ("120 Main Street", "Riverbend, MT 59000")
LABEL_PHONE = "(406) 555-0142"


async def label_contact(hub: Hub, ncpdpid: str = PHARMACY["ncpdpid"]) -> None:
    """Give the pharmacy the address and phone its labels print, as the operator does."""
    await admin.set_pharmacy_contact(hub.db, ncpdpid, LABEL_ADDRESS, LABEL_PHONE)


async def print_label(hub: Hub, token: str, fill_id: object) -> bytes:
    """Fetch the fill's label PDF as the browser prints it (while filling: its printing)."""
    response = await hub.client.get(f"/api/v1/fills/{fill_id}/label.pdf", headers=bearer(token))
    assert response.status == 200, await response.text()
    assert response.content_type == "application/pdf"
    return await response.read()


async def submit(hub: Hub, token: str, fill_id: object) -> tuple[int, dict[str, Any]]:
    """Photograph the product (again, as after a send-back), print the label, then submit
    for the product check (as the fill screen does)."""
    await photograph(hub, token, fill_id)
    await print_label(hub, token, fill_id)
    return await step(hub, token, fill_id, "submit")


async def start(hub: Hub, token: str, rx_id: object) -> tuple[int, dict[str, Any]]:
    response = await hub.client.post(
        f"/api/v1/prescriptions/{rx_id}/fills", json={}, headers=bearer(token)
    )
    return response.status, await response.json()


async def scan_and_count(
    hub: Hub,
    token: str,
    fill_id: object,
    *,
    ndc: str = LISINOPRIL_A,
    lot: str = "LOT42A",
    quantity: str = "60",
    reason: str | None = None,
) -> dict[str, Any]:
    """Scan the stock bottle's GS1 code (``ndc``, ``lot``), then count ``quantity`` (a partial
    fill gives its ``reason``); the count's answer."""
    await ok(step(hub, token, fill_id, "scan", {"text": gs1(ndc, lot=lot)}))
    counted = {"quantity": quantity} if reason is None else {"quantity": quantity, "reason": reason}
    return await ok(step(hub, token, fill_id, "quantity", counted))


async def counted_fill(hub: Hub, token: str, rx_id: object, **how: Any) -> str:
    """A fill of ``rx_id`` started, scanned and counted by ``token`` (``how``: as
    :func:`scan_and_count` takes it); its ID."""
    fill_id = str((await ok(start(hub, token, rx_id)))["id"])
    await scan_and_count(hub, token, fill_id, **how)
    return fill_id


async def submitted_fill(hub: Hub, token: str, rx_id: object, **how: Any) -> str:
    """:func:`counted_fill`, photographed, its label printed and submitted for the product
    check; its ID."""
    fill_id = await counted_fill(hub, token, rx_id, **how)
    await ok(submit(hub, token, fill_id))
    return fill_id


async def ready_fill(hub: Hub, token: str, pharmacist: str, rx_id: object, **how: Any) -> str:
    """:func:`submitted_fill`, its product check passed by ``pharmacist``: ready to hand over;
    its ID."""
    fill_id = await submitted_fill(hub, token, rx_id, **how)
    await ok(step(hub, pharmacist, fill_id, "approve"))
    return fill_id


async def fill_detail(hub: Hub, token: str, fill_id: object) -> tuple[int, dict[str, Any]]:
    response = await hub.client.get(f"/api/v1/fills/{fill_id}", headers=bearer(token))
    return response.status, await response.json()


async def fill_queue(hub: Hub, token: str, **params: str) -> dict[str, Any]:
    response = await hub.client.get("/api/v1/fills", params=params, headers=bearer(token))
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def ok(result: Any) -> dict[str, Any]:
    status, body = await result
    assert status == 200, body
    return dict(body)


#: the product photos a fill needs before its product check
PRODUCT_KINDS = ("stock_bottle", "counted", "vial_label")


def picture(
    fmt: str = "JPEG", size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 40, 40)
) -> bytes:
    """A small synthetic image (a phone's photo stands in for nothing here)."""
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt)
    return out.getvalue()


async def add_image(
    hub: Hub,
    token: str,
    fill_id: object,
    kind: str,
    data: bytes | None = None,
    content_type: str = "image/jpeg",
) -> tuple[int, dict[str, Any]]:
    response = await hub.client.post(
        f"/api/v1/fills/{fill_id}/images",
        params={"kind": kind},
        data=data if data is not None else picture(),
        headers={**bearer(token), "Content-Type": content_type},
    )
    return response.status, await response.json()


async def photograph(hub: Hub, token: str, fill_id: object) -> None:
    """The three product photos, as the technician takes them before submitting."""
    for kind in PRODUCT_KINDS:
        await ok(add_image(hub, token, fill_id, kind))


async def sign(hub: Hub, token: str, fill_id: object) -> dict[str, Any]:
    """The collector's signature drawn on the page (a PNG of the drawing)."""
    drawn = picture("PNG", (300, 100), (250, 250, 250))
    return await ok(add_image(hub, token, fill_id, "signature", drawn, "image/png"))


async def hand_over(hub: Hub, token: str, fill_id: object, body: dict[str, Any]) -> dict[str, Any]:
    """Sign, then hand over."""
    await sign(hub, token, fill_id)
    return await ok(step(hub, token, fill_id, "hand-over", body))
