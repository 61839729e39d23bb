// Filling (the technician's side of dispensing): the fill queue (approved prescriptions
// waiting, fills being filled, those the pharmacist sent back with the reason), and one fill:
// scan the stock bottle (a keyboard-wedge scanner, or a photo of its code), count, photograph
// the stock bottle, the counted product and the labelled vial, print the label, submit for
// the pharmacist's product check. The hub decides every step; this page only asks.

import { api, apiBlob, loadInto } from "../lib/api.js";
import { currentUser } from "../lib/auth.js";
import { h, replace, when, ago, day, fact, personName, announce, spinner, problemBox, emptyBox, clock } from "../lib/dom.js";
import { cameraShot, photoPicker, stopCameras } from "../lib/capture.js";
import { pager, readPages, serial } from "../lib/pager.js";
import { markers, DO_NOT_FILL } from "./queue.js";
import { banners } from "./prescription.js";
import { refillRequestsCard } from "./refillrequests.js";

const POLL_MS = 2500;
const FILL_PAGE = 50; // a page of a fill queue (the hub's most is 200)
// the photos a fill needs before its product check, in the order they are taken
export const PHOTO_KINDS = [
  ["stock_bottle", "Stock bottle", "The manufacturer's bottle, its label and NDC readable."],
  ["counted", "Counted product", "The counted tablets or capsules on the tray."],
  ["vial_label", "Labelled vial", "The filled vial with the patient's label on it."],
];
export const FILL_STATES = {
  waiting: "Waiting for a fill", approved: "Approved, waiting", returned_to_stock: "Returned to stock",
  filling: "Filling", product_check: "Product check", ready: "Ready", completed: "Handed over", cancelled: "Cancelled",
};
// the scanner's GS (ASCII 29, between GS1 fields) as a printable stand-in the hub's parser accepts
export const GS_STAND_IN = "<GS>";
// what a prescription's DEA schedule shows as, for a fill that only says "controlled"
const CONTROLLED = h.bind(null, "span", { class: "badge controlled", title: "Controlled substance" });

// NCIt codes of the units a fill counts in, as the prescription carries them
const UNITS = { C48542: "tablets", C48480: "capsules", C28254: "mL", C48155: "g", C64933: "each", C48524: "patches", C38046: "units" };
export const unitText = (code) => UNITS[code] ?? code ?? "";
// who did a step: the signed-in user is "you"; a colleague by the start of their account's ID
// (the fill carries no names), the hub's own sweeps as they name themselves
export const staffText = (id) => (!id ? "—" : id === currentUser()?.sub ? "you" : `staff ${id.slice(0, 8)}`);
export const actorText = (actor) => (actor.startsWith("user:") ? staffText(actor.slice(5)) : actor);

export const fillBadge = (state) => h("span", { class: `badge state ${state}` }, FILL_STATES[state] || state);
export const fillNumber = (n) => (n === null || n === undefined ? "" : n === 0 ? "original fill" : `refill ${n}`);
export const rxNumber = (item) => (item.rx_number ? `Rx ${item.rx_number}` : "No Rx number yet");
export const controlledBadge = (fill) => (fill.controlled ? CONTROLLED("Controlled") : null);

// the latest step that sent a fill back: its reason, for the technician
export function sentBack(fill) {
  const last = fill.history?.at(-1);
  return last && last.to === "filling" && last.from === "product_check" ? last.reason.replace(/^sent back:\s*/, "") : null;
}

// a fill's images as its detail lists them, or asked for when the detail does not
export async function imagesOf(fill) {
  if (Array.isArray(fill.images)) return fill.images;
  try {
    const found = await api(`/fills/${fill.id}/images`);
    return found.items || found.images || [];
  } catch {
    return [];
  }
}

// an image of the fill as a blob: URL an <img> can show (it is behind the sign-in)
const shown = new Map();
export async function imageUrl(fillId, imageId) {
  const key = `${fillId}/${imageId}`;
  if (!shown.has(key)) shown.set(key, apiBlob(`/fills/${fillId}/images/${imageId}`, "image/*").then((b) => URL.createObjectURL(b)));
  return shown.get(key);
}

// the current image of a kind (a retake supersedes the one before it)
export function latestOfKind(images, kind) {
  return images.filter((i) => i.kind === kind && !i.superseded_by).at(-1) || null;
}

export function historyList(fill) {
  return h("ol", { class: "history" }, (fill.history || []).map((t) =>
    h("li", {}, h("strong", {}, t.from ? `${t.from} → ${t.to}` : t.to), " ", t.reason,
      h("div", { class: "sub" }, `${when(t.at)} · ${actorText(t.actor)}`))));
}

// the label's text as the hub prints it (what the pharmacist compares)
export function labelTextOf(fill) {
  const label = fill.label;
  if (typeof label === "string") return label;
  return label?.text ?? fill.label_text ?? null;
}

function table(label, heads, rows) {
  return h("table", { class: "queue", "aria-label": label },
    h("thead", {}, h("tr", {}, heads.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows));
}

// a row of a fill queue: the fill, or (in "waiting") the prescription waiting for one
export const rowKey = (item) => item.id ?? item.prescription_id;

// the fill queue of a state as the hub pages it (oldest first), from `after` on
function fillsPage(state, after) {
  const q = new URLSearchParams({ state, limit: String(FILL_PAGE) });
  if (after) q.set("after", after);
  return api(`/fills?${q}`);
}

// A list view that is live as the verification queue is: the pharmacy's queue revision (no
// patient data, so no audit entry per poll) is polled, and the lists are read again only when
// it moved (every fill step moves its prescription's state), or on "Refresh". Each of
// `queues` ({ key: [state, the pager's id, [one, many]] }) is one of the hub's fill queues, a
// page at a time: "Load more" under it while the hub gives a next cursor. When the revision
// moved, every queue is read again from its first page, as many pages as were shown (what
// was loaded stays on screen, and no row of a new revision is appended to rows of an older);
// "Load more" asks the revision first and does the same when it moved. A poll and a "Load
// more" run one after the other. `read` (optional) gives what else the view shows, read
// again with the lists; `draw(lists, extra)` builds the view from each list's `rows` (each
// row's `data-id` its rowKey, so the first row a page brought takes the focus) and its
// `paging.element`, to put under it.
export function polled(el, { title, hint, queues, read = async () => null, draw, above = null }) {
  let stopped = false;
  let timer = 0;
  let revision = null;
  let extra = null;
  const one = serial();
  const lists = Object.fromEntries(Object.entries(queues).map(([key, [state, id, noun]]) =>
    [key, { state, rows: [], next: null, pages: 1, paging: pager(id, noun, () => one(() => loadMore(key))) }]));
  const status = h("p", { class: "status-line" });
  const body = h("div", {}, spinner(`Loading the ${title.toLowerCase()}…`));
  const poll = () => one(pollOnce);
  replace(el, h("div", { class: "page-head" }, h("h1", {}, title), h("span", { class: "spacer" }),
    h("button", { type: "button", class: "secondary", onclick: () => { revision = null; poll(); } }, "Refresh")),
  h("p", { class: "hint" }, hint), above, status, body);

  // a queue from its first page, as many pages as were shown (or to its end)
  function readFromStart(list) {
    return readPages((cursor) => fillsPage(list.state, cursor), list.pages, rowKey);
  }

  async function readAll() {
    const [got, other] = await Promise.all([Promise.all(Object.values(lists).map(readFromStart)), read()]);
    Object.values(lists).forEach((list, i) => { list.rows = got[i].rows; list.next = got[i].cursor; });
    extra = other;
  }

  async function show() {
    const parts = await draw(lists, extra);
    if (stopped) return;
    for (const list of Object.values(lists)) list.paging.show(list.rows.length, Boolean(list.next));
    const hadFocus = body.contains(document.activeElement) ? document.activeElement.id : null;
    replace(body, parts);
    if (hadFocus) document.getElementById(hadFocus)?.focus();
  }

  async function pollOnce() {
    clearTimeout(timer);
    if (stopped) return;
    try {
      const now = await api("/queue/revision");
      if (now.revision !== revision) {
        await readAll();
        if (stopped) return;
        revision = now.revision;
        await show();
      }
      replace(status, h("span", { class: "live-dot", "aria-hidden": "true" }), `Live · updated ${clock()}`);
    } catch (error) {
      revision = null;
      if (!stopped) replace(body, problemBox(error, poll));
    }
    if (!stopped) timer = setTimeout(poll, document.hidden ? POLL_MS * 4 : POLL_MS);
  }

  // the next page after the cursor while the revision is the one the rows shown were read at;
  // when it moved, every list read again from its first page (this one a page more)
  async function loadMore(key) {
    const list = lists[key];
    if (stopped || !list.next) return;
    const shown = new Set(list.rows.map(rowKey));
    const now = await api("/queue/revision");
    if (stopped) return;
    if (now.revision !== revision) {
      list.pages += 1;
      await readAll();
      if (stopped) return;
      revision = now.revision;
    } else {
      const page = await fillsPage(list.state, list.next);
      if (stopped) return;
      list.pages += 1;
      list.rows = [...list.rows, ...page.items.filter((item) => !shown.has(rowKey(item)))];
      list.next = page.next;
    }
    await show();
    // the first row the button brought, as the list shows it (else its last)
    const ids = new Set(list.rows.map(rowKey));
    const rows = [...body.querySelectorAll("tr[data-id]")].filter((tr) => ids.has(tr.dataset.id));
    const target = rows.find((tr) => !shown.has(tr.dataset.id)) ?? rows.at(-1);
    target?.querySelector("a")?.focus();
  }

  poll();
  return () => { stopped = true; clearTimeout(timer); };
}

// A fill changing under the user's eyes (the pharmacist sends it back, a colleague approves it):
// its prescription follows the fill's state, so the prescription's cheap revision is polled
// and `onMove` reads the fill again when it moved, never while something is being typed.
const WATCH_MS = 3000;
export function watchFill(el, fill, onMove) {
  let last = null;
  async function tick() {
    if (!el.isConnected) return;
    try {
      const now = await api(`/prescriptions/${fill().prescription_id}/revision`);
      const key = `${now.revision}|${now.state}`;
      const typing = el.contains(document.activeElement) && /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName);
      if (last === null) last = key;
      else if (key !== last && !typing && !el.querySelector(".camera video")) {
        last = key;
        const before = fill().state;
        await onMove();
        if (fill().state !== before) announce(`This fill is now: ${(FILL_STATES[fill().state] || fill().state).toLowerCase()}.`);
      }
    } catch {
      // offline or signed out: the next tick tries again
    }
    if (el.isConnected) setTimeout(tick, WATCH_MS);
  }
  tick();
}

// -- the fill queue ----------------------------------------------------------------------------

const sentBackReasons = new Map(); // fill id → [since, reason]: each fill's detail read once per state change

async function withSentBack(items) {
  return Promise.all(items.map(async (item) => {
    const known = sentBackReasons.get(item.id);
    if (known && known[0] === item.since) return [item, known[1]];
    const fill = await api(`/fills/${item.id}`).catch(() => null);
    const reason = fill ? sentBack(fill) : null;
    sentBackReasons.set(item.id, [item.since, reason]);
    return [item, reason];
  }));
}

async function startFill(rxId, button) {
  button.disabled = true;
  try {
    const fill = await api(`/prescriptions/${rxId}/fills`, { method: "POST", body: {} });
    announce("Fill started.");
    location.hash = `#/fills/${fill.id}`;
  } catch (error) {
    button.disabled = false;
    button.parentElement.append(h("div", { class: "notice error", role: "alert" }, error.message));
  }
}

// the prescriber's DoNotFill of the approved prescriptions (the fill queue does not carry it):
// a held one is filled only when the patient asks, one not to be dispensed never; every page
// of them (by the queue's cursor), so no hold is missed however many wait
async function holds() {
  const pages = await Promise.all(["approved", "returned_to_stock"].map((state) => everyPage(state).catch(() => [])));
  return new Map(pages.flat().filter((rx) => rx.do_not_fill).map((rx) => [rx.id, rx.do_not_fill]));
}

async function everyPage(state) {
  const { rows } = await readPages(async (cursor) => {
    const page = await api(`/prescriptions?state=${state}&limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    return { items: page.items, next: page.next_cursor };
  }, Infinity);
  return rows;
}

function startButton(rx, hold) {
  if (hold === "Y" || hold === "E") return h("span", { class: "hint" }, "Not to be dispensed");
  return h("button", { type: "button", id: `start-${rx.prescription_id}`, onclick: (e) => startFill(rx.prescription_id, e.currentTarget) },
    hold === "H" ? "Patient asked: start fill" : "Start fill");
}

// a refill (or the rest of a partial fill) is asked for with the patient's label: scanned, or
// its Rx number typed; an open fill of it is opened, else a new one started (the hub refuses
// when no fill is left, in words that say to ask the prescriber)
function refillLookup() {
  const said = h("div", { "aria-live": "assertive" });
  const field = scanField("refill-scan", async (text) => {
    replace(said);
    try {
      const { items } = await api(`/fills?rx=${encodeURIComponent(text)}`);
      if (!items.length) throw new Error("No prescription of this pharmacy has that Rx number.");
      const open = items.find((f) => f.state === "filling");
      if (open) {
        location.hash = `#/fills/${open.id}`;
        return;
      }
      const fill = await api(`/prescriptions/${items[0].prescription_id}/fills`, { method: "POST", body: {} });
      announce("Fill started.");
      location.hash = `#/fills/${fill.id}`;
    } catch (error) {
      replace(said, h("div", { class: "notice error", role: "alert" }, error.message));
      field.input.select();
    }
  }, { placeholder: "Refill: scan the patient's label (or type the Rx number)", label: "Refill by prescription label", button: "Fill again" });
  return h("div", { class: "lookup" }, field.form, said);
}

// a list's heading count: "12+" while the hub has more to load
const countText = (list) => `${list.rows.length}${list.next ? "+" : ""}`;

export function fillQueueView(el) {
  return polled(el, {
    title: "Filling",
    hint: "Approved prescriptions wait here for their fill; a fill the pharmacist sent back says why.",
    queues: {
      filling: ["filling", "filling-more", ["fill", "fills"]],
      waiting: ["waiting", "waiting-more", ["prescription", "prescriptions"]],
    },
    read: async () => {
      const [held, asked] = await Promise.all([holds(), refillRequestsCard()]);
      return { held, asked };
    },
    draw: async ({ filling, waiting }, { held, asked }) => {
      const open = await withSentBack(filling.rows);
      open.sort(([, a], [, b]) => Number(Boolean(b)) - Number(Boolean(a))); // sent back first
      return [
        asked,
        h("section", { class: "card", "aria-labelledby": "filling-h" },
          h("h2", { id: "filling-h" }, `Being filled (${countText(filling)})`),
          open.length ? table("Fills in progress", ["Medication", "Rx", "Since", "Status", ""], open.map(([f, reason]) =>
            h("tr", { class: reason ? "sentback" : "", dataset: { id: rowKey(f) }, onclick: () => { location.hash = `#/fills/${f.id}`; } },
              h("td", {}, h("div", { class: "drug" }, f.drug_description), controlledBadge(f)),
              h("td", {}, rxNumber(f), h("div", { class: "sub" }, fillNumber(f.number))),
              h("td", {}, h("span", { title: when(f.since) }, ago(f.since))),
              h("td", {}, reason ? [h("span", { class: "badge hard_stop" }, "Sent back"), h("div", { class: "reason" }, reason)] : fillBadge("filling")),
              h("td", {}, h("a", { class: "button secondary", href: `#/fills/${f.id}` }, reason ? "Fix" : "Continue")))))
            : emptyBox("No fill in progress."),
          filling.paging.element),
        h("section", { class: "card", "aria-labelledby": "waiting-h" },
          h("h2", { id: "waiting-h" }, `Waiting for a fill (${countText(waiting)})`),
          waiting.rows.length ? table("Prescriptions waiting for a fill", ["Medication", "Rx", "Approved", ""], waiting.rows.map((rx) => {
            const hold = held.get(rx.prescription_id);
            return h("tr", { class: hold ? "donotfill" : "", dataset: { id: rowKey(rx) } },
              h("td", {}, h("div", { class: "drug" }, h("a", { href: `#/rx/${rx.prescription_id}` }, rx.drug_description)), controlledBadge(rx),
                hold ? h("span", { class: "badge donotfill", title: DO_NOT_FILL[hold]?.[1] }, DO_NOT_FILL[hold]?.[0] || hold) : null,
                rx.state === "returned_to_stock" ? fillBadge("returned_to_stock") : null),
              h("td", {}, rx.rx_number ? `Rx ${rx.rx_number}` : "New"),
              h("td", {}, h("span", { title: when(rx.since) }, ago(rx.since))),
              h("td", {}, startButton(rx, hold)));
          }))
            : emptyBox("No approved prescription waits for a fill."),
          waiting.paging.element),
      ];
    },
    above: refillLookup(),
  });
}

// -- one fill ----------------------------------------------------------------------------------

// the scanner field: a keyboard-wedge scanner types the code and Enter; its GS (ASCII 29) comes
// as Ctrl+], which a text field drops, so that key puts the stand-in the hub reads instead
export function scanField(id, onScan, { placeholder = "Scan the stock bottle's barcode (or type it)", label = "Barcode", button = "Check the code" } = {}) {
  const input = h("input", { type: "text", id, name: "scan", autocomplete: "off", spellcheck: false, maxLength: 200, class: "grow scan", placeholder });
  input.addEventListener("keydown", (e) => {
    const gs = (e.ctrlKey && (e.key === "]" || e.code === "BracketRight")) || e.key === "\x1d";
    if (!gs) return;
    e.preventDefault();
    const [start, end] = [input.selectionStart ?? input.value.length, input.selectionEnd ?? input.value.length];
    input.setRangeText(GS_STAND_IN, start, end, "end");
  });
  const form = h("form", { class: "actions", onsubmit: (e) => {
    e.preventDefault();
    const text = input.value.replaceAll("\x1d", GS_STAND_IN).trim();
    if (text) onScan(text);
  } }, h("label", { for: id, class: "visually-hidden" }, label), input, h("button", { type: "submit" }, button));
  return { form, input };
}

// a prescription label scanned (RX + its number) or its Rx number typed: the fill of that
// prescription in `state`, opened at `route`; otherwise why not, in words
export function labelLookup(id, state, route) {
  const said = h("div", { "aria-live": "assertive" });
  const field = scanField(id, async (text) => {
    replace(said);
    try {
      const { items } = await api(`/fills?rx=${encodeURIComponent(text)}`);
      const found = items.find((f) => f.state === state);
      if (found) {
        location.hash = `${route}/${found.id}`;
        return;
      }
      const other = items[0];
      replace(said, h("div", { class: "notice error", role: "alert" }, other
        ? `${rxNumber(other)} is not here: its latest fill is ${(FILL_STATES[other.state] || other.state).toLowerCase()}.`
        : "No prescription of this pharmacy has that Rx number."));
    } catch (error) {
      replace(said, h("div", { class: "notice error", role: "alert" }, error.message));
    }
    field.input.select();
  }, { placeholder: "Scan the prescription label (or type the Rx number)", label: "Prescription label", button: "Find" });
  return h("div", { class: "lookup" }, field.form, said);
}

function productFacts(product) {
  return h("dl", { class: "facts", "aria-label": "Scanned product" },
    fact("Product", product.drug || "Not in the drug reference"),
    fact("NDC", ndcText(product.ndc11)),
    fact("Lot", product.lot),
    fact("Expiry", product.expiry ? day(product.expiry) : null),
    product.serial ? fact("Serial", product.serial) : null);
}

export const ndcText = (ndc11) => (ndc11 && ndc11.length === 11 ? `${ndc11.slice(0, 5)}-${ndc11.slice(5, 9)}-${ndc11.slice(9)}` : ndc11);

export function rxSummary(rx) {
  const m = rx.medication || {};
  const p = rx.patient || {};
  return h("dl", { class: "facts", "aria-label": "Prescription" },
    fact("Patient", personName(p.name)),
    fact("Born", day(p.date_of_birth?.date)),
    fact("Prescribed", m.drug_description),
    m.product_code?.qualifier === "ND" ? fact("NDC written", ndcText(m.product_code.code)) : null,
    fact("Quantity", m.quantity ? `${m.quantity.value}` : null),
    fact("Days supply", m.days_supply),
    fact("Directions", m.sig?.text),
    fact("Substitution", m.substitutions === "1" ? "Dispense as written" : m.substitutions === "0" ? "Allowed" : m.substitutions),
    fact("Prescriber", personName(rx.prescriber?.name)));
}

export async function fillView(el, id) {
  let fill = await loadInto(el, `/fills/${id}`, "fill");
  if (!fill) return;
  let rx = await api(`/prescriptions/${fill.prescription_id}`).catch(() => null);
  let images = await imagesOf(fill);
  let labelText = labelTextOf(fill);
  let labelUrl = null;
  let scanMessage = null;
  const camera = h("div", { class: "camera-slot" });
  const message = h("div", { "aria-live": "assertive" });
  const scanner = scanField("scan", scan);

  function flash(text, kind) {
    replace(message, h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text));
  }

  async function load() {
    fill = await api(`/fills/${id}`);
    images = await imagesOf(fill);
    labelText = labelTextOf(fill) ?? labelText;
    render();
  }

  async function step(name, body, done) {
    try {
      await api(`/fills/${id}/${name}`, { method: "POST", body });
      announce(done);
      await load();
      flash(done, "ok");
      return true;
    } catch (error) {
      flash(error.message, "error");
      return false;
    }
  }

  async function scan(text) {
    try {
      await api(`/fills/${id}/scan`, { method: "POST", body: { text } });
      scanMessage = ["ok", "The product matches the prescription."];
      scanner.input.value = "";
      announce("Scanned: the product matches.");
    } catch (error) {
      scanMessage = ["error", error.message];
    }
    await load().catch(() => render());
    // a refused code stays selected for the next scan to replace; a match moves on to the count
    if (scanMessage[0] === "error") scanner.input.select();
    else el.querySelector("#quantity")?.focus();
  }

  async function scanPhoto(blob) {
    scanMessage = ["info", "Reading the barcode in the photo…"];
    render();
    try {
      await api(`/fills/${id}/scan-photo`, { method: "POST", body: blob });
      scanMessage = ["ok", "The code in the photo matches the prescription."];
    } catch (error) {
      scanMessage = ["error", error.message];
    }
    await load().catch(() => render());
  }

  async function upload(kind, blob) {
    flash("Uploading the photo…", "info");
    try {
      await api(`/fills/${id}/images?kind=${kind}`, { method: "POST", body: blob });
      announce("Photo saved.");
      await load();
      flash("Photo saved.", "ok");
    } catch (error) {
      flash(error.message, "error");
    }
  }

  async function printLabel() {
    flash("Preparing the label…", "info");
    try {
      const pdf = await apiBlob(`/fills/${id}/label.pdf`, "application/pdf");
      if (labelUrl) URL.revokeObjectURL(labelUrl);
      labelUrl = URL.createObjectURL(pdf);
      const label = await api(`/fills/${id}/label`).catch(() => null);
      labelText = label?.text ?? labelText;
      const tab = window.open(labelUrl, "_blank");
      await load();
      flash(tab ? "The label opened in a new tab: print it there, then stick it on the vial."
        : "The browser kept the label from opening a tab: download it below and print it.", tab ? "ok" : "info");
    } catch (error) {
      flash(error.message, "error");
    }
  }

  const photo = (kind, title) => async () => {
    const blob = await cameraShot(camera, { title });
    if (blob) await (kind === "scan" ? scanPhoto(blob) : upload(kind, blob));
  };

  function scanCard() {
    const parts = [
      h("h2", { id: "scan-h" }, "1. Scan the stock bottle"),
      scanner.form,
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: photo("scan", "Photo of the barcode") }, "Photograph the barcode"),
        photoPicker("scan-file", "Upload a photo of the barcode", scanPhoto)),
      scanMessage ? h("div", { class: `notice ${scanMessage[0]}`, role: scanMessage[0] === "error" ? "alert" : "status", id: "scan-result" }, scanMessage[1]) : null,
      fill.product ? productFacts(fill.product) : h("p", { class: "hint" }, "No product scanned yet."),
    ];
    return h("section", { class: "card", "aria-labelledby": "scan-h" }, parts);
  }

  function quantityCard() {
    const owed = Number(fill.quantity_owed);
    const unit = unitText(fill.unit);
    const value = h("input", { type: "number", id: "quantity", min: "0.001", step: "any", required: true, value: fill.quantity ?? fill.quantity_owed });
    const reason = h("textarea", { id: "partial-reason", maxLength: 1000, placeholder: "e.g. only 20 in stock; the rest to follow" });
    const reasonBox = h("div", {}, h("label", { for: "partial-reason" }, "Why less than owed (partial fill)"), reason);
    const sync = () => { const partial = Number(value.value) < owed; reasonBox.hidden = !partial; reason.required = partial; };
    value.addEventListener("input", sync);
    sync();
    return h("form", { class: "card", "aria-labelledby": "qty-h", onsubmit: (e) => {
      e.preventDefault();
      const body = { quantity: value.value };
      if (!reasonBox.hidden) body.reason = reason.value.trim();
      step("quantity", body, "Quantity recorded.");
    } },
    h("h2", { id: "qty-h" }, "2. Count"),
    h("p", {}, `Owed: ${fill.quantity_owed} ${unit}`),
    h("label", { for: "quantity" }, `Counted (${unit})`), value, reasonBox,
    fill.quantity ? h("p", { class: "hint" }, `Recorded: ${fill.quantity} ${unit}${fill.partial ? ` (partial: ${fill.partial_reason})` : ""}`) : null,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "secondary" }, "Record the count")));
  }

  function photoSlot([kind, title, hint]) {
    const have = latestOfKind(images, kind);
    const img = h("img", { alt: have ? `${title} photo` : "", class: "thumb", hidden: !have });
    if (have) imageUrl(fill.id, have.id).then((url) => { img.src = url; }).catch(() => {});
    return h("figure", { class: "photo-slot", dataset: { kind } },
      h("figcaption", {}, h("strong", {}, title), " ", have ? h("span", { class: "badge verified" }, "Taken") : h("span", { class: "badge warning" }, "Needed")),
      h("p", { class: "hint" }, hint),
      img,
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: photo(kind, title) }, have ? `Retake: ${title.toLowerCase()}` : `Take photo: ${title.toLowerCase()}`),
        photoPicker(`file-${kind}`, "Upload", (file) => upload(kind, file))));
  }

  function photosCard() {
    return h("section", { class: "card", "aria-labelledby": "photos-h" },
      h("h2", { id: "photos-h" }, "3. Photos for the pharmacist"),
      camera,
      h("div", { class: "photo-grid" }, PHOTO_KINDS.map(photoSlot)));
  }

  function labelCard() {
    return h("section", { class: "card", "aria-labelledby": "label-h" },
      h("h2", { id: "label-h" }, "4. Label"),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: printLabel }, "Print label"),
        labelUrl ? h("a", { href: labelUrl, download: `label-${fill.rx_number || fill.id}.pdf`, id: "label-download" }, "Download the label (PDF)") : null),
      labelText ? h("pre", { class: "label-text", "aria-label": "Label text" }, labelText) : h("p", { class: "hint" }, "The label is printed after the product is scanned and counted."));
  }

  function submitCard() {
    return h("section", { class: "card", "aria-labelledby": "submit-h" },
      h("h2", { id: "submit-h" }, "5. Submit for the product check"),
      h("p", { class: "hint" }, "A pharmacist checks the scan, the count, the photos and the label before the fill is ready."),
      h("div", { class: "actions" }, h("button", { type: "button", id: "submit-fill", onclick: () => step("submit", {}, "Submitted for the product check.") }, "Submit for product check")));
  }

  function render() {
    const reason = fill.state === "filling" ? sentBack(fill) : null;
    const filling = fill.state === "filling";
    replace(el,
      h("p", {}, h("a", { href: "#/fills" }, "← Back to filling")),
      h("div", { class: "page-head" },
        h("h1", {}, rx?.medication?.drug_description || fill.product?.drug || "Fill"),
        rx ? markers({ dea_schedule: rx.medication?.dea_schedule?.code ?? rx.medication?.dea_schedule, do_not_fill: rx.medication?.do_not_fill, urgent: rx.urgent }) : controlledBadge(fill),
        fillBadge(fill.state),
        h("span", { class: "spacer" }), h("span", { class: "hint" }, `${rxNumber(fill)} · ${fillNumber(fill.number)}`)),
      rx ? banners(rx) : null,
      reason ? h("div", { class: "banner sentback", role: "alert" }, h("strong", {}, "SENT BACK"), " ", reason) : null,
      message,
      h("div", { class: "split" },
        h("div", {},
          filling ? [scanCard(), quantityCard(), photosCard(), labelCard(), submitCard()]
            : [h("section", { class: "card" }, h("h2", {}, "Product"), fill.product ? productFacts(fill.product) : h("p", {}, "—"),
              h("p", {}, `Counted: ${fill.quantity ?? "—"} ${unitText(fill.unit)}`)), nextStep()]),
        h("div", {},
          rx ? h("section", { class: "card", "aria-labelledby": "rx-h" }, h("h2", { id: "rx-h" }, "Prescription"), rxSummary(rx),
            h("p", {}, h("a", { href: `#/rx/${rx.id}` }, "Open the prescription"))) : null,
          h("section", { class: "card", "aria-labelledby": "fill-history-h" }, h("h2", { id: "fill-history-h" }, "History"), historyList(fill)))));
    if (filling && !fill.product && !document.activeElement?.closest?.("input, textarea, select")) scanner.input.focus();
  }

  function nextStep() {
    const pharmacist = currentUser()?.role === "pharmacist";
    const next = {
      product_check: pharmacist ? h("a", { class: "button", href: `#/check/${fill.id}` }, "Open the product check") : h("p", {}, "Waiting for a pharmacist's product check."),
      ready: h("a", { class: "button", href: `#/will-call/${fill.id}` }, "Open in will-call"),
    }[fill.state];
    return next ? h("section", { class: "card" }, next) : null;
  }

  render();
  watchFill(el, () => fill, () => load());
  return () => {
    stopCameras();
    if (labelUrl) URL.revokeObjectURL(labelUrl);
  };
}
