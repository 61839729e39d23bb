"""The inventory's own actions (receiving, counting, reorder points, recalls) and its reads,
each in one unit of work with its audit entries last. A refused action changes nothing but is
audited too, with the reason, and raised as a problem after the commit (``audit.refusable``).

Audit entries name the product (NDC, lot, quantities) and never a patient.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, NoReturn, TypeVar

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from eprescribe.dispensing.inventory import Refusal, StockRefused

from .. import audit
from ..db import Database
from ..errors import Forbidden, NotFound, Problem, Unprocessable
from . import store
from .store import Movement, ProductStock, Receipt

_T = TypeVar("_T")
#: refusals that say the caller may not, rather than that the stock does not allow it
_FORBIDDEN = frozenset({"schedule_ii_pharmacist"})


def problem(refusal: Refusal) -> Problem:
    """The API's answer to a refusal: 404 for a lot the pharmacy does not stock (another
    pharmacy's lots are not confirmed), 403 for a missing permission, 422 for the stock."""
    extra = {} if refusal.on_hand is None else {"on_hand": float(refusal.on_hand)}
    if refusal.code == "lot_unknown":
        return NotFound(refusal.words)
    if refusal.code in _FORBIDDEN:
        forbidden = Forbidden(refusal.words)
        forbidden.code = refusal.code
        return forbidden
    return Unprocessable(refusal.code, refusal.words, extra=extra)


class Inventory:
    """The hub's handlers' and the CLI's door to the inventory."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def _change(
        self,
        actor: audit.Actor,
        action: str,
        subject: str | None,
        work: Callable[[Session], _T],
        moved: Callable[[_T], list[Movement]],
        asked: dict[str, Any],
    ) -> _T:
        """Run ``work`` in one audited unit of work: one entry per movement it made (or one
        saying nothing moved), or the refusal's."""
        async with audit.refusable(self._db) as session:
            try:
                result = await session.run_sync(work)
            except StockRefused as exc:
                await _refuse(session, actor, action, subject, exc.refusal, asked)
            kept: dict[str, Any] = {
                key: asked[key] for key in ("serial", "counted", "reason") if key in asked
            }
            rows = store.audit_rows(actor, action, moved(result), kept)
            if not rows:
                rows = [
                    audit.values(
                        actor,
                        audit.Event(
                            f"inventory.{action}",
                            "inventory_product",
                            subject,
                            detail={**asked, "moved": False},
                        ),
                    )
                ]
            await session.run_sync(audit.append, rows)
        return result

    async def receive(
        self, actor: audit.Actor, pharmacy_id: uuid.UUID, receipt: Receipt
    ) -> Movement:
        asked = {
            "ndc": list(receipt.ndc11_candidates),
            "lot": receipt.lot[:40],
            "expiry": receipt.expiry.isoformat(),
            "quantity": str(receipt.quantity),
        }
        if receipt.serial:
            asked["serial"] = receipt.serial[:40]
        return await self._change(
            actor,
            "receive",
            None,
            lambda s: store.receive(s, actor, pharmacy_id, receipt),
            lambda m: [m],
            asked,
        )

    async def adjust(
        self,
        actor: audit.Actor,
        pharmacy_id: uuid.UUID,
        ndc11: str,
        lot: str,
        counted: Decimal,
        reason: str,
        *,
        pharmacist: bool,
    ) -> Movement | None:
        asked = {"ndc11": ndc11, "lot": lot[:40], "counted": str(counted), "reason": reason}
        return await self._change(
            actor,
            "adjust",
            ndc11,
            lambda s: store.adjust(
                s,
                actor,
                pharmacy_id,
                ndc11,
                lot,
                counted,
                reason,
                may_adjust_schedule_ii=pharmacist,
            ),
            lambda m: [] if m is None else [m],
            asked,
        )

    async def recall(self, actor: audit.Actor, ndc11: str, lot: str, reason: str) -> list[Movement]:
        asked = {"ndc11": ndc11, "lot": lot[:40], "reason": reason}
        return await self._change(
            actor,
            "recall",
            ndc11,
            lambda s: store.recall(s, actor, ndc11, lot, reason),
            lambda moved: moved,
            asked,
        )

    async def set_reorder_point(
        self, actor: audit.Actor, pharmacy_id: uuid.UUID, ndc11: str, point: Decimal | None
    ) -> ProductStock:
        refused = audit.Event(
            "inventory.reorder_point", "inventory_product", ndc11, outcome="not_found"
        )
        async with audit.refusable(self._db) as session:
            product = await session.run_sync(
                lambda s: store.set_reorder_point(s, pharmacy_id, ndc11, point)
            )
            if product is None:
                await audit.refuse(session, actor, refused, NotFound("No such product in stock."))
            stock = await session.run_sync(lambda s: store.on_hand(s, pharmacy_id, ndcs=[ndc11]))
            detail = {"ndc11": ndc11, "reorder_point": None if point is None else str(point)}
            await audit.add(
                session,
                actor,
                audit.Event("inventory.reorder_point", "inventory_product", ndc11, detail=detail),
            )
        return stock[0]

    async def on_hand(
        self,
        pharmacy_id: uuid.UUID,
        *,
        low: bool = False,
        ndcs: Sequence[str] | None = None,
    ) -> list[ProductStock]:
        """Stock reads no patient data: not audited."""
        async with self._db.sessions() as session:
            return await session.run_sync(
                lambda s: store.on_hand(s, pharmacy_id, low=low, ndcs=ndcs)
            )

    async def log(
        self, actor: audit.Actor, pharmacy_id: uuid.UUID, ndc11: str
    ) -> tuple[ProductStock, list[Movement]]:
        """The product's movements, oldest first (a read of a controlled-substance record:
        audited)."""
        event = audit.Event("inventory.log", "inventory_product", ndc11)
        async with audit.refusable(self._db) as session:
            found = await session.run_sync(lambda s: _log(s, pharmacy_id, ndc11))
            if found is None:
                missing = audit.Event(
                    "inventory.log", "inventory_product", ndc11, outcome="not_found"
                )
                await audit.refuse(session, actor, missing, NotFound("No such product in stock."))
            product, moved = found
            await audit.add(
                session,
                actor,
                audit.Event(
                    event.action, event.resource_type, ndc11, detail={"movements": len(moved)}
                ),
            )
        return product, moved


def _log(
    session: Session, pharmacy_id: uuid.UUID, ndc11: str
) -> tuple[ProductStock, list[Movement]] | None:
    moved = store.movements(session, pharmacy_id, ndc11)
    if moved is None:
        return None
    return store.on_hand(session, pharmacy_id, ndcs=[ndc11])[0], moved


async def _refuse(
    session: AsyncSession,
    actor: audit.Actor,
    action: str,
    subject: str | None,
    refusal: Refusal,
    asked: dict[str, Any],
) -> NoReturn:
    event = audit.Event(
        f"inventory.{action}",
        "inventory_product",
        subject,
        outcome="refused",
        detail={**asked, "refused": refusal.code},
    )
    await audit.refuse(session, actor, event, problem(refusal))


#: the inventory the hub's handlers act through
INVENTORY: web.AppKey[Inventory] = web.AppKey("inventory")
