"""A fill's label over HTTP: its text (``GET /api/v1/fills/{id}/label``) and the PDF printed
from the browser (``GET /api/v1/fills/{id}/label.pdf``). Both are reads of patient data,
audited (``fill.label``); another pharmacy's fill answers 404. Fetching the PDF while the fill
is ``filling`` is its printing: the label's text is kept on the fill for the submit and the
product check (:mod:`.labelling`).
"""

from __future__ import annotations

import asyncio
from typing import NoReturn

import msgspec
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from eprescribe.dispensing import fills as rules
from eprescribe.dispensing.labels import LabelContent, label_lines, label_text
from eprescribe.verification import VerificationError

from .. import audit
from ..callers import Caller, caller
from ..db import DATABASE
from ..db.models import utcnow
from ..errors import NotFound, Problem
from ..http import path_uuid, respond
from ..openapi import Operation, Timestamp, operation, path
from . import labelling
from .label_pdf import render_label
from .store import FILLS, _problem

READ_SCOPE = "rx:read"
#: whose fetch of the PDF while filling is the label's printing
STAFF = frozenset({"pharmacist", "technician"})


class LabelView(msgspec.Struct, frozen=True, kw_only=True):
    """The label's canonical text, line by line, and whether it was printed for the fill."""

    rx_number: str
    #: what its barcode encodes: the fill screen's scan field and ``GET /api/v1/fills?rx=``
    #: take it back
    barcode: str
    lines: list[str]
    text: str
    printed: bool
    printed_at: Timestamp | None
    #: the text is the one kept at the print the submit took (what the product check compares)
    fixed: bool


def _event(fill_id: object, outcome: str = "success", **detail: object) -> audit.Event:
    return audit.Event("fill.label", "fill", str(fill_id), outcome=outcome, detail=detail)


async def _refuse(
    session: AsyncSession, who: Caller, fill_id: object, kind: str, exc: Exception
) -> NoReturn:
    """Audit the refused read (its code, or not_found) and answer it."""
    if isinstance(exc, VerificationError):
        event = _event(fill_id, "refused", format=kind, refused=exc.code)
        problem: Problem = _problem(exc)
    else:
        event, problem = _event(fill_id, "not_found", format=kind), NotFound("No such fill.")
    await audit.refuse(session, who.actor, event, problem)


@operation(
    Operation(
        operation_id="getFillLabel",
        summary="A fill's prescription label: its text, and whether it was printed",
        description="From the submit on, the text kept when the label was printed (what the "
        "product check compares); before it, the label of the fill as it stands. 422 "
        "label_not_ready before the product is scanned and counted; pharmacy_contact_missing "
        "while the pharmacy has no label address and phone.",
        scope=READ_SCOPE,
        parameters=[path("id", "the fill")],
        response=LabelView,
        errors=("401", "403", "404", "422"),
    )
)
async def get_label(request: web.Request) -> web.Response:
    """``GET /api/v1/fills/{id}/label``."""
    who = await caller(request, READ_SCOPE)
    fill_id = path_uuid(request, "fill")
    reference = await request.app[FILLS].reference()
    async with audit.refusable(request.app[DATABASE]) as session:
        found = await session.run_sync(lambda s: labelling.load(s, who.pharmacy_id, fill_id))
        if found is None:
            await _refuse(session, who, fill_id, "text", LookupError())
        fill, rx = found
        try:
            content = await session.run_sync(lambda s: labelling.content_of(s, fill, rx, reference))
        except VerificationError as exc:
            await _refuse(session, who, fill_id, "text", exc)
        fixed = fill.state != rules.FillState.FILLING.value and fill.label_text is not None
        text = fill.label_text if fixed and fill.label_text else label_text(content)
        await audit.add(session, who.actor, _event(fill_id, format="text"))
    return respond(
        LabelView(
            rx_number=content.rx_number,
            barcode=content.barcode_text,
            lines=text.splitlines() if fixed else list(label_lines(content)),
            text=text,
            printed=fill.label_printed_at is not None,
            printed_at=fill.label_printed_at.isoformat() if fill.label_printed_at else None,
            fixed=fixed,
        )
    )


@operation(
    Operation(
        operation_id="getFillLabelPdf",
        summary="A fill's prescription label as a PDF, to print from the browser",
        description="One 4 x 2.5 in label a page (docs/dispensing.md). While the fill is "
        "filling, a technician's or pharmacist's fetch is the label's printing: its text is "
        "kept on the fill, and the submit needs it (the label of the fill as it stands).",
        scope=READ_SCOPE,
        parameters=[path("id", "the fill")],
        errors=("401", "403", "404", "422"),
        media_type="application/pdf",
    )
)
async def get_label_pdf(request: web.Request) -> web.Response:
    """``GET /api/v1/fills/{id}/label.pdf``: decided and audited in one unit of work, then
    rendered in a thread (reportlab is CPU work)."""
    who = await caller(request, READ_SCOPE)
    fill_id = path_uuid(request, "fill")
    reference = await request.app[FILLS].reference()
    now = utcnow()
    async with audit.refusable(request.app[DATABASE]) as session:
        try:
            printed = await session.run_sync(
                lambda s: labelling.print_label(
                    s, who.pharmacy_id, fill_id, reference, now, by_staff=who.role in STAFF
                )
            )
        except VerificationError as exc:
            await _refuse(session, who, fill_id, "pdf", exc)
        if printed is None:
            await _refuse(session, who, fill_id, "pdf", LookupError())
        content, kept = printed
        await audit.add(session, who.actor, _event(fill_id, format="pdf", printed=kept))
    pdf = await asyncio.to_thread(render_label, content)
    return web.Response(
        body=pdf,
        content_type="application/pdf",
        headers={
            "Cache-Control": "no-store",
            "Content-Disposition": f'inline; filename="label-{_file_name(content)}.pdf"',
        },
    )


def _file_name(content: LabelContent) -> str:
    """The Rx number and fill (no patient data in a file name)."""
    return f"{content.rx_number}-{content.fill_number}"


def routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/fills/{id}/label", get_label)
    app.router.add_get("/api/v1/fills/{id}/label.pdf", get_label_pdf)
