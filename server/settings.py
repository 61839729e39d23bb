"""Hub settings: read from ``TELEPHARM_*`` environment variables once, frozen afterwards.

Tests build :class:`Settings` directly; ``Settings.from_env()`` is for the CLI.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from eprescribe.payments.money import CURRENCIES
from eprescribe.retention import PERIODS, Kind, RetentionError, check_days

MIB = 1024 * 1024
#: the most pixels TELEPHARM_MAX_IMAGE_PIXELS may allow (Pillow's own bomb guard is set to it)
MAX_IMAGE_PIXELS_CEILING = 100_000_000
#: the hub's version, as its SCRIPT messages name it (SenderSoftwareVersionRelease)
SOFTWARE_VERSION = "0.1.0"


class SettingsError(ValueError):
    """A setting has a value the hub cannot run with."""


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def _count(value: str, name: str = "MAX_RECORDINGS", low: int = 0) -> int:
    if not (value.isascii() and value.isdigit()) or int(value) < low:
        raise SettingsError(f"TELEPHARM_{name} must be a whole number from {low}, got {value!r}")
    return int(value)


def _seconds(value: str, name: str, below: float = 86400) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < below:
        raise SettingsError(f"TELEPHARM_{name} must be a number of seconds above 0, got {value!r}")
    return seconds


def _switch(value: str, name: str) -> bool:
    if value not in ("0", "1"):
        raise SettingsError(f"TELEPHARM_{name} must be 1 (on) or 0 (off), got {value!r}")
    return value == "1"


def is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the hub needs to know about its environment."""

    data_dir: Path = Path("var")
    database_url: str = ""
    broker_url: str = ""
    redis_url: str = ""
    issuer: str = "http://127.0.0.1:8080"
    turn_urls: tuple[str, ...] = ()
    turn_secret: str = ""
    trusted_proxies: tuple[str, ...] = ()
    log_level: str = "INFO"
    #: lifetime of client-credentials access tokens (SMART Backend Services: at most 300 s)
    access_token_ttl: int = 300
    max_message_bytes: int = MIB
    max_form_bytes: int = 64 * 1024
    #: how long a request body may take to arrive, whole (seconds); then 408
    body_timeout: float = 30.0
    #: how long the intake waits for the database before answering SCRIPT Error 602/008
    store_timeout: float = 10.0
    #: how long the intake remembers that a receiving pharmacy exists (seconds)
    pharmacy_cache_ttl: float = 30.0
    software_version: str = field(default=SOFTWARE_VERSION)
    #: JSON file of prescription expiry days by schedule and state (eprescribe ExpiryRules)
    expiry_rules_file: str = ""
    #: how often the hub looks for prescriptions whose check never ran, and how old they must be
    sweep_interval: float = 30.0
    stuck_after: float = 60.0
    #: days a ready fill waits for its patient before it goes back to stock
    return_to_stock_days: int = 14
    #: seconds "needs the prescriber" waits for the prescriber's answer before it goes
    needs_prescriber_delay: int = 3600
    #: days a ready fill waits before its patient is reminded to collect it
    not_collected_days: int = 5
    #: seconds between runs of the scheduled notices (refill due, not collected, received)
    schedule_interval: float = 60.0
    #: how long a consult participant's dropped socket keeps its seat (seconds)
    consult_grace: float = 30.0
    #: how often a hub process re-checks the sign-ins behind its open pharmacist sockets
    consult_recheck: float = 20.0
    #: consults recorded at once by this process (each re-encodes on its event loop); 0: none
    max_recordings: int = 2
    #: how long a consult's invite link works (seconds)
    invite_ttl: int = 24 * 3600
    #: outbound delivery (server.outbox): how long one attempt may take; the first wait after
    #: a failure (doubling, with jitter) and the longest; how long a message may keep failing
    #: from its first attempt before it is dead-lettered (seconds)
    outbox_timeout: float = 10.0
    outbox_retry_first: float = 2.0
    outbox_retry_max: float = 300.0
    outbox_dead_after: float = 24 * 3600.0
    #: EPCS (docs/epcs.md): the roots practitioners' certificates must chain to (a PEM bundle
    #: or a directory of certificates; none: no practitioner signature verifies), CRLs the
    #: operator supplies (a file or directory; others are fetched from the certificates' CRL
    #: distribution points, waiting at most ``crl_timeout`` seconds), and the hub's archive
    #: signing key (PEM, EC P-256; default ``keys/archive-signing.pem``, made on first use)
    epcs_trust_roots: str = ""
    epcs_crls: str = ""
    crl_timeout: float = 10.0
    archive_key_file: str = ""
    #: earlier archive keys, still checked by ``audit verify`` (a PEM file or a directory of
    #: ``.pem`` files: public keys, or the old private key files themselves)
    archive_earlier_keys: str = ""
    #: the demo prescriber system (server.demo_ehr) served by the hub itself, for ``make run``:
    #: never on in production (only with a loopback issuer)
    demo_ehr: bool = False
    #: fill images (server.dispensing.images): the most bytes an upload may have, the most
    #: pixels its header may declare (refused before decoding: decompression bombs), and the
    #: longest edge kept (larger images are shrunk to it)
    max_image_bytes: int = 8 * MIB
    max_image_pixels: int = 40_000_000
    max_image_edge: int = 4096
    #: patient email (server.notifications.email): the SMTP server (none: no email is sent),
    #: its port, how the connection is protected (``starttls``, ``tls``: implicit TLS, or
    #: ``none``: loopback only), the account, the From address, how long one message may take
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_security: str = "starttls"
    smtp_username: str = ""
    smtp_password: str = field(default="", repr=False)
    mail_from: str = ""
    smtp_timeout: float = 30.0
    #: patient SMS (server.notifications.sms): a Twilio-style API (its base URL, account SID
    #: and auth token: none, no SMS is sent), the number messages come from, how long one
    #: request may take
    sms_api_url: str = "https://api.twilio.com"
    sms_account_sid: str = ""
    sms_auth_token: str = field(default="", repr=False)
    sms_from: str = ""
    sms_timeout: float = 10.0
    #: card payments (server.payments): Stripe's secret and publishable keys (no secret key:
    #: the ledger works, nothing is charged), the webhook endpoint's signing secrets (several
    #: while one is rolled), the API's base URL (a local stand-in in tests), the currency
    stripe_api_key: str = field(default="", repr=False)
    stripe_publishable_key: str = ""
    stripe_webhook_secrets: tuple[str, ...] = field(default=(), repr=False)
    stripe_api_base: str = "https://api.stripe.com"
    stripe_js_url: str = "https://js.stripe.com/v3/"
    currency: str = "usd"
    #: observability (docs/operations.md): metrics on (0: off, no observer, no /metrics);
    #: the directory the processes of one machine share their values through (default
    #: ``<data dir>/metrics``); the separate loopback listener of ``GET /metrics`` (0: none);
    #: a bearer token that also opens ``GET /metrics`` on the hub's own port (none: 404 there)
    metrics: bool = True
    metrics_dir: str = ""
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    metrics_token: str = field(default="", repr=False)
    #: OpenTelemetry tracing: off (""), ``console`` or ``otlp`` (to ``otlp_endpoint``)
    tracing: str = ""
    otlp_endpoint: str = "http://127.0.0.1:4318/v1/traces"
    #: ``telepharm retention`` (docs/backups.md): days each kind of record is kept, never
    #: below its legal minimum
    retention_controlled_days: int = PERIODS[Kind.CONTROLLED].default
    retention_prescriptions_days: int = PERIODS[Kind.PRESCRIPTIONS].default
    retention_audit_days: int = PERIODS[Kind.AUDIT].default

    def __post_init__(self) -> None:
        parts = urlsplit(self.issuer)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise SettingsError(f"TELEPHARM_ISSUER must be an absolute URL, got {self.issuer!r}")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise SettingsError("TELEPHARM_ISSUER must use https unless the hub is on loopback")
        if parts.query or parts.fragment:
            raise SettingsError("TELEPHARM_ISSUER must not have a query or fragment")
        if any(u.startswith(("turn:", "turns:")) for u in self.turn_urls) and not self.turn_secret:
            raise SettingsError("TELEPHARM_TURN_URLS has TURN servers: set TELEPHARM_TURN_SECRET")
        if self.demo_ehr and not is_loopback(parts.hostname):
            raise SettingsError("TELEPHARM_DEMO_EHR is for the demo on loopback only")
        if not 0 < self.max_image_pixels <= MAX_IMAGE_PIXELS_CEILING:
            raise SettingsError(
                f"TELEPHARM_MAX_IMAGE_PIXELS must be from 1 to {MAX_IMAGE_PIXELS_CEILING}"
            )
        _check_mail(self)
        _check_sms(self)
        _check_stripe_urls(self)
        _check_observability(self)
        for kind in Kind:
            try:
                check_days(kind, self.retention_days(kind))
            except RetentionError as exc:
                raise SettingsError(f"TELEPHARM_RETENTION_{kind.upper()}_DAYS: {exc}") from None
        if not self.database_url:
            sqlite = (self.data_dir / "hub.sqlite3").resolve()
            object.__setattr__(self, "database_url", f"sqlite+aiosqlite:///{sqlite}")
        object.__setattr__(self, "issuer", self.issuer.rstrip("/"))

    @property
    def broker(self) -> str:
        """The task broker: the configured one, else the embedded SQLite-backed broker."""
        if self.broker_url:
            return self.broker_url
        return f"sqla+sqlite:///{(self.data_dir / 'broker.sqlite3').resolve()}"

    @property
    def sync_database_url(self) -> str:
        """The same database for blocking code (Celery workers): psycopg, or plain sqlite3."""
        return self.database_url.replace("+asyncpg", "+psycopg").replace("+aiosqlite", "")

    @property
    def metrics_path(self) -> Path:
        """Where the processes of this machine keep their metric values."""
        return Path(self.metrics_dir) if self.metrics_dir else self.data_dir / "metrics"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def archive_key_path(self) -> Path:
        """The hub's archive signing key: the configured file, else one in the keys dir."""
        if self.archive_key_file:
            return Path(self.archive_key_file)
        return self.keys_dir / "archive-signing.pem"

    def retention_days(self, kind: Kind) -> int:
        """How many days records of ``kind`` are kept."""
        return {
            Kind.CONTROLLED: self.retention_controlled_days,
            Kind.PRESCRIPTIONS: self.retention_prescriptions_days,
            Kind.AUDIT: self.retention_audit_days,
        }[kind]

    @property
    def audience(self) -> str:
        """The ``aud`` of access tokens for this hub's own APIs."""
        return self.issuer

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        defaults = cls()

        def get(name: str, default: str) -> str:
            return env.get(f"TELEPHARM_{name}", "").strip() or default

        return cls(
            data_dir=Path(get("DATA_DIR", str(defaults.data_dir))),
            database_url=get("DATABASE_URL", ""),
            broker_url=get("BROKER_URL", ""),
            redis_url=get("REDIS_URL", ""),
            issuer=get("ISSUER", defaults.issuer),
            turn_urls=_split(env.get("TELEPHARM_TURN_URLS")),
            turn_secret=get("TURN_SECRET", ""),
            trusted_proxies=_split(env.get("TELEPHARM_TRUSTED_PROXIES")),
            log_level=get("LOG_LEVEL", defaults.log_level).upper(),
            expiry_rules_file=get("EXPIRY_RULES", ""),
            epcs_trust_roots=get("EPCS_TRUST_ROOTS", ""),
            epcs_crls=get("EPCS_CRLS", ""),
            crl_timeout=_seconds(get("CRL_TIMEOUT", str(defaults.crl_timeout)), "CRL_TIMEOUT"),
            archive_key_file=get("ARCHIVE_KEY", ""),
            archive_earlier_keys=get("ARCHIVE_EARLIER_KEYS", ""),
            demo_ehr=_switch(get("DEMO_EHR", "0"), "DEMO_EHR"),
            max_recordings=_count(get("MAX_RECORDINGS", str(defaults.max_recordings))),
            invite_ttl=_count(get("INVITE_TTL", str(defaults.invite_ttl)), "INVITE_TTL", 1),
            sweep_interval=_seconds(
                get("SWEEP_INTERVAL", str(defaults.sweep_interval)), "SWEEP_INTERVAL"
            ),
            stuck_after=_seconds(get("STUCK_AFTER", str(defaults.stuck_after)), "STUCK_AFTER"),
            return_to_stock_days=_count(
                get("RETURN_TO_STOCK_DAYS", str(defaults.return_to_stock_days)),
                "RETURN_TO_STOCK_DAYS",
                1,
            ),
            needs_prescriber_delay=_count(
                get("NEEDS_PRESCRIBER_DELAY", str(defaults.needs_prescriber_delay)),
                "NEEDS_PRESCRIBER_DELAY",
                0,
            ),
            not_collected_days=_count(
                get("NOT_COLLECTED_DAYS", str(defaults.not_collected_days)),
                "NOT_COLLECTED_DAYS",
                1,
            ),
            schedule_interval=_seconds(
                get("SCHEDULE_INTERVAL", str(defaults.schedule_interval)), "SCHEDULE_INTERVAL"
            ),
            outbox_timeout=_seconds(
                get("OUTBOX_TIMEOUT", str(defaults.outbox_timeout)), "OUTBOX_TIMEOUT", 300
            ),
            outbox_retry_first=_seconds(
                get("OUTBOX_RETRY_FIRST", str(defaults.outbox_retry_first)), "OUTBOX_RETRY_FIRST"
            ),
            outbox_retry_max=_seconds(
                get("OUTBOX_RETRY_MAX", str(defaults.outbox_retry_max)), "OUTBOX_RETRY_MAX"
            ),
            outbox_dead_after=_seconds(
                get("OUTBOX_DEAD_AFTER", str(defaults.outbox_dead_after)),
                "OUTBOX_DEAD_AFTER",
                30 * 86400,
            ),
            access_token_ttl=_count(
                get("ACCESS_TOKEN_TTL", str(defaults.access_token_ttl)), "ACCESS_TOKEN_TTL", 60
            ),
            body_timeout=_count(
                get("BODY_TIMEOUT", f"{defaults.body_timeout:.0f}"), "BODY_TIMEOUT", 1
            ),
            store_timeout=_count(
                get("STORE_TIMEOUT", f"{defaults.store_timeout:.0f}"), "STORE_TIMEOUT", 1
            ),
            max_image_bytes=_count(
                get("MAX_IMAGE_BYTES", str(defaults.max_image_bytes)), "MAX_IMAGE_BYTES", 1024
            ),
            max_image_pixels=_count(
                get("MAX_IMAGE_PIXELS", str(defaults.max_image_pixels)), "MAX_IMAGE_PIXELS", 1
            ),
            max_image_edge=_count(
                get("MAX_IMAGE_EDGE", str(defaults.max_image_edge)), "MAX_IMAGE_EDGE", 64
            ),
            smtp_host=get("SMTP_HOST", ""),
            smtp_port=_count(get("SMTP_PORT", str(defaults.smtp_port)), "SMTP_PORT", 1),
            smtp_security=get("SMTP_SECURITY", defaults.smtp_security).lower(),
            smtp_username=get("SMTP_USERNAME", ""),
            smtp_password=env.get("TELEPHARM_SMTP_PASSWORD", ""),
            mail_from=get("MAIL_FROM", ""),
            smtp_timeout=_seconds(
                get("SMTP_TIMEOUT", str(defaults.smtp_timeout)), "SMTP_TIMEOUT", 300
            ),
            sms_api_url=get("SMS_API_URL", defaults.sms_api_url),
            sms_account_sid=get("SMS_ACCOUNT_SID", ""),
            sms_auth_token=get("SMS_AUTH_TOKEN", ""),
            sms_from=get("SMS_FROM", ""),
            sms_timeout=_seconds(get("SMS_TIMEOUT", str(defaults.sms_timeout)), "SMS_TIMEOUT", 300),
            stripe_api_key=env.get("TELEPHARM_STRIPE_API_KEY", ""),
            stripe_publishable_key=get("STRIPE_PUBLISHABLE_KEY", ""),
            stripe_webhook_secrets=tuple(
                part.strip()
                for part in env.get("TELEPHARM_STRIPE_WEBHOOK_SECRETS", "").split(",")
                if part.strip()
            ),
            stripe_api_base=get("STRIPE_API_BASE", defaults.stripe_api_base).rstrip("/"),
            stripe_js_url=get("STRIPE_JS_URL", defaults.stripe_js_url),
            currency=_currency(get("CURRENCY", defaults.currency)),
            metrics=_switch(get("METRICS", "1"), "METRICS"),
            metrics_dir=get("METRICS_DIR", ""),
            metrics_host=get("METRICS_HOST", defaults.metrics_host),
            metrics_port=_count(get("METRICS_PORT", "0"), "METRICS_PORT"),
            metrics_token=env.get("TELEPHARM_METRICS_TOKEN", "").strip(),
            tracing=get("TRACING", "").lower(),
            otlp_endpoint=get("OTLP_ENDPOINT", defaults.otlp_endpoint),
            retention_controlled_days=_count(
                get("RETENTION_CONTROLLED_DAYS", str(PERIODS[Kind.CONTROLLED].default)),
                "RETENTION_CONTROLLED_DAYS",
                1,
            ),
            retention_prescriptions_days=_count(
                get("RETENTION_PRESCRIPTIONS_DAYS", str(PERIODS[Kind.PRESCRIPTIONS].default)),
                "RETENTION_PRESCRIPTIONS_DAYS",
                1,
            ),
            retention_audit_days=_count(
                get("RETENTION_AUDIT_DAYS", str(PERIODS[Kind.AUDIT].default)),
                "RETENTION_AUDIT_DAYS",
                1,
            ),
        )


def _currency(value: str) -> str:
    if value.lower() not in CURRENCIES:
        known = ", ".join(sorted(CURRENCIES))
        raise SettingsError(f"TELEPHARM_CURRENCY must be one of {known}, got {value!r}")
    return value.lower()


#: how the SMTP connection is protected: STARTTLS after connecting, TLS from the first byte
SMTP_SECURITY = ("starttls", "tls", "none")
_ADDRESS = re.compile(r"[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+")
#: a sender: a number in E.164 form, or a short code
_SMS_SENDER = re.compile(r"\+[1-9][0-9]{6,14}|[0-9]{5,6}")


def _check_mail(settings: Settings) -> None:
    if settings.smtp_security not in SMTP_SECURITY:
        raise SettingsError(
            f"TELEPHARM_SMTP_SECURITY must be starttls, tls or none, got {settings.smtp_security!r}"
        )
    if not 0 < settings.smtp_port < 65536:
        raise SettingsError(
            f"TELEPHARM_SMTP_PORT must be from 1 to 65535, got {settings.smtp_port}"
        )
    if not settings.smtp_host:
        return
    if settings.smtp_security == "none" and not is_loopback(settings.smtp_host):
        # patient email, and the account's password, never cross a network in clear
        raise SettingsError("TELEPHARM_SMTP_SECURITY=none is for an SMTP server on loopback only")
    _, address = parseaddr(settings.mail_from)
    if not _ADDRESS.fullmatch(address) or any(c in settings.mail_from for c in "\r\n"):
        raise SettingsError(
            "TELEPHARM_MAIL_FROM must be an email address (or Name <address>), "
            f"got {settings.mail_from!r}"
        )
    if bool(settings.smtp_username) != bool(settings.smtp_password):
        raise SettingsError("TELEPHARM_SMTP_USERNAME and TELEPHARM_SMTP_PASSWORD go together")


def _check_sms(settings: Settings) -> None:
    parts = urlsplit(settings.sms_api_url)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query:
        raise SettingsError(
            f"TELEPHARM_SMS_API_URL must be an absolute URL, got {settings.sms_api_url!r}"
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise SettingsError("TELEPHARM_SMS_API_URL must use https unless it is on loopback")
    if not (settings.sms_account_sid or settings.sms_auth_token):
        return
    if not (settings.sms_account_sid and settings.sms_auth_token):
        raise SettingsError("TELEPHARM_SMS_ACCOUNT_SID and TELEPHARM_SMS_AUTH_TOKEN go together")
    if not settings.sms_account_sid.isascii() or not settings.sms_account_sid.isalnum():
        raise SettingsError("TELEPHARM_SMS_ACCOUNT_SID must be letters and digits only")
    if not _SMS_SENDER.fullmatch(settings.sms_from):
        raise SettingsError(
            "TELEPHARM_SMS_FROM must be a number in E.164 form (+15551234567) or a short code, "
            f"got {settings.sms_from!r}"
        )


def _check_stripe_urls(settings: Settings) -> None:
    """The provider's script and API: absolute https URLs (http on loopback only), since their
    origins go into the console's Content-Security-Policy as they are."""
    for name, url in (
        ("STRIPE_JS_URL", settings.stripe_js_url),
        ("STRIPE_API_BASE", settings.stripe_api_base),
    ):
        parts = urlsplit(url)
        if (
            parts.scheme not in ("https", "http")
            or not parts.hostname
            or parts.query
            or parts.fragment
            or not re.fullmatch(r"[A-Za-z0-9.\-:\[\]]+", parts.netloc)
        ):
            raise SettingsError(f"TELEPHARM_{name} must be an absolute URL, got {url!r}")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise SettingsError(f"TELEPHARM_{name} must use https unless it is on loopback")


#: what TELEPHARM_TRACING may say: off, spans printed on stderr, spans sent to an OTLP collector
TRACING = ("", "console", "otlp")
#: the fewest characters of a metrics token (it stands between the world and the hub's numbers)
METRICS_TOKEN_MIN = 32


def _check_observability(settings: Settings) -> None:
    if not 0 <= settings.metrics_port < 65536:
        raise SettingsError(
            f"TELEPHARM_METRICS_PORT must be from 0 (none) to 65535, got {settings.metrics_port}"
        )
    if settings.metrics_token and (
        len(settings.metrics_token) < METRICS_TOKEN_MIN
        or not re.fullmatch(r"[A-Za-z0-9._~+/=-]+", settings.metrics_token)
    ):
        raise SettingsError(
            f"TELEPHARM_METRICS_TOKEN must be at least {METRICS_TOKEN_MIN} characters of a "
            "bearer token (letters, digits, ._~+/=-)"
        )
    open_to_network = settings.metrics_port and not is_loopback(settings.metrics_host)
    if open_to_network and not settings.metrics_token:
        # the numbers say how busy each pharmacy's hub is: never open to a network unasked
        raise SettingsError("TELEPHARM_METRICS_HOST off loopback needs TELEPHARM_METRICS_TOKEN")
    if settings.tracing not in TRACING:
        raise SettingsError(
            f"TELEPHARM_TRACING must be console or otlp (or empty: off), got {settings.tracing!r}"
        )
    parts = urlsplit(settings.otlp_endpoint)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise SettingsError(
            f"TELEPHARM_OTLP_ENDPOINT must be an absolute URL, got {settings.otlp_endpoint!r}"
        )


#: the settings the application was created with
SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
