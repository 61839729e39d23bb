"""Staff of a pharmacy, for its pharmacy admins: roles and controlled-substance permissions.

Changing either is a change of access control (21 CFR 1311: who may approve controlled
substances), so it needs the ``pharmacy_admin`` role **and** a fresh sign-in: an access token
issued within the last five minutes straight from password and TOTP. An older token gets 401
with ``insufficient_user_authentication`` and ``max_age`` (RFC 9470); the client signs in again
with ``max_age=0`` and retries. Every change is audited with the values before and after, every
refused one (not an admin, not freshly signed in, an admin's own demotion) with what was asked.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Annotated, Any, NoReturn, cast

import msgspec
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .. import audit
from ..auth.models import User
from ..callers import Caller, caller
from ..db import DATABASE
from ..errors import BadRequest, Forbidden, NotFound, Problem, Unauthorized, Unprocessable
from ..http import path_uuid, read_json_as, respond
from ..openapi import Body, Operation, operation, path
from ..users import Role

SCOPE = "staff:manage"
ADMIN = "pharmacy_admin"
FRESH_SECONDS = 300


class StaffMember(msgspec.Struct, frozen=True, kw_only=True):
    """A user of the pharmacy."""

    id: uuid.UUID
    username: str
    role: Role
    controlled_substances: bool
    refunds: bool
    disabled: bool


class Staff(msgspec.Struct, frozen=True, kw_only=True):
    """The pharmacy's users, by username."""

    items: list[StaffMember]


class StaffChange(Body, frozen=True):
    """What to change: the role, the controlled-substance permission, the refunds permission."""

    role: Role | msgspec.UnsetType = msgspec.UNSET
    controlled_substances: bool | msgspec.UnsetType = msgspec.UNSET
    refunds: bool | msgspec.UnsetType = msgspec.UNSET

    def asked(self) -> dict[str, Any]:
        """The members sent (audited as asked, and applied to the user)."""
        return {
            name: value
            for name in self.__struct_fields__
            if (value := getattr(self, name)) is not msgspec.UNSET
        }


@operation(
    Operation(
        operation_id="listStaff",
        summary="The staff of the caller's pharmacy (pharmacy admins)",
        scope=SCOPE,
        response=Staff,
        errors=("401", "403"),
    )
)
async def list_staff(request: web.Request) -> web.Response:
    who = await caller(request, SCOPE)
    who.require_role(ADMIN)
    async with request.app[DATABASE].transaction() as session:
        rows = list(
            await session.scalars(
                select(User).where(User.pharmacy_id == who.pharmacy_id).order_by(User.username)
            )
        )
        await audit.add(
            session, who.actor, audit.Event("user.list", "user", None, detail={"count": len(rows)})
        )
    return respond(Staff(items=[_user(u) for u in rows]))


@operation(
    Operation(
        operation_id="updateStaff",
        summary="Change a user's role, controlled-substance or refunds permission (fresh sign-in)",
        scope=SCOPE,
        parameters=[path("id", "the user")],
        # one member at least: the type cannot say so, the schema does
        body=Annotated[StaffChange, msgspec.Meta(extra_json_schema={"minProperties": 1})],
        response=StaffMember,
        errors=("400", "401", "403", "404", "413", "415", "422"),
    )
)
async def update_staff(request: web.Request) -> web.Response:
    who = await caller(request, SCOPE)
    user_id = path_uuid(request, "user")
    change = (await read_json_as(request, StaffChange, 4096)).asked()
    if not change:
        raise BadRequest("Send role, controlled_substances and/or refunds.")
    refused = audit.Event(
        "user.permissions", "user", str(user_id), outcome="refused", detail={"requested": change}
    )
    async with audit.refusable(request.app[DATABASE]) as session:
        admin_id = await _authorised_admin(session, who, refused)
        user = await session.scalar(
            select(User)
            .where(User.id == user_id, User.pharmacy_id == who.pharmacy_id)
            .with_for_update()
        )
        if user is None:
            missing = replace(refused, outcome="not_found", detail={})
            await audit.refuse(session, who.actor, missing, NotFound("No such user."))
        if user.id == admin_id and change.get("role", ADMIN) != ADMIN:
            problem = Unprocessable(
                "cannot_demote_self", "Another pharmacy admin must change your role."
            )
            await _refuse(session, who, refused, "cannot_demote_self", problem)
        before = _permissions(user)
        for key, value in change.items():
            setattr(user, key, value)
        after = _permissions(user)
        await audit.add(
            session,
            who.actor,
            audit.Event(
                "user.permissions", "user", str(user.id), detail={"before": before, "after": after}
            ),
        )
        return respond(_user(user))


async def _authorised_admin(session: AsyncSession, who: Caller, refused: audit.Event) -> uuid.UUID:
    """The caller's user ID if a pharmacy admin signed in freshly may change permissions;
    else the refusal (403, or 401 asking for a fresh sign-in), audited."""
    try:
        admin_id = who.require_role(ADMIN)
    except Forbidden as problem:
        await _refuse(session, who, refused, "not_admin", problem)
    if not who.signed_in_within(FRESH_SECONDS):
        stale = Unauthorized(
            "Sign in again (password and code) to change permissions.",
            headers={
                "WWW-Authenticate": 'Bearer error="insufficient_user_authentication", '
                f'error_description="A fresh sign-in is required", max_age={FRESH_SECONDS}'
            },
        )
        await _refuse(session, who, refused, "stale_sign_in", stale)
    return admin_id


async def _refuse(
    session: AsyncSession, who: Caller, refused: audit.Event, why: str, problem: Problem
) -> NoReturn:
    event = replace(refused, detail={"refused": why, **refused.detail})
    await audit.refuse(session, who.actor, event, problem)


def _permissions(user: User) -> dict[str, Any]:
    return {
        "role": user.role,
        "controlled_substances": user.controlled_substances,
        "refunds": user.refunds,
    }


def _user(user: User) -> StaffMember:
    return StaffMember(
        id=user.id,
        username=user.username,
        role=cast(Role, user.role),  # written only from Role, by the CLI and update_staff
        controlled_substances=user.controlled_substances,
        refunds=user.refunds,
        disabled=user.disabled_at is not None,
    )
