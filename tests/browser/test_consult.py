"""Scenario 2: the pharmacist creates a consult from a prescription; the patient opens the
invite in another browser context, consents, checks the camera and waits; the pharmacist
admits them; both pages show the other's video and getStats on both sides shows frames
decoded and bytes received growing over five seconds; both agree to recording and both pages
show the indicator; the patient leaves and the pharmacist ends with counselling notes."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from playwright.sync_api import Browser, Page, expect

from .a11y import assert_accessible
from .conftest import DESKTOP, PHONE, TABLET, DemoHub, Shots, sign_in, watch

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
