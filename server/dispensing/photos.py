"""A fill's images: the three product photos a technician takes while filling (the stock
bottle, the counted product, the label on the vial) and the collector's signature drawn at the
hand-over. Each is made safe to keep (:mod:`.images`: decoded, re-encoded, no metadata),
written to the image vault encrypted, and recorded in ``fill_images`` in a unit of work of its
own. The file is written first and the row second, so a row never names a missing file; when
the unit of work fails (or refuses: the fill moved on meanwhile) the file is deleted again.

A retake keeps the image it replaces (``superseded_by`` the retake): the product check and the
hand-over read only the current image of each kind, the list shows them all, so what a
pharmacist was shown stays on record with the audit entries of its views.

Served only to the pharmacy's own technicians and pharmacists; another pharmacy's fill or
image answers 404, as one that does not exist; every upload, list and view is audited.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import msgspec
from aiohttp import web
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from eprescribe.dispensing import fills as rules

from .. import audit
from ..callers import PHARMACIST, Caller, caller
from ..db import DATABASE, Database
from ..errors import BadRequest, Conflict, NotFound, Problem
from ..http import respond
from ..openapi import Operation, Timestamp, operation, path, query
from ..settings import SETTINGS
from .images import ImageCorrupt, ImageLimits, ImageNotFound, ImageRefused, PreparedImage
from .images import prepare_in_thread as prepare
from .models import Fill as FillRow
from .models import FillImage
from .store import SUBMIT_CHECKS
from .uploads import IMAGE_VAULT, image_response, read_upload, refusal_problem, vault_ctx

READ_SCOPE = "rx:read"
SCOPE = "rx:verify"
STAFF = (PHARMACIST, "technician")

STOCK_BOTTLE = "stock_bottle"
COUNTED = "counted"
VIAL_LABEL = "vial_label"
SIGNATURE = "signature"
#: what the product check needs, and how a refused submit names each one missing
PRODUCT_PHOTOS = {
    STOCK_BOTTLE: "the photo of the stock bottle",
    COUNTED: "the photo of the counted product",
    VIAL_LABEL: "the photo of the label on the vial",
}
KINDS = (*PRODUCT_PHOTOS, SIGNATURE)
#: when each kind may be taken: the product while it is being filled (again, after a send-back),
#: the signature at the hand-over of a ready fill
TAKEN_IN = {
    **dict.fromkeys(PRODUCT_PHOTOS, rules.FillState.FILLING),
    SIGNATURE: rules.FillState.READY,
}


# -- what the fill flow reads -----------------------------------------------------------------


def current(session: Session, fill_id: uuid.UUID) -> list[FillImage]:
    """The fill's current image of each kind taken (retakes replace), oldest first."""
    return list(
        session.scalars(
            select(FillImage)
            .where(FillImage.fill_id == fill_id, FillImage.superseded_by.is_(None))
            .order_by(FillImage.created_at, FillImage.id)
        )
    )


def missing_photos(session: Session, fill: rules.Fill) -> Sequence[str]:
    """The :data:`~server.dispensing.store.SUBMIT_CHECKS` entry: the product photos the fill
    still lacks, in plain words."""
    taken = {image.kind for image in current(session, fill.id)}
    return [words for kind, words in PRODUCT_PHOTOS.items() if kind not in taken]


def signed(session: Session, fill_id: uuid.UUID) -> bool:
    """Whether the collector's signature was drawn and stored for this fill (the hand-over
    reads this, never a client's word for it)."""
    found = session.scalar(
        select(FillImage.id).where(
            FillImage.fill_id == fill_id,
            FillImage.kind == SIGNATURE,
            FillImage.superseded_by.is_(None),
        )
    )
    return found is not None


# -- answers ----------------------------------------------------------------------------------


class ImageView(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    kind: str
    media_type: str
    width: int
    height: int
    size: int
    sha256: str
    taken_by: str
    created_at: Timestamp
    #: the retake that replaced it (None: current)
    superseded_by: uuid.UUID | None
    #: where its bytes are (each view audited)
    href: str


class ImageList(msgspec.Struct, frozen=True, kw_only=True):
    """All the fill's images, retakes and the images they replaced, oldest first."""

    items: list[ImageView]


def view(row: FillImage) -> ImageView:
    return ImageView(
        id=row.id,
        kind=row.kind,
        media_type=row.media_type,
        width=row.width,
        height=row.height,
        size=row.size,
        sha256=row.sha256,
        taken_by=row.taken_by,
        created_at=row.created_at.isoformat(),
        superseded_by=row.superseded_by,
        href=f"/api/v1/fills/{row.fill_id}/images/{row.id}",
    )


# -- the handlers -----------------------------------------------------------------------------


def _event(
    action: str,
    who: Caller,
    resource: uuid.UUID,
    outcome: str = "success",
    detail: dict[str, Any] | None = None,
    kind: str = "fill",
) -> audit.Event:
    return audit.Event(
        f"fill.{action}",
        kind,
        str(resource),
        outcome=outcome,
        pharmacy_id=who.pharmacy_id,
        detail=detail or {},
    )


def _kind(request: web.Request) -> str:
    kind = request.query.get("kind", "")
    if kind not in KINDS:
        raise BadRequest(f"kind must be one of: {', '.join(KINDS)}.")
    return kind


def _image_id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["image_id"])
    except ValueError:
        raise NotFound("No such image.") from None


def _fill_id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError:
        raise NotFound("No such fill.") from None


def _not_now(kind: str) -> Problem:
    words = (
        "The signature is drawn at the hand-over of a ready fill."
        if kind == SIGNATURE
        else "Photos of the product are taken while the fill is being filled."
    )
    problem = Conflict(words)
    problem.code = "wrong_state"
    return problem


async def _admit(db: Database, who: Caller, fill_id: uuid.UUID, kind: str) -> None:
    """Refuse (audited) before the upload is read and decoded: another pharmacy's fill, or
    one not in the state the kind is taken in. Decided again, under the fill's lock, when the
    image is recorded."""
    async with audit.refusable(db) as session:
        state = await session.scalar(
            select(FillRow.state).where(
                FillRow.id == fill_id, FillRow.pharmacy_id == who.pharmacy_id
            )
        )
        await _check(session, who, fill_id, kind, state)


async def _check(
    session: Any, who: Caller, fill_id: uuid.UUID, kind: str, state: str | None
) -> None:
    if state is None:
        await audit.refuse(
            session,
            who.actor,
            _event("image", who, fill_id, "not_found", {"kind": kind}),
            NotFound("No such fill."),
        )
    if state != TAKEN_IN[kind].value:
        detail = {"kind": kind, "refused": "wrong_state", "state": state}
        await audit.refuse(
            session, who.actor, _event("image", who, fill_id, "refused", detail), _not_now(kind)
        )


def _record(
    session: Session,
    who: Caller,
    fill_id: uuid.UUID,
    kind: str,
    image_id: uuid.UUID,
    prepared: PreparedImage,
) -> list[str]:
    """Supersede the fill's current image of ``kind`` by the new one and record it; the IDs of
    the images replaced."""
    replaced = session.scalars(
        update(FillImage)
        .where(
            FillImage.fill_id == fill_id,
            FillImage.kind == kind,
            FillImage.superseded_by.is_(None),
        )
        .values(superseded_by=image_id)
        .returning(FillImage.id)
    ).all()
    session.add(
        FillImage(
            id=image_id,
            pharmacy_id=who.pharmacy_id,
            fill_id=fill_id,
            kind=kind,
            media_type=prepared.media_type,
            width=prepared.width,
            height=prepared.height,
            sha256=prepared.sha256,
            size=len(prepared.data),
            taken_by=str(who.actor)[:100],
        )
    )
    session.flush()
    return [str(r) for r in replaced]


async def _store(
    db: Database,
    who: Caller,
    fill_id: uuid.UUID,
    kind: str,
    image_id: uuid.UUID,
    prepared: PreparedImage,
) -> ImageView:
    async with audit.refusable(db) as session:
        state = await session.scalar(
            select(FillRow.state)
            .where(FillRow.id == fill_id, FillRow.pharmacy_id == who.pharmacy_id)
            .with_for_update()
        )
        await _check(session, who, fill_id, kind, state)
        replaced = await session.run_sync(
            lambda s: _record(s, who, fill_id, kind, image_id, prepared)
        )
        detail = {
            "fill_id": str(fill_id),
            "kind": kind,
            "sha256": prepared.sha256,
            "size": len(prepared.data),
            "width": prepared.width,
            "height": prepared.height,
            "source_type": prepared.source_type,
            "replaced": replaced,
        }
        await audit.add(session, who.actor, _event("image", who, image_id, detail=detail))
        row = await session.get(FillImage, image_id)
        assert row is not None
        return view(row)


@operation(
    Operation(
        operation_id="addFillImage",
        summary="Add a photo of the fill's product, or the collector's signature",
        description="kind: stock_bottle, counted or vial_label while the fill is filling (a "
        "retake replaces the current one, which is kept on record), signature at the "
        "hand-over of a ready fill (a PNG of the drawing). Body: the image itself (image/jpeg, "
        "image/png or image/webp) or a multipart/form-data form with one part named image. "
        "Decoded and encoded again without any metadata (no EXIF, no GPS position), then "
        "stored encrypted. Technicians and pharmacists. 413 too large, 415 not one of the "
        "three types, 422 undecodable or too_many_pixels, 409 wrong_state.",
        scope=SCOPE,
        parameters=[
            path("id", "the fill"),
            {
                **query("kind", {"type": "string", "enum": list(KINDS)}, "what it shows"),
                "required": True,
            },
        ],
        response=ImageView,
        errors=("400", "401", "403", "404", "409", "413", "415", "422"),
    )
)
async def add_image(request: web.Request) -> web.Response:
    """``POST /api/v1/fills/{id}/images?kind=``."""
    who = await caller(request, SCOPE)
    who.require_role(*STAFF)
    fill_id = _fill_id(request)
    kind = _kind(request)
    db = request.app[DATABASE]
    await _admit(db, who, fill_id, kind)
    limits = ImageLimits.of(request.app[SETTINGS])
    try:
        data, declared = await read_upload(request, limits.max_bytes)
        prepared = await prepare(data, declared, limits)
    except (Problem, ImageRefused) as exc:
        problem = refusal_problem(exc) if isinstance(exc, ImageRefused) else exc
        detail = {"kind": kind, "refused": problem.code}
        await audit.record(db, who.actor, _event("image", who, fill_id, "refused", detail))
        raise problem from None
    image_id = uuid.uuid4()
    vault = request.app[IMAGE_VAULT]
    await vault.put(who.pharmacy_id, fill_id, image_id, prepared)
    try:
        stored = await _store(db, who, fill_id, kind, image_id, prepared)
    except BaseException:
        # refused under the lock (the fill moved on meanwhile) or failed: no row names it
        vault.delete_sync(who.pharmacy_id, fill_id, image_id)
        raise
    return respond(stored)


@operation(
    Operation(
        operation_id="listFillImages",
        summary="A fill's images: current ones and those retakes replaced, oldest first",
        scope=READ_SCOPE,
        parameters=[path("id", "the fill")],
        response=ImageList,
        errors=("401", "403", "404"),
    )
)
async def list_images(request: web.Request) -> web.Response:
    """``GET /api/v1/fills/{id}/images``."""
    who = await caller(request, READ_SCOPE)
    who.require_role(*STAFF)
    fill_id = _fill_id(request)
    event = _event("images", who, fill_id)
    async with audit.refusable(request.app[DATABASE]) as session:
        found = await session.scalar(
            select(FillRow.id).where(FillRow.id == fill_id, FillRow.pharmacy_id == who.pharmacy_id)
        )
        await audit.found(session, who.actor, event, found, NotFound("No such fill."))
        rows = list(
            await session.scalars(
                select(FillImage)
                .where(FillImage.fill_id == fill_id)
                .order_by(FillImage.created_at, FillImage.id)
            )
        )
        await audit.add(session, who.actor, event)
    return respond(ImageList(items=[view(r) for r in rows]))


@operation(
    Operation(
        operation_id="getFillImage",
        summary="One image of a fill, its bytes (every view audited)",
        description="Served as stored (image/jpeg or image/png), inline, never cached.",
        scope=READ_SCOPE,
        parameters=[path("id", "the fill"), path("image_id", "the image")],
        errors=("401", "403", "404"),
    )
)
async def get_image(request: web.Request) -> web.Response:
    """``GET /api/v1/fills/{id}/images/{image_id}``: the file read after its row, the view
    audited with what came of it (a file that fails authentication is 404, audited
    ``corrupt``)."""
    who = await caller(request, READ_SCOPE)
    who.require_role(*STAFF)
    fill_id = _fill_id(request)
    image_id = _image_id(request)
    db = request.app[DATABASE]
    async with db.sessions() as session:
        row = await session.scalar(
            select(FillImage).where(
                FillImage.id == image_id,
                FillImage.fill_id == fill_id,
                FillImage.pharmacy_id == who.pharmacy_id,
            )
        )
    data: bytes | None = None
    outcome = "not_found"
    if row is not None:
        try:
            data = await request.app[IMAGE_VAULT].get(who.pharmacy_id, fill_id, image_id)
            outcome = "success"
        except ImageCorrupt:
            outcome = "corrupt"
        except ImageNotFound:
            outcome = "missing"
    detail = {"fill_id": str(fill_id), "kind": row.kind} if row is not None else {}
    await audit.record(
        db, who.actor, _event("image_read", who, image_id, outcome, detail, kind="fill_image")
    )
    if row is None or data is None:
        raise NotFound("No such image.")
    return image_response(data, row.media_type)


__all__ = [
    "KINDS",
    "PRODUCT_PHOTOS",
    "ImageList",
    "ImageView",
    "current",
    "missing_photos",
    "setup",
    "signed",
    "view",
]


def setup(app: web.Application) -> None:
    """The vault on the app, the routes, and the product photos required before a submit."""
    app.cleanup_ctx.append(vault_ctx)
    if missing_photos not in SUBMIT_CHECKS:
        SUBMIT_CHECKS.append(missing_photos)
    app.router.add_post("/api/v1/fills/{id}/images", add_image)
    app.router.add_get("/api/v1/fills/{id}/images", list_images)
    app.router.add_get("/api/v1/fills/{id}/images/{image_id}", get_image)
