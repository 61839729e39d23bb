"""Browser sessions for the sign-in pages, kept server-side.

The cookie carries 256 random bits; the database keeps only their SHA-256, so a leaked table
opens no session. Cookies are ``HttpOnly``, ``SameSite=Lax``, ``Path=/``, and ``Secure`` with
the ``__Host-`` prefix when the hub is served over TLS. A session is replaced by a new one
(new ID) when the user signs in, so an ID planted before sign-in is worthless (fixation);
it ends after 30 idle minutes or 12 hours in all, and at once when the account is disabled.
Every session carries a CSRF token that each form must return.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
import uuid

from aiohttp import web
from sqlalchemy import delete

from ..db import Database
from ..db.models import utcnow
from .models import User, WebSession
from .store import active_user, digest

IDLE = dt.timedelta(minutes=30)
ABSOLUTE = dt.timedelta(hours=12)
#: last_seen_at is written at most this often (a page view is not worth a write each time)
TOUCH = dt.timedelta(minutes=1)


class Sessions:
    def __init__(self, db: Database, secure: bool) -> None:
        self._db = db
        self.secure = secure
        self.cookie = "__Host-tp_session" if secure else "tp_session"

    async def current(self, request: web.Request) -> WebSession | None:
        """The request's live session, or None (expired ones are deleted)."""
        token = request.cookies.get(self.cookie)
        if not token or len(token) > 100:
            return None
        now = utcnow()
        async with self._db.transaction() as session:
            row = await session.get(WebSession, digest(token))
            if row is None:
                return None
            expired = row.last_seen_at + IDLE <= now or row.created_at + ABSOLUTE <= now
            if not expired and row.user_id is not None:
                user = await session.get(User, row.user_id)
                expired = user is None or user.disabled_at is not None
            if expired:
                await session.delete(row)
                return None
            if now - row.last_seen_at > TOUCH:
                row.last_seen_at = now
            return row

    async def start(self, response: web.StreamResponse) -> WebSession:
        """A new anonymous session (for the sign-in form's CSRF token)."""
        return await self._create(response, user_id=None, pending=None, replaced=None)

    async def promote(
        self,
        old: WebSession,
        response: web.StreamResponse,
        *,
        user_id: uuid.UUID | None = None,
        pending: uuid.UUID | None = None,
    ) -> WebSession:
        """Replace ``old`` with a new session (new ID and CSRF token) at a privilege change."""
        return await self._create(response, user_id=user_id, pending=pending, replaced=old.id)

    async def end(self, old: WebSession, response: web.StreamResponse) -> None:
        async with self._db.transaction() as session:
            await session.execute(delete(WebSession).where(WebSession.id == old.id))
        response.del_cookie(self.cookie, path="/")

    async def _create(
        self,
        response: web.StreamResponse,
        *,
        user_id: uuid.UUID | None,
        pending: uuid.UUID | None,
        replaced: str | None,
    ) -> WebSession:
        token = secrets.token_urlsafe(32)
        now = utcnow()
        row = WebSession(
            id=digest(token),
            user_id=user_id,
            pending_user_id=pending,
            csrf=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            authenticated_at=now if user_id else None,
        )
        async with self._db.transaction() as session:
            if replaced is not None:
                await session.execute(delete(WebSession).where(WebSession.id == replaced))
            session.add(row)
        response.set_cookie(
            self.cookie,
            token,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="Lax",
        )
        return row


def csrf_ok(session: WebSession | None, submitted: str | None) -> bool:
    return (
        session is not None
        and submitted is not None
        and hmac.compare_digest(session.csrf.encode(), submitted.encode())
    )


async def user_of(db: Database, session: WebSession | None) -> User | None:
    """The signed-in user of ``session``, unless disabled."""
    return await active_user(db, session.user_id if session else None)


#: the browser sign-in sessions
SESSIONS: web.AppKey[Sessions] = web.AppKey("sessions")
