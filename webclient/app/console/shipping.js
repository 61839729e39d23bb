// Shipping a ready fill to a patient who chose delivery: the carrier and tracking number
// (the hub checks the number's form and tells the patient, with the tracking link), then
// "Delivered" once it arrived. The shipment's state is `shipped` (out for delivery) or
// `delivered`. Mounted on the pick-up page (willcall.js).

import { api } from "../lib/api.js";
import { h, replace, when, fact, announce, spinner, problemBox } from "../lib/dom.js";

const CARRIERS = { usps: "USPS", ups: "UPS", fedex: "FedEx", dhl: "DHL" };
const title = () => h("h2", { id: "ship-h" }, "Delivery");

export function shippingCard(fill) {
  const card = h("section", { class: "card", "aria-labelledby": "ship-h" }, title(), spinner("Loading the shipment…"));
  const message = h("div", { "aria-live": "polite" });
  const flash = (text, kind) => replace(message, h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text));

  function shipped(s) {
    const deliver = h("button", { type: "button", id: "mark-delivered", class: "secondary" }, "Mark delivered");
    deliver.addEventListener("click", async () => {
      deliver.disabled = true;
      try {
        show(await api(`/fills/${fill.id}/shipment/delivered`, { method: "POST" }));
        announce("Delivered.");
      } catch (error) {
        deliver.disabled = false;
        flash(error.message, "error");
      }
    });
    replace(card, title(),
      h("dl", { class: "facts" },
        fact("State", s.state === "shipped" ? "Out for delivery" : "Delivered"),
        fact("Carrier", CARRIERS[s.carrier] || s.carrier),
        fact("Tracking", h("a", { href: s.tracking_url, target: "_blank", rel: "noopener noreferrer" }, s.tracking_number)),
        fact("Shipped", when(s.shipped_at)),
        s.delivered_at ? fact("Delivered", when(s.delivered_at)) : null),
      message, s.state === "shipped" ? h("div", { class: "actions" }, deliver) : null);
  }

  function form() {
    const carrier = h("select", { id: "ship-carrier", required: true },
      Object.entries(CARRIERS).map(([value, label]) => h("option", { value }, label)));
    const number = h("input", { type: "text", id: "ship-tracking", required: true, maxLength: 40, autocomplete: "off", spellcheck: false });
    const button = h("button", { type: "submit", id: "mark-shipped", class: "secondary" }, "Mark shipped");
    replace(card, title(),
      h("p", { class: "hint" }, "For a patient who chose delivery: the patient is sent the tracking link."),
      h("form", { onsubmit: async (e) => {
        e.preventDefault();
        button.disabled = true;
        try {
          show(await api(`/fills/${fill.id}/shipment`, { method: "POST", body: { carrier: carrier.value, tracking_number: number.value.trim() } }));
          announce("Shipped.");
        } catch (error) {
          button.disabled = false;
          flash(error.message, "error");
        }
      } },
      h("label", { for: "ship-carrier" }, "Carrier"), carrier,
      h("label", { for: "ship-tracking" }, "Tracking number"), number,
      message, h("div", { class: "actions" }, button)));
  }

  function show(s) {
    if (s) shipped(s);
    else if (fill.state === "ready") form();
    else replace(card, title(), h("p", { class: "hint" }, "Not shipped."));
  }

  async function load() {
    try {
      show(await api(`/fills/${fill.id}/shipment`));
    } catch (error) {
      if (error.status === 404) show(null);
      else replace(card, title(), problemBox(error, load));
    }
  }
  load();
  return card;
}
