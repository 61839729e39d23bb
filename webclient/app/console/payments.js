// Payments (issue 18, docs/payments.md): on a patient's profile, the balance and the ledger
// (load more), a payment taken at the counter (the card typed into the payment provider's own
// fields, Stripe.js loaded from the URL the hub gives; the hub never sees the card), a saved
// card instead, refunds (staff with the refunds permission) and a charge typed by a pharmacist;
// and #/payments: the day's reconciliation, receivables by age and the price list.
// A payment is on the ledger only once the provider's signed webhook settles it: the page says
// "processing" and asks for the payment's status until it is paid or declined (the provider
// may decline it after the hub answered: then its reason is shown). Every refusal is shown in the hub's words.

import { api, apiBlob } from "../lib/api.js";
import { currentUser } from "../lib/auth.js";
import { h, replace, when, day, fact, announce, spinner, problemBox, emptyBox } from "../lib/dom.js";

const COUNTER = ["pharmacist", "technician"]; // take payments, set up cards (server/payments/http.py)
const BOOKS = ["pharmacist", "pharmacy_admin"]; // reconciliation, receivables
const CONSULT_FEE = {
  after: "after the consult (billed when it ends)",
  waiting_room: "in the waiting room, or later",
  before_admission: "in the waiting room, before admission",
};
const role = () => currentUser()?.role;
const KINDS = { charge: "Charge", payment: "Payment", refund: "Refund", write_off: "Write-off", adjustment: "Adjustment" };
const METHODS = { counter: "At the counter", online: "Online", saved_card: "Saved card" };
const PAGE = 20;
const SETTLE_TRIES = 10; // the ledger read again this many times, a second apart

const notice = (kind, text) => h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);

// -- money: integer minor units, typed and shown in the currency's major unit -------------------

const digitsOf = (currency) =>
  new Intl.NumberFormat("en", { style: "currency", currency: currency.toUpperCase() }).resolvedOptions().maximumFractionDigits;

export function money(minor, currency = "usd") {
  const digits = digitsOf(currency);
  return new Intl.NumberFormat(undefined, { style: "currency", currency: currency.toUpperCase() }).format(minor / 10 ** digits);
}

// "12.5" -> 1250 (no floating point on the way): null when it is not an amount
export function toMinor(text, currency = "usd") {
  const digits = digitsOf(currency);
  const found = text.trim().replace(/^\$/, "").match(digits ? new RegExp(`^(\\d{1,7})(?:\\.(\\d{1,${digits}}))?$`) : /^(\d{1,9})$/);
  if (!found) return null;
  return Number(found[1]) * 10 ** digits + Number((found[2] || "").padEnd(digits, "0") || 0);
}

function amountField(id) {
  return h("input", { type: "text", id, inputmode: "decimal", autocomplete: "off", required: true, placeholder: "0.00", size: 8 });
}

const balanceText = (balance) => {
  const entries = Object.entries(balance || {});
  return entries.length ? entries.map(([currency, minor]) => money(minor, currency)).join(" · ") : money(0);
};

// -- Stripe.js, from the URL the hub gives (the console's CSP allows that origin only) -------------

const scripts = new Map();
function loadProvider(url) {
  if (!scripts.has(url)) {
    scripts.set(url, new Promise((resolve, reject) => {
      const script = h("script", { src: url });
      script.addEventListener("load", () => (window.Stripe ? resolve(window.Stripe) : reject(new Error("The payment provider's script did not load."))));
      script.addEventListener("error", () => { scripts.delete(url); reject(new Error("The payment provider cannot be reached. Try again.")); });
      document.head.append(script);
    }));
  }
  return scripts.get(url);
}

// -- a patient's payments panel ------------------------------------------------------------------

export function patientPaymentsCard(patientId) {
  const base = `/patients/${patientId}`;
  const card = h("section", { class: "card payments", "aria-labelledby": "payments-h" });
  const title = () => h("h2", { id: "payments-h" }, "Payments");
  const balance = h("p", { class: "balance", id: "balance", role: "status" });
  const message = h("div", { "aria-live": "polite" });
  const lines = h("tbody", {});
  const more = h("button", { type: "button", class: "secondary", hidden: true, onclick: () => loadPage(next) }, "Load more");
  const tools = h("div", {});
  let next = null;
  let known = []; // the lines shown, newest first
  let owed = {}; // the balance shown, per currency

  replace(card, title(), spinner("Loading the ledger…"));
  start();
  return card;

  async function start() {
    try {
      const first = await api(`${base}/ledger?limit=${PAGE}`);
      replace(card, title(), balance, message,
        h("div", { class: "actions" },
          COUNTER.includes(role()) ? h("button", { type: "button", id: "take-payment", onclick: openPayment }, "Take payment") : null,
          role() === "pharmacist" ? h("button", { type: "button", class: "secondary", id: "add-charge", onclick: openCharge }, "Add a charge…") : null),
        tools,
        h("table", { class: "queue ledger", "aria-label": "Ledger" },
          h("thead", {}, h("tr", {}, ["Date", "What", "Amount", ""].map((t) => h("th", { scope: "col" }, t)))), lines),
        h("div", { class: "actions" }, more));
      show(first, false);
    } catch (error) {
      replace(card, title(), problemBox(error, start));
    }
  }

  function show(page, append) {
    owed = page.balance || {};
    replace(balance, "Balance: ", h("strong", {}, balanceText(page.balance)));
    known = append ? [...known, ...page.items] : page.items;
    next = page.next;
    more.hidden = !next;
    replace(lines, known.length ? known.map(line) : h("tr", {}, h("td", { colspan: 4, class: "hint" }, "Nothing on the ledger yet.")));
  }

  async function loadPage(cursor) {
    try {
      show(await api(`${base}/ledger?limit=${PAGE}&after=${encodeURIComponent(cursor)}`), true);
    } catch (error) {
      replace(message, notice("error", error.message));
    }
  }

  async function reload() {
    show(await api(`${base}/ledger?limit=${Math.max(PAGE, known.length)}`), false);
  }

  // a refund the provider failed or canceled after accepting it: its reversal names it
  // (a declaration, as the panel's other functions: they run before the body reaches here)
  function reversalOf(refund) {
    return known.find((l) => l.cause_type === "refund_failed" && l.refunds === refund.id);
  }

  function line(entry) {
    // what went back of a payment: its refunds, but those that failed
    const refunded = known.filter((l) => l.refunds === entry.id && l.kind === "refund" && !reversalOf(l))
      .reduce((sum, l) => sum + l.amount, 0);
    const failed = entry.kind === "refund" && reversalOf(entry);
    const detail = [METHODS[entry.method], entry.reason, refunded ? `${money(refunded, entry.currency)} refunded` : null].filter(Boolean).join(" · ");
    const row = h("tr", { dataset: failed ? { kind: entry.kind, id: entry.id, failed: "true" } : { kind: entry.kind, id: entry.id } },
      h("td", {}, when(entry.at)),
      h("td", {}, h("strong", {}, KINDS[entry.kind] || entry.kind), " ", entry.description,
        failed ? [" ", h("span", { class: "badge stat" }, "Failed: the money did not go back")] : null,
        detail ? h("div", { class: "sub" }, detail) : null),
      h("td", { class: "amount" }, money(entry.signed, entry.currency)),
      h("td", {}, entry.kind === "payment" && refunded < entry.amount
        ? h("button", { type: "button", class: "secondary", onclick: () => openRefund(entry, entry.amount - refunded, row) }, "Refund…") : null));
    return row;
  }

  // a form in `tools`, one at a time
  function open(form, focus) {
    replace(tools, form);
    replace(message);
    focus?.focus();
  }
  function close() {
    replace(tools);
  }
  // what was asked is done: the form goes, the ledger is read again and the notice says so (a
  // failed read is said there too, never left in the closed form)
  async function finished(text) {
    close();
    try {
      await reload();
      replace(message, notice("ok", text));
    } catch (error) {
      replace(message, notice("error", `${text} The ledger could not be read again: ${error.message}`));
    }
    announce(text);
  }

  function openCharge() {
    const amount = amountField("charge-amount");
    const description = h("input", { type: "text", id: "charge-description", maxLength: 200, required: true, placeholder: "What the patient reads" });
    const reason = h("input", { type: "text", id: "charge-reason", maxLength: 500, required: true, placeholder: "Why it is typed, not priced" });
    const said = h("div", {});
    open(h("form", { class: "card", "aria-labelledby": "charge-h", onsubmit: async (e) => {
      e.preventDefault();
      const minor = toMinor(amount.value);
      if (!minor) { replace(said, notice("error", "Type the amount in dollars, e.g. 12.50.")); amount.focus(); return; }
      try {
        await api(`${base}/charges`, { method: "POST", body: { amount: minor, description: description.value.trim(), reason: reason.value.trim() } });
      } catch (error) {
        replace(said, notice("error", error.message));
        return;
      }
      await finished(`Charged ${money(minor)}.`);
    } },
    h("h3", { id: "charge-h" }, "Add a charge"),
    h("div", { class: "fields" },
      h("div", {}, h("label", { for: "charge-amount" }, "Amount ($)"), amount),
      h("div", {}, h("label", { for: "charge-description" }, "Description"), description),
      h("div", {}, h("label", { for: "charge-reason" }, "Reason"), reason)),
    said,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Charge"), h("button", { type: "button", class: "secondary", onclick: close }, "Cancel"))), amount);
  }

  function openRefund(entry, left, row) {
    const amount = amountField("refund-amount");
    const reason = h("input", { type: "text", id: "refund-reason", maxLength: 500, required: true });
    const said = h("div", {});
    open(h("form", { class: "card", "aria-labelledby": "refund-h", onsubmit: async (e) => {
      e.preventDefault();
      const minor = toMinor(amount.value, entry.currency);
      if (!minor) { replace(said, notice("error", "Type the amount to refund, e.g. 5.00.")); amount.focus(); return; }
      try {
        await api(`/payments/${entry.id}/refunds`, { method: "POST", body: { amount: minor, reason: reason.value.trim() } });
      } catch (error) {
        replace(said, notice("error", error.message)); // 403: not allowed to refund, in the hub's words
        return;
      }
      await finished(`Refunded ${money(minor, entry.currency)}.`);
    } },
    h("h3", { id: "refund-h" }, `Refund the payment of ${when(entry.at)}`),
    h("p", { class: "hint" }, `Up to ${money(left, entry.currency)}.`),
    h("div", { class: "fields" },
      h("div", {}, h("label", { for: "refund-amount" }, "Amount to refund ($)"), amount),
      h("div", {}, h("label", { for: "refund-reason" }, "Reason"), reason)),
    said,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Refund"), h("button", { type: "button", class: "secondary", onclick: close }, "Cancel"))), amount);
    row.scrollIntoView?.({ block: "nearest" });
  }

  // Take payment: a saved card, or a new one typed into the provider's fields (its setup
  // confirmed there), then the payment asked with a key made here, so a retry asks once.
  async function openPayment() {
    const said = h("div", { "aria-live": "assertive" });
    const amount = amountField("payment-amount");
    if (owed.usd > 0) amount.value = (owed.usd / 100).toFixed(2); // the balance, to pay in full
    let saved = [];
    try {
      saved = (await api(`${base}/cards`)).items;
    } catch (error) {
      replace(message, notice("error", error.message));
      return;
    }
    const choice = h("select", { id: "payment-card" },
      h("option", { value: "" }, "A new card (typed by the patient)"),
      saved.map((c) => h("option", { value: c.id }, `${(c.brand || "Card").toUpperCase()} ending ${c.last4 || "····"}, exp. ${c.exp_month}/${c.exp_year}`)));
    const fields = h("div", { class: "card-fields", id: "card-fields" }, spinner("Loading the card fields…"));
    const keep = h("input", { type: "checkbox", id: "save-card" });
    const newCard = h("div", {}, h("label", {}, "Card (the patient types it; it goes to the payment provider, never to the hub)"), fields,
      h("label", { class: "inline check" }, keep, "Save the card for later payments"));
    const submit = h("button", { type: "submit", id: "pay" }, "Pay now");
    let provider = null; // { stripe, element, setup }
    let key = crypto.randomUUID();
    let busy = false;

    async function mountFields() {
      try {
        const setup = await api(`${base}/cards`, { method: "POST" });
        if (!setup.client_secret) throw new Error("Card payments are not available: the provider gave no setup.");
        const Stripe = await loadProvider(setup.js_url);
        if (!tools.contains(form)) return;
        const stripe = Stripe(setup.publishable_key);
        const element = stripe.elements().create("card");
        replace(fields);
        element.mount(fields);
        provider = { stripe, element, setup };
      } catch (error) {
        replace(fields, problemBox(error, mountFields));
      }
    }

    choice.addEventListener("change", () => { newCard.hidden = Boolean(choice.value); });

    const form = h("form", { class: "card", "aria-labelledby": "pay-h", onsubmit: async (e) => {
      e.preventDefault();
      if (busy) return;
      const minor = toMinor(amount.value);
      if (!minor) { replace(said, notice("error", "Type the amount in dollars, e.g. 20.00.")); amount.focus(); return; }
      busy = true;
      submit.disabled = true;
      try {
        await pay(minor);
      } catch (error) {
        replace(said, notice("error", error.message));
      } finally {
        busy = false;
        submit.disabled = false;
      }
    } },
    h("h3", { id: "pay-h" }, "Take payment at the counter"),
    h("div", { class: "fields" },
      h("div", {}, h("label", { for: "payment-amount" }, "Amount ($)"), amount),
      h("div", {}, h("label", { for: "payment-card" }, "Card"), choice)),
    newCard, said,
    h("div", { class: "actions" }, submit, h("button", { type: "button", class: "secondary", onclick: () => { provider?.element.destroy?.(); close(); } }, "Cancel")));

    async function pay(minor) {
      let cardId = choice.value;
      let method = "saved_card";
      if (!cardId) {
        if (!provider) throw new Error("The card fields are not ready yet.");
        replace(said, notice("info", "Checking the card with the payment provider…"));
        if (!provider.confirmed) {
          const { error } = await provider.stripe.confirmCardSetup(provider.setup.client_secret, { payment_method: { card: provider.element } });
          if (error) throw new Error(error.message || "The payment provider refused the card.");
          provider.confirmed = true;
        }
        cardId = provider.setup.card_id;
        method = "counter";
      }
      const asked = await api(`${base}/payments`, {
        method: "POST",
        headers: { "Idempotency-Key": key },
        body: { amount: minor, card_id: cardId, method, save: method === "counter" && keep.checked },
      });
      if (asked.client_secret) {
        // the bank asks the patient to confirm (3-D Secure), in the provider's own window
        if (!provider) throw new Error("The bank asks the patient to confirm this payment: take it with the card typed in (a new card) instead.");
        replace(said, notice("info", "The bank asks the patient to confirm the payment…"));
        const { error } = await provider.stripe.confirmCardPayment(asked.client_secret);
        if (error) throw new Error(error.message || "The bank did not confirm the payment.");
      }
      key = crypto.randomUUID(); // asked: the next payment is another one
      provider?.element.destroy?.();
      close();
      replace(message, notice("info", `Processing ${money(minor)}: waiting for the payment provider to confirm it…`));
      announce("Processing the payment.");
      await settle(asked.payment_id, minor);
    }

    open(form, amount);
    if (!saved.length) choice.disabled = true;
    mountFields();
  }

  // the provider's webhook settles the payment, or declines it after the hub answered: its
  // status is asked again until it says which (then the ledger is read again)
  async function settle(paymentId, minor) {
    for (let i = 0; i < SETTLE_TRIES && card.isConnected; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      let now;
      try {
        now = await api(`${base}/payments/${paymentId}`);
      } catch {
        continue; // the next read may get through
      }
      if (now.status === "paid") {
        await reload().catch(() => {});
        replace(message, notice("ok", `Paid ${money(minor)}.`));
        announce(`Paid ${money(minor)}.`);
        return;
      }
      if (["declined", "canceled", "held"].includes(now.status)) {
        const words = now.status === "declined"
          ? `The payment of ${money(minor)} was declined: ${now.reason} Nothing was charged; take it again with another card.`
          : `The payment of ${money(minor)} did not go through: ${now.reason}`;
        replace(message, notice("error", words));
        announce(words);
        return;
      }
    }
    replace(message, notice("info", `The payment of ${money(minor)} is still processing: the ledger shows it once the payment provider confirms it.`));
  }
}

// -- #/payments: the day's reconciliation, receivables, prices --------------------------------------

const todayUtc = () => new Date().toISOString().slice(0, 10);

export async function paymentsView(el) {
  const picker = h("input", { type: "date", id: "reconcile-day", value: todayUtc(), max: todayUtc() });
  const reconciliation = h("section", { class: "card", "aria-labelledby": "reconcile-h" });
  const receivables = h("section", { class: "card", "aria-labelledby": "ageing-h" });
  const prices = h("section", { class: "card", "aria-labelledby": "prices-h" });
  replace(el,
    h("div", { class: "page-head" }, h("h1", {}, "Payments")),
    BOOKS.includes(role()) ? [reconciliation, receivables] : null,
    prices);
  picker.addEventListener("change", () => reconcile(reconciliation, picker));
  if (BOOKS.includes(role())) {
    reconcile(reconciliation, picker);
    ageing(receivables);
  }
  priceList(prices);
}

async function reconcile(box, picker) {
  const head = [h("h2", { id: "reconcile-h" }, "Reconciliation"),
    h("div", { class: "filters" }, h("div", {}, h("label", { for: "reconcile-day" }, "Day (UTC)"), picker))];
  replace(box, head, spinner("Reconciling with the payment provider…"));
  const wanted = picker.value || todayUtc();
  try {
    const done = await api(`/payments/reconciliation?day=${wanted}`);
    if (picker.value !== wanted) return; // another day was picked meanwhile
    replace(box, head,
      done.clean
        ? notice("ok", `${day(done.day)} is clean: every payment and refund matches the payment provider.`)
        : h("div", { class: "notice error", role: "alert", id: "discrepancies" },
          h("p", {}, h("strong", {}, `${done.discrepancies.length} discrepanc${done.discrepancies.length === 1 ? "y" : "ies"} on ${day(done.day)}`)),
          h("ul", {}, done.discrepancies.map((d) => h("li", { dataset: { code: d.code } }, d.words,
            h("div", { class: "sub" }, [d.provider_ref,
              d.ledger_amount === null ? null : `ledger ${money(d.ledger_amount, d.currency)}`,
              d.provider_amount === null ? null : `provider ${money(d.provider_amount, d.currency)}`].filter(Boolean).join(" · ")))))),
      h("dl", { class: "facts", "aria-label": "Matched" },
        fact("Matched", String(done.matched)),
        Object.entries(done.matched_totals).flatMap(([currency, kinds]) =>
          Object.entries(kinds).map(([kind, minor]) => fact(`${KINDS[kind] || kind}s matched`, money(minor, currency))))),
      h("h3", {}, "Collected per method"),
      Object.keys(done.collected).length
        ? h("table", { class: "queue", "aria-label": "Collections" },
          h("thead", {}, h("tr", {}, ["Method", "Payments less refunds"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, Object.entries(done.collected).map(([method, sums]) =>
            h("tr", {}, h("td", {}, METHODS[method] || method),
              h("td", { class: "amount" }, Object.entries(sums).map(([currency, minor]) => money(minor, currency)).join(" · "))))))
        : h("p", { class: "hint" }, "Nothing collected that day."),
      h("div", { class: "actions" }, csvLink(wanted)));
  } catch (error) {
    replace(box, head, problemBox(error, () => reconcile(box, picker)));
  }
}

// the CSV is behind the sign-in: fetched, then offered as a file from a blob: URL
function csvLink(wanted) {
  const link = h("a", { class: "button secondary", href: "#", id: "reconciliation-csv" }, "Download CSV");
  let url = null;
  link.addEventListener("click", async (e) => {
    if (url) return; // the file is ready: the browser downloads it
    e.preventDefault();
    try {
      url = URL.createObjectURL(await apiBlob(`/payments/reconciliation.csv?day=${wanted}`, "text/csv"));
      link.href = url;
      link.download = `reconciliation-${wanted}.csv`;
      link.click();
    } catch (error) {
      link.after(notice("error", error.message));
    }
  });
  return link;
}

async function ageing(box) {
  const head = h("h2", { id: "ageing-h" }, "Receivables by age");
  replace(box, head, spinner("Loading the receivables…"));
  try {
    const aged = await api("/payments/receivables");
    const buckets = ["0-30", "31-60", "61-90", "90+"];
    replace(box, head, h("p", { class: "hint" }, `As of ${day(aged.as_of)}, by the age of what is owed (days).`),
      aged.items.length
        ? h("table", { class: "queue", "aria-label": "Receivables" },
          h("thead", {}, h("tr", {}, ["Currency", ...buckets.map((b) => `${b} days`), "Credit", "Total"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, aged.items.map((a) => h("tr", {}, h("td", {}, a.currency.toUpperCase()),
            buckets.map((b) => h("td", { class: "amount" }, money(a.buckets[b] || 0, a.currency))),
            h("td", { class: "amount" }, money(a.credit, a.currency)), h("td", { class: "amount" }, money(a.total, a.currency))))))
        : emptyBox("Nobody owes the pharmacy anything."));
  } catch (error) {
    replace(box, head, problemBox(error, () => ageing(box)));
  }
}

const ITEM_WORDS = { consult: "Consult", delivery: "Delivery", fill: "Fill (any product without a price of its own)" };

async function priceList(box) {
  const head = h("h2", { id: "prices-h" }, "Price list");
  const said = h("div", { "aria-live": "polite" });
  replace(box, head, spinner("Loading the prices…"));
  const admin = role() === "pharmacy_admin";
  let policy = "after";
  async function put(item, amount) {
    const { items } = await api(`/payments/prices/${encodeURIComponent(item)}`, { method: "PUT", body: { amount } });
    draw(items);
  }
  // when the consult fee is paid: after the consult, in the waiting room (or later), or
  // before the pharmacist may admit the patient
  function feePolicy() {
    const choice = h("select", { id: "consult-fee-policy", disabled: !admin, onchange: async (e) => {
      try {
        ({ consult_fee: policy } = await api("/payments/settings", { method: "PUT", body: { consult_fee: e.target.value } }));
        replace(said, notice("ok", `Consult fee: ${CONSULT_FEE[policy]}.`));
      } catch (error) {
        e.target.value = policy;
        replace(said, notice("error", error.message));
      }
    } }, Object.entries(CONSULT_FEE).map(([value, words]) => h("option", { value, selected: value === policy }, words)));
    return h("div", { class: "fields" }, h("div", {}, h("label", { for: "consult-fee-policy" }, "Consult fee is paid"), choice));
  }
  function draw(items) {
    const item = h("input", { type: "text", id: "price-item", required: true, list: "price-items", placeholder: "consult, delivery, fill or ndc:<11 digits>", autocomplete: "off" });
    const amount = amountField("price-amount");
    replace(box, head, h("p", { class: "hint" }, admin ? "What a fill, a consult or a delivery is charged. Prices for a product: ndc:<11 digits>." : "Pharmacy admins set the prices."),
      said,
      feePolicy(),
      items.length
        ? h("table", { class: "queue", "aria-label": "Prices" },
          h("thead", {}, h("tr", {}, ["Item", "Price", ""].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, items.map((p) => h("tr", { dataset: { item: p.item } }, h("td", {}, ITEM_WORDS[p.item] || p.item),
            h("td", { class: "amount" }, money(p.amount, p.currency)),
            h("td", {}, admin ? h("button", { type: "button", class: "secondary", onclick: async () => {
              try { await put(p.item, null); } catch (error) { replace(said, notice("error", error.message)); }
            } }, "Remove") : null)))))
        : emptyBox("No prices yet: fills made ready are not charged by themselves."),
      admin ? h("form", { class: "fields", "aria-label": "Set a price", onsubmit: async (e) => {
        e.preventDefault();
        const name = item.value.trim();
        const minor = toMinor(amount.value);
        if (minor === null) { replace(said, notice("error", "Type the price in dollars, e.g. 15.00.")); amount.focus(); return; }
        try {
          await put(name, minor); // the hub says which items there are (400 in its words)
          replace(said, notice("ok", `${ITEM_WORDS[name] || name}: ${money(minor)}.`));
        } catch (error) {
          replace(said, notice("error", error.message));
        }
      } },
      h("datalist", { id: "price-items" }, ["consult", "delivery", "fill"].map((v) => h("option", { value: v }))),
      h("div", {}, h("label", { for: "price-item" }, "Item"), item),
      h("div", {}, h("label", { for: "price-amount" }, "Price ($)"), amount),
      h("div", { class: "actions" }, h("button", { type: "submit" }, "Set the price"))) : null);
  }
  try {
    const [prices, settings] = await Promise.all([api("/payments/prices"), api("/payments/settings")]);
    policy = settings.consult_fee;
    draw(prices.items);
  } catch (error) {
    replace(box, head, problemBox(error, () => priceList(box)));
  }
}
