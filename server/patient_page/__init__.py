"""The patient page: a patient's own page at ``/me/{pharmacy}`` (the pharmacy's NCPDP ID),
reached with a one-time code (:mod:`.signin`), their API under ``/api/v1/me`` (:mod:`.http`;
their payments: :mod:`.payments_http`), and the staff's list of the refill requests patients
make there (:mod:`.staff_http`). The tables and their one writer: :mod:`.models`,
:mod:`.store` (see docs/patients.md)."""

from __future__ import annotations

from aiohttp import web

from ..patients import merges
from ..settings import Settings
from . import codes, http, payments_http, signin, staff_http
from .models import RefillRequest

ME = "/api/v1/me"


def setup(app: web.Application, settings: Settings) -> None:
    # a refill request names a prescription, which moves with its patient's profile
    merges.MOVED_TABLES.setdefault("refill_requests", RefillRequest)
    app.cleanup_ctx.append(codes.codes_ctx)  # the sign-in codes sent after the answer
    router = app.router
    router.add_post(f"{ME}/sign-in/code", signin.ask_code)
    router.add_post(f"{ME}/sign-in", signin.sign_in)
    router.add_post(f"{ME}/sign-out", signin.sign_out)
    router.add_get(ME, http.get_me)
    router.add_get(f"{ME}/prescriptions", http.list_prescriptions)
    router.add_post(f"{ME}/prescriptions/{{id}}/refill", http.ask_refill)
    router.add_get(f"{ME}/preferences", http.get_preferences)
    router.add_put(f"{ME}/preferences", http.put_preferences)
    router.add_put(f"{ME}/consent", http.put_consent)
    router.add_get(f"{ME}/consults", http.list_invites)
    router.add_get(f"{ME}/balance", payments_http.get_balance)
    router.add_post(f"{ME}/cards", payments_http.set_up_card)
    router.add_get(f"{ME}/cards", payments_http.list_cards)
    router.add_delete(f"{ME}/cards/{{card}}", payments_http.remove_card)
    router.add_post(f"{ME}/payments", payments_http.pay)
    router.add_get(f"{ME}/plans", payments_http.list_plans)
    router.add_get("/api/v1/refill-requests", staff_http.list_requests)
    router.add_post("/api/v1/refill-requests/{id}/close", staff_http.close_request)
