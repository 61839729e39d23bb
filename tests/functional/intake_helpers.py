"""Helpers for intake tests: the demo NewRx and posting it."""

from __future__ import annotations

from importlib import resources
from typing import BinaryIO
from uuid import uuid4

from aiohttp import ClientResponse

from tests.conftest import Hub

_SAMPLE = resources.files("server").joinpath("samples/newrx.xml").read_bytes()


def sample_newrx(message_id: str | None = None) -> bytes:
    """The demo NewRx addressed to the test pharmacy 1234567, with a fresh MessageID."""
    return _SAMPLE.replace(b"DEMO-MESSAGE-ID", (message_id or uuid4().hex).encode())


async def post_script(
    hub: Hub, body: bytes | BinaryIO, token: str, content_type: str = "application/xml"
) -> ClientResponse:
    return await hub.client.post(
        "/ncpdp/script",
        data=body,
        headers={"Content-Type": content_type, "Authorization": f"Bearer {token}"},
    )
