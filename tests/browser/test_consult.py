"""Scenario 2: the pharmacist creates a consult from a prescription; the patient opens the
invite in another browser context, consents, checks the camera and waits; the pharmacist
admits them; both pages show the other's video and getStats on both sides shows frames
decoded and bytes received growing over five seconds; both agree to recording and both pages
show the indicator; the patient leaves and the pharmacist ends with counselling notes.

Then a paid waiting room: a pharmacy admin sets the consult's price and asks for it before
admission (the console's price list); the patient, on a phone, sees the fee in the waiting
room; the pharmacist's admit is refused while it is unpaid; the patient pays with the
provider's test card typed into the provider's own fields (a real local Stripe-compatible
server, `localstripe`, with its Stripe.js stand-in and its signed webhooks); the pharmacist's
room shows it paid and the patient is admitted."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

from playwright.sync_api import Browser, Page, expect

from .a11y import assert_accessible
from .conftest import DESKTOP, PHONE, TABLET, DemoHub, Shots, sign_in, watch
from .test_dispensing import add_staff

#: the hub takes payments at the conftest's `provider`, started before it
WITH_PROVIDER = True
#: the browsers reach the hub through a relay that can cut the patient's socket
BEHIND_RELAY = True
#: how a signaling WebSocket's connection begins (its upgrade request)
SIGNALING = b"GET /ws/"
#: test-only instrumentation: keep each page's peer connections where getStats can reach them
KEEP_PEERS = """
(() => {
  const Native = window.RTCPeerConnection;
  window.__peers = [];
  window.RTCPeerConnection = function (...args) {
    const pc = new Native(...args);
    window.__peers.push(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = Native.prototype;
})();
"""
#: and its signaling sockets, so the test can drop one as a network would
KEEP_SOCKETS = """
(() => {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.WebSocket = function (...args) {
    const ws = new Native(...args);
    window.__sockets.push(ws);
    return ws;
  };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
})();
"""
INBOUND = """
async () => {
  const pc = window.__peers.find((p) => p.connectionState === "connected"
    && p.getReceivers().some((r) => r.track && r.track.readyState === "live"));
  if (!pc) return null;
  let frames = 0, bytes = 0;
  (await pc.getStats()).forEach((s) => {
    if (s.type !== "inbound-rtp") return;
    bytes += s.bytesReceived || 0;
    if (s.kind === "video") frames += s.framesDecoded || 0;
  });
  return { frames, bytes };
}
"""
PLAYING = """(id) => {
  const v = document.getElementById(id);
  return v && v.readyState >= 2 && v.videoWidth > 0 && !v.paused;
}"""


def _playing(page: Page, element_id: str, seconds: float = 30) -> None:
    """Polled from here: the page's CSP (no eval) refuses Playwright's wait_for_function."""
    deadline = time.monotonic() + seconds
    while not page.evaluate(PLAYING, element_id):
        assert time.monotonic() < deadline, f"#{element_id} shows no video"
        time.sleep(0.25)


def _inbound(page: Page) -> dict[str, int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = page.evaluate(INBOUND)
        if found:
            return dict(found)
        time.sleep(0.5)
    raise AssertionError("no connected peer connection with live tracks")


def record(page: Page, who: str, frames: list[str]) -> None:
    """Keep the signaling traffic of ``page`` (without SDP and candidates' bulk)."""

    def keep(arrow: str) -> Callable[[str | bytes], None]:
        return lambda frame: frames.append(f"{time.monotonic():.2f} {who} {arrow} {frame!s:.90}")

    page.on(
        "websocket",
        lambda ws: (ws.on("framesent", keep(">")), ws.on("framereceived", keep("<"))),
    )


def _patient_page(
    demo_hub: DemoHub, chromium: Browser, problems: list[str], frames: list[str]
) -> Page:
    context = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    context.add_init_script(KEEP_PEERS)
    context.add_init_script(KEEP_SOCKETS)
    page = context.new_page()
    watch(page, problems)
    record(page, "patient", frames)
    return page


def test_a_consult_from_invite_to_counselling_notes(
    demo_hub: DemoHub, chromium: Browser, shots: Shots
) -> None:
    frames: list[str] = []  # both sockets' traffic, printed when the test fails
    try:
        _consult(demo_hub, chromium, shots, frames)
    finally:
        print("\n".join(frames[-80:]))


def _consult(demo_hub: DemoHub, chromium: Browser, shots: Shots, frames: list[str]) -> None:
    problems: list[str] = []
    rx_id = demo_hub.ready_prescription(f"consult-{time.time_ns()}", patient_last="CONSULTPATIENT")[
        "id"
    ]

    console_context = chromium.new_context(viewport=DESKTOP)
    console_context.add_init_script(KEEP_PEERS)
    console = console_context.new_page()
    record(console, "pharmacist", frames)
    watch(console, problems)
    sign_in(console, demo_hub)
    console.goto(f"{demo_hub.base}/#/rx/{rx_id}")
    console.get_by_role("button", name="Video consult…").click()
    invite = console.locator("#invite-link")
    expect(invite).to_have_value(re.compile(re.escape(f"{demo_hub.base}/consult/") + r"[\w-]{40,}"))
    link = invite.input_value()
    console.get_by_role("button", name="Join the room").click()
    expect(console.get_by_text("Waiting for the patient…")).to_be_visible()
    shots.take(console, "01-console-room")

    patient = _patient_page(demo_hub, chromium, problems, frames)
    patient.goto(link)
    expect(
        patient.get_by_role("heading", name="Video consultation with Demo Telepharmacy")
    ).to_be_visible()
    expect(patient.get_by_role("button", name="Continue")).to_be_disabled()
    shots.take(patient, "02-patient-welcome")
    patient.get_by_label("I have read this and agree to a video consultation.").check()
    patient.get_by_role("button", name="Continue").click()
    expect(patient.get_by_role("heading", name="Check your camera and microphone")).to_be_visible()
    _playing(patient, "preview")
    shots.take(patient, "03-patient-camera-check")
    patient.get_by_role("button", name="Join the waiting room").click()
    expect(patient.get_by_role("heading", name="Waiting room")).to_be_visible()
    shots.take(patient, "04-patient-waiting")

    admit = console.get_by_role("button", name="Admit the patient")
    expect(admit).to_be_visible(timeout=15_000)
    expect(console.locator("#peer-state")).to_have_text("Patient: here")
    shots.take(console, "05-console-patient-waiting")
    assert_accessible(console, "test_consult: 05-console-patient-waiting")
    admit.click()

    for page in (console, patient):
        _playing(page, "remote-video")
    before = {"console": _inbound(console), "patient": _inbound(patient)}
    time.sleep(5)
    after = {"console": _inbound(console), "patient": _inbound(patient)}
    for side in ("console", "patient"):
        assert after[side]["frames"] > before[side]["frames"] + 30, (side, before, after)
        assert after[side]["bytes"] > before[side]["bytes"], (side, before, after)
    # the patient's getStats summaries reach the pharmacist's indicator through the hub
    # the network under the patient's signaling socket fails (cut, no close handshake): the
    # page says so, comes back on its resume token within the grace period and the two pages
    # renegotiate the call
    assert demo_hub.network is not None
    demo_hub.network.cut_latest(SIGNALING)
    expect(patient.get_by_text("Your connection dropped. Reconnecting…")).to_be_visible()
    expect(patient.get_by_text("Your connection dropped. Reconnecting…")).to_be_hidden(
        timeout=15_000
    )
    resumed = patient.evaluate("() => window.__sockets.length")
    assert resumed == 2
    time.sleep(2)
    before = _inbound(patient)
    time.sleep(3)
    assert _inbound(patient)["frames"] > before["frames"] + 20
    expect(console.locator("#quality")).to_have_text(
        re.compile(r"Quality: (good|fair|poor) · \d+ kbps"), timeout=20_000
    )
    shots.take(console, "06-console-call")
    assert_accessible(console, "test_consult: 06-console-call")
    console.set_viewport_size(TABLET)
    shots.take(console, "06-console-call-tablet")
    console.set_viewport_size(DESKTOP)
    shots.take(patient, "07-patient-call")
    assert_accessible(patient, "test_consult: 07-patient-call")

    console.get_by_role("button", name="Ask to record").click()
    patient.get_by_role("button", name="Allow recording").click()
    for page in (console, patient):
        expect(page.locator("#recording-indicator")).to_be_visible(timeout=15_000)
    shots.take(console, "08-console-recording")
    assert_accessible(console, "test_consult: 08-console-recording")
    shots.take(patient, "09-patient-recording")
    assert_accessible(patient, "test_consult: 09-patient-recording")

    patient.get_by_role("button", name="Leave").click()
    expect(patient.get_by_role("heading", name="You left the consultation")).to_be_visible()
    expect(console.locator("#peer-state")).to_have_text("Patient: left", timeout=15_000)
    console.get_by_label("Counselling notes").fill(
        "Explained dosing twice daily with food; no questions."
    )
    console.get_by_role("button", name="End consult").click()
    expect(console.get_by_text("The consult is over.")).to_be_visible(timeout=15_000)
    expect(console.locator(".card .badge.state").first).to_have_text("Ended")
    expect(console.locator("#counselling-summary")).to_contain_text("Explained dosing twice daily")
    shots.take(console, "10-console-ended")
    assert_accessible(console, "test_consult: 10-console-ended")

    # the link opened again elsewhere (no resume token there) says the consult is over
    again = chromium.new_context(viewport=PHONE, is_mobile=True).new_page()
    again.goto(link)
    expect(again.get_by_role("heading", name="This consultation is over")).to_be_visible()
    shots.take(again, "11-consult-over")
    assert_accessible(again, "test_consult: 11-consult-over")
    assert problems == []


def test_a_paid_waiting_room_on_a_phone(demo_hub: DemoHub, chromium: Browser, shots: Shots) -> None:
    problems: list[str] = []
    frames: list[str] = []
    # a pharmacy admin: the consult's price, paid in the waiting room before admission
    admin = add_staff(demo_hub, f"ada.{uuid.uuid4().hex[:6]}", "pharmacy_admin")
    office = chromium.new_context(viewport=DESKTOP).new_page()
    watch(office, problems)
    sign_in(office, demo_hub, account=admin)
    office.get_by_role("link", name="Payments", exact=True).click()
    office.get_by_label("Consult fee is paid").select_option("before_admission")
    prices = office.locator("section[aria-labelledby=prices-h]")
    expect(prices.locator(".notice.ok")).to_have_text(
        "Consult fee: in the waiting room, before admission."
    )
    office.get_by_label("Item").fill("consult")
    office.get_by_label("Price ($)").fill("25")
    office.get_by_role("button", name="Set the price").click()
    expect(prices.locator("tr[data-item=consult]")).to_contain_text("$25.00")
    shots.take(office, "20-consult-fee-policy")
    assert_accessible(office, "test_consult: 20-consult-fee-policy")

    rx_id = demo_hub.ready_prescription(f"paid-{time.time_ns()}", patient_last="FEEPATIENT")["id"]
    console = chromium.new_context(viewport=DESKTOP).new_page()
    watch(console, problems)
    sign_in(console, demo_hub)
    console.goto(f"{demo_hub.base}/#/rx/{rx_id}")
    console.get_by_role("button", name="Video consult…").click()
    link = console.locator("#invite-link").input_value()
    console.get_by_role("button", name="Join the room").click()
    expect(console.locator("#consult-fee")).to_contain_text("Fee not paid ($25.00)")

    patient = _patient_page(demo_hub, chromium, problems, frames)
    patient.goto(link)
    patient.get_by_label("I have read this and agree to a video consultation.").check()
    patient.get_by_role("button", name="Continue").click()
    _playing(patient, "preview")
    patient.get_by_role("button", name="Join the waiting room").click()
    expect(patient.get_by_role("heading", name="Waiting room")).to_be_visible()
    fee = patient.locator("#fee")
    expect(fee.locator("#fee-what")).to_have_text(
        "Please pay the consultation fee of $25.00. Your pharmacist lets you in once it is paid."
    )
    fields = patient.locator("#fee-card-field")
    expect(fields.locator("input").first).to_be_visible()
    fee.scroll_into_view_if_needed()
    shots.take(patient, "21-patient-fee")
    assert_accessible(patient, "test_consult: 21-patient-fee")

    # not admitted before the fee is paid: the hub refuses, in words
    admit = console.get_by_role("button", name="Admit the patient")
    expect(admit).to_be_visible(timeout=15_000)
    admit.click()
    expect(console.get_by_role("alert")).to_have_text(
        "The patient has not paid the consultation fee yet."
    )
    shots.take(console, "22-console-fee-unpaid")

    # the provider's test card, typed into the provider's fields on the phone
    fields.locator("input").first.click()
    patient.keyboard.type("4242424242424242")
    fields.locator("input[placeholder=exp_month]").fill("12")
    fields.locator("input[placeholder=exp_year]").fill("30")
    fields.locator("input[placeholder=cvc]").fill("123")
    fields.locator("input[placeholder=postal_code]").fill("10001")
    patient.get_by_role("button", name="Pay $25.00").click()
    expect(patient.locator("#fee-paid")).to_have_text("Paid: $25.00. Thank you.", timeout=30_000)
    expect(patient.get_by_role("heading", name="Waiting room")).to_be_visible()  # still waiting
    shots.take(patient, "23-patient-fee-paid")
    assert_accessible(patient, "test_consult: 23-patient-fee-paid")

    expect(console.locator("#consult-fee")).to_contain_text("Fee paid ($25.00)", timeout=15_000)
    shots.take(console, "24-console-fee-paid")
    assert_accessible(console, "test_consult: 24-console-fee-paid")
    console.get_by_role("button", name="Admit the patient").click()
    expect(patient.get_by_role("heading", name="Your consultation")).to_be_visible(timeout=15_000)
    expect(patient.locator("#fee")).to_have_count(0)
    patient.get_by_role("button", name="Leave").click()
    expect(console.locator("#peer-state")).to_have_text("Patient: left", timeout=15_000)
    console.get_by_label("Counselling notes").fill("Synthetic: explained dosing.")
    console.get_by_role("button", name="End consult").click()
    expect(console.get_by_text("The consult is over.")).to_be_visible(timeout=15_000)
    expect(console.locator("#consult-fee")).to_contain_text("Fee paid ($25.00)")
    assert problems == []
