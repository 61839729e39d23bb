"""The HTTP edges every route shares: query numbers, encoded and slow bodies, caching and the
``Server`` header."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gzip
import logging
import time
import tracemalloc
import uuid
from typing import Any

import pytest

from eprescribe.ncpdp import parse_message
from server.settings import Settings
from tests.conftest import Hub
from tests.functional.intake_helpers import post_script
from tests.support.script_samples import newrx_xml


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _reader(hub: Hub) -> str:
    await hub.pharmacy()
    return await hub.token(await hub.machine_client("rx:read", pharmacy="1234567"), "rx:read")


@pytest.mark.parametrize("value", ["²", "\u0665", "1²", " 5", "+5", "5.0", "0x5", "9" * 40, ""])
@pytest.mark.parametrize("name", ["limit", "offset"])
async def test_query_numbers_are_ascii_digits_or_400_never_logged(
    hub: Hub, caplog: pytest.LogCaptureFixture, name: str, value: str
) -> None:
    token = await _reader(hub)
    caplog.set_level(logging.DEBUG)
    response = await hub.client.get(
        "/api/v1/prescriptions", params={name: value}, headers=_auth(token)
    )
    assert response.status == 400
    assert response.content_type == "application/problem+json"
    if value.strip():
        assert value.strip() not in (await response.json())["detail"]
        assert repr(value) not in caplog.text
        # one character is found in any log of addresses and times: only longer ones say more
        if len(value.strip()) > 1:
            assert value.strip() not in caplog.text


async def test_query_numbers_in_range_are_taken(hub: Hub) -> None:
    token = await _reader(hub)
    response = await hub.client.get(
        "/api/v1/prescriptions", params={"limit": "007", "offset": "0"}, headers=_auth(token)
    )
    assert response.status == 200
    assert ((await response.json())["limit"], (await response.json())["offset"]) == (7, 0)


BODY_TIMEOUT = 2.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, body_timeout=BODY_TIMEOUT)


async def _trickle(writer: asyncio.StreamWriter) -> None:
    """A byte a second, as a slow (or malicious) sender does, until the hub hangs up."""
    with contextlib.suppress(ConnectionError):
        for _ in range(60):
            writer.write(b"a")
            await writer.drain()
            await asyncio.sleep(1)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/oauth/token", "application/x-www-form-urlencoded"),
        ("/api/v1/invites/check", "application/json"),
        ("/ncpdp/script", "application/xml"),
    ],
)
async def test_a_slow_body_gets_408_and_the_connection_closes(
    hub: Hub, path: str, content_type: str
) -> None:
    token = await hub.sender_token() if path == "/ncpdp/script" else ""
    reader, writer = await asyncio.open_connection("127.0.0.1", hub.client.port)
    start = time.monotonic()
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: 100\r\n\r\n".encode()
    )
    trickle = asyncio.create_task(_trickle(writer))
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), BODY_TIMEOUT + 8)
        elapsed = time.monotonic() - start
        with contextlib.suppress(ConnectionResetError):  # closed with the trickle unread: RST
            await asyncio.wait_for(reader.read(), 5)  # the hub closes the connection
    finally:
        trickle.cancel()
        await asyncio.gather(trickle, return_exceptions=True)
        writer.close()
    assert head.startswith(b"HTTP/1.1 408"), head
    assert BODY_TIMEOUT <= elapsed < BODY_TIMEOUT + 2


def _gzip_post(hub: Hub, body: bytes, token: str, encoding: str = "gzip") -> Any:
    return hub.client.post(
        "/ncpdp/script",
        data=body,
        headers={
            "Content-Type": "application/xml",
            "Content-Encoding": encoding,
            "Authorization": f"Bearer {token}",
        },
    )


async def test_a_gzip_body_is_decoded(hub: Hub) -> None:
    await hub.pharmacy()
    message_id = uuid.uuid4().hex
    response = await _gzip_post(
        hub, gzip.compress(newrx_xml(message_id=message_id)), await hub.sender_token()
    )
    assert response.status == 200
    reply = parse_message(await response.read())
    assert (reply.transaction, reply.header.relates_to_message_id) == ("Status", message_id)


async def test_a_gzip_bomb_is_413_without_inflating_it(hub: Hub) -> None:
    await hub.pharmacy()
    token = await hub.sender_token()
    bomb = gzip.compress(b"\0" * (256 * 1024 * 1024), compresslevel=9)  # 256 MiB in ~250 KiB
    assert len(bomb) < 1024 * 1024
    tracemalloc.start()
    try:
        response = await _gzip_post(hub, bomb, token)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status == 413
    assert response.content_type == "application/problem+json"
    assert peak < 16 * 1024 * 1024


@pytest.mark.parametrize(("encoding", "status"), [("br", 415), ("deflate", 415), ("gzip", 400)])
async def test_other_encodings_are_415_and_broken_gzip_400(
    hub: Hub, encoding: str, status: int
) -> None:
    await hub.pharmacy()
    response = await _gzip_post(hub, b"not encoded at all", await hub.sender_token(), encoding)
    assert response.status == status
    assert response.content_type == "application/problem+json"


async def test_private_answers_are_no_store(hub: Hub) -> None:
    token = await _reader(hub)
    listed = await hub.client.get("/api/v1/prescriptions", headers=_auth(token))
    refused = await hub.client.get("/api/v1/prescriptions")
    script = await post_script(hub, newrx_xml(message_id=uuid.uuid4().hex), "bad-token")
    tokens = await hub.client.post("/oauth/token", data={"grant_type": "client_credentials"})
    scripted = await post_script(
        hub, newrx_xml(message_id=uuid.uuid4().hex), await hub.sender_token()
    )
    assert (listed.status, refused.status, script.status, scripted.status) == (200, 401, 401, 200)
    for response in (listed, refused, script, tokens, scripted):
        assert response.headers["Cache-Control"] == "no-store", response.url


async def test_the_server_header_names_no_software_version(hub: Hub) -> None:
    for response in (
        await hub.client.get("/healthz"),
        await hub.client.get("/no/such/page"),
        await hub.client.get("/api/v1/prescriptions"),
    ):
        assert response.headers["Server"] == "Telepharm"
