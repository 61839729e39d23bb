"""Persistence of the browser flows: authorization codes, token families, refresh tokens.

Codes and refresh tokens are stored as SHA-256 (a database leak yields nothing usable) and are
consumed atomically (``UPDATE ... WHERE used_at IS NULL``), so of two concurrent uses exactly
one succeeds. A code or refresh token presented after it was used is treated as stolen: the
family of tokens issued from it is revoked, access tokens included (they carry the family
in ``fam``, which the API checks on every request).

authlib's grant hooks are synchronous and run in a worker thread; :class:`Bridge` lets them
run these coroutines on the event loop that owns the database engine.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, delete, select, update

from ..db import Database
from ..db.models import utcnow
from .models import AuthorizationCode, RefreshToken, TokenFamily, User, WebSession

T = TypeVar("T")
CODE_TTL = dt.timedelta(minutes=10)
#: a sign-in lasts at most this long, however often it is refreshed
FAMILY_TTL = dt.timedelta(hours=12)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Bridge:
    """Runs coroutines on ``loop`` from another thread and waits for them."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float = 10.0) -> None:
        self._loop = loop
        self._timeout = timeout

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(self._timeout)


@dataclass(frozen=True, slots=True)
class IssuedCode:
    """An authorization code as authlib's grants read it."""

    code_hash: str
    client_id: str
    user_id: uuid.UUID
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str
    auth_time: dt.datetime

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return int(self.auth_time.timestamp())

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> list[str]:
        return ["pwd", "otp"]

    code_challenge_method = "S256"


@dataclass(frozen=True, slots=True)
class LiveRefreshToken:
    """A refresh token of a live sign-in, as found (used up only once the request is valid:
    rotation then issues the next)."""

    token_hash: str
    family_id: uuid.UUID
    client_id: str
    user_id: uuid.UUID
    scope: str

    def check_client(self, client: Any) -> bool:
        return bool(client.get_client_id() == self.client_id)

    def get_scope(self) -> str:
        return self.scope


class FlowStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def save_code(
        self,
        code: str,
        *,
        client_id: str,
        user_id: uuid.UUID,
        redirect_uri: str,
        scope: str,
        nonce: str | None,
        code_challenge: str,
        auth_time: dt.datetime,
    ) -> None:
        async with self._db.transaction() as session:
            session.add(
                AuthorizationCode(
                    code_hash=digest(code),
                    client_id=client_id,
                    user_id=user_id,
                    redirect_uri=redirect_uri,
                    scope=scope,
                    nonce=nonce,
                    code_challenge=code_challenge,
                    auth_time=auth_time,
                    expires_at=utcnow() + CODE_TTL,
                )
            )

    async def use_code(self, code: str, client_id: str) -> IssuedCode | None:
        """Consume a live code of ``client_id``; a code used before revokes its tokens."""
        code_hash, now = digest(code), utcnow()
        async with self._db.transaction() as session:
            row = await session.scalar(
                update(AuthorizationCode)
                .where(
                    AuthorizationCode.code_hash == code_hash,
                    AuthorizationCode.client_id == client_id,
                    AuthorizationCode.used_at.is_(None),
                    AuthorizationCode.expires_at > now,
                )
                .values(used_at=now)
                .returning(AuthorizationCode)
            )
            if row is not None:
                return IssuedCode(
                    row.code_hash,
                    row.client_id,
                    row.user_id,
                    row.redirect_uri,
                    row.scope,
                    row.nonce,
                    row.code_challenge,
                    row.auth_time,
                )
            replayed = await session.scalar(
                select(AuthorizationCode.family_id).where(
                    AuthorizationCode.code_hash == code_hash,
                    AuthorizationCode.used_at.is_not(None),
                )
            )
            if replayed is not None:
                await _revoke(session, replayed, "code_replay")
        return None

    async def nonce_used(self, nonce: str, client_id: str) -> bool:
        async with self._db.sessions() as session:
            found = await session.scalar(
                select(AuthorizationCode.code_hash).where(
                    AuthorizationCode.nonce == nonce, AuthorizationCode.client_id == client_id
                )
            )
        return found is not None

    async def start_family(
        self, user_id: uuid.UUID, client_id: str, scope: str, code_hash: str | None
    ) -> uuid.UUID:
        async with self._db.transaction() as session:
            family = TokenFamily(
                user_id=user_id,
                client_id=client_id,
                scope=scope,
                expires_at=utcnow() + FAMILY_TTL,
            )
            session.add(family)
            await session.flush()
            if code_hash is not None:
                await session.execute(
                    update(AuthorizationCode)
                    .where(AuthorizationCode.code_hash == code_hash)
                    .values(family_id=family.id)
                )
            return family.id

    async def save_refresh(self, token: str, family_id: uuid.UUID) -> None:
        async with self._db.transaction() as session:
            session.add(RefreshToken(token_hash=digest(token), family_id=family_id))

    async def find_refresh(self, token: str) -> LiveRefreshToken | None:
        """A refresh token of a live family, not yet used; a used one presented again is
        treated as stolen and revokes the family. Nothing is consumed here: a request that
        then fails validation (another client, a wider scope) leaves the token as it was."""
        token_hash, now = digest(token), utcnow()
        async with self._db.transaction() as session:
            row = await session.get(RefreshToken, token_hash)
            if row is None:
                return None
            family = await session.get(TokenFamily, row.family_id)
            if family is None or family.revoked_at is not None or family.expires_at <= now:
                return None
            if row.used_at is not None:
                await _revoke(session, family.id, "refresh_reuse")
                return None
            return LiveRefreshToken(
                token_hash, family.id, family.client_id, family.user_id, family.scope
            )

    async def use_refresh(self, token: LiveRefreshToken) -> bool:
        """Consume a validated refresh token; False if it was used meanwhile (a concurrent
        use, which is reuse: the family is revoked)."""
        async with self._db.transaction() as session:
            used = await session.execute(
                update(RefreshToken)
                .where(RefreshToken.token_hash == token.token_hash, RefreshToken.used_at.is_(None))
                .values(used_at=utcnow())
            )
            if getattr(used, "rowcount", 0) == 1:
                return True
            await _revoke(session, token.family_id, "refresh_reuse")
            return False

    async def revoke_family(self, family_id: uuid.UUID, reason: str) -> None:
        async with self._db.transaction() as session:
            await _revoke(session, family_id, reason)

    async def family_of_refresh(self, token: str) -> TokenFamily | None:
        async with self._db.sessions() as session:
            return await session.scalar(
                select(TokenFamily)
                .join(RefreshToken, RefreshToken.family_id == TokenFamily.id)
                .where(RefreshToken.token_hash == digest(token))
            )

    async def family_by_id(self, family_id: str | uuid.UUID) -> TokenFamily | None:
        try:
            key = uuid.UUID(str(family_id))
        except ValueError:
            return None
        async with self._db.sessions() as session:
            return await session.get(TokenFamily, key)

    async def user_in_live_family(self, user_id: uuid.UUID, family_id: uuid.UUID) -> User | None:
        """The user if the account is active and the sign-in (family) of theirs has not ended:
        one query, since every API request of a person asks it."""
        async with self._db.sessions() as session:
            return await session.scalar(
                select(User)
                .join(TokenFamily, TokenFamily.user_id == User.id)
                .where(User.id == user_id, TokenFamily.id == family_id, *live_sign_in(utcnow()))
            )

    async def active_user(self, user_id: uuid.UUID) -> User | None:
        return await active_user(self._db, user_id)


def live_sign_in(now: dt.datetime) -> tuple[ColumnElement[bool], ...]:
    """What a sign-in (a token family, joined to its user) needs to still stand: the account
    active, the family neither revoked (sign-out, reuse, disabling, MFA reset) nor past its
    lifetime. The API asks it on every request of a person, a consult socket periodically."""
    return (
        User.disabled_at.is_(None),
        TokenFamily.revoked_at.is_(None),
        TokenFamily.expires_at > now,
    )


async def active_user(db: Database, user_id: uuid.UUID | None) -> User | None:
    """The user, unless unknown or disabled."""
    if user_id is None:
        return None
    async with db.sessions() as session:
        user = await session.get(User, user_id)
    return user if user is not None and user.disabled_at is None else None


async def end_sign_ins(session: Any, user_id: uuid.UUID, reason: str) -> None:
    """Inside the caller's transaction: end every browser session and token family of
    ``user_id`` (account disabled, MFA reset)."""
    await session.execute(
        delete(WebSession).where(
            (WebSession.user_id == user_id) | (WebSession.pending_user_id == user_id)
        )
    )
    await session.execute(
        update(TokenFamily)
        .where(TokenFamily.user_id == user_id, TokenFamily.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )


async def _revoke(session: Any, family_id: uuid.UUID, reason: str) -> None:
    await session.execute(
        update(TokenFamily)
        .where(TokenFamily.id == family_id, TokenFamily.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )
