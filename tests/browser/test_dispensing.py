"""Issue 16, remote dispensing, in two browsers: a technician fills an approved controlled
prescription (a keyboard-wedge scan with its GS keystroke, a refusal in plain words, a photo of
the barcode, the count, three photos from the camera, the label printed and read back from its
PDF), a pharmacist elsewhere checks the product side by side, sends it back once and then
approves it; at the pick-up the collector signs on the screen and the offer to counsel is
recorded; the prescriber's system receives the RxFill."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import secrets
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyotp
import pytest
import zxingcpp
from aiohttp import web
from PIL import Image
from playwright.sync_api import Browser, Page, Playwright, expect

from eprescribe.ncpdp import SenderSoftware, build_status, parse_message
from eprescribe.ncpdp.replies import reply_context
from tests.support.processes import TELEPHARM, free_port

from .a11y import assert_accessible
from .conftest import CHROMIUM, DESKTOP, MEDIA_ARGS, TABLET, DemoHub, Shots, sign_in, watch

#: the demo shelf's Schedule II product and its lot (server/inventory/demo.py)
OXYCODONE = "99999052001"
OXYCODONE_LOT = "DEMO-OXY-1"
OXYCODONE_EXPIRES_IN = 400
LISINOPRIL = "99999041090"
LISINOPRIL_EXPIRES_IN = 540
DRUG = "oxycodone hydrochloride 5 MG Oral Tablet"
PRESCRIBER_SOFTWARE = SenderSoftware("Test", "Browser test EHR", "1.0")
FIFTEEN = "15"
KINDS = ("stock_bottle", "counted", "vial_label", "signature")
PDF_TOOLS = shutil.which("pdftoppm") and shutil.which("pdftotext")


def gtin_of(ndc11: str) -> str:
    """The GTIN-14 of a 5-3-2 package: indicator 0, ``03``, the 10-digit NDC, check digit."""
    body = "003" + ndc11[:5] + ndc11[6:]
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def expiry_of_demo_lot() -> dt.date:
    return dt.datetime.now(dt.UTC).date() + dt.timedelta(days=OXYCODONE_EXPIRES_IN)


# -- the staff -------------------------------------------------------------------------------


@dataclass
class Staff:
    """An account added as an operator does (`telepharm user add`)."""

    username: str
    password: str
    seed: str
    used_steps: list[int] = field(default_factory=list)

    def totp(self) -> str:
        while self.used_steps and int(time.time()) // 30 <= self.used_steps[-1]:
            time.sleep(0.5)
        step = int(time.time()) // 30
        self.used_steps.append(step)
        return str(pyotp.TOTP(self.seed).at(step * 30))


def add_staff(hub: DemoHub, username: str, role: str) -> Staff:
    password = secrets.token_urlsafe(18)
    done = subprocess.run(
        [*TELEPHARM, "user", "add", "--pharmacy", hub.ncpdpid, "--username", username,
         "--role", role, "--password-stdin"],
        env=hub.env, input=password + "\n", capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = re.search(r"secret=([A-Z0-9]+)", done.stdout)
    assert found, done.stdout
    return Staff(username, password, found.group(1))


# -- the prescriber's system -------------------------------------------------------------------


@dataclass
class Prescriber:
    """The prescriber system's SCRIPT endpoint, a real aiohttp server on loopback: it answers
    every message Status 000 and keeps what it received."""

    url: str = ""
    received: list[bytes] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(body)
        message = parse_message(body)
        reply = build_status(
            reply_context(message.header),
            code="000",
            message_id=uuid.uuid4().hex,
            sent_time=dt.datetime.now(dt.UTC),
            software=PRESCRIBER_SOFTWARE,
        )
        return web.Response(body=reply, content_type="application/xml")

    def rx_fills(self) -> list[bytes]:
        return [b for b in self.received if b"<RxFill>" in b]


@pytest.fixture(scope="module")
def prescriber(demo_hub: DemoHub) -> Iterator[Prescriber]:
    """Served from a thread of its own (Playwright's sync API holds this thread's loop)."""
    endpoint = Prescriber()
    port = free_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    runner = web.AppRunner(web.Application())
    runner.app.router.add_post("/script", endpoint.handle)

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(30)
    endpoint.url = f"http://127.0.0.1:{port}/script"
    registered = subprocess.run(
        [*TELEPHARM, "client", "set-endpoint", demo_hub.ehr["client_id"], "--endpoint",
         endpoint.url],
        env=demo_hub.env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert registered.returncode == 0, registered.stderr
    yield endpoint
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


# -- the technician's camera -------------------------------------------------------------------


def datamatrix_card(ndc11: str, lot: str, expiry: dt.date, serial: str) -> Image.Image:
    """The stock bottle's GS1 DataMatrix on a grey card, 640 x 480."""
    symbol = zxingcpp.create_barcode(
        f"(01){gtin_of(ndc11)}(17){expiry:%y%m%d}(10){lot}(21){serial}",
        zxingcpp.BarcodeFormat.DataMatrix,
        gs1=True,
    )
    bitmap = zxingcpp.write_barcode_to_image(symbol, scale=8)
    height, width = bitmap.shape
    code = Image.frombytes("L", (width, height), bytes(memoryview(bitmap))).convert("RGB")
    card = Image.new("RGB", (640, 480), (200, 196, 190))
    card.paste(code, ((640 - width) // 2, (480 - height) // 2))
    return card


def y4m(image: Image.Image, path: Path, frames: int = 30) -> Path:
    """A YUV4MPEG2 (4:2:0) video of the still: what Chromium's fake camera plays in a loop."""
    ycbcr = image.convert("YCbCr")
    y, cb, cr = ycbcr.split()
    half = (image.width // 2, image.height // 2)
    frame = b"FRAME\n" + y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes()
    header = f"YUV4MPEG2 W{image.width} H{image.height} F30:1 Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + frame * frames)
    return path


@pytest.fixture(scope="module")
def bench_camera(
    playwright: Playwright, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Browser]:
    """The technician's browser: its camera sees the stock bottle's DataMatrix."""
    video = y4m(
        datamatrix_card(OXYCODONE, OXYCODONE_LOT, expiry_of_demo_lot(), "SN0001"),
        tmp_path_factory.mktemp("camera") / "bottle.y4m",
    )
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        headless=True,
        args=[
            *MEDIA_ARGS,
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ],
    )
    yield browser
    browser.close()


# -- steps -------------------------------------------------------------------------------------


def scan_as_a_scanner(page: Page, ndc11: str, lot: str, expiry: dt.date, serial: str) -> None:
    """What a keyboard-wedge scanner types for a GS1 DataMatrix: the element string, its GS
    between the lot and the serial as Ctrl+], then Enter."""
    field = page.locator("#scan")
    expect(field).to_be_focused()
    page.keyboard.type(f"01{gtin_of(ndc11)}17{expiry:%y%m%d}10{lot}", delay=5)
    page.keyboard.press("Control+BracketRight")
    page.keyboard.type(f"21{serial}", delay=5)
    page.keyboard.press("Enter")


def take_photo(page: Page, button: str) -> None:
    page.get_by_role("button", name=button).click()
    shoot = page.locator(".camera").get_by_role("button", name="Take photo")
    expect(shoot).to_be_enabled(timeout=15_000)
    shoot.click()


def approve_in_console(page: Page, hub: DemoHub, rx_id: str) -> None:
    page.goto(f"{hub.base}/#/rx/{rx_id}")
    page.get_by_role("button", name="Claim").click()
    page.get_by_role("button", name="Approve…").click()
    reasons = page.locator("form textarea[data-code]")
    for index in range(reasons.count()):
        reasons.nth(index).fill("Verified with the prescriber.")
    page.get_by_role("button", name="Approve prescription").click()
    expect(page.locator(".page-head .badge.state")).to_have_text("Approved")


def read_label(pdf: Path, shots: Shots) -> str:
    """The label PDF rendered as the printer would (pdftoppm, kept beside the screenshots) and
    its text as printed (pdftotext)."""
    subprocess.run(
        ["pdftoppm", "-png", "-r", "150", "-singlefile", str(pdf), str(shots.folder / "label")],
        check=True,
        timeout=60,
    )
    assert (shots.folder / "label.png").stat().st_size > 0
    return subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout


def image_loaded(page: Page, selector: str) -> bool:
    return bool(page.eval_on_selector(selector, "img => img.complete && img.naturalWidth > 0"))


# -- the scenario ------------------------------------------------------------------------------


@pytest.mark.skipif(not PDF_TOOLS, reason="poppler-utils (pdftoppm, pdftotext) not installed")
def test_a_controlled_prescription_is_filled_checked_remotely_and_picked_up(
    demo_hub: DemoHub,
    chromium: Browser,
    bench_camera: Browser,
    prescriber: Prescriber,
    shots: Shots,
    tmp_path: Path,
) -> None:
    technician = add_staff(demo_hub, f"tech.{uuid.uuid4().hex[:6]}", "technician")
    problems: list[str] = []

    # the pharmacist at the hub approves the prescription (it asks for every fill status)
    checker_ctx = chromium.new_context(viewport=DESKTOP)
    pharmacist = checker_ctx.new_page()
    watch(pharmacist, problems)
    sign_in(pharmacist, demo_hub)
    rx = demo_hub.ready_prescription(
        f"fill-{time.time_ns()}",
        controlled=True,
        drug_description=DRUG,
        ndc=OXYCODONE,
        quantity=FIFTEEN,
        days_supply="5",
        patient_last="Fillpatient",
        patient_first="Dana",
        append={
            "Body/NewRx/MedicationPrescribed": "<RxFillIndicator>All Fill Statuses"
            "</RxFillIndicator>"
        },
    )
    approve_in_console(pharmacist, demo_hub, str(rx["id"]))

    # the technician at the remote site: the fill queue, start, scan
    bench_ctx = bench_camera.new_context(viewport=TABLET)
    bench = bench_ctx.new_page()
    watch(bench, problems)
    sign_in(bench, demo_hub, account=technician)
    bench.get_by_role("link", name="Filling", exact=True).click()
    waiting = bench.get_by_role("region", name=re.compile("Waiting for a fill"))
    row = waiting.locator("tr", has_text=DRUG)
    expect(row).to_be_visible(timeout=30_000)
    shots.take(bench, "01-fill-queue")
    row.get_by_role("button", name="Start fill").click()
    expect(bench.locator(".page-head .badge.state")).to_have_text("Filling")
    expect(bench.locator(".page-head .badge.controlled")).to_have_text("C-II")

    expiry = expiry_of_demo_lot()
    lisinopril_expiry = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=LISINOPRIL_EXPIRES_IN)
    scan_as_a_scanner(bench, LISINOPRIL, "DEMO-LIS-1", lisinopril_expiry, "SN9")  # wrong bottle
    refusal = bench.locator("#scan-result")
    expect(refusal).to_have_attribute("role", "alert")
    expect(refusal).to_contain_text("is not the prescribed drug")
    refused_words = refusal.inner_text()
    shots.take(bench, "02-scan-refused")
    assert_accessible(bench, "test_dispensing: 02-scan-refused")
    bench.locator("#scan").fill("")
    scan_as_a_scanner(bench, OXYCODONE, OXYCODONE_LOT, expiry, "SN0001")
    expect(refusal).to_have_text("The product matches the prescription.")
    scanned = bench.get_by_label("Scanned product")
    expect(scanned).to_contain_text("99999-0520-01")
    # the GS keystroke ended the lot: had it been dropped, the serial would run into the lot
    expect(scanned.locator("dd").nth(2)).to_have_text(OXYCODONE_LOT)
    expect(scanned).to_contain_text("SN0001")
    # the camera sees the bottle's DataMatrix: the photo of the code is decoded by the hub
    take_photo(bench, "Photograph the barcode")
    expect(refusal).to_have_text("The code in the photo matches the prescription.", timeout=20_000)
    shots.take(bench, "03-scanned")

    # the count: less than owed asks why; the full count does not
    count = bench.get_by_label("Counted (tablets)")
    count.fill("10")
    expect(bench.get_by_label("Why less than owed (partial fill)")).to_be_visible()
    count.fill(FIFTEEN)
    expect(bench.get_by_label("Why less than owed (partial fill)")).to_be_hidden()
    bench.get_by_role("button", name="Record the count").click()
    expect(bench.get_by_text(f"Recorded: {FIFTEEN} tablets")).to_be_visible()

    # three photos from the camera
    for kind, title in (("stock_bottle", "stock bottle"), ("counted", "counted product")):
        take_photo(bench, f"Take photo: {title}")
        expect(bench.locator(f"figure[data-kind={kind}] .badge")).to_have_text("Taken")
    bench.get_by_role("button", name="Take photo: labelled vial").click()
    expect(bench.locator(".camera video")).to_be_visible()
    shots.take(bench, "04-camera")
    assert_accessible(bench, "test_dispensing: 04-camera")
    shoot = bench.locator(".camera").get_by_role("button", name="Take photo")
    expect(shoot).to_be_enabled(timeout=15_000)
    shoot.click()
    expect(bench.locator("figure[data-kind=vial_label] .badge")).to_have_text("Taken")

    # the label: printed from a new tab, its PDF read back as the printer renders it
    with bench_ctx.expect_page() as opened:
        bench.get_by_role("button", name="Print label").click()
    opened.value.close()
    with bench.expect_download() as download:
        bench.locator("#label-download").click()
    pdf = tmp_path / "label.pdf"
    download.value.save_as(pdf)
    printed = read_label(pdf, shots)
    fill_id = bench.url.rsplit("/", 1)[-1]
    fill = demo_hub.api(f"/fills/{fill_id}")
    assert f"Rx: {fill['rx_number']}" in printed
    assert "Dana Fillpatient" in printed
    assert "Federal law prohibits the transfer of this drug" in re.sub(r"\s+", " ", printed)
    expect(bench.get_by_label("Label text")).to_contain_text(str(fill["rx_number"]))
    shots.take(bench, "05-fill-complete")
    assert_accessible(bench, "test_dispensing: 05-fill-complete")
    bench.get_by_role("button", name="Submit for product check").click()
    expect(bench.locator(".page-head .badge.state")).to_have_text("Product check")

    # the pharmacist's product check, from the hub: everything side by side
    pharmacist.get_by_role("link", name="Product check", exact=True).click()
    pharmacist.locator("table.queue tr", has_text=DRUG).click(timeout=30_000)
    expect(pharmacist.locator(".banner.controlled")).to_contain_text("C-II")
    result = pharmacist.get_by_label("Scan result")
    expect(result).to_contain_text("99999-0520-01")
    expect(result).to_contain_text(OXYCODONE_LOT)
    expect(pharmacist.get_by_label("Label text")).to_contain_text("Dana Fillpatient")
    for kind in ("stock_bottle", "counted", "vial_label"):
        selector = f"figure[data-kind={kind}] img.evidence"
        expect(pharmacist.locator(selector)).to_have_attribute("src", re.compile("^blob:"))
        assert image_loaded(pharmacist, selector)
    shots.take(pharmacist, "06-product-check")
    assert_accessible(pharmacist, "test_dispensing: 06-product-check")
    pharmacist.locator("figure[data-kind=counted] button.zoom-open").click()
    expect(pharmacist.locator("dialog.zoom[open] img.zoomed")).to_be_visible()
    shots.take(pharmacist, "07-photo-enlarged", full=False)
    assert_accessible(pharmacist, "test_dispensing: 07-photo-enlarged")
    pharmacist.locator("dialog.zoom[open]").get_by_role("button", name="Close").click()

    # sent back once: the technician sees why, takes the photo again and submits again
    reason = "The counted tablets are not all in the photo: take it again."
    pharmacist.get_by_role("button", name="Send back…").click()
    pharmacist.get_by_label("Reason", exact=True).fill(reason)
    pharmacist.get_by_role("button", name="Send back to the technician").click()
    expect(pharmacist.locator(".page-head .badge.state")).to_have_text("Filling")
    # the technician's open fill shows it by itself, then the queue says why
    expect(bench.locator(".banner.sentback")).to_contain_text(reason, timeout=15_000)
    bench.get_by_role("link", name="← Back to filling").click()
    sent_back = bench.locator("table.queue tr.sentback", has_text=DRUG)
    expect(sent_back).to_contain_text(reason, timeout=15_000)
    shots.take(bench, "08-sent-back")
    assert_accessible(bench, "test_dispensing: 08-sent-back")
    sent_back.get_by_role("link", name="Fix").click()
    expect(bench.locator(".banner.sentback")).to_contain_text(reason)
    # this time the photo comes from a file (a phone's camera app, or a picture taken earlier)
    retake = tmp_path / "counted.jpg"
    datamatrix_card(OXYCODONE, OXYCODONE_LOT, expiry, "SN0001").save(retake, quality=85)
    bench.locator("#file-counted").set_input_files(retake)
    expect(bench.get_by_role("status").filter(has_text="Photo saved.")).to_be_visible()
    bench.get_by_role("button", name="Submit for product check").click()
    expect(bench.locator(".page-head .badge.state")).to_have_text("Product check")

    # the pharmacist's page follows the fill back into the product check by itself
    expect(pharmacist.locator(".page-head .badge.state")).to_have_text(
        "Product check", timeout=15_000
    )
    expect(pharmacist.locator("figure[data-kind=counted] img.evidence")).to_have_attribute(
        "src", re.compile("^blob:")
    )
    pharmacist.get_by_role("button", name="Approve product").click()
    expect(pharmacist.locator(".page-head .badge.state")).to_have_text("Ready")

    # will-call: a bin, then the pick-up by someone else, identity checked, signed on screen
    bench.get_by_role("link", name="Will-call", exact=True).click()
    bench.get_by_label("Bin", exact=True).fill("B7")
    bench.get_by_role("button", name="Put in bin").click()
    ready = bench.locator("table.queue tr", has_text=DRUG)
    expect(ready.locator(".bin")).to_have_text("B7")
    shots.take(bench, "09-will-call")
    assert_accessible(bench, "test_dispensing: 09-will-call")
    # the collector's bag is found by scanning its label (RX + the Rx number)
    bench.locator("#label-scan").fill(f"RX{fill['rx_number']}")
    bench.locator("#label-scan").press("Enter")
    expect(bench.get_by_role("heading", name="Pick-up")).to_be_visible()
    bench.get_by_label("Someone else").check()
    bench.get_by_label("Name of the person collecting").fill("Sam Agent")
    bench.get_by_label("Identity checked (photo ID; required for a controlled substance)").check()
    # the pharmacist counsels the patient by video from the hub; the counter names the consult
    pharmacist.goto(f"{demo_hub.base}/#/rx/{rx['id']}")
    pharmacist.get_by_role("button", name="Video consult…").click()
    pharmacist.wait_for_url(re.compile(r"#/consults/[\w-]+$"))
    consult_id = pharmacist.url.rsplit("/", 1)[-1]
    bench.get_by_label("Done by video").check()
    bench.get_by_label("The video consult").fill(consult_id)
    pad = bench.locator("canvas#signature")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    assert box is not None
    bench.mouse.move(box["x"] + 30, box["y"] + box["height"] * 0.7)
    bench.mouse.down()
    for step in range(1, 25):
        bench.mouse.move(
            box["x"] + 30 + step * 14,
            box["y"] + box["height"] * (0.5 + 0.25 * (-1) ** step),
            steps=2,
        )
    bench.mouse.up()
    expect(bench.locator("#signature-state")).to_have_text("Signed.")
    inked = bench.evaluate(
        """() => { const c = document.getElementById('signature');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 128) n++; return n; }"""
    )
    assert inked > 200, inked
    shots.take(bench, "10-pick-up")
    assert_accessible(bench, "test_dispensing: 10-pick-up")
    bench.get_by_role("button", name="Complete pick-up").click()
    expect(bench.locator(".page-head .badge.state")).to_have_text("Handed over")
    expect(bench.locator("dd", has_text="Sam Agent")).to_be_visible()
    shots.take(bench, "11-handed-over")
    assert_accessible(bench, "test_dispensing: 11-handed-over")

    # a refill asked for with the patient's label: none is left, and the hub says what to do
    bench.get_by_role("link", name="Filling", exact=True).click()
    bench.locator("#refill-scan").fill(f"RX{fill['rx_number']}")
    bench.locator("#refill-scan").press("Enter")
    expect(bench.get_by_role("alert")).to_contain_text("ask the prescriber for a renewal")
    shots.take(bench, "12-no-refill-left")

    done = demo_hub.api(f"/fills/{fill_id}")
    assert done["state"] == "completed"
    assert done["hand_over"] == {
        "collected_by": "Sam Agent",
        "id_checked": True,
        "counselling": "video",
        "consult_id": consult_id,
        "signature": True,
    }
    images = done["images"]  # the current image of each kind: the retake replaced the first
    assert isinstance(images, list)
    assert sorted(i["kind"] for i in images) == sorted(KINDS)

    # the prescriber's system hears of the dispensing
    deadline = time.monotonic() + 60
    while not prescriber.rx_fills() and time.monotonic() < deadline:
        time.sleep(0.5)
    fills = prescriber.rx_fills()
    assert len(fills) == 1, prescriber.received
    assert b"<Dispensed>" in fills[0] or b"<Dispensed/>" in fills[0], fills[0]
    assert refused_words  # the wrong bottle was refused in words, not a code
    assert "_" not in refused_words
    bench_ctx.close()
    checker_ctx.close()
    assert problems == []


def test_a_held_prescription_cannot_be_missed_when_filling(
    demo_hub: DemoHub, chromium: Browser, shots: Shots
) -> None:
    """The prescriber's DoNotFill H (hold until the patient asks) marks the prescription in
    the fill queue, its start button says the patient asked, and the fill screen carries the
    HOLD banner throughout."""
    problems: list[str] = []
    stamp = time.time_ns()
    rx = demo_hub.ready_prescription(
        f"hold-fill-{stamp}",
        drug_description="lisinopril 10 MG Oral Tablet",
        ndc=LISINOPRIL,
        patient_last="Holdfill",
        append={"Body/NewRx/MedicationPrescribed": "<DoNotFill>H</DoNotFill>"},
    )
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    watch(page, problems)
    sign_in(page, demo_hub)
    approve_in_console(page, demo_hub, str(rx["id"]))
    expect(page.locator(".banner.donotfill")).to_contain_text("HOLD")
    page.get_by_role("link", name="Filling", exact=True).click()
    row = page.locator("table.queue tr", has=page.locator(f"a[href='#/rx/{rx['id']}']"))
    expect(row.locator(".badge.donotfill")).to_have_text("HOLD", timeout=30_000)
    expect(row.get_by_role("button", name="Start fill", exact=True)).to_have_count(0)
    shots.take(page, "20-queue-hold")
    row.get_by_role("button", name="Patient asked: start fill").click()
    banner = page.locator(".banner.donotfill")
    expect(banner).to_contain_text("HOLD")
    expect(banner).to_have_attribute("role", "alert")
    shots.take(page, "21-fill-hold")
    assert_accessible(page, "test_dispensing: 21-fill-hold")
    context.close()
    assert problems == []
