// Patients' requests from their own page (/me/...): a refill while refills remain (start the
// fill here), or a renewal when none remain (open the prescription and ask the prescriber
// there: its renewal form sends the RxRenewalRequest). Each is closed once acted on.

import { api } from "../lib/api.js";
import { h, replace, ago, when, personName, announce, emptyBox } from "../lib/dom.js";

const KIND = { refill: "Refill", renewal: "Renewal" };

async function close(request, state) {
  await api(`/refill-requests/${request.id}/close`, { method: "POST", body: { state } });
}

function actions(request, said) {
  const fail = (error) => replace(said, h("div", { class: "notice error", role: "alert" }, error.message));
  const decline = h("button", { type: "button", class: "secondary", onclick: async () => {
    try {
      await close(request, "declined");
      announce("Request closed.");
      window.dispatchEvent(new HashChangeEvent("hashchange"));
    } catch (error) { fail(error); }
  } }, "Close");
  if (request.kind === "refill") {
    return [h("button", { type: "button", id: `refill-${request.id}`, onclick: async (e) => {
      e.currentTarget.disabled = true;
      try {
        const fill = await api(`/prescriptions/${request.prescription_id}/fills`, { method: "POST", body: {} });
        await close(request, "done");
        announce("Refill started.");
        location.hash = `#/fills/${fill.id}`;
      } catch (error) { e.currentTarget.disabled = false; fail(error); }
    } }, "Start the refill"), decline];
  }
  return [h("a", { class: "button", href: `#/rx/${request.prescription_id}` }, "Ask the prescriber"),
    h("button", { type: "button", class: "secondary", onclick: async () => {
      try {
        await close(request, "done");
        window.dispatchEvent(new HashChangeEvent("hashchange"));
      } catch (error) { fail(error); }
    } }, "Done"), decline];
}

// the card of the fill queue: every open request of the pharmacy, oldest first
export async function refillRequestsCard() {
  const { items } = await api("/refill-requests");
  const said = h("div", { "aria-live": "assertive" });
  return h("section", { class: "card", "aria-labelledby": "patient-requests-h", id: "patient-requests" },
    h("h2", { id: "patient-requests-h" }, `Patients' requests (${items.length})`),
    items.length
      ? h("table", { class: "table" },
          h("caption", { class: "visually-hidden" }, "Refill and renewal requests from patients"),
          h("thead", {}, h("tr", {}, ["Patient", "Medication", "Asks for", "Asked", ""].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, items.map((r) => h("tr", { dataset: { request: r.id } },
            h("td", {}, h("a", { href: `#/patients/${r.patient_id}` }, personName(r.patient))),
            h("td", {}, h("div", { class: "drug" }, r.drug), h("div", { class: "sub" }, [r.rx_number ? `Rx ${r.rx_number}` : null, r.prescription_status].filter(Boolean).join(" · "))),
            h("td", {}, h("span", { class: `badge ${r.kind === "refill" ? "info" : "warning"}` }, KIND[r.kind])),
            h("td", {}, h("span", { title: when(r.created_at) }, ago(r.created_at))),
            h("td", {}, h("div", { class: "actions" }, actions(r, said)))))))
      : emptyBox("No patient is waiting for a refill."),
    said);
}
