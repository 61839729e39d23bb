"""``telepharm``: the operator's command line (DESIGN.md "CLI contract").

Every command exits non-zero with a one-line message on bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import getpass
import logging
import sys
import warnings
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import orjson
from sqlalchemy.exc import SQLAlchemyError

from . import admin
from .db import Database
from .settings import Settings, SettingsError

if TYPE_CHECKING:
    from .auth.credentials import SecretBox
    from .users import Enrolment

log = logging.getLogger("telepharm")


class CliError(Exception):
    """Shown to the operator as one line, exit status 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"telepharm: {message} (see telepharm --help)\n")


def _with_database(settings: Settings, work: Callable[[Database], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        db = Database(settings.database_url)
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(run())


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    from aiohttp import web

    from .app import create_app
    from .logs import AccessLogger
    from .worker.embedded import embedded_worker

    _use_uvloop()
    log.info("serving on http://%s:%d (issuer %s)", args.host, args.port, settings.issuer)
    app = create_app(settings)
    app.on_startup.append(_tune_gc)
    if not args.no_worker:
        app.cleanup_ctx.append(embedded_worker)  # last: started after the rest, stopped first
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        access_log_class=AccessLogger,
        print=None,
        reuse_port=args.reuse_port,
    )


def cmd_worker(args: argparse.Namespace, settings: Settings) -> None:
    from .worker import QUEUE, create_celery
    from .worker.checking import load_expiry_rules
    from .worker.embedded import die_with

    if args.parent is not None:
        die_with(args.parent)
        # the hub's own child on a developer's machine: the hub already runs as this user,
        # so Celery's warning about root tells the newcomer nothing they can act on
        warnings.filterwarnings("ignore", "You're running the worker with superuser")
    load_expiry_rules(settings.expiry_rules_file)  # a bad file stops here, with one line
    celery = create_celery(settings)
    celery.worker_main(
        [
            "--quiet",  # no banner: the hub's own log lines say what runs
            "worker",
            "--queues",
            QUEUE,
            "--concurrency",
            str(args.concurrency),
            "--loglevel",
            settings.log_level,
            "--without-gossip",
            "--without-mingle",
            "--pool",
            "solo" if args.concurrency == 1 else "prefork",
        ]
    )


async def _tune_gc(app: object) -> None:
    """Leave the long-lived start-up objects (modules, metadata, compiled specs) out of every
    future collection, and collect the young generation less often: each message allocates
    thousands of short-lived objects, and full collections over the whole heap cost about a
    fifth of the intake's CPU time (measured with tests/benchmarks)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def _use_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # not on every platform; the default loop works, only slower
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> None:
    from .db.migrate import upgrade

    upgrade(settings.database_url)
    print("database schema is up to date")


def cmd_pharmacy_add(args: argparse.Namespace, settings: Settings) -> None:
    pharmacy = _with_database(
        settings,
        lambda db: admin.add_pharmacy(
            db, ncpdpid=args.ncpdpid, npi=args.npi, name=args.name, state=args.state
        ),
    )
    print(f"pharmacy {pharmacy.ncpdpid} added ({pharmacy.name})")


def cmd_client_add(args: argparse.Namespace, settings: Settings) -> None:
    credentials = _with_database(
        settings,
        lambda db: admin.add_client(
            db,
            name=args.name,
            scope=args.scope,
            pharmacy_ncpdpid=args.pharmacy,
            redirect_uris=args.redirect_uri,
        ),
    )
    print(credentials.to_json())


def cmd_demo(args: argparse.Namespace, settings: Settings) -> None:
    from . import users

    async def seed(db: Database) -> tuple[dict[str, admin.ClientCredentials], users.DemoLogin]:
        credentials = await admin.seed_demo(db, settings.data_dir)
        login = await users.ensure_demo_pharmacist(
            db, _box(settings), admin.DEMO_NCPDPID, settings.data_dir
        )
        return credentials, login

    credentials, login = _with_database(settings, seed)
    sample = settings.data_dir / "sample-newrx.xml"
    sample.write_bytes(resources.files("server").joinpath("samples/newrx.xml").read_bytes())
    print(_demo_text(settings, credentials, sample))
    print(
        f"""
Demo pharmacist (sign in at {settings.issuer}/): {login.username} / {login.password}
  add this to an authenticator app (the code is asked after the password):
  {login.enrolment_uri}
  or print the current code: {_totp_command(login.enrolment_uri)}"""
    )


def _totp_command(uri: str) -> str:
    return f".venv/bin/python -c \"import pyotp; print(pyotp.parse_uri('{uri}').now())\""


def _demo_text(
    settings: Settings, credentials: dict[str, admin.ClientCredentials], sample: Path
) -> str:
    ehr, pms = credentials["ehr"], credentials["pharmacy-system"]
    base = settings.issuer
    return f"""Demo pharmacy: {admin.DEMO_PHARMACY["name"]} (NCPDPID {admin.DEMO_NCPDPID})
Hub: {base}   health: {base}/healthz   OAuth metadata: {base}/.well-known/openid-configuration
EHR client (script:send):          {ehr.to_json()}
Pharmacy system client (rx:read):  {pms.to_json()}

Send the sample NewRx (a fresh MessageID each time):
  TOKEN=$(curl -s -u '{ehr.client_id}:{ehr.client_secret}' \\
      -d grant_type=client_credentials -d scope=script:send {base}/oauth/token \\
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  sed "s/DEMO-MESSAGE-ID/demo-$(date +%s%N)/" {sample} | curl -s {base}/ncpdp/script \\
      -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/xml' --data-binary @-"""


def cmd_drugs_import(args: argparse.Namespace, settings: Settings) -> None:
    from eprescribe.drugs import DrugDataError, FdaFormatError

    from .drugs import import_fda
    from .worker.checking import sync_engine

    for path in (args.product, args.package):
        if not path.is_file():
            raise CliError(f"no such file: {path}")
    engine = sync_engine(settings.sync_database_url)
    try:
        stats = import_fda(engine, args.product, args.package)
    except (FdaFormatError, DrugDataError) as exc:
        raise CliError(f"not an FDA NDC Directory file: {exc}") from exc
    finally:
        engine.dispose()
    print(
        f"imported {stats.imported} products and packages from {stats.read} rows "
        f"({stats.skipped} excluded, {stats.bad} unreadable); workers use them from their "
        "next start"
    )
    for problem in stats.problems[:10]:
        print(f"  {problem}")


def _box(settings: Settings) -> SecretBox:
    from .auth.credentials import SecretBox

    return SecretBox.load(settings.keys_dir)


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise CliError("no terminal to ask for the password; use --password-stdin")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise CliError("the passwords differ")
    return first


def _print_enrolment(enrolment: Enrolment) -> None:
    import segno

    print(
        f"Authenticator for {enrolment.username}: scan the QR code or enter the URI in the app;"
        " the first sign-in needs a code from it. Hand it over privately; it is not shown again."
    )
    segno.make(enrolment.uri, error="m").terminal(compact=True)
    print(enrolment.uri)


def cmd_user_add(args: argparse.Namespace, settings: Settings) -> None:
    from . import users

    password = _read_password(args)
    enrolment = _with_database(
        settings,
        lambda db: users.add_user(
            db,
            _box(settings),
            pharmacy=args.pharmacy,
            username=args.username,
            role=args.role,
            password=password,
        ),
    )
    print(f"user {enrolment.username} added ({args.role} at {args.pharmacy})")
    _print_enrolment(enrolment)


def cmd_user_reset_mfa(args: argparse.Namespace, settings: Settings) -> None:
    from . import users

    enrolment = _with_database(
        settings, lambda db: users.reset_mfa(db, _box(settings), args.username)
    )
    print(f"MFA of {enrolment.username} reset: the old authenticator no longer works")
    _print_enrolment(enrolment)


def cmd_user_disable(args: argparse.Namespace, settings: Settings) -> None:
    from . import users

    _with_database(settings, lambda db: users.disable_user(db, args.username))
    print(f"user {args.username.strip().lower()} disabled")


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings) -> None:
    from .auth.keys import rotate

    new, kept = rotate(settings.keys_dir)
    print(
        f"new signing key {new}; still accepted: {', '.join(kept) or 'none'}. "
        "Restart the hub processes to sign with it."
    )


def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> None:
    from . import audit

    report = _with_database(settings, audit.verify)
    if not report.intact:
        raise CliError(f"audit chain BROKEN after {report.entries} good entries: {report.problem}")
    print(f"audit chain intact: {report.entries} entries")


def cmd_audit_export(args: argparse.Namespace, settings: Settings) -> None:
    from . import audit

    async def write(db: Database) -> int:
        count = 0
        async for entry in audit.export(db, args.since):
            sys.stdout.write(orjson.dumps(entry, option=orjson.OPT_SORT_KEYS).decode() + "\n")
            count += 1
        return count

    count = _with_database(settings, write)
    print(f"exported {count} audit entries", file=sys.stderr)


def _since(value: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError("expected an ISO 8601 date or time") from None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="telepharm", description="Telepharmacy e-prescription hub")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    serve = commands.add_parser("serve", help="run the hub")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--no-worker", action="store_true", help="do not start the embedded check worker"
    )
    serve.add_argument(
        "--reuse-port",
        action="store_true",
        help="let several hub processes share the port (SO_REUSEPORT)",
    )
    serve.set_defaults(run=cmd_serve)

    worker = commands.add_parser("worker", help="run a Celery worker for prescription checks")
    worker.add_argument("--concurrency", type=int, default=2, help="parallel checks (default 2)")
    worker.add_argument(
        "--parent", type=int, metavar="PID", help="stop when process PID ends (telepharm serve)"
    )
    worker.set_defaults(run=cmd_worker)

    commands.add_parser("migrate", help="upgrade the database schema").set_defaults(run=cmd_migrate)
    commands.add_parser("demo", help="seed the demo pharmacy and clients").set_defaults(
        run=cmd_demo
    )

    pharmacy = commands.add_parser("pharmacy", help="manage pharmacies")
    pharmacy_commands = pharmacy.add_subparsers(dest="action", required=True, parser_class=_Parser)
    pharmacy_add = pharmacy_commands.add_parser("add", help="register a pharmacy")
    pharmacy_add.add_argument("--ncpdpid", required=True, help="7-digit NCPDP provider ID")
    pharmacy_add.add_argument("--npi", required=True, help="the pharmacy's 10-digit NPI")
    pharmacy_add.add_argument("--name", required=True)
    pharmacy_add.add_argument("--state", help="two-letter state whose expiry rules apply")
    pharmacy_add.set_defaults(run=cmd_pharmacy_add)

    drugs = commands.add_parser("drugs", help="manage the drug reference")
    drugs_commands = drugs.add_subparsers(dest="action", required=True, parser_class=_Parser)
    drugs_import = drugs_commands.add_parser(
        "import", help="load the FDA NDC Directory (product.txt, package.txt)"
    )
    drugs_import.add_argument("--product", type=Path, required=True, help="product.txt")
    drugs_import.add_argument("--package", type=Path, required=True, help="package.txt")
    drugs_import.set_defaults(run=cmd_drugs_import)

    client = commands.add_parser("client", help="manage OAuth clients")
    client_commands = client.add_subparsers(dest="action", required=True, parser_class=_Parser)
    client_add = client_commands.add_parser(
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
    client_add.set_defaults(run=cmd_client_add)

    user = commands.add_parser("user", help="manage pharmacy staff accounts")
    user_commands = user.add_subparsers(dest="action", required=True, parser_class=_Parser)
    user_add = user_commands.add_parser("add", help="create an account (prints its MFA enrolment)")
    user_add.add_argument("--pharmacy", metavar="NCPDPID", required=True)
    user_add.add_argument("--username", required=True)
    user_add.add_argument(
        "--role", required=True, choices=("pharmacist", "technician", "pharmacy_admin")
    )
    user_add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    user_add.set_defaults(run=cmd_user_add)
    reset = user_commands.add_parser("reset-mfa", help="issue a new authenticator seed")
    reset.add_argument("--username", required=True)
    reset.set_defaults(run=cmd_user_reset_mfa)
    disable = user_commands.add_parser("disable", help="stop an account from signing in")
    disable.add_argument("--username", required=True)
    disable.set_defaults(run=cmd_user_disable)

    keys = commands.add_parser("keys", help="token signing keys")
    keys_commands = keys.add_subparsers(dest="action", required=True, parser_class=_Parser)
    keys_commands.add_parser(
        "rotate", help="sign with a new key; tokens of the previous keys stay valid"
    ).set_defaults(run=cmd_keys_rotate)

    audit = commands.add_parser("audit", help="check and export the audit trail")
    audit_commands = audit.add_subparsers(dest="action", required=True, parser_class=_Parser)
    audit_commands.add_parser(
        "verify", help="check the hash chain; exit 1 if any entry was altered or removed"
    ).set_defaults(run=cmd_audit_verify)
    audit_export = audit_commands.add_parser(
        "export", help="write entries as JSON lines to standard output"
    )
    audit_export.add_argument(
        "--since",
        type=_since,
        required=True,
        help="ISO 8601 date or time (UTC unless it has an offset)",
    )
    audit_export.set_defaults(run=cmd_audit_export)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        from .logs import configure

        configure(settings.log_level)
        args.run(args, settings)
    except (admin.AdminError, SettingsError, CliError) as exc:
        sys.exit(f"telepharm: {exc}")
    except SQLAlchemyError as exc:
        sys.exit(f"telepharm: database error ({type(exc).__name__}); is the schema migrated?")
    except OSError as exc:
        sys.exit(f"telepharm: {exc.strerror or exc}")


if __name__ == "__main__":
    main()
