// The verification queue: STAT first, then oldest first; filters; live (a cheap revision is
// polled and the list fetched again only when it moved); paged by the hub's cursor ("Load
// more"); keyboard: j/k or arrows, Enter.

import { api } from "../lib/api.js";
import { h, replace, ago, when, day, personName, clock, announce, spinner, problemBox, emptyBox } from "../lib/dom.js";
import { currentUser } from "../lib/auth.js";
import { pager, readPages, serial } from "../lib/pager.js";

const POLL_MS = 2500;
const PAGE = 50; // a first page that comes fast
const STATES = [
  ["awaiting_review", "To verify"],
  ["in_review", "In review"],
  ["clarification_requested", "Asked the prescriber"],
  ["checking", "Being checked"],
  ["approved", "Approved"],
  ["rejected", "Rejected"],
  ["", "All states"],
];
const OPEN = new Set(["awaiting_review", "in_review"]);
const filters = { state: "awaiting_review", urgent: false, controlled: false, hard_stops: false, test: false };
// DoNotFill: the prescriber's word that this prescription is not to be dispensed (Y, E) or held (H)
export const DO_NOT_FILL = {
  Y: ["DO NOT FILL", "The prescriber sent this prescription not to be dispensed."],
  E: ["DO NOT FILL", "The prescriber sent this prescription not to be dispensed (DoNotFill E)."],
  H: ["HOLD", "On hold: do not fill until the patient asks for it."],
};

function stateLabel(state) {
  const known = { ...Object.fromEntries(STATES), received: "Received", dispensing: "Dispensing", ready: "Ready",
    completed: "Completed", cancelled: "Cancelled" };
  return known[state] || state;
}

export const stateBadge = (state) => h("span", { class: `badge state ${state}` }, stateLabel(state));

export function markers(rx) {
  const hold = DO_NOT_FILL[rx.do_not_fill];
  return [
    rx.test ? h("span", { class: "badge test", title: "A test message from the prescriber's system: never filled" }, "TEST") : null,
    hold ? h("span", { class: "badge donotfill", title: hold[1] }, hold[0]) : null,
    rx.urgent ? h("span", { class: "badge stat", title: "STAT: urgent" }, "STAT") : null,
    rx.dea_schedule ? h("span", { class: "badge controlled", title: "Controlled substance" }, scheduleLabel(rx.dea_schedule)) : null,
  ];
}

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

// the findings at a glance: counts by severity, a pair with another open prescription of the
// patient (pending, not yet verified), and checks running again on a changed picture
export function findingBadges(counts) {
  if (!counts) return [];
  return [
    counts.hard_stops ? h("span", { class: "badge hard_stop" }, plural(counts.hard_stops, "hard stop")) : null,
    counts.warnings ? h("span", { class: "badge warning" }, plural(counts.warnings, "warning")) : null,
    counts.on_pending ? h("span", { class: "badge pair", title: "A finding rests on another open prescription of this patient" }, "Pair in the queue") : null,
    counts.stale ? h("span", { class: "badge info", title: "The patient's picture changed: the checks are running again" }, "Checking again") : null,
  ];
}

export function scheduleLabel(code) {
  const names = { C48672: "C-I", C48675: "C-II", C48676: "C-III", C48677: "C-IV", C48679: "C-V" };
  return names[code] || `Controlled ${code}`;
}

export function claimText(claim) {
  if (!claim) return "Unclaimed";
  return claim.user_id === currentUser()?.sub ? "Claimed by you" : `Claimed by ${claim.username || "a colleague"}`;
}

export function queueView(el) {
  let revision = null;
  let items = [];
  let known = null;
  let next = null; // the hub's cursor after the last row shown (null: nothing more)
  let pages = 1; // how many pages the pharmacist asked to see: kept when the list is read again
  let selected = 0;
  let selectedId = null; // the selection follows the prescription, not its place in the list
  let timer = 0;
  let stopped = false;

  const status = h("p", { class: "status-line" }); // not a live region: it changes every poll
  const body = h("div", {}, spinner("Loading the queue…"));
  const one = serial(); // a poll and a "Load more" never interleave
  const paging = pager("queue-more", ["prescription", "prescriptions"], () => one(loadMore));

  const check = (name, label) =>
    h("label", { class: "inline" },
      h("input", { type: "checkbox", checked: filters[name], onchange: (e) => { filters[name] = e.target.checked; reload(); } }),
      label);
  const stateSelect = h("select", { id: "state-filter", onchange: (e) => { filters.state = e.target.value; reload(); } },
    STATES.map(([value, label]) => h("option", { value, selected: value === filters.state }, label)));

  replace(el,
    h("div", { class: "page-head" }, h("h1", {}, "Verification queue"), h("span", { class: "spacer" }),
      h("span", { class: "hint" }, "Keys: j / k or ↑ / ↓ to move, Enter to open")),
    h("div", { class: "filters" },
      h("div", { class: "field" }, h("label", { for: "state-filter" }, "Show"), stateSelect),
      h("div", {}, check("urgent", "STAT only"), check("controlled", "Controlled substances"), check("hard_stops", "With hard stops"),
        check("test", "Test messages (never filled)"))),
    status, body, paging.element);

  function query() {
    const q = new URLSearchParams();
    // test messages stay "received" for good: shown whatever the state filter says
    if (filters.state && !filters.test) q.set("state", filters.state);
    for (const name of ["urgent", "controlled", "hard_stops", "test"]) if (filters[name]) q.set(name, "true");
    return q;
  }

  let epoch = 0; // bumped by a change of filters: an answer to older filters is dropped

  async function reload() {
    stateSelect.disabled = filters.test; // test messages are listed whatever their state
    epoch += 1;
    revision = null;
    known = null;
    pages = 1; // other filters, another list: its first page
    await poll();
  }

  const poll = () => one(pollOnce);

  // the list from its first page, as many pages as were shown (or to its end): a list read at
  // one revision, never pages of two revisions mixed (a row listed twice, or one missed)
  function readFromStart() {
    return readPages(async (cursor) => {
      const q = query();
      q.set("limit", String(PAGE));
      if (cursor) q.set("cursor", cursor);
      const page = await api(`/prescriptions?${q}`);
      return { items: page.items, next: page.next_cursor };
    }, pages);
  }

  // the queue's order (STAT first, then oldest first): whether a comes before b
  function before(a, b) {
    if (a.urgent !== b.urgent) return a.urgent;
    const at = Date.parse(a.received_at) - Date.parse(b.received_at);
    return at ? at < 0 : a.id < b.id;
  }

  function showRead(now, rows, cursor) {
    revision = now;
    // new: not shown before and within the part of the list that was shown (a row that only
    // moved up into view as others left is not new)
    const last = next && items.length ? items[items.length - 1] : null;
    const fresh = known ? rows.filter((rx) => !known.has(rx.id) && (!last || before(rx, last))).map((rx) => rx.id) : [];
    if (fresh.length) announce(`${fresh.length} new prescription${fresh.length > 1 ? "s" : ""} in the queue`);
    known = new Set(rows.map((rx) => rx.id));
    items = rows;
    next = cursor;
    const kept = items.findIndex((rx) => rx.id === selectedId);
    selected = kept >= 0 ? kept : Math.min(selected, Math.max(0, items.length - 1));
    render(new Set(fresh));
  }

  async function pollOnce() {
    clearTimeout(timer);
    if (stopped) return;
    const asked = epoch;
    try {
      const now = await api("/queue/revision");
      if (now.revision !== revision) {
        const { rows, cursor } = await readFromStart();
        if (stopped || asked !== epoch) return;
        showRead(now.revision, rows, cursor);
      }
      replace(status, h("span", { class: "live-dot", "aria-hidden": "true" }), `Live · updated ${clock()}`);
    } catch (error) {
      if (error.code === "offline" && items.length) {
        replace(status, h("span", { class: "live-dot off", "aria-hidden": "true" }), error.message);
      } else {
        paging.hide();
        replace(body, problemBox(error, reload));
      }
    }
    if (!stopped) timer = setTimeout(poll, document.hidden ? POLL_MS * 4 : POLL_MS);
  }

  // the next page after the cursor, when the queue is still at the revision the rows shown
  // were read at; when it moved, the list is read again from its first page (one page more
  // than was shown), so no row is listed twice and none is skipped
  async function loadMore() {
    if (stopped || !next) return;
    const asked = epoch;
    const had = items.length;
    const now = await api("/queue/revision");
    if (stopped || asked !== epoch) return;
    pages += 1;
    if (now.revision !== revision) {
      const { rows, cursor } = await readFromStart();
      if (stopped || asked !== epoch) return;
      showRead(now.revision, rows, cursor);
    } else {
      const q = query();
      q.set("limit", String(PAGE));
      q.set("cursor", next);
      const page = await api(`/prescriptions?${q}`);
      if (stopped || asked !== epoch) return;
      const added = page.items.filter((rx) => !known.has(rx.id));
      for (const rx of added) known.add(rx.id);
      items = [...items, ...added];
      next = page.next_cursor;
      render(new Set());
    }
    focusRow(had); // the first row the button brought
  }

  function render(fresh) {
    paging.show(items.length, Boolean(next));
    if (!items.length) {
      replace(body, emptyBox(filters.state === "awaiting_review" ? "Nothing waits for verification. New prescriptions appear here as they arrive." : "No prescriptions match these filters."));
      return;
    }
    const rows = items.map((rx, index) =>
      h("tr", {
        tabindex: index === selected ? "0" : "-1",
        "aria-selected": index === selected ? "true" : "false",
        class: [fresh.has(rx.id) ? "fresh" : "", DO_NOT_FILL[rx.do_not_fill] ? "donotfill" : "", rx.test ? "test" : ""].filter(Boolean).join(" "),
        dataset: { id: rx.id },
        onclick: () => open(rx.id),
        onkeydown: (e) => e.key === "Enter" && open(rx.id),
      },
      h("td", {}, h("div", { class: "drug" }, rx.drug_description || "—"), h("div", {}, markers(rx))),
      h("td", {}, findingBadges(rx.findings)),
      h("td", {}, personName(rx.patient), h("div", { class: "sub" }, `Born ${day(rx.patient?.date_of_birth)}`)),
      h("td", { class: "wide" }, h("span", { title: when(rx.received_at) }, ago(rx.received_at))),
      h("td", {}, stateBadge(rx.state)),
      h("td", { class: "wide" }, OPEN.has(rx.state) ? claimText(rx.claim) : "—")));
    const hadFocus = body.contains(document.activeElement);
    replace(body, h("table", { class: "queue", "aria-label": "Prescriptions", role: "grid" },
      h("thead", {}, h("tr", {}, ["Medication", "Findings", "Patient", "Received", "State", "Claim"].map((t, i) =>
        h("th", { scope: "col", class: i === 3 || i === 5 ? "wide" : "" }, t)))),
      h("tbody", {}, rows)));
    if (hadFocus) body.querySelectorAll("tbody tr")[selected]?.focus();
  }

  function focusRow(index) {
    const rows = body.querySelectorAll("tbody tr");
    if (!rows.length) return;
    selected = Math.max(0, Math.min(rows.length - 1, index));
    selectedId = items[selected]?.id ?? null;
    rows.forEach((row, i) => {
      row.setAttribute("aria-selected", i === selected ? "true" : "false");
      row.tabIndex = i === selected ? 0 : -1;
    });
    rows[selected].focus();
  }

  function open(id) {
    location.hash = `#/rx/${id}`;
  }

  function keys(e) {
    if (e.target.closest("input, select, textarea")) return;
    if (e.key === "j" || e.key === "ArrowDown") { e.preventDefault(); focusRow(selected + 1); }
    else if (e.key === "k" || e.key === "ArrowUp") { e.preventDefault(); focusRow(selected - 1); }
    // Enter opens the selection only when nothing else has the focus (a button, a link)
    else if (e.key === "Enter" && items[selected] && (e.target === document.body || e.target === el)) {
      open(items[selected].id);
    }
  }

  const wake = () => !document.hidden && poll();
  document.addEventListener("keydown", keys);
  document.addEventListener("visibilitychange", wake);
  poll();
  return () => {
    stopped = true;
    clearTimeout(timer);
    document.removeEventListener("keydown", keys);
    document.removeEventListener("visibilitychange", wake);
  };
}
