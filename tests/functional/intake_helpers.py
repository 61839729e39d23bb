"""Helpers for intake tests: the demo NewRx and posting it."""

from __future__ import annotations

from importlib import resources
from typing import BinaryIO
from uuid import uuid4

from aiohttp import ClientResponse

from tests.conftest import Hub

_SAMPLE = resources.files("server").joinpath("samples/newrx.xml").read_bytes()


def sample_newrx(message_id: str | None = None) -> bytes:
    """The demo NewRx addressed to the test pharmacy 1234567, with a fresh MessageID (and
    PrescriberOrderNumber)."""
    message_id = message_id or uuid4().hex
    # each copy its own order number too: one order sent twice is a finding of its own
    order = f"ORD-{message_id}"[:35].encode()
    return _SAMPLE.replace(b"DEMO-MESSAGE-ID", message_id.encode()).replace(b"DEMO-ORDER-1", order)


async def post_script(
    hub: Hub, body: bytes | BinaryIO, token: str, content_type: str = "application/xml"
) -> ClientResponse:
    return await hub.client.post(
        "/ncpdp/script",
        data=body,
        headers={"Content-Type": content_type, "Authorization": f"Bearer {token}"},
    )
