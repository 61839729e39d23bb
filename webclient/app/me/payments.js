// The patient's payments on their own page: what they owe in plain words and what each line
// is for, "Pay now" (the balance, or less), a card typed into the payment provider's own
// fields (its script loaded from the hub's js_url; the card number goes to the provider, never
// to the hub), "save this card", saved cards used again or removed, their payment plan. A
// payment shows as "processing" until the ledger has it: the provider's signed webhook puts it
// there, so the page asks for the balance again a few times.

import { h, replace, announce, day } from "../lib/dom.js";
import { me } from "./api.js";

const POLLS = 12;
const POLL_MS = 1000;
const INSTALMENT = {
  pending: "Due",
  asked: "Being paid",
  paid: "Paid",
  failed: "Not paid yet: we will try again",
  stopped: "Not paid: please call your pharmacy",
  cancelled: "Cancelled",
};

const formats = new Map();
function format(currency) {
  const code = (currency || "usd").toUpperCase();
  if (!formats.has(code)) formats.set(code, new Intl.NumberFormat("en-US", { style: "currency", currency: code }));
  return formats.get(code);
}
const digits = (currency) => format(currency).resolvedOptions().maximumFractionDigits;
export const money = (minor, currency) => format(currency).format(minor / 10 ** digits(currency));

// "12.34" -> 1234 in the currency's minor unit; null when it is not an amount
export function toMinor(text, currency) {
  const places = digits(currency);
  const typed = String(text).trim().replace(/^\$/, "").replace(/,/g, "");
  const pattern = places ? new RegExp(`^(\\d+)(?:\\.(\\d{1,${places}}))?$`) : /^(\d+)$/;
  const found = pattern.exec(typed);
  if (!found) return null;
  return Number(found[1]) * 10 ** places + Number((found[2] || "").padEnd(places, "0") || 0);
}

const toText = (minor, currency) => (minor / 10 ** digits(currency)).toFixed(digits(currency));

function problem(error) {
  return h("p", { class: "notice error", role: "alert" }, error.message || String(error));
}

function cardName(card) {
  const brand = card.brand ? card.brand[0].toUpperCase() + card.brand.slice(1) : "Card";
  const expiry = card.exp_month && card.exp_year ? `, expires ${String(card.exp_month).padStart(2, "0")}/${card.exp_year}` : "";
  return `${brand} ending in ${card.last4 || "····"}${expiry}`;
}

// -- the provider's card fields --------------------------------------------------------------

let loading = null;
export function providerScript(url) {
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = url;
      script.onload = () => resolve(window.Stripe);
      script.onerror = () => {
        loading = null;
        reject(new Error("The card form could not be loaded. Check your connection and try again."));
      };
      document.head.append(script);
    });
  }
  return loading;
}

// A card set up at the provider and its fields mounted in `holder`: what paying with a new
// card needs (the setup is asked the first time the patient chooses a new card).
async function newCardFields(holder) {
  const setup = await me("/cards", { method: "POST" });
  const Stripe = await providerScript(setup.js_url);
  const stripe = Stripe(setup.publishable_key);
  const element = stripe.elements().create("card");
  holder.replaceChildren();
  element.mount(holder);
  return { setup, stripe, element };
}

// The provider's script for a saved card's bank check (3-D Secure): its URL and key come with
// a card setup, which is then left unused.
async function providerFor() {
  const setup = await me("/cards", { method: "POST" });
  const Stripe = await providerScript(setup.js_url);
  return Stripe(setup.publishable_key);
}

// -- the section -----------------------------------------------------------------------------

export async function payments(el, thanks = null) {
  const [statement, cards, plans] = await Promise.all([me("/balance"), me("/cards"), me("/plans")]);
  const owedEntry = Object.entries(statement.balance).find(([, amount]) => amount > 0);
  const currency = owedEntry ? owedEntry[0] : (Object.keys(statement.balance)[0] || statement.items[0]?.currency || "usd");
  const owed = owedEntry ? owedEntry[1] : 0;
  const credit = Object.entries(statement.balance).find(([, amount]) => amount < 0);
  const status = h("div", { "aria-live": "polite" },
    thanks ? h("p", { class: "notice ok", role: "status" }, thanks) : null);
  const planned = plans.items.some((p) => p.status === "active");
  const summary = owed > 0
    ? h("p", { class: "me-owed", id: "owed" }, `You owe ${money(owed, currency)}`)
    : h("p", { class: "me-owed", id: "owed" }, `You owe ${money(0, currency)}`,
      h("span", { class: "hint" }, credit ? ` · You have a credit of ${money(-credit[1], credit[0])}.` : " · Nothing to pay now."));
  // an active plan pays the balance: paying it again here would pay twice
  const pay = owed > 0 && !planned ? payForm(el, owed, currency, cards.items) : null;
  replace(el,
    summary,
    status,
    linesList(statement.items),
    pay,
    plansView(plans.items),
    owed > 0 && planned ? h("p", { class: "hint" }, "Your payment plan pays this balance. To pay it off sooner, call your pharmacy.") : null,
    savedCards(el, cards.items, status));
}

function linesList(items) {
  if (!items.length) return h("p", { class: "hint" }, "No charges yet.");
  return [
    h("h3", {}, "What it is for"),
    h("ul", { class: "me-list me-lines" }, items.map((line) => h("li", { class: `me-line ${line.kind}` },
      h("span", { class: "me-line-what" }, line.description),
      h("span", { class: "me-line-amount" }, line.signed < 0 ? `−${money(-line.signed, line.currency)}` : money(line.signed, line.currency)),
      h("span", { class: "hint me-line-date" }, day(line.at))))),
  ];
}

function plansView(items) {
  const plan = items.find((p) => p.status === "active") || items.find((p) => p.status === "completed");
  if (!plan) return null;
  const count = plan.instalments.length;
  return h("div", { class: "me-plan", id: "plan" },
    h("h3", {}, "Your payment plan"),
    h("p", {}, `${money(plan.total, plan.currency)} in ${count} payments; ${money(plan.paid, plan.currency)} paid.`,
      plan.status === "completed" ? " The plan is paid in full. Thank you!" : " Your saved card is charged on each date."),
    h("ol", { class: "me-list me-instalments" }, plan.instalments.map((i) => h("li", { class: `me-instalment ${i.status}` },
      h("span", { class: "me-line-what" }, `Payment ${i.number} of ${count}`),
      h("span", { class: "me-line-amount" }, money(i.amount, plan.currency)),
      h("span", { class: "hint me-line-date" }, `${day(i.due)} · `,
        h("span", { class: `badge me-status ${i.status === "paid" ? "ready" : i.status === "stopped" ? "cancelled" : ""}` }, INSTALMENT[i.status] || i.status))))));
}

function savedCards(el, items, status) {
  if (!items.length) return null;
  return [
    h("h3", {}, "Your saved cards"),
    h("ul", { class: "me-list me-cards" }, items.map((card) => h("li", { class: "me-card" },
      h("span", { class: "me-line-what" }, cardName(card)),
      h("button", { type: "button", class: "secondary", "aria-label": `Remove ${cardName(card)}`, onclick: async (event) => {
        event.currentTarget.disabled = true;
        try {
          await me(`/cards/${card.id}`, { method: "DELETE" });
          announce("Card removed.");
          await payments(el, "The card is removed.");
        } catch (err) {
          event.currentTarget.disabled = false;
          replace(status, problem(err));
        }
      } }, "Remove")))),
  ];
}

function payForm(el, owed, currency, cards) {
  const status = h("div", { "aria-live": "polite", id: "pay-status" });
  const amount = h("input", {
    id: "pay-amount", name: "amount", type: "text", inputmode: "decimal", autocomplete: "off",
    value: toText(owed, currency), required: true, "aria-describedby": "pay-amount-hint",
  });
  const fields = h("div", { class: "me-card-field", id: "card-field", role: "group", "aria-label": "Card details" });
  const save = h("input", { type: "checkbox", id: "save-card", name: "save" });
  const newCard = h("div", { class: "me-new-card", id: "new-card" },
    h("p", { class: "hint", id: "card-hint" }, "Type your card in the payment provider's secure fields. Your pharmacy never sees the number."),
    fields,
    h("div", { class: "me-switch" }, save, h("label", { for: "save-card", class: "inline" }, "Save this card for later payments")));
  const choices = cards.map((card, index) => h("div", { class: "me-switch" },
    h("input", { type: "radio", name: "pay-with", id: `pay-with-${card.id}`, value: card.id, checked: index === 0 }),
    h("label", { for: `pay-with-${card.id}`, class: "inline" }, cardName(card))));
  const fresh = h("input", { type: "radio", name: "pay-with", id: "pay-with-new", value: "new", checked: !cards.length });
  const button = h("button", { type: "submit", id: "pay-now" }, "Pay now");
  const form = h("form", { novalidate: true, class: "me-pay", "aria-labelledby": "pay-now-head" },
    h("h3", { id: "pay-now-head" }, "Pay now"),
    h("label", { for: "pay-amount" }, `Amount (${currency.toUpperCase()})`),
    h("p", { class: "hint", id: "pay-amount-hint" }, `Up to ${money(owed, currency)}. You may pay part of it.`),
    amount,
    h("fieldset", { class: "plain" }, h("legend", {}, "Pay with"), choices,
      h("div", { class: "me-switch" }, fresh, h("label", { for: "pay-with-new", class: "inline" }, cards.length ? "A new card" : "A card"))),
    newCard,
    h("div", { class: "actions" }, button),
    status);

  let card = null; // the new card's setup and fields, once asked
  const chosen = () => form.querySelector("input[name=pay-with]:checked")?.value || "new";
  const showNew = async () => {
    const isNew = chosen() === "new";
    newCard.hidden = !isNew;
    if (!isNew || card) return;
    replace(fields, h("p", { role: "status" }, "Loading the card form…"));
    try {
      card = await newCardFields(fields);
    } catch (err) {
      replace(fields, problem(err));
    }
  };
  form.addEventListener("change", (event) => { if (event.target.name === "pay-with") showNew(); });
  queueMicrotask(showNew);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const minor = toMinor(amount.value, currency);
    if (minor === null || minor < 1) {
      replace(status, problem(new Error(`Type an amount, like ${toText(owed, currency)}.`)));
      return amount.focus();
    }
    if (minor > owed) {
      replace(status, problem(new Error(`You owe ${money(owed, currency)}: you cannot pay more than that.`)));
      return amount.focus();
    }
    button.disabled = true;
    replace(status, h("p", { class: "loading", role: "status" }, h("span", { class: "spin", "aria-hidden": "true" }), "Processing your payment…"));
    try {
      let cardId = chosen();
      let saveIt = false;
      if (cardId === "new") {
        if (!card) throw new Error("The card form is not ready yet. Try again in a moment.");
        if (!card.confirmed) {
          const confirmed = await card.stripe.confirmCardSetup(card.setup.client_secret, { payment_method: { card: card.element } });
          if (confirmed.error) throw new Error(confirmed.error.message || "The card was not accepted.");
          card.confirmed = true;
        }
        cardId = card.setup.card_id;
        saveIt = save.checked;
      }
      const before = await me("/balance");
      const key = crypto.randomUUID();
      const asked = await fetchPayment(minor, currency, cardId, saveIt, key);
      if (asked.status === "requires_action" && asked.client_secret) {
        const stripe = cardId === card?.setup.card_id ? card.stripe : await providerFor();
        const checked = await stripe.confirmCardPayment(asked.client_secret);
        if (checked.error) throw new Error(checked.error.message || "Your bank did not confirm the payment.");
      }
      if (asked.status === "requires_payment_method" || asked.status === "canceled") {
        throw new Error("The card was declined. Try another card.");
      }
      await landed(el, before, minor, currency, status);
    } catch (err) {
      button.disabled = false;
      replace(status, problem(err));
      status.querySelector("[role=alert]")?.scrollIntoView?.({ block: "nearest" });
      if (card?.confirmed && chosen() === "new") { // that card is spent: fields for another
        card.element.destroy?.();
        card = null;
        showNew();
      }
    }
  });
  return form;
}

function fetchPayment(amount, currency, cardId, save, key) {
  return me("/payments", { method: "POST", body: { amount, currency, card_id: cardId, save }, headers: { "Idempotency-Key": key } });
}

// The payment on the ledger (the provider's webhook settled it): a payment line not there
// before. Until then "processing"; after a few tries, said plainly.
async function landed(el, before, minor, currency, status) {
  const known = new Set(before.items.map((line) => line.id));
  for (let i = 0; i < POLLS; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    const now = await me("/balance");
    if (now.items.some((line) => line.kind === "payment" && !known.has(line.id))) {
      const words = `Thank you. Your payment of ${money(minor, currency)} is in.`;
      announce(words);
      return payments(el, words);
    }
  }
  replace(status, h("p", { class: "notice info", role: "status" },
    "Your payment is still being processed. It will show here shortly; you do not need to pay again. ",
    h("button", { type: "button", class: "secondary", onclick: () => payments(el) }, "Check again")));
}
