"""Operator actions behind the CLI: pharmacies, clients and the demo seed."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from eprescribe.identifiers import ncpdpid_valid, npi_valid

from .. import audit
from ..auth.clients import ClientRegistrationError, new_browser_client, new_machine_client
from ..auth.credentials import SecretBox
from ..auth.models import OAuthClient
from ..commands import Commands, group, with_database
from ..db import Database
from ..outbox import endpoint_context
from ..settings import Settings, is_loopback
from .models import Pharmacy

OPERATOR = audit.Actor("operator", "cli")


class AdminError(ValueError):
    """An operator request that cannot be carried out; the message is shown as is."""


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    client_id: str
    client_secret: str | None  # None for a browser (public) client

    def to_json(self) -> str:
        return json.dumps({"client_id": self.client_id, "client_secret": self.client_secret})


#: a label's address lines and phone number, at most
ADDRESS_LINES_MAX = 3
ADDRESS_LINE_MAX = 100
PHONE_MAX = 20


def _contact(address: Sequence[str] | None, phone: str | None) -> tuple[str | None, str | None]:
    """The address (lines joined by newlines) and phone as stored, checked: a label prints
    them, so each is printable text of a label's size."""
    lines = [" ".join(line.split()) for line in address or ()]
    if len(lines) > ADDRESS_LINES_MAX or not all(
        0 < len(line) <= ADDRESS_LINE_MAX and line.isprintable() for line in lines
    ):
        raise AdminError(
            f"--address is 1 to {ADDRESS_LINES_MAX} lines of 1 to {ADDRESS_LINE_MAX} characters"
        )
    if phone is not None:
        phone = phone.strip()
        if not 0 < len(phone) <= PHONE_MAX or not phone.isprintable():
            raise AdminError(f"--phone must be 1 to {PHONE_MAX} characters")
    return ("\n".join(lines) or None), phone


async def add_pharmacy(
    db: Database,
    *,
    ncpdpid: str,
    npi: str,
    name: str,
    state: str | None = None,
    address: Sequence[str] | None = None,
    phone: str | None = None,
) -> Pharmacy:
    if not ncpdpid_valid(ncpdpid):
        raise AdminError("--ncpdpid must be 7 digits")
    if not npi_valid(npi):
        raise AdminError("--npi must be a valid 10-digit NPI (check digit failed)")
    name = name.strip()
    if not name or len(name) > 200:
        raise AdminError("--name must be 1 to 200 characters")
    if state is not None and not (len(state) == 2 and state.isalpha()):
        raise AdminError("--state must be a two-letter state code")
    lines, phone = _contact(address, phone)
    pharmacy = Pharmacy(
        ncpdpid=ncpdpid,
        npi=npi,
        name=name,
        state=state.upper() if state else None,
        address=lines,
        phone=phone,
    )
    try:
        await _create_audited(
            db,
            pharmacy,
            lambda: audit.Event(
                "pharmacy.create", "pharmacy", str(pharmacy.id), pharmacy_id=pharmacy.id
            ),
        )
    except IntegrityError as exc:
        raise AdminError(f"a pharmacy with NCPDPID {ncpdpid} already exists") from exc
    return pharmacy


async def _create_audited(db: Database, row: object, event: Callable[[], audit.Event]) -> None:
    """Insert ``row`` and its audit event (built once the row has its keys) in one transaction."""
    async with db.transaction() as session:
        session.add(row)
        await session.flush()
        await audit.add(session, OPERATOR, event())


async def set_pharmacy_contact(
    db: Database, ncpdpid: str, address: Sequence[str], phone: str
) -> None:
    """Set the address and phone number the pharmacy's labels print (audited)."""
    lines, checked = _contact(address, phone)
    if lines is None:
        raise AdminError("--address needs at least one line")
    async with db.transaction() as session:
        pharmacy = await session.scalar(
            select(Pharmacy).where(Pharmacy.ncpdpid == ncpdpid).with_for_update()
        )
        if pharmacy is None:
            raise AdminError(f"no pharmacy with NCPDPID {ncpdpid}")
        pharmacy.address, pharmacy.phone = lines, checked
        await audit.add(
            session,
            OPERATOR,
            audit.Event("pharmacy.contact", "pharmacy", str(pharmacy.id), pharmacy_id=pharmacy.id),
        )


async def find_pharmacy(db: Database, ncpdpid: str) -> Pharmacy:
    async with db.sessions() as session:
        pharmacy = await session.scalar(select(Pharmacy).where(Pharmacy.ncpdpid == ncpdpid))
    if pharmacy is None:
        raise AdminError(f"no pharmacy with NCPDPID {ncpdpid}")
    return pharmacy


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A prescriber system's SCRIPT endpoint, where the hub's outbound messages to it go, and
    the bearer token the hub presents there (none: the endpoint trusts the network, or TLS
    client certificates at a proxy)."""

    url: str
    token: str | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise AdminError("--endpoint must be an absolute http(s) URL")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise AdminError("--endpoint must use https unless it is on loopback")
        if parts.username or parts.password or parts.fragment:
            raise AdminError("--endpoint must not carry credentials or a fragment")
        token = self.token
        if token is not None and not (token.isascii() and token.isprintable()):
            raise AdminError("the endpoint token must be printable ASCII without spaces")
        if token is not None and token.split() != [token]:
            raise AdminError("the endpoint token must be printable ASCII without spaces")


async def add_client(
    db: Database,
    *,
    name: str,
    scope: str,
    pharmacy_ncpdpid: str | None,
    redirect_uris: list[str] | None = None,
    endpoint: Endpoint | None = None,
    box: SecretBox | None = None,
) -> ClientCredentials:
    """A machine client (client credentials, with a secret), or with ``redirect_uris`` a
    browser client (public: authorization code with PKCE, no secret). A machine client may
    have an ``endpoint`` (its token sealed with ``box``)."""
    pharmacy = await find_pharmacy(db, pharmacy_ncpdpid) if pharmacy_ncpdpid else None
    secret: str | None = None
    try:
        if redirect_uris:
            if pharmacy is not None:
                raise AdminError("a browser client serves every pharmacy's users: no --pharmacy")
            if endpoint is not None:
                raise AdminError("a browser client receives no messages: no --endpoint")
            row = new_browser_client(name, scope, redirect_uris)
        else:
            row, secret = new_machine_client(name, scope, pharmacy.id if pharmacy else None)
    except ClientRegistrationError as exc:
        raise AdminError(str(exc)) from exc
    if endpoint is not None:
        row.endpoint = endpoint.url
        if endpoint.token is not None:
            assert box is not None, "a token is sealed with the data dir's key"
            row.endpoint_token = box.seal(endpoint.token, endpoint_context(row.client_id))
    await _create_audited(
        db,
        row,
        lambda: audit.Event(
            "client.create",
            "oauth_client",
            row.client_id,
            pharmacy_id=row.pharmacy_id,
            detail={
                "scope": row.scope,
                "redirect_uris": row.redirect_uris.split(),
                **({"endpoint": row.endpoint} if row.endpoint else {}),
            },
        ),
    )
    return ClientCredentials(row.client_id, secret)


async def set_endpoint(
    db: Database, client_id: str, endpoint: Endpoint | None, box: SecretBox | None = None
) -> None:
    """Register ``endpoint`` (its token sealed with ``box``) as an existing machine client's,
    or with None remove it. Messages already dead stay dead until ``telepharm outbox retry``;
    those still retrying go to the new endpoint at their next attempt."""
    async with db.transaction() as session:
        row = await session.scalar(select(OAuthClient).where(OAuthClient.client_id == client_id))
        if row is None:
            raise AdminError(f"no client {client_id}")
        if endpoint is not None and row.redirect_uris:
            raise AdminError("a browser client receives no messages: no --endpoint")
        row.endpoint = endpoint.url if endpoint is not None else None
        row.endpoint_token = None
        if endpoint is not None and endpoint.token is not None:
            assert box is not None, "a token is sealed with the data dir's key"
            row.endpoint_token = box.seal(endpoint.token, endpoint_context(row.client_id))
        await audit.add(
            session,
            OPERATOR,
            audit.Event(
                "client.endpoint",
                "oauth_client",
                row.client_id,
                pharmacy_id=row.pharmacy_id,
                detail={"endpoint": row.endpoint, "token": row.endpoint_token is not None},
            ),
        )


DEMO_NCPDPID = "1234567"
DEMO_PHARMACY = {"ncpdpid": DEMO_NCPDPID, "npi": "1000000004", "name": "Demo Telepharmacy"}
#: the demo pharmacy's label address (fictional; 555-01xx numbers are reserved for fiction)
DEMO_ADDRESS = ("120 Main Street", "Riverbend, MT 59000")
DEMO_PHONE = "(406) 555-0142"
DEMO_CLIENTS = {
    "ehr": ("Demo EHR", "script:send", None),
    "pharmacy-system": ("Demo pharmacy system", "rx:read", DEMO_NCPDPID),
}


async def seed_demo(db: Database, data_dir: Path) -> dict[str, ClientCredentials]:
    """Create the demo pharmacy and clients once; later runs return the same credentials.

    The demo clients' secrets are kept in ``<data dir>/demo-clients.json`` (mode 0600) so the
    printed curl commands keep working; real clients' secrets are never stored.
    """
    async with db.sessions() as session:
        exists = await session.scalar(select(Pharmacy).where(Pharmacy.ncpdpid == DEMO_NCPDPID))
    if exists is not None and exists.address is None:  # seeded before labels had addresses
        await set_pharmacy_contact(db, DEMO_NCPDPID, DEMO_ADDRESS, DEMO_PHONE)
    if exists is None:
        await add_pharmacy(db, **DEMO_PHARMACY, address=DEMO_ADDRESS, phone=DEMO_PHONE)
    saved = _load_demo_secrets(data_dir)
    async with db.sessions() as session:
        live = set(await session.scalars(select(OAuthClient.client_id)))
    credentials: dict[str, ClientCredentials] = {}
    for key, (name, scope, ncpdpid) in DEMO_CLIENTS.items():
        known = saved.get(key)
        if known and known.client_id in live:
            credentials[key] = known
        else:
            credentials[key] = await add_client(
                db, name=name, scope=scope, pharmacy_ncpdpid=ncpdpid
            )
    _save_demo_secrets(data_dir, credentials)
    return credentials


def _demo_file(data_dir: Path) -> Path:
    return data_dir / "demo-clients.json"


def _load_demo_secrets(data_dir: Path) -> dict[str, ClientCredentials]:
    try:
        raw = json.loads(_demo_file(data_dir).read_text())
        return {k: ClientCredentials(v["client_id"], v["client_secret"]) for k, v in raw.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _save_demo_secrets(data_dir: Path, credentials: dict[str, ClientCredentials]) -> None:
    write_private_json(
        _demo_file(data_dir), {k: json.loads(v.to_json()) for k, v in credentials.items()}
    )


def write_private_json(path: Path, value: object) -> None:
    """``value`` as JSON in ``path``, readable by the owner only (demo secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(value, handle)


def register_cli(commands: Commands) -> None:
    """``telepharm pharmacy add``, ``telepharm client add`` and ``client set-endpoint``."""
    pharmacy = group(commands, "pharmacy", help="manage pharmacies")
    pharmacy_add = pharmacy.add_parser("add", help="register a pharmacy")
    pharmacy_add.add_argument("--ncpdpid", required=True, help="7-digit NCPDP provider ID")
    pharmacy_add.add_argument("--npi", required=True, help="the pharmacy's 10-digit NPI")
    pharmacy_add.add_argument("--name", required=True)
    pharmacy_add.add_argument("--state", help="two-letter state whose expiry rules apply")
    _contact_arguments(pharmacy_add, required=False)
    pharmacy_add.set_defaults(run=cmd_pharmacy_add)
    contact = pharmacy.add_parser(
        "set-contact", help="set the address and phone number the pharmacy's labels print"
    )
    contact.add_argument("ncpdpid", metavar="NCPDPID")
    _contact_arguments(contact, required=True)
    contact.set_defaults(run=cmd_pharmacy_set_contact)

    client = group(commands, "client", help="manage OAuth clients")
    client_add = client.add_parser(
        "add", help="register a machine client, or with --redirect-uri a browser client"
    )
    client_add.add_argument("--name", required=True)
    client_add.add_argument("--scope", required=True, help='e.g. "script:send" or "rx:read"')
    client_add.add_argument("--pharmacy", metavar="NCPDPID", help="bind the client to a pharmacy")
    client_add.add_argument(
        "--redirect-uri",
        action="append",
        metavar="URI",
        help="register a browser (public, PKCE) client with this exact redirect URI; repeatable",
    )
    client_add.add_argument(
        "--endpoint",
        metavar="URL",
        help="the client's SCRIPT endpoint: the hub's outbound messages to it are POSTed there",
    )
    client_add.add_argument(
        "--endpoint-token-stdin",
        action="store_true",
        help="read the bearer token the hub presents at --endpoint from standard input",
    )
    client_add.set_defaults(run=cmd_client_add)

    set_endpoint_parser = client.add_parser(
        "set-endpoint", help="change or remove an existing client's SCRIPT endpoint"
    )
    set_endpoint_parser.add_argument("client_id", metavar="CLIENT_ID")
    target = set_endpoint_parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--endpoint", metavar="URL", help="the client's new SCRIPT endpoint")
    target.add_argument("--none", action="store_true", help="remove the endpoint (and its token)")
    set_endpoint_parser.add_argument(
        "--endpoint-token-stdin",
        action="store_true",
        help="read the bearer token the hub presents at --endpoint from standard input",
    )
    set_endpoint_parser.set_defaults(run=cmd_client_set_endpoint)


def _endpoint(args: argparse.Namespace) -> Endpoint | None:
    if args.endpoint is None:
        if args.endpoint_token_stdin:
            raise AdminError("--endpoint-token-stdin needs --endpoint")
        return None
    token = sys.stdin.readline().strip() if args.endpoint_token_stdin else None
    return Endpoint(args.endpoint, token)


def _contact_arguments(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument(
        "--address",
        action="append",
        required=required,
        metavar="LINE",
        help="a line of the street address printed on labels (repeat for each line)",
    )
    parser.add_argument("--phone", required=required, help="the phone number printed on labels")


def cmd_pharmacy_add(args: argparse.Namespace, settings: Settings) -> None:
    pharmacy = with_database(
        settings,
        lambda db: add_pharmacy(
            db,
            ncpdpid=args.ncpdpid,
            npi=args.npi,
            name=args.name,
            state=args.state,
            address=args.address,
            phone=args.phone,
        ),
    )
    print(f"pharmacy {pharmacy.ncpdpid} added ({pharmacy.name})")


def cmd_pharmacy_set_contact(args: argparse.Namespace, settings: Settings) -> None:
    with_database(
        settings, lambda db: set_pharmacy_contact(db, args.ncpdpid, args.address, args.phone)
    )
    print(f"pharmacy {args.ncpdpid}: label address and phone set")


def cmd_client_add(args: argparse.Namespace, settings: Settings) -> None:
    endpoint = _endpoint(args)
    box = SecretBox.load(settings.keys_dir) if endpoint and endpoint.token else None
    credentials = with_database(
        settings,
        lambda db: add_client(
            db,
            name=args.name,
            scope=args.scope,
            pharmacy_ncpdpid=args.pharmacy,
            redirect_uris=args.redirect_uri,
            endpoint=endpoint,
            box=box,
        ),
    )
    print(credentials.to_json())


def cmd_client_set_endpoint(args: argparse.Namespace, settings: Settings) -> None:
    endpoint = _endpoint(args)
    box = SecretBox.load(settings.keys_dir) if endpoint and endpoint.token else None
    with_database(settings, lambda db: set_endpoint(db, args.client_id, endpoint, box))
    if endpoint is None:
        print(f"client {args.client_id}: no endpoint (its messages wait, then go dead)")
    else:
        token = "with a bearer token" if endpoint.token else "without a token"
        print(f"client {args.client_id}: endpoint {endpoint.url} ({token})")
