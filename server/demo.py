"""``telepharm demo``: seed the demo pharmacy, its clients and a pharmacist, and say how to
send the first prescription."""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

from . import admin
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

    async def seed(db: Database) -> tuple[dict[str, admin.ClientCredentials], users.DemoLogin]:
        credentials = await admin.seed_demo(db, settings.data_dir)
        login = await users.ensure_demo_pharmacist(
            db, SecretBox.load(settings.keys_dir), admin.DEMO_NCPDPID, settings.data_dir
        )
        return credentials, login

    credentials, login = with_database(settings, seed)
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
