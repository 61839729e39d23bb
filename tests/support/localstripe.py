"""A real `localstripe` process (PyPI: a stateful server speaking Stripe's API) for the payment
tests: the official `stripe` SDK talks to it, it serves its stand-in for Stripe.js, and it sends
signed webhooks to the URL it is given."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.support.processes import free_port, wait_port

SECRET_KEY = "sk_test_synthetic_hub"
PUBLISHABLE_KEY = "pk_test_synthetic_hub"


@dataclass(frozen=True)
class LocalStripe:
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def js_url(self) -> str:
        return f"{self.url}/js.stripe.com/v3/"

    def send_webhooks_to(self, url: str, secret: str, name: str = "hub") -> None:
        """Register (or move) the webhook endpoint ``name``: every event, signed with
        ``secret``."""
        answer = requests.post(
            f"{self.url}/_config/webhooks/{name}",
            json={"url": url, "secret": secret},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text


@contextmanager
def local_stripe(workdir: Path, port: int | None = None) -> Iterator[LocalStripe]:
    """The server on ``port`` (a free one when left out) until the block ends."""
    port = port or free_port()
    log = (workdir / "localstripe.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "localstripe", "--port", str(port), "--from-scratch"],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_port(port)
        yield LocalStripe(port)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
