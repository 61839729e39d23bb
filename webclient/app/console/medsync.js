// Med sync on a patient's profile (pharmacists): the short fills the hub proposes to bring
// the patient's chronic medications to one pick-up day, and the pharmacist's acceptance
// (recorded: the sync day and the short fills; the fills themselves are started from the
// fill queue). Mounted on the profile (patient.js).

import { api } from "../lib/api.js";
import { h, replace, day, when, announce, spinner, problemBox } from "../lib/dom.js";

const title = () => h("h2", { id: "medsync-h" }, "Med sync");

function fillsTable(fills) {
  return h("table", { class: "queue", "aria-label": "Short fills to the sync day" },
    h("thead", {}, h("tr", {}, ["Medication", "Short fill", "Quantity", "From", "Then on"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, fills.map((f) => h("tr", {},
      h("td", {}, h("a", { href: `#/rx/${f.prescription_id}` }, f.drug_description)),
      h("td", {}, f.days_supply ? `${f.days_supply} days` : "none: already aligned"),
      h("td", {}, f.days_supply ? f.quantity : "—"),
      h("td", {}, day(f.starts_on)),
      h("td", {}, day(f.sync_on), f.stays_aligned ? null : h("div", { class: "hint" }, "drifts: its days supply is not whole cycles"))))));
}

export function medSyncCard(patientId) {
  const card = h("section", { class: "card", "aria-labelledby": "medsync-h" }, title(), spinner("Loading med sync…"));
  const url = `/patients/${patientId}/med-sync`;

  function show(found) {
    const { proposal, accepted } = found;
    const accept = h("button", { type: "button", id: "accept-medsync", class: "secondary" }, "Accept this plan");
    accept.addEventListener("click", async () => {
      accept.disabled = true;
      try {
        show(await api(url, { method: "POST", body: { anchor: proposal.anchor } }));
        announce("Med sync accepted.");
      } catch (error) {
        accept.disabled = false;
        card.append(h("div", { class: "notice error", role: "alert" }, error.message));
      }
    });
    replace(card, title(),
      accepted ? h("p", {}, `Sync day ${day(accepted.anchor)}, every ${accepted.cycle_days} days (accepted ${when(accepted.accepted_at)}).`) : null,
      proposal ? [
        h("p", { class: "hint" }, `Proposed: pick-up on ${day(proposal.anchor)} and every ${proposal.cycle_days} days; ${proposal.short_days} short-fill days in all.`),
        fillsTable(proposal.fills),
        h("div", { class: "actions" }, accept),
      ] : h("p", { class: "hint" }, `Med sync needs two chronic medications or more (found ${found.chronic}).`));
  }

  async function load() {
    try {
      show(await api(url));
    } catch (error) {
      replace(card, title(), problemBox(error, load));
    }
  }
  load();
  return card;
}
