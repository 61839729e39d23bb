"""``telepharm demo``: seed the demo pharmacy, its clients and a pharmacist, and say how to
send the first prescription."""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

from . import admin, demo_ehr
from .auth.credentials import SecretBox
from .commands import Commands, with_database
from .db import Database
from .settings import Settings


def register_cli(commands: Commands) -> None:
    commands.add_parser("demo", help="seed the demo pharmacy and clients").set_defaults(
        run=cmd_demo
    )


def cmd_demo(args: argparse.Namespace, settings: Settings) -> None:
    from . import users
    from .inventory import demo as inventory_demo

    async def seed(
        db: Database,
    ) -> tuple[dict[str, admin.ClientCredentials], users.DemoLogin, str | None]:
        box = SecretBox.load(settings.keys_dir)
        credentials = await admin.seed_demo(db, settings.data_dir)
        login = await users.ensure_demo_pharmacist(db, box, admin.DEMO_NCPDPID, settings.data_dir)
        await inventory_demo.seed_demo(db, admin.DEMO_NCPDPID)
        endpoint = None
        if settings.demo_ehr:
            endpoint = await demo_ehr.register_endpoint(
                db, box, settings, credentials["ehr"].client_id
            )
        return credentials, login, endpoint

    credentials, login, endpoint = with_database(settings, seed)
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
    print(_demo_ehr_text(settings, endpoint))
    print(
        """
Demo stock: lisinopril 10 mg (NDC 99999-0410-90), oxycodone 5 mg (Schedule II, 99999-0520-01)
and atorvastatin 20 mg (99999-0630-30, below its reorder point), fictional listings of the
NDC Directory (labeler 99999): GET /api/v1/inventory; receive more with
  telepharm stock receive --pharmacy 1234567 --ndc 99999-410-90 --lot L2 \\
      --expiry 2028-12-31 --quantity 90"""
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


def _demo_ehr_text(settings: Settings, endpoint: str | None) -> str:
    if not settings.demo_ehr:
        return """
The demo prescriber system is off (TELEPHARM_DEMO_EHR=1 turns it on; make run sets it): what
the hub sends the demo EHR client (a pharmacist's question, a CancelRx's answer) reaches no one,
is retried, then goes dead."""
    page = f"{settings.issuer}{demo_ehr.PAGE_PATH}"
    if endpoint != demo_ehr.endpoint_url(settings):
        return f"""
Demo EHR: the EHR client keeps the endpoint registered for it ({endpoint}); the demo
prescriber's page {page} lists only what reaches {demo_ehr.endpoint_url(settings)}."""
    return f"""
Demo EHR (the prescriber's side): {page}
  what the hub sends the prescriber (a pharmacist's question, a CancelRx's answer) is
  delivered to {endpoint} and listed there."""
