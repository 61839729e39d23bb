"""The console's long lists page by the hub's cursors: the verification queue, the consults,
the patient search and the fill queue (its fills being filled and its prescriptions waiting,
as the product check and will-call page too) each show a first page, a "Load more" button
while the hub gives a next cursor (reached and pressed by keyboard, the focus then on the
first row it brought), a polite count of the rows shown, and at the end every row once, in
the list's order, even when the queue changed between two pages.

The console asks pages of 50 (the queue, the fill queues), 25 (consults, the search); the hub
lets a client choose any page size up to its most, so the test has the browser ask pages of 5
(its requests rewritten on the way) and needs a dozen rows rather than hundreds."""

from __future__ import annotations

import time
import uuid
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from playwright.sync_api import Browser, Page, Route, expect

from .a11y import assert_accessible, assert_focus_visible, tab_to
from .conftest import DESKTOP, DemoHub, Shots, sign_in, watch

PAGE = 5
LAST = "Pagingtest"
FIRST = ["Ann", "Bea", "Cal", "Dee", "Eve", "Fay", "Gus", "Hal", "Ida", "Jon", "Kit", "Lou"]
LISTS = ("/api/v1/prescriptions", "/api/v1/consults", "/api/v1/patients", "/api/v1/fills")


def _small_pages(route: Route) -> None:
    """The list requests with a page of at most ``PAGE`` rows, as a client asking so would."""
    parts = urlsplit(route.request.url)
    query = dict(parse_qsl(parts.query))
    if parts.path in LISTS and "limit" in query:
        query["limit"] = str(min(int(query["limit"]), PAGE))
        route.continue_(url=urlunsplit(parts._replace(query=urlencode(query))))
        return
    route.continue_()


def _load_all(page: Page, button_id: str, rows: str) -> list[str]:
    """Press the list's "Load more" by keyboard until it goes; each press brings one page more
    and moves the focus to its first row. The rows' IDs, in the order shown."""
    more = page.locator(f"#{button_id}")
    while more.is_visible():
        shown = page.locator(rows).count()
        tab_to(page, f"#{button_id}")
        assert_focus_visible(page)
        page.keyboard.press("Enter")
        expect(page.locator(rows)).not_to_have_count(shown)
        count = page.locator(rows).count()
        assert shown < count <= shown + PAGE
        # the focus went to the first row the page brought, not back to the top
        assert page.evaluate(
            "([rows, index]) => document.querySelectorAll(rows)[index]"
            ".contains(document.activeElement)",
            [rows, shown],
        )
    return [
        str(page.locator(rows).nth(i).get_attribute("data-id"))
        for i in range(page.locator(rows).count())
    ]


def test_long_lists_load_page_by_page_without_duplicates(
    demo_hub: DemoHub, chromium: Browser, shots: Shots
) -> None:
    stamp = time.time_ns()
    made = [
        demo_hub.ready_prescription(
            f"paging-{stamp}-{i}",
            patient_last=LAST,
            patient_first=first,
            date_of_birth=f"1960-02-{i + 1:02d}",
        )
        for i, first in enumerate(FIRST)
    ]
    problems: list[str] = []
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    watch(page, problems)
    page.route("**/api/v1/**", _small_pages)
    # while it holds a value, the queue's revision as the page sees it stays that value
    held: list[str] = []

    def revision(route: Route) -> None:
        if not held:
            route.continue_()
            return
        if not held[0]:
            held[0] = route.fetch().text()
        route.fulfill(status=200, content_type="application/json", body=held[0])

    page.route("**/api/v1/queue/revision", revision)
    sign_in(page, demo_hub)

    # the queue: a first page, then the rest by "Load more"
    rows = "table.queue tbody tr"
    expect(page.locator(rows)).to_have_count(PAGE)
    count = page.locator("#queue-more-count")
    expect(count).to_have_text(f"{PAGE} prescriptions shown; more to load.")
    expect(count).to_have_attribute("role", "status")
    more = page.get_by_role("button", name="Load more")
    expect(more).to_be_visible()
    assert_accessible(page, "#/queue with a next page")
    shots.take(page, "01-queue-first-page")

    # the queue changes before the next page, unseen by the poll (its revision held back): a
    # STAT prescription comes first, every other row moves down one. "Load more" asks the
    # revision first, finds it moved and reads the list again from its first page: the page
    # it brings comes with the STAT row on top, not appended to the rows of before
    held.append("")
    for _ in range(40):  # the next poll's answer is the one held
        if held[0]:
            break
        page.wait_for_timeout(250)
    assert held[0]
    stat = demo_hub.ready_prescription(
        f"paging-{stamp}-stat", patient_last=LAST, patient_first="Max", urgent=True
    )
    page.wait_for_timeout(3_000)  # a poll or more: the revision they see has not moved
    expect(page.locator(rows).first).to_have_attribute("data-id", str(made[0]["id"]))
    held.clear()
    tab_to(page, "#queue-more")
    page.keyboard.press("Enter")
    expect(page.locator(rows)).to_have_count(2 * PAGE)
    assert page.locator(rows).first.get_attribute("data-id") == str(stat["id"])

    shown = _load_all(page, "queue-more", rows)
    expected = [str(stat["id"]), *(str(rx["id"]) for rx in made)]
    assert shown == expected  # every one once, STAT first, then oldest first
    expect(count).to_have_text(f"All {len(expected)} prescriptions shown.")
    expect(more).to_be_hidden()
    shots.take(page, "02-queue-all")
    # the list read again keeps what was loaded (no collapse to the first page)
    another = demo_hub.ready_prescription(
        f"paging-{stamp}-late", patient_last=LAST, patient_first="Ned"
    )
    expect(page.locator(rows).last).to_have_attribute("data-id", str(another["id"]), timeout=15_000)
    expect(page.locator(rows)).to_have_count(len(expected) + 1)

    # the patient search: the same, by the name's beginning
    page.get_by_role("link", name="Patients", exact=True).click()
    page.get_by_label("Name").fill(LAST)
    page.get_by_role("button", name="Search").click()
    found = "#search-results tbody tr"
    expect(page.locator(found)).to_have_count(PAGE)
    expect(page.locator("#search-more-count")).to_have_text(f"{PAGE} patients shown; more to load.")
    assert_accessible(page, "#/patients with a next page")
    names = _load_all(page, "search-more", found)
    assert len(names) == len(set(names)) == len(FIRST) + 2
    expect(page.locator("#search-more-count")).to_have_text(f"All {len(names)} patients shown.")

    # consults: one per patient, newest first
    token = demo_hub.user_token()
    consults = []
    for rx in made[:7]:
        reply = requests.post(
            f"{demo_hub.base}/api/v1/consults",
            json={"patient_id": rx["patient_id"]},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert reply.status_code == 200, reply.text
        consults.append(reply.json()["id"])
    page.get_by_role("link", name="Consults").click()
    listed = "table.queue tbody tr"
    expect(page.locator(listed)).to_have_count(PAGE)
    assert_accessible(page, "#/consults with a next page")
    ids = _load_all(page, "consults-more", listed)
    assert ids == consults[::-1]
    expect(page.locator("#consults-more-count")).to_have_text("All 7 consults shown.")
    shots.take(page, "03-consults-all")
    assert problems == []
    context.close()


def _post(hub: DemoHub, token: str, path: str, body: dict[str, object]) -> dict[str, object]:
    reply = requests.post(
        f"{hub.base}/api/v1{path}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    answer: dict[str, object] = reply.json()
    return answer


def _approve(hub: DemoHub, token: str, rx: dict[str, object]) -> None:
    """The pharmacist claims and approves the prescription (each warning given a reason)."""
    findings = rx.get("findings") or []
    assert isinstance(findings, list)
    overrides = {f["code"]: "Verified." for f in findings if f["severity"] == "warning"}
    _post(hub, token, f"/prescriptions/{rx['id']}/claim", {})
    body = {"overrides": overrides, "findings_basis": rx.get("findings_basis")}
    _post(hub, token, f"/prescriptions/{rx['id']}/approve", body)


def _queue_ids(hub: DemoHub, state: str) -> list[str]:
    """The hub's fill queue of a state in its order, as one page (the browser's are capped)."""
    items = hub.api(f"/fills?state={state}&limit=200")["items"]
    assert isinstance(items, list)
    return [str(item["id"] or item["prescription_id"]) for item in items]


def test_the_fill_queue_loads_page_by_page_without_duplicates(
    demo_hub: DemoHub, chromium: Browser, shots: Shots
) -> None:
    """Both lists of the fill queue (being filled, waiting) hold more than one page: each one's
    "Load more" brings the rest, every row once, in the hub's order; a fill started meanwhile
    moves its row from one list to the other, what was loaded kept."""
    stamp = time.time_ns()
    token = demo_hub.user_token()
    made = []
    for i, first in enumerate([*FIRST, "Mia", "Nat"]):
        rx = demo_hub.ready_prescription(
            f"fillpaging-{stamp}-{i}",
            patient_last="Fillpaging",
            patient_first=first,
            date_of_birth=f"1970-03-{i + 1:02d}",
        )
        _approve(demo_hub, token, rx)
        made.append(rx)
    for rx in made[:7]:
        _post(demo_hub, token, f"/prescriptions/{rx['id']}/fills", {})
    filling = _queue_ids(demo_hub, "filling")
    waiting = _queue_ids(demo_hub, "waiting")
    assert len(filling) > PAGE
    assert len(waiting) > PAGE

    problems: list[str] = []
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    watch(page, problems)
    page.route("**/api/v1/**", _small_pages)
    sign_in(page, demo_hub)
    page.get_by_role("link", name="Filling", exact=True).click()

    open_rows = "section[aria-labelledby=filling-h] table.queue tbody tr"
    waiting_rows = "section[aria-labelledby=waiting-h] table.queue tbody tr"
    expect(page.locator(open_rows)).to_have_count(PAGE)
    expect(page.locator(waiting_rows)).to_have_count(PAGE)
    expect(page.locator("#filling-more-count")).to_have_text(f"{PAGE} fills shown; more to load.")
    expect(page.locator("#waiting-more-count")).to_have_text(
        f"{PAGE} prescriptions shown; more to load."
    )
    expect(page.locator("#filling-h")).to_have_text(f"Being filled ({PAGE}+)")
    assert_accessible(page, "#/fills with a next page")
    shots.take(page, "10-fill-queue-first-pages")

    assert _load_all(page, "filling-more", open_rows) == filling
    expect(page.locator("#filling-more-count")).to_have_text(f"All {len(filling)} fills shown.")
    expect(page.locator("#filling-more")).to_be_hidden()
    expect(page.locator(waiting_rows)).to_have_count(PAGE)  # the other list as it was
    assert _load_all(page, "waiting-more", waiting_rows) == waiting
    expect(page.locator("#waiting-more-count")).to_have_text(
        f"All {len(waiting)} prescriptions shown."
    )
    shots.take(page, "11-fill-queue-all")

    # a fill started meanwhile: the poll reads both lists again, as many pages as were shown
    moved = waiting[0]
    fill = _post(demo_hub, token, f"/prescriptions/{moved}/fills", {})
    expect(page.locator(open_rows).last).to_have_attribute(
        "data-id", str(fill["id"]), timeout=15_000
    )
    expect(page.locator(open_rows)).to_have_count(len(filling) + 1)
    expect(page.locator(waiting_rows)).to_have_count(len(waiting) - 1)
    expect(page.locator(f"{waiting_rows}[data-id='{moved}']")).to_have_count(0)

    # the product check pages the same way; a fill reaches it only after its scan, count,
    # photos and label, so its list is given to the page in the API's documented shape
    checks = [_check_item(i, first) for i, first in enumerate(FIRST)]
    page.route("**/api/v1/fills?*", lambda route: _check_pages(route, checks))
    page.get_by_role("link", name="Product check", exact=True).click()
    checked = "table.queue tbody tr"
    expect(page.locator(checked)).to_have_count(PAGE)
    expect(page.locator("#check-more-count")).to_have_text(f"{PAGE} fills shown; more to load.")
    assert _load_all(page, "check-more", checked) == [item["id"] for item in checks]
    expect(page.locator("#check-more-count")).to_have_text(f"All {len(checks)} fills shown.")
    shots.take(page, "12-product-check-all")
    assert problems == []
    context.close()


def _check_item(index: int, first: str) -> dict[str, object]:
    """A fill awaiting the product check, as ``GET /fills`` lists it."""
    return {
        "id": str(uuid.uuid4()),
        "prescription_id": str(uuid.uuid4()),
        "rx_number": f"{7_000_000 + index}",
        "number": 0,
        "state": "product_check",
        "since": f"2026-01-01T09:{index:02d}:00+00:00",
        "drug_description": f"lisinopril 10 MG Oral Tablet ({first})",
        "quantity_owed": "30",
        "bin": None,
        "controlled": False,
    }


def _check_pages(route: Route, items: list[dict[str, object]]) -> None:
    """``GET /fills?state=product_check`` over ``items``, at most ``PAGE`` a page, ``after``
    the index of the page's last item (opaque to the page, as the hub's cursors are)."""
    query = dict(parse_qsl(urlsplit(route.request.url).query))
    if query.get("state") != "product_check":
        route.fallback()
        return
    start = int(query.get("after", "-1")) + 1
    size = min(int(query["limit"]), PAGE)
    rows = items[start : start + size]
    following = str(start + size - 1) if start + size < len(items) else None
    route.fulfill(json={"items": rows, "next": following})
