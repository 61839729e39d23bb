"""Scenario 3: the patient's page explains itself when it cannot go on: an expired invite, a
link that is not an invite, and a browser that refuses the camera."""

from __future__ import annotations

import time

import requests
from playwright.sync_api import Browser, Playwright, expect

from .a11y import assert_accessible
from .conftest import PHONE, TABLET, DemoHub, Shots, launch, watch

#: invites of this hub work for 15 seconds, so one can expire during the test
HUB_ENV = {"TELEPHARM_INVITE_TTL": "15"}


def _invite(demo_hub: DemoHub, token: str) -> str:
    rx = demo_hub.ready_prescription(f"invite-{time.time_ns()}", patient_last="INVITEPATIENT")
    reply = requests.post(
        f"{demo_hub.base}/api/v1/consults",
        json={"patient_id": rx["patient_id"]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    return str(reply.json()["invite_url"])


def test_a_denied_camera_and_an_expired_invite_each_say_so(
    demo_hub: DemoHub, playwright: Playwright, chromium: Browser, shots: Shots
) -> None:
    problems: list[str] = []
    token = demo_hub.user_token()
    fresh, expiring = _invite(demo_hub, token), _invite(demo_hub, token)

    # a browser that does not grant the camera without asking: headless, the ask is refused
    strict = launch(playwright, camera_allowed=False)
    page = strict.new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    watch(page, problems)
    page.goto(fresh)
    page.get_by_label("I have read this and agree to a video consultation.").check()
    page.get_by_role("button", name="Continue").click()
    alert = page.locator("#device-problem")
    expect(alert).to_contain_text("Camera and microphone are blocked", timeout=15_000)
    expect(page.get_by_role("button", name="Join the waiting room")).to_be_disabled()
    expect(page.get_by_role("button", name="Try again")).to_be_visible()
    shots.take(page, "01-camera-denied")
    assert_accessible(page, "test_patient_page: 01-camera-denied")
    strict.close()

    time.sleep(16)  # the second invite's 15 seconds run out
    page = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    watch(page, problems)
    page.goto(expiring)
    expect(page.get_by_role("heading", name="This invitation has expired")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("contact your pharmacy for a new link")
    shots.take(page, "02-invite-expired")
    assert_accessible(page, "test_patient_page: 02-invite-expired")

    page.goto(f"{demo_hub.base}/consult/{'x' * 43}")
    expect(page.get_by_role("heading", name="This link is not valid")).to_be_visible()
    page.set_viewport_size(TABLET)
    shots.take(page, "03-invite-invalid-tablet")
    assert problems == []
