// What a pharmacist asks the prescriber: a change request of the kind chosen (with the
// medications a substitution proposes, picked from the drug reference, or what a prescriber
// authorization must confirm), and a renewal request for an approved prescription whose
// refills are used up. The hub's rules decide; these forms only ask for what each kind needs.

import { api } from "../lib/api.js";
import { h } from "../lib/dom.js";

// MessageRequestCode of an RxChangeRequest, in the order a pharmacist meets them
export const CHANGE_KINDS = {
  S: "Script clarification",
  G: "Generic substitution",
  T: "Therapeutic interchange",
  P: "Prior authorization",
  D: "Drug use evaluation",
  OS: "Out of stock",
  U: "Prescriber authorization",
};
const PROPOSES = new Set(["G", "T"]); // at least one medication
const MAY_PROPOSE = new Set(["G", "T", "OS", "D"]);
const MEDICATIONS_MAX = 3;
const AUTHORIZATION = {
  A: "State license", B: "DEA registration", C: "DEA class", D: "State controlled substance registration",
  E: "State controlled substance class", F: "DATA 2000 waiver", G: "NPI", H: "Benefit plan enrollment",
  I: "Specialty", J: "Supervising prescriber", K: "Certificate to prescribe", L: "REMS enrollment", M: "Medicaid enrollment",
};
const QUANTITY_UNITS = { C48542: "tablets", C48480: "capsules", C28254: "mL", C48155: "g", C64933: "each", C48524: "patches" };
export const CLARIFY_REASONS = {
  drug: "Drug", strength: "Strength", dose: "Dose", quantity: "Quantity", directions: "Directions",
  patient: "Patient", prescriber: "Prescriber", other: "Other",
};

// one shared list of suggestions for every drug field, filled from GET /api/v1/drugs
let searching = 0;
function suggest(list, text) {
  clearTimeout(searching);
  if (text.trim().length < 2) return;
  searching = setTimeout(async () => {
    try {
      const found = await api(`/drugs?q=${encodeURIComponent(text.trim())}&limit=20`);
      list.replaceChildren(...found.items.map((d) => h("option", { value: d.name },
        d.schedule_label ? `${d.name} (${d.schedule_label})` : d.name)));
    } catch { /* suggestions are a help: typing on still works, and the hub checks the name */ }
  }, 250);
}

function medicationFields(index, rx, list) {
  const m = rx.medication || {};
  const id = (name) => `ask-med-${index}-${name}`;
  const unit = QUANTITY_UNITS[m.quantity?.unit_code] ? m.quantity.unit_code : "C48542";
  return h("fieldset", { class: "plain proposed", dataset: { index: String(index) } },
    h("legend", {}, `Proposed medication ${index + 1}`),
    h("label", { for: id("drug") }, "Drug (from the drug reference)"),
    h("input", { id: id("drug"), type: "text", name: "drug", list: list.id, required: true, maxLength: 200, autocomplete: "off",
      placeholder: "Type a name, e.g. atorvastatin 20", oninput: (e) => suggest(list, e.target.value) }),
    h("div", { class: "fields" },
      h("div", {}, h("label", { for: id("quantity") }, "Quantity"),
        h("input", { id: id("quantity"), name: "quantity", type: "number", min: "0.001", step: "any", required: true, value: m.quantity?.value ?? "" })),
      h("div", {}, h("label", { for: id("unit") }, "Unit"),
        h("select", { id: id("unit"), name: "quantity_unit" },
          Object.entries(QUANTITY_UNITS).map(([code, label]) => h("option", { value: code, selected: code === unit }, label)))),
      h("div", {}, h("label", { for: id("days") }, "Days supply"),
        h("input", { id: id("days"), name: "days_supply", type: "number", min: "1", max: "999", value: m.days_supply ?? "" })),
      h("div", {}, h("label", { for: id("refills") }, "Refills"),
        h("input", { id: id("refills"), name: "refills", type: "number", min: "0", max: "99", value: m.number_of_refills ?? "" }))),
    h("label", { for: id("sig") }, "Directions (sig)"),
    h("textarea", { id: id("sig"), name: "sig", required: true, maxLength: 1000 }, m.sig?.text || ""));
}

function medicationBody(fieldset) {
  const value = (name) => fieldset.querySelector(`[name="${name}"]`).value.trim();
  const number = (name) => (value(name) === "" ? null : Number(value(name)));
  return {
    drug: value("drug"), quantity: Number(value("quantity")), quantity_unit: value("quantity_unit"),
    sig: value("sig"), days_supply: number("days_supply"), refills: number("refills"),
  };
}

// The "ask the prescriber" form: made once per opening (the view re-renders after every
// poll, and what is typed must stay), its parts shown for the kind chosen.
export function changeRequestForm(rx, send) {
  const list = h("datalist", { id: "ask-drugs" });
  const kind = h("select", { id: "ask-kind", name: "request_code" },
    Object.entries(CHANGE_KINDS).map(([code, label]) => h("option", { value: code }, `${label} (${code})`)));
  const reason = h("select", { id: "ask-code", name: "reason_code" },
    h("option", { value: "" }, "Choose a reason…"),
    Object.entries(CLARIFY_REASONS).map(([value, label]) => h("option", { value }, label)));
  const reasonHint = h("p", { class: "hint", id: "ask-code-hint" });
  const text = h("textarea", { id: "ask-text", required: true, maxLength: 500, placeholder: "What the prescriber should know" });
  const authorization = h("fieldset", { class: "plain", id: "ask-authorization" },
    h("legend", {}, "What the prescriber must confirm"),
    Object.entries(AUTHORIZATION).map(([code, label]) =>
      h("label", { class: "inline" }, h("input", { type: "checkbox", name: "sub_code", value: code }), `${label} (${code})`)));
  const medications = h("div", { id: "ask-medications" });
  const add = h("button", { type: "button", class: "secondary", onclick: () => {
    medications.append(medicationFields(medications.children.length, rx, list));
    add.hidden = medications.children.length >= MEDICATIONS_MAX;
    medications.lastElementChild.querySelector("input").focus();
  } }, "Propose another medication");
  const proposing = h("div", { id: "ask-proposing" },
    h("p", { class: "hint", id: "ask-proposing-hint" }), medications, add, list);

  function show() {
    const code = kind.value;
    reason.required = code === "S";
    reasonHint.textContent = code === "S" ? "Required for a clarification." : "Optional for this kind.";
    authorization.hidden = code !== "U";
    proposing.hidden = !MAY_PROPOSE.has(code);
    proposing.querySelector("#ask-proposing-hint").textContent = PROPOSES.has(code)
      ? "Propose the medication you would dispense instead (up to 3)."
      : "You may propose alternatives (up to 3); leave none to ask about the prescription as written.";
    if (PROPOSES.has(code) && !medications.children.length) medications.append(medicationFields(0, rx, list));
    if (!MAY_PROPOSE.has(code)) medications.replaceChildren();
    add.hidden = medications.children.length >= MEDICATIONS_MAX;
  }
  kind.addEventListener("change", show);

  const form = h("form", { class: "card", "aria-labelledby": "ask-h", onsubmit: (e) => {
    e.preventDefault();
    const code = kind.value;
    const body = { request_code: code, text: text.value.trim() };
    if (reason.value) body.reason_code = reason.value;
    if (code === "U") body.sub_codes = [...authorization.querySelectorAll("input:checked")].map((c) => c.value);
    if (MAY_PROPOSE.has(code)) body.medications = [...medications.children].map(medicationBody);
    send(body, `${CHANGE_KINDS[code]} requested from the prescriber.`);
  } },
  h("h3", { id: "ask-h" }, "Ask the prescriber"),
  h("label", { for: "ask-kind" }, "What do you ask?"), kind,
  h("label", { for: "ask-code" }, "Reason"), reason, reasonHint,
  authorization, proposing,
  h("label", { for: "ask-text" }, "Message"), text,
  h("div", { class: "actions" }, h("button", { type: "submit" }, "Send the request")));
  show();
  return form;
}

// A renewal request: the refills written must be stated used up; refills asked for and a note
// are optional.
export function renewalForm(rx, send) {
  const written = rx.renewal.refills;
  const used = rx.renewal.confirm_refills_used
    ? h("label", { class: "inline" }, h("input", { type: "checkbox", id: "renew-used", required: true }),
      `All ${written} refill${written === 1 ? "" : "s"} written have been used`)
    : h("p", { class: "hint" }, "Written with no refills.");
  const refills = h("input", { id: "renew-refills", type: "number", min: "0", max: "99", placeholder: "As the prescriber sees fit" });
  const note = h("textarea", { id: "renew-note", maxLength: 500, placeholder: "Optional, for the prescriber" });
  return h("form", { class: "card", "aria-labelledby": "renew-h", onsubmit: (e) => {
    e.preventDefault();
    const body = { refills_used: Boolean(rx.renewal.confirm_refills_used) };
    if (refills.value !== "") body.refills = Number(refills.value);
    if (note.value.trim()) body.note = note.value.trim();
    send(body, "Renewal requested from the prescriber.");
  } },
  h("h3", { id: "renew-h" }, "Request a renewal"),
  used,
  h("label", { for: "renew-refills" }, "Refills to ask for"), refills,
  h("label", { for: "renew-note" }, "Note for the prescriber"), note,
  h("div", { class: "actions" }, h("button", { type: "submit" }, "Send the renewal request")));
}

// how a request shows beside its message in "Messages to the prescriber"
export function requestLabel(request) {
  if (!request) return null;
  if (request.message_type === "RxRenewalRequest") {
    return request.detail?.refills != null ? `renewal, ${request.detail.refills} refills asked` : "renewal";
  }
  const kind = CHANGE_KINDS[request.request_code] || request.request_code;
  const drugs = (request.detail?.medications || []).map((m) => m.drug_description);
  const subjects = (request.detail?.sub_codes || []).map((c) => AUTHORIZATION[c] || c);
  return [kind, drugs.length ? `proposing ${drugs.join(", ")}` : null, subjects.length ? `to confirm ${subjects.join(", ")}` : null]
    .filter(Boolean).join(" · ");
}
