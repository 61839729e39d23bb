"""Who is calling the API: a pharmacy system (machine client) or a signed-in user.

Both are bound to exactly one pharmacy and see nothing of another (a miss is 404, not 403, so
IDs of other pharmacies are not confirmed). A user's role and permissions come from the
database on every request, not from the token, and the sign-in the token belongs to must not
have ended: disabling an account, changing a role or revoking a sign-in takes effect at once.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from . import audit, auth
from .errors import Forbidden
from .http import PROXIES
from .logs import CLIENT_ID

PHARMACIST = "pharmacist"


@dataclass(frozen=True, slots=True)
class Caller:
    actor: audit.Actor
    pharmacy_id: uuid.UUID
    user_id: uuid.UUID | None = None
    role: str | None = None
    controlled_substances: bool = False
    #: when the user last proved password and TOTP (only on tokens straight from a sign-in)
    auth_time: int | None = None
    #: may refund payments
    refunds: bool = False

    def signed_in_within(self, seconds: int) -> bool:
        """Whether password and TOTP were proved at most ``seconds`` ago (step-up checks)."""
        return self.auth_time is not None and time.time() - self.auth_time <= seconds

    def require_role(self, *roles: str) -> uuid.UUID:
        """The user's ID if the caller is a user with one of ``roles``, else 403."""
        if self.user_id is None or self.role not in roles:
            raise Forbidden(f"Only a {' or '.join(roles)} may do this.")
        return self.user_id

    async def require_role_audited(
        self, session: AsyncSession, refused: audit.Event, *roles: str
    ) -> uuid.UUID:
        """:meth:`require_role` inside :func:`audit.refusable`'s unit of work: a refusal ends it
        with ``refused`` recorded."""
        try:
            return self.require_role(*roles)
        except Forbidden as problem:
            await audit.refuse(session, self.actor, refused, problem)


async def caller(request: web.Request, scope: str) -> Caller:
    token = auth.require(request, scope)
    request[CLIENT_ID] = token.client_id
    ip = request.app[PROXIES].client_ip(request)
    if not token.for_user:
        if not token.pharmacy_id:
            raise Forbidden("The client is not bound to a pharmacy.")
        pharmacy_id = uuid.UUID(token.pharmacy_id)
        return Caller(audit.Actor("client", token.client_id, pharmacy_id, ip), pharmacy_id)
    user = await auth.live_user(request, token)
    return Caller(
        audit.Actor("user", str(user.id), user.pharmacy_id, ip),
        user.pharmacy_id,
        user.id,
        user.role,
        user.controlled_substances,
        token.auth_time,
        user.refunds,
    )
