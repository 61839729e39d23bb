// Inventory (issue 16, docs/dispensing.md "Inventory"): the pharmacy's stock by product and lot
// (all of it, or the low stock only), receiving a package by scanning it, and one product: its
// lots, a count correction with its reason, its reorder point, and its movement log (for a
// Schedule II product, the perpetual inventory) read on demand, since each read is audited.
// The hub decides every receipt and count; this page sends what was scanned and typed as it is
// and says the hub's refusals in its words.

import { api, loadInto } from "../lib/api.js";
import { currentUser } from "../lib/auth.js";
import { h, replace, when, day, fact, announce, spinner, problemBox, emptyBox, clock } from "../lib/dom.js";
import { scheduleLabel } from "./queue.js";
import { scanField, ndcText, actorText } from "./fills.js";

// who may do what (server/inventory/http.py): the hub refuses anyone else; the page only
// leaves out what would be refused
const HANDLERS = ["technician", "pharmacist"]; // receive, count
const BUYERS = ["pharmacist", "pharmacy_admin"]; // reorder points
const mayI = (roles) => roles.includes(currentUser()?.role);

const NUMBER = new Intl.NumberFormat(undefined, { maximumFractionDigits: 3 });
const SIGNED = new Intl.NumberFormat(undefined, { maximumFractionDigits: 3, signDisplay: "exceptZero" });
const amount = (n) => (n === null || n === undefined ? "—" : NUMBER.format(n));
const MOVES = { receive: "Received", dispense: "Dispensed", return: "Returned", adjust: "Count corrected", recall: "Recalled" };

// the refusals that name a field to fix: it gets the focus, the words stay beside the form
const FIELD_OF = { lot_missing: "receive-lot", expiry_missing: "receive-expiry", quantity_invalid: "receive-quantity" };

let lowOnly = false; // the filter outlives a visit to a product, as the queue's filters do

const notice = (kind, text) => h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);

function scheduleBadge(p) {
  return p.dea_schedule ? h("span", { class: "badge controlled", title: "Controlled substance" }, scheduleLabel(p.dea_schedule)) : null;
}

const lowBadge = (p) => (p.low ? h("span", { class: "badge warning", title: "At or below the reorder point" }, "Low") : null);

function lotState(lot) {
  if (lot.recalled) return h("span", { class: "badge hard_stop" }, "Recalled");
  if (lot.expired) return h("span", { class: "badge hard_stop" }, "Expired");
  return null;
}

function lotLines(p) {
  if (!p.lots.length) return h("span", { class: "hint" }, "No lot");
  return h("ul", { class: "plain lots" }, p.lots.map((lot) =>
    h("li", {}, h("strong", {}, lot.lot), ` · exp. ${day(lot.expiry)} · ${amount(lot.on_hand)} `, lotState(lot))));
}

// -- the stock and receiving -------------------------------------------------------------------

function stockTable(items, fresh) {
  return h("table", { class: "queue stock", "aria-label": lowOnly ? "Low stock" : "Stock on hand" },
    h("thead", {}, h("tr", {}, ["NDC", "Product", "On hand", "Lots (expiry, on hand)", "Reorder point", ""].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, items.map((p) => h("tr", {
      class: [p.low ? "low" : "", p.ndc11 === fresh ? "fresh" : ""].join(" ").trim(),
      dataset: { ndc: p.ndc11 },
      onclick: () => { location.hash = `#/inventory/${p.ndc11}`; },
    },
    h("td", { class: "ndc" }, ndcText(p.ndc11)),
    h("td", {}, h("div", { class: "drug" }, p.description), scheduleBadge(p), lowBadge(p)),
    h("td", { class: "on-hand" }, amount(p.on_hand)),
    h("td", {}, lotLines(p)),
    h("td", { class: "reorder" }, p.reorder_point === null ? "—" : amount(p.reorder_point)),
    h("td", {}, h("a", { class: "button secondary", href: `#/inventory/${p.ndc11}`, "aria-label": `Open ${p.description}` }, "Open"))))));
}

// Receiving: the scanner types the package's code into the scan field and Enter; the quantity
// is typed next (the field has the focus once the code is in). A DataMatrix carries its lot and
// expiry; a UPC or an NDC does not, and the hub says so (lot_missing, expiry_missing): the
// field it names gets the focus. The code goes to the hub as scanned, read by its parser.
function receiveCard(onReceived) {
  const said = h("div", { "aria-live": "assertive" });
  const quantity = h("input", { type: "number", id: "receive-quantity", min: "0.001", step: "any", inputmode: "decimal", autocomplete: "off" });
  const lot = h("input", { type: "text", id: "receive-lot", maxLength: 20, autocomplete: "off", spellcheck: false });
  const expiry = h("input", { type: "date", id: "receive-expiry" });
  const scanner = scanField("scan", receive, { placeholder: "Scan the package's barcode (or type its NDC)", label: "Package barcode", button: "Receive" });
  let busy = false;

  async function receive(text) {
    if (busy) return;
    if (!quantity.value) {
      replace(said, notice("info", "Code read. Type the quantity received (in the product's unit: tablets, mL, g) and press Enter."));
      quantity.focus();
      return;
    }
    if (!quantity.checkValidity()) {
      replace(said, notice("error", "The quantity must be more than 0."));
      quantity.focus();
      return;
    }
    const body = { scan: text, quantity: Number(quantity.value) };
    if (lot.value.trim()) body.lot = lot.value.trim();
    if (expiry.value) body.expiry = expiry.value;
    busy = true;
    replace(said, notice("info", "Receiving…"));
    try {
      const { movement, product } = await api("/inventory/receipts", { method: "POST", body });
      const words = `Received ${amount(movement.quantity)} of ${product.description}, lot ${movement.lot} (expires ${day(movement.expiry)}). On hand now: ${amount(product.on_hand)}.`;
      replace(said, notice("ok", words));
      announce(words);
      for (const field of [scanner.input, quantity, lot, expiry]) field.value = "";
      scanner.input.focus();
      onReceived(product);
    } catch (error) {
      replace(said, notice("error", error.message));
      const field = document.getElementById(FIELD_OF[error.code]);
      if (field) field.focus();
      else scanner.input.select();
    } finally {
      busy = false;
    }
  }

  // Enter in the quantity, the lot or the expiry receives what the scan field holds
  const details = h("form", { class: "fields receive-details", onsubmit: (e) => {
    e.preventDefault();
    if (!scanner.input.value.trim()) {
      replace(said, notice("error", "Scan the package first (or type its NDC)."));
      scanner.input.focus();
      return;
    }
    scanner.form.requestSubmit();
  } },
  h("div", {}, h("label", { for: "receive-quantity" }, "Quantity received"), quantity),
  h("div", {}, h("label", { for: "receive-lot" }, "Lot (UPC or NDC only)"), lot),
  h("div", {}, h("label", { for: "receive-expiry" }, "Expiry (UPC or NDC only)"), expiry),
  h("button", { type: "submit", hidden: true, tabindex: "-1" }, "Receive"));

  const card = h("section", { class: "card", "aria-labelledby": "receive-h" },
    h("h2", { id: "receive-h" }, "Receive stock"),
    h("p", { class: "hint" }, "Scan each package as it arrives, then type the quantity in the product's unit. A DataMatrix carries the lot and expiry; for a UPC or a typed NDC, type them too."),
    scanner.form, details, said);
  return { card, focus: () => scanner.input.focus() };
}

export function inventoryView(el) {
  let fresh = null;
  const status = h("p", { class: "status-line" });
  const body = h("div", {}, spinner("Loading the stock…"));
  const receiving = mayI(HANDLERS) ? receiveCard((product) => { fresh = product.ndc11; load(); }) : null;
  const filter = h("input", { type: "checkbox", id: "low-only", checked: lowOnly, onchange: (e) => { lowOnly = e.target.checked; load(); } });

  async function load() {
    try {
      const { items } = await api(`/inventory${lowOnly ? "?low=true" : ""}`);
      if (!el.isConnected) return;
      replace(body, items.length ? stockTable(items, fresh)
        : emptyBox(lowOnly ? "No product is at or below its reorder point." : "Nothing in stock yet: receive a package above."));
      replace(status, `Updated ${clock()}`);
      fresh = null;
    } catch (error) {
      replace(body, problemBox(error, load));
    }
  }

  replace(el,
    h("div", { class: "page-head" }, h("h1", {}, "Inventory"), h("span", { class: "spacer" }),
      h("button", { type: "button", class: "secondary", onclick: load }, "Refresh")),
    h("p", { class: "hint" }, "The pharmacy's stock by product and lot. Open a product to count a lot, set its reorder point or read its log."),
    receiving?.card,
    h("section", { class: "card", "aria-labelledby": "stock-h" },
      h("h2", { id: "stock-h" }, "On hand"),
      h("div", { class: "filters" }, h("label", { class: "inline" }, filter, "Low stock only (at or below the reorder point)")),
      status, body));
  receiving?.focus();
  load();
}

// -- one product -------------------------------------------------------------------------------

function lotsTable(p) {
  if (!p.lots.length) return h("p", { class: "hint" }, "No lot of this product is on the shelf.");
  return h("table", { class: "queue", "aria-label": "Lots" },
    h("thead", {}, h("tr", {}, ["Lot", "Expiry", "On hand", ""].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, p.lots.map((lot) => h("tr", {},
      h("td", {}, lot.lot), h("td", {}, day(lot.expiry)), h("td", {}, amount(lot.on_hand)), h("td", {}, lotState(lot))))));
}

function logTable(p, movements) {
  if (!movements.length) return emptyBox("No movement yet.");
  return h("table", { class: "queue movements", "aria-label": p.schedule_ii ? "Perpetual inventory" : "Movements" },
    h("thead", {}, h("tr", {}, ["When", "Movement", "Lot", "Quantity", "Lot after", "On hand after", "By", "Why"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, movements.map((m) => h("tr", { dataset: { kind: m.kind } },
      h("td", {}, when(m.at)),
      h("td", {}, MOVES[m.kind] || m.kind),
      h("td", {}, m.lot, h("div", { class: "sub" }, `exp. ${day(m.expiry)}`)),
      h("td", { class: "quantity" }, SIGNED.format(m.quantity)),
      h("td", {}, amount(m.lot_balance_after)),
      h("td", { class: "balance" }, amount(m.balance_after)),
      h("td", {}, actorText(m.actor)),
      h("td", {}, m.reason || "", m.fill_id ? h("div", {}, h("a", { href: `#/fills/${m.fill_id}` }, "Open the fill")) : null)))));
}

export async function productView(el, ndc11) {
  const found = await loadInto(el, `/inventory?ndc=${ndc11}`, "product");
  if (!found) return;
  let product = found.items.find((p) => p.ndc11 === ndc11);
  if (!product) {
    replace(el, h("p", {}, h("a", { href: "#/inventory" }, "← Back to inventory")),
      problemBox(new Error("This product is not in your pharmacy's stock.")));
    return;
  }
  let log = null; // the movements once asked for
  // focusable: after a change the page is drawn anew, and the focus goes to what it did
  const message = h("div", { "aria-live": "assertive", tabindex: "-1" });
  const flash = (text, kind) => { replace(message, notice(kind, text)); if (kind === "ok") announce(text); };

  async function showLog() {
    try {
      const read = await api(`/inventory/products/${ndc11}/log`);
      log = read.movements;
      product = read.product;
      render();
      document.getElementById("log-h")?.focus();
    } catch (error) {
      flash(error.message, "error");
    }
  }

  // after a count or a new reorder point: the product as the hub answered, the log read anew
  // if it is open
  async function moved(next, words) {
    product = next;
    if (log !== null) {
      log = (await api(`/inventory/products/${ndc11}/log`).catch(() => ({ movements: log }))).movements;
    }
    render();
    flash(words, "ok");
    message.focus();
  }

  function countCard() {
    const schedule2 = product.schedule_ii;
    const heading = h("h2", { id: "count-h" }, "Count a lot");
    if (!mayI(HANDLERS)) return h("section", { class: "card", "aria-labelledby": "count-h" }, heading, h("p", { class: "hint" }, "Counts are recorded by technicians and pharmacists."));
    if (schedule2 && currentUser()?.role !== "pharmacist") {
      return h("section", { class: "card", "aria-labelledby": "count-h" }, heading,
        h("p", { class: "hint" }, "A Schedule II count is corrected by a pharmacist with the controlled-substance permission."));
    }
    if (!product.lots.length) return h("section", { class: "card", "aria-labelledby": "count-h" }, heading, h("p", { class: "hint" }, "No lot to count."));
    const lot = h("select", { id: "count-lot", required: true }, product.lots.map((l) =>
      h("option", { value: l.lot }, `${l.lot} · exp. ${day(l.expiry)} · ${amount(l.on_hand)} on hand`)));
    const counted = h("input", { type: "number", id: "count-quantity", min: "0", step: "any", required: true, inputmode: "decimal" });
    const reason = h("textarea", { id: "count-reason", required: true, maxLength: 500, placeholder: "e.g. two tablets found broken at the monthly count" });
    const save = h("button", { type: "submit", class: "secondary" }, "Record the count");
    return h("form", { class: "card", "aria-labelledby": "count-h", onsubmit: async (e) => {
      e.preventDefault();
      save.disabled = true;
      try {
        const done = await api("/inventory/adjustments", { method: "POST", body: { ndc: ndc11, lot: lot.value, counted: Number(counted.value), reason: reason.value.trim() } });
        const m = done.movement;
        await moved(done.product, m ? `Count recorded: lot ${m.lot} ${SIGNED.format(m.quantity)}, now ${amount(m.lot_balance_after)}.` : "The count matches the stock: nothing changed.");
      } catch (error) {
        save.disabled = false;
        flash(error.message, "error");
      }
    } },
    heading,
    schedule2 ? h("p", { class: "hint" }, "Schedule II: your account needs the controlled-substance permission.") : null,
    h("label", { for: "count-lot" }, "Lot"), lot,
    h("label", { for: "count-quantity" }, "Counted on the shelf"), counted,
    h("label", { for: "count-reason" }, "Why it differs"), reason,
    h("div", { class: "actions" }, save));
  }

  function reorderCard() {
    const heading = h("h2", { id: "reorder-h" }, "Reorder point");
    const now = product.reorder_point === null ? "None: never low." : `Low at or below ${amount(product.reorder_point)}.`;
    if (!mayI(BUYERS)) {
      return h("section", { class: "card", "aria-labelledby": "reorder-h" }, heading, h("p", { id: "reorder-now" }, now),
        h("p", { class: "hint" }, "A pharmacist or a pharmacy admin sets the reorder point."));
    }
    const point = h("input", { type: "number", id: "reorder-point", min: "0", step: "any", inputmode: "decimal", value: product.reorder_point ?? "" });
    async function put(value) {
      try {
        const next = await api(`/inventory/products/${ndc11}`, { method: "PUT", body: { reorder_point: value } });
        await moved(next, value === null ? "Reorder point cleared." : `Reorder point set: low at or below ${amount(next.reorder_point)}.`);
      } catch (error) {
        flash(error.message, "error");
      }
    }
    return h("form", { class: "card", "aria-labelledby": "reorder-h", onsubmit: (e) => {
      e.preventDefault();
      put(point.value === "" ? null : Number(point.value));
    } },
    heading, h("p", { id: "reorder-now" }, now),
    h("label", { for: "reorder-point" }, "Low at or below"), point,
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "secondary" }, "Set the reorder point"),
      product.reorder_point === null ? null : h("button", { type: "button", class: "quiet", onclick: () => put(null) }, "Clear")));
  }

  function logCard() {
    const title = product.schedule_ii ? "Perpetual inventory (Schedule II)" : "Movement log";
    return h("section", { class: "card", "aria-labelledby": "log-h" },
      h("h2", { id: "log-h", tabindex: "-1" }, title),
      log === null
        ? [h("p", { class: "hint" }, "Every receipt, fill, return, count and recall with the balance it left. Each read is recorded."),
          h("div", { class: "actions" }, h("button", { type: "button", class: "secondary", id: "show-log", onclick: showLog }, "Show the log"))]
        : [logTable(product, log), h("div", { class: "actions" }, h("button", { type: "button", class: "quiet", onclick: showLog }, "Read again"))]);
  }

  function render() {
    replace(el,
      h("p", {}, h("a", { href: "#/inventory" }, "← Back to inventory")),
      h("div", { class: "page-head" },
        h("h1", {}, product.description), scheduleBadge(product), lowBadge(product),
        h("span", { class: "spacer" }), h("span", { class: "hint" }, `NDC ${ndcText(product.ndc11)}`)),
      message,
      h("div", { class: "split" },
        h("section", { class: "card", "aria-labelledby": "stock-h" },
          h("h2", { id: "stock-h" }, "Stock"),
          h("dl", { class: "facts", "aria-label": "Stock facts" },
            fact("NDC", ndcText(product.ndc11)),
            fact("On hand", amount(product.on_hand), " ", lowBadge(product)),
            fact("Reorder point", product.reorder_point === null ? "None" : amount(product.reorder_point)),
            fact("DEA schedule", product.dea_schedule ? scheduleLabel(product.dea_schedule) : "Not controlled")),
          lotsTable(product)),
        h("div", {}, countCard(), reorderCard())),
      logCard());
  }

  render();
}
