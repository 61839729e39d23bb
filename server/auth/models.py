"""The tables of signing in: staff accounts with their credentials, OAuth clients, browser
sessions, authorization codes, token families with their refresh tokens, the sign-in throttle.

Staff accounts are kept here rather than with the operator's commands that create them
(``server/users.py``) because what a row holds is how its person proves who they are: the
password hash, the TOTP seed and its last step, written by the sign-in as much as by those
commands. Those commands and the staff API use this model; auth needs nothing of theirs.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import BigInteger, ForeignKey, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from ..db.models import Base, BigId, utcnow


class OAuthClient(Base):
    """A registered OAuth client. Secrets are stored as SHA-256 of a 256-bit random value."""

    __tablename__ = "oauth_clients"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(Text)
    grant_types: Mapped[str] = mapped_column(Text)
    token_endpoint_auth_methods: Mapped[str] = mapped_column(Text)
    redirect_uris: Mapped[str] = mapped_column(Text, default="")
    pharmacy_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("pharmacies.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[dt.datetime | None]
    #: a prescriber system's SCRIPT endpoint: the hub's outbound messages to it go there
    endpoint: Mapped[str | None] = mapped_column(Text)
    #: the bearer token the hub presents there, sealed with the data dir's secret key
    endpoint_token: Mapped[str | None] = mapped_column(Text)


class User(Base):
    """A person who signs in: pharmacist, technician or pharmacy admin of one pharmacy."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    pharmacy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacies.id"))
    #: stored lower-case; unique across the hub, so a sign-in names no pharmacy
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(200))
    #: TOTP seed sealed with the data dir's secret key; None after an MFA reset
    totp_secret: Mapped[str | None] = mapped_column(String(200))
    #: set once the user has proved the authenticator works; sign-in needs it
    totp_confirmed_at: Mapped[dt.datetime | None]
    #: the last accepted TOTP time step (a code is never accepted twice)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    #: may approve controlled-substance prescriptions (changed by a pharmacy_admin only)
    controlled_substances: Mapped[bool] = mapped_column(default=False)
    #: may refund payments (granted by a pharmacy_admin only)
    refunds: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[dt.datetime | None]


class WebSession(Base):
    """A browser's sign-in session; the cookie holds a random token, this row its SHA-256."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: set once password and TOTP are both verified
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"), index=True)
    #: the password was right; waiting for the TOTP code
    pending_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    authenticated_at: Mapped[dt.datetime | None]


class AuthorizationCode(Base):
    """An OAuth authorization code (stored as its SHA-256), single use, ten minutes."""

    __tablename__ = "oauth_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    nonce: Mapped[str | None] = mapped_column(String(255))
    code_challenge: Mapped[str] = mapped_column(String(128))
    auth_time: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]
    #: the tokens issued for it, revoked if the code is ever presented again
    family_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class TokenFamily(Base):
    """The tokens of one sign-in: its rotating refresh tokens and the access tokens they
    bought (``fam`` claim). Revoking the family ends them all."""

    __tablename__ = "token_families"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    client_id: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: absolute lifetime: no refresh beyond it
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(40))


class RefreshToken(Base):
    """A refresh token (as its SHA-256); used once, then replaced by the next."""

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    family_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("token_families.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    used_at: Mapped[dt.datetime | None]


class LoginThrottle(Base):
    """Failed sign-ins per account and per address, and until when the next try must wait."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    blocked_until: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
