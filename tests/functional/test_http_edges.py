"""The HTTP edges every route shares: query numbers, encoded and slow bodies, caching and the
``Server`` header."""

from __future__ import annotations

import asyncio
import gzip
import logging
import time
import tracemalloc
import uuid

import pytest

from tests.conftest import Hub
from tests.functional.intake_helpers import post_script
from tests.support.script_samples import newrx_xml


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _reader(hub: Hub) -> str:
    await hub.pharmacy()
    return await hub.token(await hub.machine_client("rx:read", pharmacy="1234567"), "rx:read")


@pytest.mark.parametrize("value", ["²", "٥", "1²", " 5", "+5", "5.0", "0x5", "9" * 40, ""])
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
        assert value.strip() not in caplog.text


async def test_query_numbers_in_range_are_taken(hub: Hub) -> None:
    token = await _reader(hub)
    response = await hub.client.get(
        "/api/v1/prescriptions", params={"limit": "007", "offset": "0"}, headers=_auth(token)
    )
    assert response.status == 200
    assert ((await response.json())["limit"], (await response.json())["offset"]) == (7, 0)
