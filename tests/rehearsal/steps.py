"""What the rehearsal does through nginx over TLS once the topology runs: the edge's promises
(HTTPS only, HSTS, the body limit, no public metrics), the operator contract (the CLI's
pharmacy and clients, a client-credentials token, a NewRx answered with Status, its check done
by a worker, the API's read-back) and a consult whose two sides are on different hub
processes, its media relayed by coturn with the credentials the hub minted."""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import requests

from tests.support.consult_peer import ConsultPeer
from tests.support.script_samples import newrx_xml
from tests.support.signin import sign_in

from .topology import START_TIMEOUT, RehearsalError, Topology

NCPDPID, NPI = "1234567", "1000000004"
CONSENT = "telehealth-consent-v1"
CONSOLE = "telepharm-console"
PHARMACIST = "rehearsal-pharmacist"
#: the share of runs in which the patient's socket lands on the pharmacist's process each
#: time, with two processes, is one half: 20 tries fail once in a million runs
TRIES = 20


def check(condition: bool, message: str) -> None:
    if not condition:
        raise RehearsalError(message)


@dataclass
class Edge:
    """The hub as the outside sees it: nginx on 127.0.0.1 over TLS, its certificate trusted."""

    top: Topology

    @property
    def base(self) -> str:
        return self.top.issuer

    @property
    def verify(self) -> str:
        return str(self.top.certificate)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, self.base + path, verify=self.verify, timeout=30, **kwargs)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.verify)


def edge_promises(edge: Edge) -> None:
    plain = requests.get(
        f"http://127.0.0.1:{edge.top.ports['http']}/healthz", allow_redirects=False, timeout=10
    )
    check(
        plain.status_code == 301 and plain.headers.get("Location", "").startswith("https://"),
        f"plain HTTP is not sent to HTTPS: {plain.status_code} {plain.headers.get('Location')}",
    )
    ready = edge.request("GET", "/readyz")
    check(ready.status_code == 200, f"/readyz through nginx: {ready.status_code} {ready.text}")
    check(
        "max-age=" in ready.headers.get("Strict-Transport-Security", ""),
        "no Strict-Transport-Security header over HTTPS",
    )
    check("nginx/" not in ready.headers.get("Server", ""), "nginx names its version")
    metrics = edge.request("GET", "/metrics")
    # nginx's own refusal: the hub's answer (404 without metrics, 200 with) would be public
    check(metrics.status_code == 403, f"/metrics is not refused by nginx: {metrics.status_code}")
    big = edge.request(
        "POST",
        "/ncpdp/script",
        data=b"x" * (1024 * 1024 + 1),
        headers={"Content-Type": "application/xml"},
    )
    check(
        big.status_code == 413 and "problem+json" not in big.headers.get("Content-Type", ""),
        f"a body over 1 MiB got {big.status_code} {big.headers.get('Content-Type')}, "
        "not nginx's 413",
    )


@dataclass
class Prescription:
    id: str
    patient_id: str
    state: str


@dataclass
class Operators:
    """What the operator made with the CLI: the prescriber system's and the pharmacy system's
    client credentials, a pharmacist's password and authenticator seed."""

    ehr: dict[str, str]
    pms: dict[str, str]
    password: str
    seed: str


def operators(edge: Edge) -> Operators:
    """``telepharm pharmacy add``, then two ``client add`` and a ``user add`` (at once: each
    command starts a Python of its own)."""
    top = edge.top
    top.cli("pharmacy", "add", "--ncpdpid", NCPDPID, "--npi", NPI, "--name", "Rehearsal Pharmacy")
    password = uuid.uuid4().hex + uuid.uuid4().hex
    with ThreadPoolExecutor(3) as pool:
        ehr = pool.submit(
            top.cli, "client", "add", "--name", "Rehearsal EHR", "--scope", "script:send"
        )
        pms = pool.submit(
            top.cli, "client", "add", "--name", "Rehearsal PMS", "--scope", "rx:read",
            "--pharmacy", NCPDPID,
        )  # fmt: skip
        user = pool.submit(
            top.cli, "user", "add", "--pharmacy", NCPDPID, "--username", PHARMACIST,
            "--role", "pharmacist", "--password-stdin", stdin=password + "\n",
        )  # fmt: skip
    uris = [w for w in user.result().split() if w.startswith("otpauth://")]
    check(len(uris) == 1, "telepharm user add printed no otpauth:// enrolment")
    seed = parse_qs(urlsplit(uris[0]).query)["secret"][0]
    return Operators(_json(ehr.result()), _json(pms.result()), password, seed)


def contract(edge: Edge, ops: Operators) -> Prescription:
    """The contract smoke's steps, the hub behind nginx."""
    ehr, pms = ops.ehr, ops.pms
    send, read = _token(edge, ehr, "script:send"), _token(edge, pms, "rx:read")
    message_id = uuid.uuid4().hex
    answer = edge.request(
        "POST",
        "/ncpdp/script",
        data=newrx_xml(message_id=message_id, to=NCPDPID),
        headers={"Content-Type": "application/xml", "Authorization": f"Bearer {send}"},
    )
    check(
        answer.status_code == 200 and "<Status>" in answer.text,
        f"NewRx: {answer.status_code} {answer.text[:300]}",
    )
    check(
        f"<RelatesToMessageID>{message_id}</RelatesToMessageID>" in answer.text,
        "the answer does not relate to the NewRx's MessageID",
    )
    headers = {"Authorization": f"Bearer {read}"}
    deadline = time.monotonic() + START_TIMEOUT
    while True:  # the hubs run --no-worker: only a worker can take it past its check
        listed = edge.request(
            "GET", f"/api/v1/prescriptions?message_id={message_id}", headers=headers
        )
        check(listed.status_code == 200, f"prescriptions API: {listed.status_code} {listed.text}")
        items = listed.json()["items"]
        check(len(items) == 1, f"the NewRx read back as {len(items)} prescriptions")
        if items[0]["state"] not in ("received", "checking"):
            break
        if time.monotonic() > deadline:
            raise RehearsalError(f"the workers did not check the prescription in {START_TIMEOUT} s")
        time.sleep(0.3)
    one = edge.request("GET", f"/api/v1/prescriptions/{items[0]['id']}", headers=headers)
    rx = one.json() if one.status_code == 200 else {}
    missing = [
        k for k in ("id", "state", "message_id", "patient", "medication", "findings") if k not in rx
    ]
    check(not missing, f"GET /api/v1/prescriptions/{{id}} lacks {missing}: {one.status_code}")
    check(bool(rx.get("patient_id")), "the checked prescription has no patient_id")
    return Prescription(rx["id"], rx["patient_id"], rx["state"])


def _json(printed: str) -> dict[str, str]:
    import json

    return dict(json.loads(printed))


def _token(edge: Edge, client: dict[str, str], scope: str) -> str:
    answer = edge.request(
        "POST",
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": scope},
        auth=(client["client_id"], client["client_secret"]),
    )
    check(answer.status_code == 200, f"/oauth/token: {answer.status_code} {answer.text[:200]}")
    return str(answer.json()["access_token"])


@dataclass
class Consult:
    id: str
    invite: str
    token: str


def schedule(edge: Edge, ops: Operators, patient_id: str) -> Consult:
    """The pharmacist, signed in through the console's browser flow (password, then TOTP),
    schedules a consult with the prescription's patient."""
    token = sign_in(
        edge.base,
        CONSOLE,
        ops.seed,
        "openid consults",
        PHARMACIST,
        ops.password,
        redirect_uri=edge.base + "/",
        verify=edge.verify,
    )
    made = edge.request(
        "POST",
        "/api/v1/consults",
        json={"patient_id": patient_id},
        headers={"Authorization": f"Bearer {token}"},
    )
    check(made.status_code == 200, f"POST /api/v1/consults: {made.status_code} {made.text[:200]}")
    body = made.json()
    return Consult(body["id"], body["invite_url"].rsplit("/", 1)[1], token)


async def consult(edge: Edge, scheduled: Consult) -> dict[str, Any]:
    """Both sides through nginx, on different hub processes; relay-only media through coturn.
    What was seen, for the report."""
    top = edge.top
    url = edge.base.replace("https://", "wss://") + "/ws/consult"
    context = edge.ssl_context()
    async with aiohttp.ClientSession() as session:

        async def open_socket() -> tuple[aiohttp.ClientWebSocketResponse, int]:
            before = set(top.connections())
            ws = await session.ws_connect(url, headers={"Origin": edge.base}, ssl=context)
            async with asyncio.timeout(5):
                while not (new := set(top.connections()) - before):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            check(len(new) == 1, f"{len(new)} new hub connections for one socket")
            return ws, top.connections()[new.pop()]

        pharmacist_ws, pharmacist_hub = await open_socket()
        tries = 0
        while True:
            tries += 1
            patient_ws, patient_hub = await open_socket()
            if patient_hub != pharmacist_hub:
                break
            await patient_ws.close()  # the same process: a new connection, a new draw
            check(tries < TRIES, f"{TRIES} patient sockets all landed on the pharmacist's process")
        pharmacist = ConsultPeer("pharmacist", pharmacist_ws, relay_only=True)
        patient = ConsultPeer("patient", patient_ws, relay_only=True)
        try:
            for peer in (pharmacist, patient):
                peer.start()
            await pharmacist.send(
                type="join", access_token=scheduled.token, consult_id=scheduled.id
            )
            await pharmacist.seen("joined")
            await patient.send(type="join", invite=scheduled.invite, consent_version=CONSENT)
            await patient.seen("waiting")
            # each side learns of the other through the Redis bus: they are on two processes
            await pharmacist.seen("peer_joined")
            await pharmacist.send(type="admit")
            (server,) = (await patient.seen("admitted"))["ice_servers"][:1]
            check(
                server["username"].endswith(f":{scheduled.id}"),
                f"the TURN username is not minted for the consult: {server['username']}",
            )
            async with asyncio.timeout(30):
                await patient.connected.wait()
                await pharmacist.connected.wait()
            for peer in (patient, pharmacist):
                check("typ relay" in peer.local_sdp, f"the {peer.role} has no relay candidate")
                check("typ host" not in peer.local_sdp, f"the {peer.role} offered a host candidate")
            frames = {
                "pharmacist": await pharmacist.frames("video", 30),
                "patient": await patient.frames("video", 30),
            }
            relays = top.relays()  # what `ss -unp` shows: coturn's relay ports in use
            check(len(relays) >= 2, f"coturn holds {len(relays)} relay ports, not one a side")
            await pharmacist.send(type="end", notes="Rehearsed.", counselling="accepted")
            await patient.seen("ended")  # decided on one process, told on the other
        finally:
            await pharmacist.close()
            await patient.close()
    return {
        "hubs": (pharmacist_hub, patient_hub),
        "tries": tries,
        "frames": frames,
        "relays": relays,
    }
