"""Sign-in and token-endpoint abuse against one hub on PostgreSQL: what gets through, what it costs.

Run with `python -m tests.benchmarks.auth_flood` (PostgreSQL on 127.0.0.1, Redis; about a
minute). On a fresh database (intake.py's `prepare_hub`) it
1. sends 200 concurrent wrong TOTP codes after a right password for one account, then 150
   concurrent wrong passwords for another, and counts how many were evaluated (answered 401,
   not 429);
2. measures intake latency with an open-loop NewRx stream (BENCH_RATE/s, default 100), quiet;
3. measures it again while 220 failing `/oauth/token` requests a second (a real client ID, a
   wrong secret) flood the hub, and prints the p99 ratio flood/quiet and the audit entries
   the flood wrote meanwhile.
Environment: BENCH_DATABASE, BENCH_BROKER (as intake.py), BENCH_SECONDS (15), BENCH_RATE.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp

from tests.benchmarks.intake import (
    BIN,
    NCPDPID,
    paced,
    prepare_hub,
    process,
    psql,
    token_for,
)
from tests.support.processes import free_port, wait_port

SECONDS = int(os.environ.get("BENCH_SECONDS", "15"))
RATE = int(os.environ.get("BENCH_RATE", "100"))
BROKER = os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/14")
FLOOD_RATE = 220
PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf" value="([^"]*)"')


async def burst(base: str) -> dict[str, Any]:
    """200 wrong codes after a right password (account ``codes``), then 150 wrong passwords
    (account ``passwords``), each all at once from one browser session and its own address
    (the hub trusts the loopback proxy's X-Forwarded-For), so neither burst throttles the other."""
    async with browser_session("198.51.100.1") as browser:
        csrf = _CSRF.findall(await (await browser.get(base + "/login")).text())[0]
        right = {"csrf": csrf, "username": "codes", "password": PASSWORD}
        async with browser.post(base + "/login", data=right) as page:
            assert page.url.path == "/login/mfa", page.status
            data = {"csrf": _CSRF.findall(await page.text())[0], "code": "000001"}
        codes = await _statuses(browser, base + "/login/mfa", data, 200)
    async with browser_session("198.51.100.2") as browser:
        csrf = _CSRF.findall(await (await browser.get(base + "/login")).text())[0]
        wrong = {"csrf": csrf, "username": "passwords", "password": "guess " + PASSWORD}
        passwords = await _statuses(browser, base + "/login", wrong, 150)
    return {"passwords": passwords, "codes": codes}


def browser_session(address: str) -> aiohttp.ClientSession:
    """A browser behind the trusted loopback proxy at ``address``; cookies kept for an IP host."""
    jar = aiohttp.CookieJar(unsafe=True)
    return aiohttp.ClientSession(cookie_jar=jar, headers={"X-Forwarded-For": address})


async def _statuses(
    browser: aiohttp.ClientSession, url: str, data: dict[str, str], n: int
) -> dict[str, Any]:
    async def one() -> int:
        async with browser.post(url, data=data, allow_redirects=False) as response:
            await response.read()
            return response.status

    started = time.perf_counter()
    statuses = await asyncio.gather(*(one() for _ in range(n)))
    return {
        "sent": n,
        "evaluated": statuses.count(401),
        "throttled": statuses.count(429),
        "seconds": round(time.perf_counter() - started, 1),
    }


async def flood(url: str, client_id: str, seconds: int) -> dict[str, int]:
    """Open loop: FLOOD_RATE failing token requests a second, for ``seconds``."""
    wrong = base64.b64encode(f"{client_id}:wrong-secret".encode()).decode()
    headers = {"Authorization": "Basic " + wrong}
    answers: dict[int, int] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:

        async def one() -> None:
            data = {"grant_type": "client_credentials"}
            async with session.post(url, data=data, headers=headers) as response:
                await response.read()
                answers[response.status] = answers.get(response.status, 0) + 1

        t0, tasks = time.perf_counter(), []
        for i in range(FLOOD_RATE * seconds):
            await asyncio.sleep(max(0.0, t0 + i / FLOOD_RATE - time.perf_counter()))
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return answers


async def with_flood(base: str, template: bytes, token: str, client_id: str) -> dict[str, Any]:
    intake, answers = await asyncio.gather(
        paced(base + "/ncpdp/script", template, token, RATE, SECONDS),
        flood(base + "/oauth/token", client_id, SECONDS),
    )
    return {**intake, "flood_answers": answers}


def audit_failures() -> int:
    query = "SELECT count(*) FROM audit_events WHERE action = 'oauth.token' AND outcome = 'failure'"
    return int(psql(query)[0])


def add_user(env: dict[str, str], username: str) -> None:
    args = ["user", "add", "--pharmacy", NCPDPID, "--username", username, "--role", "pharmacist"]
    subprocess.run(
        [str(BIN / "telepharm"), *args, "--password-stdin"],
        env=env,
        input=PASSWORD,
        capture_output=True,
        text=True,
        check=True,
    )


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-auth-"))
    template = resources.files("server").joinpath("samples/newrx.xml").read_bytes()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env, credentials = prepare_hub(work, base, BROKER, TELEPHARM_TRUSTED_PROXIES="127.0.0.1")
    for username in ("codes", "passwords"):
        add_user(env, username)
    results: dict[str, Any] = {"seconds": SECONDS, "intake_rate": RATE, "flood_rate": FLOOD_RATE}
    command = [str(BIN / "telepharm"), "serve", "--port", str(port), "--no-worker"]
    with process(command, env, work / "hub.log"):
        wait_port(port)
        results["burst"] = asyncio.run(burst(base))
        token = token_for(base, credentials)
        results["quiet"] = asyncio.run(
            paced(base + "/ncpdp/script", template, token, RATE, SECONDS)
        )
        before = audit_failures()
        results["flood"] = asyncio.run(with_flood(base, template, token, credentials["client_id"]))
        results["audit_rows_during_flood"] = audit_failures() - before
    quiet, flooded = results["quiet"], results["flood"]
    results["p99_ratio"] = round(flooded["p99_ms"] / quiet["p99_ms"], 2)
    print(json.dumps(results, indent=2))
    passwords, codes = results["burst"]["passwords"], results["burst"]["codes"]
    print(f"\nwrong passwords evaluated: {passwords['evaluated']} of {passwords['sent']}")
    print(f"wrong codes evaluated: {codes['evaluated']} of {codes['sent']}")
    print(
        f"intake at {RATE}/s: quiet p50 {quiet['p50_ms']} ms p99 {quiet['p99_ms']} ms; under "
        f"{FLOOD_RATE}/s failing token requests p50 {flooded['p50_ms']} ms "
        f"p99 {flooded['p99_ms']} ms: p99 ratio {results['p99_ratio']}"
    )


if __name__ == "__main__":
    sys.exit(main())
