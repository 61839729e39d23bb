"""Helpers of the match-review and merge tests: a weakly matched prescription, the queue,
and the calls."""

from __future__ import annotations

import uuid
from typing import Any

from server.worker.checking import Checker
from tests.conftest import Hub
from tests.functional.check_helpers import someone
from tests.functional.test_verification import detail
from tests.functional.verification_helpers import bearer, reviewable, staff


async def call(
    hub: Hub, method: str, url: str, token: str, body: object = None
) -> tuple[int, dict[str, Any]]:
    response = await hub.client.request(method, url, json=body, headers=bearer(token))
    return response.status, await response.json()


async def profile_of(hub: Hub, checker: Checker, token: str, n: int, **more: object) -> str:
    """A prescription for synthetic patient ``n`` (a new or exact match): its profile."""
    rx_id = await reviewable(hub, checker, **someone(n), **more)
    patient = (await detail(hub, token, rx_id))["patient_id"]
    assert patient is not None
    return str(patient)


async def weak(hub: Hub, checker: Checker, token: str, n: int) -> tuple[str, uuid.UUID]:
    """Patient ``n``'s profile (gender M) and a prescription for the same name and birth date
    with gender F: a weak match, left unlinked for a pharmacist."""
    patient = await profile_of(hub, checker, token, n, gender="M")
    rx_id = await reviewable(hub, checker, **someone(n), gender="F")
    rx = await detail(hub, token, rx_id)
    assert rx["patient_id"] is None
    assert "PATIENT_MATCH_REVIEW" in {f["code"] for f in rx["findings"]}
    return patient, rx_id


async def review_queue(hub: Hub, token: str, **params: str) -> dict[str, Any]:
    response = await hub.client.get("/api/v1/match-review", params=params, headers=bearer(token))
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def pharmacist(hub: Hub, username: str = "alice") -> str:
    """The test pharmacy (made first) and a pharmacist's token."""
    await hub.pharmacy()
    return await staff(hub, username)
