"""Accessibility, measured (issue 17): axe-core (WCAG 2.1 A and AA) finds no serious or
critical violation on every view of the console and on the patient's pages, each in the state
a person first meets it; and the patient's consult page works with the keyboard alone on a
320 px wide phone, without scrolling sideways. States deeper in a workflow (a fill being
checked, a pick-up, a call) are measured where the other browser tests reach them."""

from __future__ import annotations

import re
import time
import uuid

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from server.patients.unsubscribe import KEY_FILE, token_for

from .a11y import (
    assert_accessible,
    assert_focus_visible,
    assert_keyboard_reachable,
    assert_no_horizontal_scroll,
    focused_matches,
    tab_to,
)
from .conftest import DESKTOP, DemoHub, Shots, watch

NARROW = {"width": 320, "height": 640}
#: the demo shelf's lisinopril (server/inventory/demo.py)
LISINOPRIL = "99999041090"


def _settled(page: Page) -> None:
    """The view has drawn (no loading line left)."""
    expect(page.locator("#view .loading")).to_have_count(0, timeout=15_000)


def _visit(page: Page, hub: DemoHub, route: str) -> None:
    page.goto(f"{hub.base}/{route}")
    expect(page.locator("#view h1").first).to_contain_text(re.compile(r"\w"), timeout=15_000)
    _settled(page)
    assert_accessible(page, route)


def test_the_measure_fails_a_serious_violation(chromium: Browser) -> None:
    """The helper is no rubber stamp: an unlabelled field and an image without a text
    alternative fail it, each named with its rule."""
    page = chromium.new_page()
    page.set_content(
        '<html lang="en"><title>t</title><main><img src="x.png"><input type="text"></main></html>'
    )
    with pytest.raises(AssertionError) as failed:
        assert_accessible(page, "a bad page")
    assert "critical image-alt" in str(failed.value)
    assert "critical label" in str(failed.value)
    page.close()


def test_every_console_view_has_no_serious_violation(
    demo_hub: DemoHub, chromium: Browser, shots: Shots
) -> None:
    problems: list[str] = []
    rx = demo_hub.ready_prescription(
        f"a11y-{time.time_ns()}", patient_last="Axetest", patient_first="Robin"
    )
    page = chromium.new_context(viewport=DESKTOP).new_page()
    watch(page, problems)

    # the sign-in: the console signed out, the hub's password page and its code page
    page.goto(demo_hub.base + "/")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert_accessible(page, "the console, signed out")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("input[name=username]")
    assert_accessible(page, "the hub's password page")
    page.fill("input[name=username]", demo_hub.username)
    page.fill("input[name=password]", "not the password")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_selector("input[name=password]")
    assert_accessible(page, "the hub's password page, refused")
    page.fill("input[name=username]", demo_hub.username)
    page.fill("input[name=password]", demo_hub.password)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_selector("input[name=code]")
    assert_accessible(page, "the hub's authenticator code page")
    page.fill("input[name=code]", demo_hub.totp())
    page.get_by_role("button", name="Continue").click()
    page.wait_for_selector("text=Verification queue >> visible=true")

    # the verification queue with a prescription, the prescription, its forms, the patient
    expect(page.locator("table.queue tbody tr", has_text="Axetest")).to_be_visible()
    assert_accessible(page, "#/queue")
    _visit(page, demo_hub, f"#/rx/{rx['id']}")
    page.get_by_role("button", name="Claim").click()
    page.get_by_role("button", name="Approve…").click()
    expect(page.get_by_role("button", name="Approve prescription")).to_be_visible()
    assert_accessible(page, "#/rx/<id>, the approve form")
    reasons = page.locator("form textarea[data-code]")
    for index in range(reasons.count()):
        reasons.nth(index).fill("Verified with the prescriber.")
    page.get_by_role("button", name="Approve prescription").click()
    expect(page.locator(".page-head .badge.state")).to_have_text("Approved")
    assert_accessible(page, "#/rx/<id>, approved")
    _visit(page, demo_hub, f"#/patients/{rx['patient_id']}")

    # dispensing and the stock: the approved prescription waits in the fill queue
    _visit(page, demo_hub, "#/fills")
    row = page.locator("tr", has_text=re.compile("TESTDRUG", re.I))
    expect(row).to_be_visible(timeout=30_000)
    row.get_by_role("button", name="Start fill").click()
    expect(page.locator(".page-head .badge.state")).to_have_text("Filling")
    _settled(page)
    assert_accessible(page, "#/fills/<id>")
    _visit(page, demo_hub, "#/check")
    _visit(page, demo_hub, "#/will-call")
    _visit(page, demo_hub, "#/inventory")
    _visit(page, demo_hub, f"#/inventory/{LISINOPRIL}")
    _visit(page, demo_hub, "#/adherence")
    _visit(page, demo_hub, "#/patients")
    _visit(page, demo_hub, "#/match-review")

    # consults: the list, and a consult's room before the patient comes
    token = demo_hub.user_token()
    made = requests.post(
        f"{demo_hub.base}/api/v1/consults",
        json={"patient_id": rx["patient_id"]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert made.status_code == 200, made.text
    _visit(page, demo_hub, "#/consults")
    _visit(page, demo_hub, f"#/consults/{made.json()['id']}")
    shots.take(page, "01-consult-room")
    assert problems == []


def test_the_patient_s_pages_work_by_keyboard_on_a_320_px_phone(
    demo_hub: DemoHub, chromium: Browser, shots: Shots
) -> None:
    problems: list[str] = []
    token = demo_hub.user_token()
    rx = demo_hub.ready_prescription(f"a11y-phone-{time.time_ns()}", patient_last="Keyboard")
    made = requests.post(
        f"{demo_hub.base}/api/v1/consults",
        json={"patient_id": rx["patient_id"]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert made.status_code == 200, made.text
    page = chromium.new_context(viewport=NARROW, is_mobile=True, has_touch=True).new_page()
    watch(page, problems)

    # the invite and its consent: the consent text scrolls by keyboard, Space ticks the box,
    # Enter continues
    page.goto(str(made.json()["invite_url"]))
    expect(page.get_by_role("heading", name=re.compile("Video consultation"))).to_be_visible()
    assert_accessible(page, "the consult page's welcome and consent")
    assert_no_horizontal_scroll(page)
    assert_keyboard_reachable(page, [".consent-text", "#consent"])
    page.keyboard.press("Space")
    expect(page.locator("#consent")).to_be_checked()
    tab_to(page, "#continue")
    page.keyboard.press("Enter")

    # the camera check: the page moved the focus to its main region; Tab reaches the join
    expect(page.get_by_role("heading", name="Check your camera and microphone")).to_be_visible()
    expect(page.locator("#join")).to_be_enabled(timeout=15_000)
    assert_accessible(page, "the consult page's camera check")
    assert_no_horizontal_scroll(page)
    tab_to(page, "#join")
    shots.take(page, "01-camera-check-320")
    page.keyboard.press("Enter")

    # the waiting room: every control by Tab, each with its focus visible
    expect(page.get_by_role("heading", name="Waiting room")).to_be_visible()
    buttons = page.locator("#view button:visible")
    expect(buttons.first).to_be_visible(timeout=15_000)
    assert_accessible(page, "the consult page's waiting room")
    assert_no_horizontal_scroll(page)
    ids = [b.get_attribute("id") for b in buttons.all()]
    assert all(ids), f"the waiting room's buttons each have an id: {ids}"
    assert_keyboard_reachable(page, [f"#{i}" for i in ids])
    shots.take(page, "02-waiting-room-320")

    # a link that is not an invite
    page.goto(f"{demo_hub.base}/consult/{'x' * 43}")
    expect(page.get_by_role("heading", name="This link is not valid")).to_be_visible()
    assert_accessible(page, "the consult page, a link that is not an invite")
    assert_no_horizontal_scroll(page)
    assert problems == []


def test_the_unsubscribe_page_by_keyboard_on_a_320_px_phone(
    demo_hub: DemoHub, chromium: Browser
) -> None:
    rx = demo_hub.ready_prescription(f"a11y-unsub-{time.time_ns()}", patient_last="Unsubscribe")
    token = demo_hub.user_token()
    added = requests.post(
        f"{demo_hub.base}/api/v1/patients/{rx['patient_id']}/contacts",
        json={"kind": "email", "value": f"unsub.{uuid.uuid4().hex[:8]}@example.org"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert added.status_code == 200, added.text
    key = (demo_hub.data_dir / "keys" / KEY_FILE).read_bytes()
    link = f"{demo_hub.base}/unsubscribe/{token_for(key, uuid.UUID(added.json()['id']))}"
    page = chromium.new_context(viewport=NARROW, is_mobile=True, has_touch=True).new_page()
    page.goto(link)
    expect(page.get_by_role("heading", name="Unsubscribe")).to_be_visible()
    assert_accessible(page, "the unsubscribe page")
    assert_no_horizontal_scroll(page)
    assert_keyboard_reachable(page, ["button[type=submit]"])
    assert focused_matches(page, "button[type=submit]")
    assert_focus_visible(page)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
    assert_accessible(page, "the unsubscribe page, done")
