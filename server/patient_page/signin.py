"""A patient's sign-in to their own page: a one-time code to a verified contact point, then a
short session in an HttpOnly, SameSite=Strict cookie (``Secure`` with the ``__Host-`` prefix
over TLS), bound to the patient and the pharmacy. Apart from the staff's sign-in: the staff
API takes bearer tokens only, and the patient API reads this cookie only.

- ``POST /api/v1/me/sign-in/code`` ``{"pharmacy": NCPDPID, "address": email or mobile}``:
  always the same answer, whether anything matched or not, and in the same time: the code is
  looked up, written and sent after the answer (:mod:`.codes`).
- ``POST /api/v1/me/sign-in`` ``{"pharmacy", "address", "code"}``: the session.
- ``POST /api/v1/me/sign-out``.

Every POST must come from the hub's own pages (its ``Origin``); once signed in, a change also
carries the session's CSRF token in ``X-CSRF-Token``. Both POSTs are throttled per address and
per client address (:mod:`server.auth.throttle`: growing waits, 429 with ``Retry-After``).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

import msgspec
from aiohttp import web
from sqlalchemy import select

from eprescribe.contacts import ContactError, ContactKind
from eprescribe.patient_page import ABSOLUTE, CODE_TTL, IDLE, read_address

from .. import audit
from ..admin.models import Pharmacy
from ..auth.throttle import CLOCK, Throttle
from ..db import DATABASE
from ..errors import Forbidden, Problem, Unauthorized, Unprocessable
from ..http import PROXIES, read_json_as, respond
from ..metrics import OBSERVER
from ..openapi import Body, Operation, operation
from ..settings import SETTINGS
from . import store
from .codes import CODES
from .models import PatientSession

MAX_BODY = 2048
#: tries from one client address before the waits start
PER_IP = 10
CSRF_HEADER = "X-CSRF-Token"
SENT = (
    "If this matches an email or mobile number your pharmacy has verified, a code is on "
    f"its way. It expires in {int(CODE_TTL.total_seconds() // 60)} minutes."
)
NOT_RIGHT = "That code is not right, or it is no longer valid. Ask for a new code."


class TooManyRequests(Problem):
    status, code, title = 429, "too_many_requests", "Too many attempts"


def cookie_name(request: web.Request) -> str:
    secure = urlsplit(request.app[SETTINGS].issuer).scheme == "https"
    return "__Host-tp_patient" if secure else "tp_patient"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(request: web.Request) -> None:
    """A POST from the hub's own pages only: browsers send ``Origin`` on every POST, and a
    page elsewhere sends its own (the cookie is SameSite=Strict as well)."""
    allowed = _origin(request.app[SETTINGS].issuer)
    if (request.headers.get("Origin") or "").lower() != allowed:
        raise Forbidden("Send this from the pharmacy's own page.")


@dataclass(frozen=True, slots=True)
class Signed:
    """The signed-in patient of a request."""

    row: PatientSession
    actor: audit.Actor


async def signed_in(request: web.Request, *, change: bool = False) -> Signed:
    """The request's patient session, or 401; ``change``: a change, which must also come
    from the hub's pages with the session's CSRF token (else 403)."""
    token = request.cookies.get(cookie_name(request))
    row = None
    if token and len(token) <= 100:
        async with request.app[DATABASE].transaction() as session:
            row = await store.current_session(session, token, request.app[CLOCK]())
    if row is None:
        raise Unauthorized("Sign in with a code first.")
    if change:
        same_origin(request)
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(row.csrf.encode(), sent.encode()):
            raise Forbidden("The page is out of date: reload it.")
    ip = request.app[PROXIES].client_ip(request)
    return Signed(row, audit.Actor("patient", str(row.patient_id), row.pharmacy_id, ip))


class CodeAsk(Body, frozen=True):
    pharmacy: Annotated[str, msgspec.Meta(pattern="^[0-9]{7}$", description="NCPDP ID")]
    address: Annotated[
        str, msgspec.Meta(min_length=1, max_length=320, description="an email or a mobile")
    ]


class CodeSent(msgspec.Struct, frozen=True, kw_only=True):
    detail: str


class SignIn(CodeAsk, frozen=True):
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=12, description="six digits")]


class Session(msgspec.Struct, frozen=True, kw_only=True):
    csrf: Annotated[str, msgspec.Meta(description=f"send it as {CSRF_HEADER} with each change")]
    idle_minutes: int
    absolute_minutes: int


class SignedOut(msgspec.Struct, frozen=True, kw_only=True):
    signed_out: bool


def _read(typed: str) -> tuple[ContactKind, str] | None:
    try:
        return read_address(typed)
    except ContactError:
        return None


def _keys(request: web.Request, what: str, address: str) -> tuple[str, str]:
    ip = request.app[PROXIES].client_ip(request) or "unknown"
    return f"{what}:{address}", f"{what}:ip:{ip}"


async def _throttled(request: web.Request, what: str, address: str) -> None:
    """Three tries an address before the waits start, and :data:`PER_IP` a client address
    (one address may be a whole household's or a clinic's)."""
    by_address, by_ip = _keys(request, what, address)
    db, clock = request.app[DATABASE], request.app[CLOCK]
    waiting = await Throttle(db, clock).reserve([by_address])
    if not waiting:
        waiting = await Throttle(db, clock, free=PER_IP).reserve([by_ip])
    if waiting:
        request.app[OBSERVER].signin("patient", "throttled")
        raise TooManyRequests(
            f"Too many attempts. Wait {waiting} seconds, then try again.",
            headers={"Retry-After": str(waiting)},
            extra={"retry_after": waiting},
        )


async def _pharmacy(session: object, ncpdpid: str) -> Pharmacy | None:
    return await session.scalar(select(Pharmacy).where(Pharmacy.ncpdpid == ncpdpid))  # type: ignore[attr-defined]


@operation(
    Operation(
        operation_id="askPatientSignInCode",
        summary="A patient asks for a one-time sign-in code (same answer whatever matched)",
        scope=None,
        body=CodeAsk,
        response=CodeSent,
        errors=("400", "403", "413", "415", "429"),
        description="No credential: sent from the patient page (its Origin). A code goes to "
        "each verified, not opted-out contact point of the pharmacy with that address; the "
        "answer is the same when none matched. Throttled per address and client address.",
    )
)
async def ask_code(request: web.Request) -> web.Response:
    """``POST /api/v1/me/sign-in/code``."""
    same_origin(request)
    body = await read_json_as(request, CodeAsk, MAX_BODY)
    read = _read(body.address)
    key = store.address_key(*read) if read else "patient:unreadable"
    await _throttled(request, "code", key)
    ip = request.app[PROXIES].client_ip(request)
    actor = audit.Actor("patient", "anonymous", None, ip)
    # looked up, written and sent after the answer: its time says nothing of what matched
    request.app[CODES].ask(actor, body.pharmacy, read)
    return respond(CodeSent(detail=SENT))


@operation(
    Operation(
        operation_id="patientSignIn",
        summary="A patient signs in with the code: a short session cookie",
        scope=None,
        body=SignIn,
        response=Session,
        errors=("400", "403", "413", "415", "422", "429"),
        description="422 code_invalid for a wrong, expired, used or unknown code (one "
        "answer for all); five wrong tries kill a code. The session ends after "
        f"{int(IDLE.total_seconds() // 60)} idle minutes or "
        f"{int(ABSOLUTE.total_seconds() // 3600)} hours.",
    )
)
async def sign_in(request: web.Request) -> web.Response:
    """``POST /api/v1/me/sign-in``."""
    same_origin(request)
    body = await read_json_as(request, SignIn, MAX_BODY)
    read = _read(body.address)
    key = store.address_key(*read) if read else "patient:unreadable"
    await _throttled(request, "verify", key)
    ip = request.app[PROXIES].client_ip(request)
    now = request.app[CLOCK]()
    async with audit.refusable(request.app[DATABASE]) as session:
        pharmacy = await _pharmacy(session, body.pharmacy)
        checked = store.Checked(None, "no_code")
        if pharmacy is not None and read is not None:
            checked = await store.check_code(session, pharmacy.id, *read, body.code, now)
        if checked.code is None:
            event = audit.Event(
                "patient.sign_in",
                "patient",
                None,
                "refused",
                pharmacy.id if pharmacy else None,
                {"refused": checked.refused},
            )
            actor = audit.Actor("patient", "anonymous", None, ip)
            request.app[OBSERVER].signin("patient", "failure")
            await audit.refuse(session, actor, event, Unprocessable("code_invalid", NOT_RIGHT))
        code = checked.code
        token, row = await store.start_session(session, code, now)
        actor = audit.Actor("patient", str(code.patient_id), code.pharmacy_id, ip)
        detail = {"contact_id": str(code.contact_id)}
        event = audit.Event("patient.sign_in", "patient", str(code.patient_id), detail=detail)
        await audit.add(session, actor, event)
    await Throttle(request.app[DATABASE], request.app[CLOCK]).take_back(
        list(_keys(request, "verify", key))
    )
    response = respond(
        Session(
            csrf=row.csrf,
            idle_minutes=int(IDLE.total_seconds() // 60),
            absolute_minutes=int(ABSOLUTE.total_seconds() // 60),
        )
    )
    response.set_cookie(
        cookie_name(request),
        token,
        path="/",
        secure=urlsplit(request.app[SETTINGS].issuer).scheme == "https",
        httponly=True,
        samesite="Strict",
    )
    return response


@operation(
    Operation(
        operation_id="patientSignOut",
        summary="A patient signs out (the session is deleted)",
        scope=None,
        response=SignedOut,
        errors=("401", "403"),
        description="The patient session cookie and its X-CSRF-Token.",
    )
)
async def sign_out(request: web.Request) -> web.Response:
    """``POST /api/v1/me/sign-out``."""
    me = await signed_in(request, change=True)
    async with request.app[DATABASE].transaction() as session:
        await store.end_session(session, me.row.id)
        await audit.add(
            session, me.actor, audit.Event("patient.sign_out", "patient", str(me.row.patient_id))
        )
    response = respond(SignedOut(signed_out=True))
    response.del_cookie(cookie_name(request), path="/")
    return response
