"""`telepharm client set-endpoint` and `telepharm demo`'s demo EHR, as operators run them:
real processes, one-line errors, the registration read back from the database."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from server.auth.credentials import SecretBox
from server.outbox import endpoint_context
from tests.support.processes import TELEPHARM

pytestmark = pytest.mark.slow  # processes: a few seconds each

PHARMACY = ["pharmacy", "add", "--ncpdpid", "1234567", "--npi", "1000000004", "--name", "P"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHARM_")}
    return {**clean, "TELEPHARM_DATA_DIR": str(tmp_path / "var"), "TELEPHARM_LOG_LEVEL": "WARNING"}


def run(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TELEPHARM, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120
    )


def registration(env: dict[str, str], client_id: str) -> tuple[str | None, str | None]:
    with sqlite3.connect(Path(env["TELEPHARM_DATA_DIR"]) / "hub.sqlite3") as db:
        found = db.execute(
            "SELECT endpoint, endpoint_token FROM oauth_clients WHERE client_id = ?", (client_id,)
        ).fetchone()
    assert found is not None
    return found[0], found[1]


def audited(env: dict[str, str], action: str) -> list[dict[str, object]]:
    with sqlite3.connect(Path(env["TELEPHARM_DATA_DIR"]) / "hub.sqlite3") as db:
        rows = db.execute(
            "SELECT detail FROM audit_events WHERE action = ? ORDER BY id", (action,)
        ).fetchall()
    return [json.loads(detail) for (detail,) in rows]


def opened(env: dict[str, str], client_id: str, sealed: str) -> str:
    box = SecretBox.load(Path(env["TELEPHARM_DATA_DIR"]) / "keys")
    return box.open(sealed, endpoint_context(client_id))


def test_set_endpoint_changes_and_removes_a_clients_endpoint(env: dict[str, str]) -> None:
    assert run(env, "migrate").returncode == 0
    assert run(env, *PHARMACY).returncode == 0
    added = run(env, "client", "add", "--name", "EHR", "--scope", "script:send")
    assert added.returncode == 0, added.stderr
    client_id = json.loads(added.stdout)["client_id"]
    assert registration(env, client_id) == (None, None)

    url = "https://ehr.example/ncpdp/script"
    changed = run(
        env, "client", "set-endpoint", client_id, "--endpoint", url, "--endpoint-token-stdin",
        stdin="prescriber-token-1\n",
    )  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout.strip() == (f"client {client_id}: endpoint {url} (with a bearer token)")
    endpoint, sealed = registration(env, client_id)
    assert endpoint == url
    assert sealed is not None
    assert "prescriber-token-1" not in sealed
    assert opened(env, client_id, sealed) == "prescriber-token-1"

    loopback = "http://127.0.0.1:9/script"  # http is fine on loopback; no token this time
    assert run(env, "client", "set-endpoint", client_id, "--endpoint", loopback).returncode == 0
    assert registration(env, client_id) == (loopback, None)

    removed = run(env, "client", "set-endpoint", client_id, "--none")
    assert removed.returncode == 0, removed.stderr
    assert registration(env, client_id) == (None, None)
    assert audited(env, "client.endpoint") == [
        {"endpoint": url, "token": True},
        {"endpoint": loopback, "token": False},
        {"endpoint": None, "token": False},
    ]
    assert run(env, "audit", "verify").returncode == 0


REFUSED = [
    (["nobody", "--none"], "", "no client nobody"),
    (
        ["{client}", "--endpoint", "http://ehr.example/script"],
        "",
        "--endpoint must use https unless it is on loopback",
    ),
    (["{client}", "--endpoint", "ftp://ehr.example/x"], "", "--endpoint must be an absolute"),
    (
        ["{client}", "--endpoint", "https://u:p@ehr.example/x"],
        "",
        "--endpoint must not carry credentials",
    ),
    (
        ["{client}", "--endpoint", "https://ehr.example/x", "--endpoint-token-stdin"],
        "two words\n",
        "the endpoint token must be printable ASCII without spaces",
    ),
    (["{client}", "--none", "--endpoint-token-stdin"], "", "--endpoint-token-stdin needs"),
    (["{client}"], "", "one of the arguments --endpoint --none is required"),
    (
        ["{client}", "--none", "--endpoint", "https://ehr.example/x"],
        "",
        "not allowed with argument",
    ),
    (["{browser}", "--endpoint", "https://ehr.example/x"], "", "a browser client receives"),
]


def test_set_endpoint_refuses_with_one_line(env: dict[str, str]) -> None:
    assert run(env, "migrate").returncode == 0
    added = run(env, "client", "add", "--name", "EHR", "--scope", "script:send")
    browser = run(
        env, "client", "add", "--name", "Console", "--scope", "openid rx:read",
        "--redirect-uri", "http://127.0.0.1:8080/",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert browser.returncode == 0, browser.stderr
    ids = {"client": json.loads(added.stdout)["client_id"]}
    ids["browser"] = json.loads(browser.stdout)["client_id"]
    for args, stdin, message in REFUSED:
        refused = run(env, "client", "set-endpoint", *[a.format(**ids) for a in args], stdin=stdin)
        assert refused.returncode != 0, args
        (line,) = refused.stderr.strip().splitlines()
        assert line.startswith("telepharm: "), line
        assert message in line, (args, line)
    assert registration(env, ids["client"]) == (None, None)
    assert audited(env, "client.endpoint") == []


def test_demo_registers_the_demo_ehr_only_when_it_is_on(env: dict[str, str]) -> None:
    assert run(env, "migrate").returncode == 0
    off = run(env, "demo")
    assert off.returncode == 0, off.stderr
    assert "The demo prescriber system is off (TELEPHARM_DEMO_EHR=1" in off.stdout
    client_id = json.loads((Path(env["TELEPHARM_DATA_DIR"]) / "demo-clients.json").read_text())[
        "ehr"
    ]["client_id"]
    assert registration(env, client_id) == (None, None)

    demo = {**env, "TELEPHARM_DEMO_EHR": "1"}
    first = run(demo, "demo")
    assert first.returncode == 0, first.stderr
    assert "Demo EHR (the prescriber's side): http://127.0.0.1:8080/demo/ehr\n" in first.stdout
    endpoint, sealed = registration(env, client_id)
    assert endpoint == "http://127.0.0.1:8080/demo/ehr/script"
    assert sealed is not None
    assert len(opened(env, client_id, sealed)) >= 43
    again = run(demo, "demo")
    assert again.returncode == 0, again.stderr
    assert registration(env, client_id) == (endpoint, sealed)  # kept, token and all
    assert len(audited(env, "client.endpoint")) == 1

    public = run({**demo, "TELEPHARM_ISSUER": "https://hub.example"}, "demo")
    assert public.returncode == 1
    assert public.stderr.strip() == (
        "telepharm: TELEPHARM_DEMO_EHR is for the demo on loopback only"
    )
