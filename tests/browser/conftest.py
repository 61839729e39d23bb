"""The web client in a real browser: Debian's Chromium (``/usr/bin/chromium``, never a
downloaded one) driven by Playwright, with a fake camera and microphone, against a real
``telepharm serve`` seeded by ``telepharm demo`` (what ``make run`` does). Skipped when that
Chromium is not installed; `.ci/run` installs it. Screenshots of each main screen go to
``test-artifacts/browser/`` (override with ``BROWSER_ARTIFACTS``)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pyotp
import pytest
import requests
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from server.auth.clients import CONSOLE_CLIENT_ID
from tests.support.faultproxy import FaultProxy
from tests.support.localstripe import PUBLISHABLE_KEY, SECRET_KEY, LocalStripe, local_stripe
from tests.support.processes import free_port, run_cli, serving
from tests.support.script_samples import newrx_xml
from tests.support.signin import sign_in as sign_in_by_http
from tests.support.tokens import client_token

from .a11y import axe_source

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("BROWSER_ARTIFACTS", ROOT / "test-artifacts" / "browser"))
#: webrtc.md §6: a 30 fps fake camera, no permission prompt, loopback ICE, plain host candidates
MEDIA_ARGS = [
    "--use-fake-device-for-media-stream=fps=30",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]
DESKTOP = {"width": 1280, "height": 800}
TABLET = {"width": 820, "height": 1180}
PHONE = {"width": 390, "height": 844}
#: the secret the provider signs its webhooks to a hub that takes payments with
WEBHOOK_SECRET = "whsec_synthetic_browser_0123456789"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Without Debian's Chromium these tests skip, unless `.ci/run` requires them."""
    if CHROMIUM.exists():
        return
    if os.environ.get("TELEPHARM_TEST_REQUIRE_BROWSER"):
        raise pytest.UsageError(f"{CHROMIUM} is missing and the browser tests are required")
    skip = pytest.mark.skip(reason="Debian's chromium is not installed")
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(skip)


@dataclass(frozen=True)
class DemoHub:
    base: str
    data_dir: Path
    username: str
    password: str
    seed: str
    ehr: dict[str, str]
    reader: dict[str, str]
    ncpdpid: str
    #: the network between the browsers and the hub, when the test module wants to break it
    network: FaultProxy | None = None
    used_steps: list[int] = field(default_factory=list)
    #: the environment of `telepharm` commands on this hub (an operator's, beside it)
    env: dict[str, str] = field(default_factory=dict)

    def totp(self) -> str:
        """A code for the next sign-in, of a time step not used yet (the hub refuses a code
        used before)."""
        while self.used_steps and int(time.time()) // 30 <= self.used_steps[-1]:
            time.sleep(0.5)
        step = int(time.time()) // 30
        self.used_steps.append(step)
        return str(pyotp.TOTP(self.seed).at(step * 30))

    def client_token(self, client: dict[str, str], scope: str) -> str:
        return client_token(self.base, client["client_id"], client["client_secret"], scope)

    def send_newrx(self, message_id: str, **fields: object) -> None:
        self.send_script(newrx_xml(message_id=message_id, to=self.ncpdpid, **fields))

    def send_script(self, body: bytes) -> None:
        """Post a SCRIPT message as the demo EHR; it must be acknowledged."""
        token = self.client_token(self.ehr, "script:send")
        reply = requests.post(
            f"{self.base}/ncpdp/script",
            data=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/xml"},
            timeout=30,
        )
        assert b"<Status>" in reply.content, reply.text

    def user_token(self) -> str:
        """The demo pharmacist's access token, signed in through the console's own flow."""
        return sign_in_by_http(
            self.base,
            CONSOLE_CLIENT_ID,
            self.seed,
            "openid rx:read rx:verify consults",
            self.username,
            self.password,
            redirect_uri=f"{self.base}/",
            code=self.totp(),
        )

    def ready_prescription(self, message_id: str, **fields: object) -> dict[str, object]:
        """A NewRx sent and checked (in the queue, its patient linked)."""
        self.send_newrx(
            message_id, written_date=dt.datetime.now(dt.UTC).date().isoformat(), **fields
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            items = self.api(f"/prescriptions?message_id={message_id}")["items"]
            assert isinstance(items, list)
            if items and items[0]["state"] == "awaiting_review":
                return self.api(f"/prescriptions/{items[0]['id']}")
            time.sleep(0.5)
        raise AssertionError("the checks did not finish")

    def api(self, path: str) -> dict[str, object]:
        """The pharmacy system's view (rx:read) of an API path."""
        token = self.client_token(self.reader, "rx:read")
        reply = requests.get(
            f"{self.base}/api/v1{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert reply.status_code == 200, reply.text
        body: dict[str, object] = reply.json()
        return body


def _cli(env: dict[str, str], *args: str) -> str:
    done = run_cli(env, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _found(pattern: str, text: str) -> tuple[str, ...]:
    match = re.search(pattern, text)
    assert match, f"{pattern} not in {text}"
    return match.groups()


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripe]:
    """A real local Stripe-compatible server (`localstripe`, with its Stripe.js stand-in and
    its signed webhooks) for a module whose hub takes payments (its ``WITH_PROVIDER``)."""
    with local_stripe(tmp_path_factory.mktemp("localstripe")) as server:
        yield server


@pytest.fixture(scope="module")
def demo_hub(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DemoHub]:
    """``telepharm migrate``, ``demo`` and ``serve``, with the test module's ``HUB_ENV``;
    with its ``BEHIND_RELAY``, browsers reach the hub through a relay that can cut sockets;
    with its ``WITH_PROVIDER``, the hub takes payments at ``provider`` (started before it),
    whose webhooks go to it."""
    relayed = getattr(request.module, "BEHIND_RELAY", False)
    paying: LocalStripe | None = (
        request.getfixturevalue("provider")
        if getattr(request.module, "WITH_PROVIDER", False)
        else None
    )
    data_dir = tmp_path_factory.mktemp("hub") / "var"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHARM_")}
    env.update(
        TELEPHARM_DATA_DIR=str(data_dir), TELEPHARM_ISSUER=base, TELEPHARM_LOG_LEVEL="WARNING"
    )
    if paying:
        env.update(
            TELEPHARM_STRIPE_API_KEY=SECRET_KEY,
            TELEPHARM_STRIPE_PUBLISHABLE_KEY=PUBLISHABLE_KEY,
            TELEPHARM_STRIPE_WEBHOOK_SECRETS=WEBHOOK_SECRET,
            TELEPHARM_STRIPE_API_BASE=paying.url,
            TELEPHARM_STRIPE_JS_URL=paying.js_url,
        )
    env.update(getattr(request.module, "HUB_ENV", {}))
    _cli(env, "migrate")
    printed = _cli(env, "demo")
    username, password = _found(r"\): (\S+) / (\S+)", printed)
    (seed,) = _found(r"secret=([A-Z0-9]+)", printed)
    (ncpdpid,) = _found(r"NCPDPID (\d{7})", printed)
    clients = json.loads((data_dir / "demo-clients.json").read_text())
    hub_port = free_port() if relayed else port
    with ExitStack() as stack:
        stack.enter_context(serving(env, hub_port, data_dir.parent / "hub.log"))
        network = (
            stack.enter_context(FaultProxy("127.0.0.1", hub_port, listen_port=port))
            if relayed
            else None
        )
        if paying:
            paying.send_webhooks_to(f"{base}/payments/webhook", WEBHOOK_SECRET)
        yield DemoHub(
            base,
            data_dir,
            username,
            password,
            seed,
            clients["ehr"],
            clients["pharmacy-system"],
            ncpdpid,
            network,
            env=env,
        )


@pytest.fixture(scope="session", autouse=True)
def axe_core() -> str:
    """The pinned axe-core every browser test measures pages with (``a11y.py``), fetched from
    the npm registry once before the first one: without it they fail here, saying why."""
    return axe_source()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


def launch(playwright: Playwright, *, camera_allowed: bool = True) -> Browser:
    """Debian's Chromium, headless, with the fake camera (allowed without asking, or not)."""
    extra = ["--use-fake-ui-for-media-stream"] if camera_allowed else []
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=[*MEDIA_ARGS, *extra]
    )


@pytest.fixture(scope="module")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    browser = launch(playwright)
    yield browser
    browser.close()


class Shots:
    """Screenshots of the main screens, for people to look at (test artifacts)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder

    def take(self, page: Page, name: str, *, full: bool = True) -> None:
        page.screenshot(path=str(self.folder / f"{name}.png"), full_page=full)


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    return Shots(ARTIFACTS / request.node.module.__name__.rsplit(".", 1)[-1])


def watch(page: Page, problems: list[str]) -> None:
    """Collect the page's script errors and CSP refusals: each fails the test."""
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on(
        "console",
        lambda m: (
            problems.append(f"console: {m.text}")
            if m.type == "error" and "Content Security Policy" in m.text
            else None
        ),
    )


class Account(Protocol):
    """Who signs in: a username, a password and a fresh authenticator code."""

    @property
    def username(self) -> str: ...

    @property
    def password(self) -> str: ...

    def totp(self) -> str: ...


def sign_in(
    page: Page, hub: DemoHub, shots: Shots | None = None, account: Account | None = None
) -> None:
    """The console's sign-in: the hub's password page, then its TOTP page, back to the queue
    (as the demo pharmacist, or as ``account``)."""
    who: Account = account or hub
    page.goto(hub.base + "/")
    if shots:
        shots.take(page, "00-signed-out")
    page.get_by_role("button", name="Sign in").click()
    page.fill("input[name=username]", who.username)
    page.fill("input[name=password]", who.password)
    page.get_by_role("button", name="Continue").click()
    page.fill("input[name=code]", who.totp())
    page.get_by_role("button", name="Continue").click()
    page.wait_for_selector("text=Verification queue >> visible=true")
