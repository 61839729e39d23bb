"""``/api/v1/openapi.json`` describes every API route, and schemathesis finds no 5xx in them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from tests.conftest import Hub
from tests.functional.signin_helpers import SCOPE
from tests.support.localstripe import SECRET_KEY, LocalStripe, local_stripe
from tests.support.processes import free_port, serving
from tests.support.script_samples import newrx_xml
from tests.support.signin import sign_in

PASSWORD = "a long and private test passphrase"
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


async def test_every_api_route_is_described(hub: Hub) -> None:
    response = await hub.client.get("/api/v1/openapi.json")
    assert response.status == 200
    spec = await response.json()
    assert spec["openapi"] == "3.1.0"
    described = {(p, m.upper()) for p, ops in spec["paths"].items() for m in ops}
    routes = {
        (r.resource.canonical, r.method)
        for r in hub.client.app.router.routes()
        if r.resource is not None
        and r.resource.canonical.startswith("/api/v1/")
        and r.method != "HEAD"
        and r.resource.canonical != "/api/v1/openapi.json"
    }
    assert described == routes
    approve = spec["paths"]["/api/v1/prescriptions/{id}/approve"]["post"]
    assert approve["security"] == [{"oauth2": ["rx:verify"]}]
    assert "422" in approve["responses"]


async def test_every_scope_an_operation_needs_is_declared(hub: Hub) -> None:
    spec = await (await hub.client.get("/api/v1/openapi.json")).json()
    flows = spec["components"]["securitySchemes"]["oauth2"]["flows"]
    declared = set(flows["authorizationCode"]["scopes"])
    needed = {
        (path, method): set(scopes)
        for path, operations in spec["paths"].items()
        for method, op in operations.items()
        for requirement in op["security"]
        for scopes in requirement.values()
    }
    assert {"rx:read", "rx:verify", "consults"} <= set().union(*needed.values())
    assert {place: scopes - declared for place, scopes in needed.items() if scopes - declared} == {}
    assert set(flows["clientCredentials"]["scopes"]) <= declared


async def test_the_consult_operations_describe_their_bodies(hub: Hub) -> None:
    paths = (await (await hub.client.get("/api/v1/openapi.json")).json())["paths"]
    create = paths["/api/v1/consults"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["patient_id"]
    assert "/api/v1/prescriptions" in body["properties"]["patient_id"]["description"]
    assert create["security"] == [{"oauth2": ["consults"]}]
    check = paths["/api/v1/invites/check"]["post"]
    assert check["security"] == []
    assert check["requestBody"]["content"]["application/json"]["schema"]["required"] == ["invite"]
    for path, method in [
        ("/api/v1/consults", "post"),
        ("/api/v1/consults", "get"),
        ("/api/v1/consults/{id}", "get"),
        ("/api/v1/consults/{id}/cancel", "post"),
        ("/api/v1/invites/check", "post"),
    ]:
        response = paths[path][method]["responses"]["200"]["content"]["application/json"]
        assert response["schema"]["required"], (path, method)


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[LocalStripe]:
    with local_stripe(tmp_path) as server:
        yield server


@pytest.fixture
def running_hub(tmp_path: Path, provider: LocalStripe) -> Iterator[tuple[str, dict[str, str]]]:
    """A real hub process on SQLite with a pharmacy, a pharmacist and the browser client, and
    card payments through a local Stripe-compatible server (the payment routes answer as in
    production, not 503)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHARM_")}
    env.update(
        TELEPHARM_DATA_DIR=str(tmp_path / "var"),
        TELEPHARM_LOG_LEVEL="WARNING",
        TELEPHARM_ISSUER=base,
        TELEPHARM_STRIPE_API_KEY=SECRET_KEY,
        TELEPHARM_STRIPE_API_BASE=provider.url,
        TELEPHARM_STRIPE_WEBHOOK_SECRETS="whsec_synthetic_openapi",
    )

    def cli(*args: str, stdin: str = "") -> str:
        done = subprocess.run(
            [sys.executable, "-m", "server", *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    cli("migrate")
    cli("pharmacy", "add", "--ncpdpid", "1234567", "--npi", "1000000004", "--name", "P")
    added = cli(
        *["user", "add", "--pharmacy", "1234567", "--username", "alice", "--role", "pharmacist"],
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    uri = next(line for line in added.splitlines() if line.startswith("otpauth://"))
    client = cli(
        "client", "add", "--name", "Console", "--scope", SCOPE, "--redirect-uri", f"{base}/cb"
    )
    client_id = re.search(r'"client_id": "([^"]+)"', client)
    assert client_id
    sender = json.loads(cli("client", "add", "--name", "EHR", "--scope", "script:send"))
    with serving(env, port, tmp_path / "hub.log"):
        seed = parse_qs(urlparse(uri).query)["secret"][0]
        _send_newrx(base, sender)
        yield base, {"client_id": client_id.group(1), "seed": seed}


def _send_newrx(base: str, sender: dict[str, str]) -> None:
    """One prescription for the API to work on (checked by the embedded worker)."""
    token = requests.post(
        f"{base}/oauth/token",
        data={"grant_type": "client_credentials", "scope": "script:send"},
        auth=(sender["client_id"], sender["client_secret"]),
        timeout=30,
    ).json()["access_token"]
    reply = requests.post(
        f"{base}/ncpdp/script",
        data=newrx_xml(message_id="openapi-1"),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/xml"},
        timeout=30,
    )
    assert b"<Status>" in reply.content


@pytest.mark.skipif(not SCHEMATHESIS.exists(), reason="schemathesis is not installed")
def test_schemathesis_finds_no_server_errors(running_hub: tuple[str, dict[str, str]]) -> None:
    base, known = running_hub
    token = sign_in(base, known["client_id"], known["seed"], SCOPE, "alice", PASSWORD)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the worker moves it to the queue
        queue = requests.get(
            f"{base}/api/v1/prescriptions",
            params={"state": "awaiting_review"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ).json()["items"]
        if queue:
            break
        time.sleep(0.5)
    assert queue, "the check worker did not queue the prescription"
    done = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{base}/api/v1/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "25",
            "--seed",
            "1",
            "--request-timeout",
            "20",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "", "NO_COLOR": "1"},
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    selected = re.search(r"(\d+) selected / (\d+) total", done.stdout)
    assert selected, done.stdout[-2000:]
    assert selected.group(1) == selected.group(2) == "116"  # every operation was exercised
