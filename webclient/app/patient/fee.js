// The consultation fee in the waiting room, when the pharmacy charges for consults: the fee,
// and "Pay now" with a card typed into the payment provider's own fields (the card number goes
// to the provider, never to the hub), or "pay later" when the pharmacy allows it. The patient
// has no account: the consult's resume token (the seat's credential) names them. A payment is
// "processing" until the provider's signed webhook settles it; the panel asks again meanwhile,
// while the waiting room goes on beside it.

import { api } from "../lib/api.js";
import { h, replace, announce } from "../lib/dom.js";
import { money, providerScript } from "../me/payments.js";

const POLL_MS = 1500;
const POLLS = 40;

function problem(text) {
  return h("p", { class: "notice error", role: "alert" }, text);
}

// The panel in `el` stops (the patient was admitted, or the waiting room shown again).
export function clearFee(el) {
  el.feeShown = (el.feeShown || 0) + 1;
  replace(el);
}

// `el` shows the fee of the consult whose resume token `resume()` gives.
export async function feePanel(el, resume) {
  clearFee(el);
  const shown = el.feeShown;
  const live = () => el.feeShown === shown;
  const ask = (path, body = {}, headers = undefined) =>
    api(`/consult-fee${path}`, { method: "POST", body: { resume: resume(), ...body }, anonymous: true, headers });
  let fee;
  try {
    fee = await ask("");
  } catch {
    return null; // no fee to show: the waiting room goes on
  }
  return show(fee);

  function show(now, note = null) {
    if (!live()) return null;
    if (now.status === "none" || now.amount === null) return replace(el);
    const amount = money(now.amount, now.currency);
    if (now.status === "paid") {
      return replace(el, h("section", { class: "fee", id: "fee", "aria-labelledby": "fee-head" },
        h("h2", { id: "fee-head" }, "Consultation fee"),
        h("p", { class: "notice ok", role: "status", id: "fee-paid" }, `Paid: ${amount}. Thank you.`)));
    }
    if (now.status === "covered") {
      return replace(el, h("section", { class: "fee", id: "fee", "aria-labelledby": "fee-head" },
        h("h2", { id: "fee-head" }, "Consultation fee"),
        h("p", { class: "notice ok", role: "status", id: "fee-covered" }, `${amount}: your credit with the pharmacy covers it. Nothing to pay.`)));
    }
    if (now.policy === "after") {
      return replace(el, h("section", { class: "fee", id: "fee", "aria-labelledby": "fee-head" },
        h("h2", { id: "fee-head" }, "Consultation fee"),
        h("p", { class: "hint" }, `${amount}, billed after the consultation.`)));
    }
    if (now.status === "processing") {
      replace(el, h("section", { class: "fee", id: "fee", "aria-labelledby": "fee-head" },
        h("h2", { id: "fee-head" }, "Consultation fee"),
        h("p", { class: "loading", role: "status", id: "fee-processing" }, h("span", { class: "spin", "aria-hidden": "true" }), `Your payment of ${amount} is being processed…`)));
      return poll();
    }
    return form(now, amount, note);
  }

  async function poll() {
    for (let i = 0; i < POLLS && live(); i += 1) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      let now;
      try { now = await ask(""); } catch { continue; }
      if (now.status === "paid") {
        announce("Your consultation fee is paid. Thank you.");
        return show(now);
      }
      if (now.status !== "processing") {
        return show(now, now.status === "failed" ? `Your card was declined: ${now.reason || "the bank said no"}. Try another card.` : null);
      }
    }
    if (!live()) return null;
    replace(el.querySelector("#fee-processing") || el, h("p", { class: "notice info", role: "status" },
      "Your payment is still being processed. You do not need to pay again; the pharmacist sees when it arrives."));
  }

  function form(now, amount, note) {
    const due = money(now.due ?? now.amount, now.currency); // the fee less any credit
    const fields = h("div", { class: "me-card-field", id: "fee-card-field", role: "group", "aria-label": "Card details" });
    const status = h("div", { "aria-live": "polite", id: "fee-status" }, note ? problem(note) : null);
    const button = h("button", { type: "submit", id: "fee-pay" }, `Pay ${due}`);
    const before = now.policy === "before_admission";
    const section = h("form", { class: "fee", id: "fee", novalidate: true, "aria-labelledby": "fee-head" },
      h("h2", { id: "fee-head" }, "Consultation fee"),
      h("p", { id: "fee-what" }, before
        ? `Please pay the consultation fee of ${amount}. Your pharmacist lets you in once it is paid.`
        : `The consultation fee is ${amount}. You can pay it now, or later: your pharmacy will bill you after the consultation.`),
      due !== amount ? h("p", { class: "hint" }, `Your credit with the pharmacy pays the rest: ${due} to pay.`) : null,
      h("p", { class: "hint" }, "Type your card in the payment provider's secure fields. Your pharmacy never sees the number."),
      fields,
      h("div", { class: "actions" }, button),
      status);
    replace(el, section);
    let card = null;
    (async () => {
      replace(fields, h("p", { role: "status" }, "Loading the card form…"));
      try {
        const setup = await ask("/cards");
        const Stripe = await providerScript(setup.js_url);
        const stripe = Stripe(setup.publishable_key);
        const element = stripe.elements().create("card");
        fields.replaceChildren();
        element.mount(fields);
        card = { setup, stripe, element };
      } catch (err) {
        replace(fields, problem(err.message || String(err)));
      }
    })();
    section.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!card) return replace(status, problem("The card form is not ready yet. Try again in a moment."));
      button.disabled = true;
      replace(status, h("p", { class: "loading", role: "status" }, h("span", { class: "spin", "aria-hidden": "true" }), "Processing your payment…"));
      try {
        const confirmed = await card.stripe.confirmCardSetup(card.setup.client_secret, { payment_method: { card: card.element } });
        if (confirmed.error) throw new Error(confirmed.error.message || "The card was not accepted.");
        const asked = await ask("/payments", { card_id: card.setup.card_id }, { "Idempotency-Key": crypto.randomUUID() });
        if (asked.status === "requires_action" && asked.client_secret) {
          const checked = await card.stripe.confirmCardPayment(asked.client_secret);
          if (checked.error) throw new Error(checked.error.message || "Your bank did not confirm the payment.");
        }
        show({ ...now, status: "processing" });
      } catch (err) {
        if (err.code === "fee_paid" || err.code === "fee_processing") {
          try { return show(await ask("")); } catch { /* the waiting room goes on */ }
        }
        // the card's setup is spent once confirmed: fresh fields for another try
        form(now, amount, err.message || String(err));
        el.querySelector("#fee-status [role=alert]")?.scrollIntoView?.({ block: "nearest" });
      }
    });
  }
}
