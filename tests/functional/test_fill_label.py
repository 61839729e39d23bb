"""The label in the fill flow, on the real app and database: built from the prescription, the
fill and the pharmacy; printed as a PDF that holds every line of its text and a barcode that
decodes back to the Rx number, which the fill screen's scan field and the fill lookup take
back; the submit needs the label printed (and printed again when the count changed); the
product check's fill detail shows what was printed; another pharmacy's label is 404; every
read audited."""

# the fill flow's fixtures are test_fills' own, imported: tests name them as parameters
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from server.admin.models import Pharmacy
from server.audit.models import AuditEvent
from server.worker.checking import Checker
from tests.conftest import OTHER_PHARMACY, Hub
from tests.functional.fill_helpers import (
    LISINOPRIL_A,
    counted_fill,
    fill_detail,
    fill_queue,
    ok,
    photograph,
    print_label,
    scan_and_count,
    start,
    step,
)
from tests.functional.test_fills import (  # noqa: F401 (fixtures)
    Team,
    approved,
    checker,
    prescriber,
    products,
    settings,
    team,
)
from tests.functional.verification_helpers import bearer, staff

POPPLER = shutil.which("pdftoppm") and shutil.which("pdftotext")
needs_poppler = pytest.mark.skipif(
    not POPPLER, reason="pdftoppm/pdftotext not installed (apt-get install poppler-utils)"
)


async def label(hub: Hub, token: str, fill_id: object) -> tuple[int, dict[str, Any]]:
    response = await hub.client.get(f"/api/v1/fills/{fill_id}/label", headers=bearer(token))
    return response.status, await response.json()


async def counted(hub: Hub, checker: Checker, team: Team, **fields: Any) -> str:
    """An approved prescription's fill, scanned and counted: its ID."""
    rx_id, _ = await approved(hub, checker, team, **fields)
    return await counted_fill(hub, team.tom, rx_id)


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "label.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def words(text: str) -> str:
    return " ".join(text.split())


@needs_poppler
async def test_the_label_pdf_prints_every_line_and_its_barcode_finds_the_fill(
    hub: Hub, checker: Checker, team: Team, tmp_path: Path
) -> None:
    fill_id = await counted(hub, checker, team, refills="2")
    status, shown = await label(hub, team.tom, fill_id)
    assert status == 200, shown
    assert (shown["printed"], shown["fixed"]) == (False, False)
    today = dt.datetime.now(dt.UTC).date()
    lines = shown["lines"]
    assert lines[:4] == [
        "Test Pharmacy",
        "120 Main Street, Riverbend, MT 59000",
        "Phone: (406) 555-0142",
        f"Rx: 0000001 | Filled: {today:%m/%d/%Y} (original)",
    ]
    assert lines[4] == "ALEX TESTPATIENT"
    assert "Take 1 tablet by mouth twice daily" in lines
    assert "NDC: 11111-0104-30" in lines
    assert "Qty: 60 tablets | Refills left: 2" in lines
    one_year = today.replace(year=today.year + 1) if (today.month, today.day) != (2, 29) else None
    if one_year is not None:
        assert f"Discard after: {one_year:%m/%d/%Y}" in lines
    assert shown["barcode"] == "RX0000001"

    pdf = await print_label(hub, team.tom, fill_id)
    printed = words(pdf_text(pdf, tmp_path))
    position = 0
    for line in lines:  # every line, whole and in order
        found = printed.find(words(line), position)
        assert found >= 0, line
        position = found + len(words(line))

    # the barcode at the foot decodes back to the Rx number
    zxingcpp = pytest.importorskip("zxingcpp", reason="zxing-cpp not installed: cannot decode")
    image = pytest.importorskip("PIL.Image")
    (tmp_path / "label.pdf").write_bytes(pdf)
    await asyncio.to_thread(
        subprocess.run,
        ["pdftoppm", "-r", "300", "-png", "-singlefile", "label.pdf", "label"],
        cwd=tmp_path,
        check=True,
    )
    with image.open(tmp_path / "label.png") as png:
        decoded = [b.text for b in zxingcpp.read_barcodes(png)]
    assert decoded == ["RX0000001"]

    # scanned on the fill screen: recognised as this prescription's own label
    status, body = await step(hub, team.tom, fill_id, "scan", {"text": decoded[0]})
    assert (status, body["code"]) == (422, "own_label")
    # scanned at the product check or the hand-over: it finds the fill
    found = await fill_queue(hub, team.bob, rx=decoded[0])
    assert [(i["id"], i["rx_number"]) for i in found["items"]] == [(fill_id, "0000001")]
    assert (await fill_queue(hub, team.bob, rx="0000001"))["items"] == found["items"]
    assert (await fill_queue(hub, team.bob, rx="RX0000002"))["items"] == []
    response = await hub.client.get(
        "/api/v1/fills", params={"rx": "lisinopril"}, headers=bearer(team.bob)
    )
    assert response.status == 400


async def test_the_submit_needs_the_label_printed_and_the_check_shows_it(
    hub: Hub, checker: Checker, team: Team
) -> None:
    fill_id = await counted(hub, checker, team)
    await photograph(hub, team.tom, fill_id)
    status, body = await step(hub, team.tom, fill_id, "submit")
    assert (status, body["code"]) == (422, "fill_incomplete")
    assert "the label, printed" in body["detail"]
    await print_label(hub, team.tom, fill_id)
    # counted again (a partial fill) after the print: the label changed, print it again
    await ok(
        step(hub, team.tom, fill_id, "quantity", {"quantity": "30", "reason": "short on stock"})
    )
    status, body = await step(hub, team.tom, fill_id, "submit")
    assert (status, body["code"]) == (422, "fill_incomplete")
    assert "printed again" in body["detail"]
    pdf_printed = await print_label(hub, team.tom, fill_id)
    assert pdf_printed.startswith(b"%PDF")
    await ok(step(hub, team.tom, fill_id, "submit"))

    # the product check's one screen: the label as printed, the scan, the prescription
    status, fill = await fill_detail(hub, team.bob, fill_id)
    assert status == 200
    _, shown = await label(hub, team.bob, fill_id)
    assert shown["fixed"] is True
    assert shown["printed"] is True
    assert fill["label_text"] == shown["text"]
    assert "Qty: 30 tablets | Refills left: 1" in fill["label_text"].splitlines()
    assert (fill["product"]["ndc11"], fill["product"]["lot"]) == (LISINOPRIL_A, "LOT42A")
    rx = fill["prescription"]
    assert (rx["patient_name"], rx["sig"], rx["quantity"]) == (
        "ALEX TESTPATIENT",
        "Take 1 tablet by mouth twice daily",
        "60",
    )
    # printed again after the submit (a reprint): the text kept does not change
    await print_label(hub, team.tom, fill_id)
    assert (await fill_detail(hub, team.bob, fill_id))[1]["label_text"] == fill["label_text"]


async def test_another_pharmacys_label_answers_404_and_every_read_is_audited(
    hub: Hub, checker: Checker, team: Team
) -> None:
    fill_id = await counted(hub, checker, team)
    await hub.pharmacy(**OTHER_PHARMACY)
    mallory = await staff(hub, "mallory", pharmacy=OTHER_PHARMACY["ncpdpid"])
    status, _ = await label(hub, mallory, fill_id)
    assert status == 404
    response = await hub.client.get(f"/api/v1/fills/{fill_id}/label.pdf", headers=bearer(mallory))
    assert response.status == 404
    # a pharmacy system reading the PDF reads it; it does not print the fill's label
    system = await hub.token(await hub.machine_client("rx:read", pharmacy="1234567"), "rx:read")
    await print_label(hub, system, fill_id)
    assert (await label(hub, team.tom, fill_id))[1]["printed"] is False
    await print_label(hub, team.tom, fill_id)
    async with hub.db.sessions() as session:
        reads = (
            await session.execute(
                select(AuditEvent.outcome, AuditEvent.detail, AuditEvent.resource_id)
                .where(AuditEvent.action == "fill.label")
                .order_by(AuditEvent.seq)
            )
        ).all()
    assert [(outcome, detail) for outcome, detail, _ in reads] == [
        ("not_found", {"format": "text"}),
        ("not_found", {"format": "pdf"}),
        ("success", {"format": "pdf", "printed": False}),
        ("success", {"format": "text"}),
        ("success", {"format": "pdf", "printed": True}),
    ]
    assert {resource for _, _, resource in reads} == {fill_id}


async def test_no_label_before_the_count_or_without_the_pharmacys_address(
    hub: Hub, checker: Checker, team: Team
) -> None:
    rx_id, _ = await approved(hub, checker, team)
    fill_id = (await ok(start(hub, team.tom, rx_id)))["id"]
    status, body = await label(hub, team.tom, fill_id)
    assert (status, body["code"]) == (422, "label_not_ready")
    await scan_and_count(hub, team.tom, fill_id)
    async with hub.db.transaction() as session:
        await session.execute(update(Pharmacy).values(address=None))
    response = await hub.client.get(f"/api/v1/fills/{fill_id}/label.pdf", headers=bearer(team.tom))
    assert response.status == 422
    assert (await response.json())["code"] == "pharmacy_contact_missing"
    status, body = await step(hub, team.tom, fill_id, "submit")
    assert (status, body["code"]) == (422, "fill_incomplete")
    assert await hub.audit_outcomes("fill.label") == ["refused", "refused"]
