"""``GET /api/v1/drugs``: the drug reference searched by name, for the console's drug picker
(what a pharmacist proposes to a prescriber). No patient data: not audited."""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from eprescribe.drugs import SCHEDULE_LABELS, Drug, DrugReference

from ..callers import caller
from ..errors import BadRequest
from ..http import query_int, respond
from ..openapi import Operation, operation, query

SCOPE = "rx:read"
MAX_LIMIT = 50
QUERY_MAX = 100


class DrugView(msgspec.Struct, frozen=True, kw_only=True):
    name: Annotated[str, msgspec.Meta(description="the RxNorm-style name to propose it by")]
    dose_form: str
    route: str
    dea_schedule: Annotated[
        str | None, msgspec.Meta(description="NCI code of its DEA schedule; null if none")
    ]
    schedule_label: str | None
    rxcui: str | None


class Drugs(msgspec.Struct, frozen=True, kw_only=True):
    items: list[DrugView]


def search(reference: DrugReference, text: str, limit: int) -> list[Drug]:
    """The drugs whose name holds every word of ``text`` (any case), shortest names first."""
    words = text.lower().split()
    found = [d for d in reference.drugs if all(word in d.name.lower() for word in words)]
    return sorted(found, key=lambda d: (len(d.name), d.name))[:limit]


@operation(
    Operation(
        operation_id="searchDrugs",
        summary="The drug reference, searched by name (the console's drug picker)",
        scope=SCOPE,
        parameters=[
            {
                **query(
                    "q",
                    {"type": "string", "minLength": 2, "maxLength": QUERY_MAX, "pattern": r"\S"},
                    "words the name holds, e.g. 'atorva 20'",
                ),
                "required": True,
            },
            query("limit", {"type": "integer", "minimum": 0, "maximum": MAX_LIMIT}, "at most"),
        ],
        response=Drugs,
        errors=("400", "401", "403"),
    )
)
async def search_drugs(request: web.Request) -> web.Response:
    """``GET /api/v1/drugs?q=``: the bundled reference's drugs whose names hold the words."""
    await caller(request, SCOPE)
    text = request.query.get("q", "").strip()
    if not 2 <= len(text) <= QUERY_MAX:
        raise BadRequest(f"q must be 2 to {QUERY_MAX} characters.")
    limit = query_int(request, "limit", 20, MAX_LIMIT)
    items = [
        DrugView(
            name=d.name,
            dose_form=d.dose_form,
            route=d.route,
            dea_schedule=d.dea_schedule,
            schedule_label=SCHEDULE_LABELS.get(d.dea_schedule) if d.dea_schedule else None,
            rxcui=d.rxcui,
        )
        for d in search(DrugReference.bundled(), text, limit)
    ]
    return respond(Drugs(items=items))
