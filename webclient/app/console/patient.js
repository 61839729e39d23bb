// A patient's profile (issue 17, docs/patients.md "Profile: allergies, conditions, medications,
// timeline"): allergies (the prescriptions' and the staff's; staff add and remove them), the
// conditions the prescriptions' diagnoses name, medications with their prescribers, the fills,
// the prescriptions and their notes, the timeline (newest first, "Load more"); contact points,
// preferences and consent, and adherence (pharmacists), from preferences.js. And the patient
// search (#/patients): name, birth date, phone.

import { api, loadInto } from "../lib/api.js";
import { currentUser } from "../lib/auth.js";
import { h, replace, append, fact, when, day, personName, announce, emptyBox, problemBox } from "../lib/dom.js";
import { pager } from "../lib/pager.js";
import { markers, stateBadge } from "./queue.js";
import { startConsult } from "./consults.js";
import { contactCard, patientAdherenceCard, KIND_LABELS } from "./preferences.js";
import { patientPaymentsCard } from "./payments.js";
import { medSyncCard } from "./medsync.js";

// who may add and remove allergies (server/patients/http.py)
const mayChange = () => ["pharmacist", "technician"].includes(currentUser()?.role);
const notice = (kind, ...text) => h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, ...text);

const CODE_SYSTEMS = [["free_text", "Free text (no code)"], ["rxnorm", "RxNorm"], ["snomed", "SNOMED CT"], ["ndfrt", "NDF-RT"], ["ndc", "NDC"], ["unii", "UNII"]];
const SYSTEM_LABEL = Object.fromEntries(CODE_SYSTEMS.map(([k, v]) => [k, k === "free_text" ? "" : v]));
const SEVERITIES = [["", "Not said"], ["mild", "Mild"], ["moderate", "Moderate"], ["severe", "Severe"], ["unknown", "Unknown"]];
const MED_STATUS = { active: "Active", pending: "Pending", past: "Past" };
const FILL_STATE = { filling: "Filling", product_check: "Product check", ready: "Ready for pick-up", completed: "Picked up",
  returned_to_stock: "Returned to stock", cancelled: "Cancelled" };
const RX_STATE = { received: "Received", checking: "Checks running", awaiting_review: "Waiting for review", in_review: "In review",
  approved: "Approved", rejected: "Rejected", clarification_requested: "Clarification asked", filling: "Filling",
  product_check: "Product check", ready: "Ready for pick-up", completed: "Picked up", returned_to_stock: "Returned to stock",
  cancelled: "Cancelled" };
const REQUEST = { RxChangeRequest: "Change or clarification asked", RxRenewalRequest: "Renewal asked" };

export async function patientView(el, id) {
  const patient = await loadInto(el, `/patients/${id}`, "patient");
  if (!patient) return;
  const list = (items, render, empty) => (items.length ? h("ul", {}, items.map(render)) : h("p", { class: "hint" }, empty));
  replace(el,
    h("p", {}, h("a", { href: "#/patients", onclick: (e) => { if (history.length > 1) { e.preventDefault(); history.back(); } } }, "← Back")),
    h("div", { class: "page-head" }, h("h1", {}, personName(patient.name)), h("span", { class: "spacer" }),
      currentUser()?.role === "pharmacist"
        ? h("button", { type: "button", onclick: () => startConsult(patient.id, null) }, "Video consult…") : null,
      h("a", { href: `#/patients/${patient.id}/merge`, class: "button secondary" }, "Merge…")),
    h("div", { class: "grid" },
      h("section", { class: "card" }, h("h2", {}, "Details"),
        h("dl", { class: "facts" },
          fact("Born", day(patient.date_of_birth)),
          fact("Gender", { M: "Male", F: "Female", U: "Unknown" }[patient.gender] || patient.gender),
          fact("Address", [patient.demographics?.address?.line1, patient.demographics?.address?.city].filter(Boolean).join(", ")))),
      allergyCard(patient),
      h("section", { class: "card", "aria-labelledby": "conditions-h" }, h("h2", { id: "conditions-h" }, "Conditions"),
        list(patient.conditions, (c) => h("li", {}, c.description || c.code, h("span", { class: "hint" }, ` · ${c.code} (${c.qualifier})`)),
          "No diagnosis on this patient's prescriptions.")),
      h("section", { class: "card" }, h("h2", {}, "Active medications"),
        list(patient.active_medications, (m) => h("li", {}, h("a", { href: `#/rx/${m.prescription_id}` }, m.drug_description),
          h("span", { class: "hint" }, ` · supply to ${day(m.supply_ends)}`)), "No active medications."))),
    medicationsCard(patient.medications),
    fillsCard(patient.fills),
    h("section", { class: "card" }, h("h2", {}, "Prescriptions"),
      patient.prescriptions.length
        ? h("table", { class: "queue" },
          h("thead", {}, h("tr", {}, ["Medication", "Received", "State"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, patient.prescriptions.map((rx) =>
            h("tr", { onclick: () => { location.hash = `#/rx/${rx.id}`; } },
              h("td", {}, h("a", { href: `#/rx/${rx.id}` }, rx.drug_description), " ", markers(rx)),
              h("td", {}, when(rx.received_at)), h("td", {}, stateBadge(rx.state))))))
        : h("p", { class: "hint" }, "No prescriptions.")),
    timelineCard(patient.id),
    contactCard(patient.id),
    patientPaymentsCard(patient.id),
    currentUser()?.role === "pharmacist" ? patientAdherenceCard(patient.id) : null,
    currentUser()?.role === "pharmacist" ? medSyncCard(patient.id) : null,
    h("section", { class: "card" }, h("h2", {}, "Notes"),
      list(patient.notes, (n) => h("li", {}, n.text, h("div", { class: "hint" }, `${n.drug_description} · ${n.author || "—"} · ${when(n.at)}`)),
        "No notes on this patient's prescriptions.")));
}

// -- allergies ---------------------------------------------------------------------------------

function allergyCard(patient) {
  const card = h("section", { class: "card", "aria-labelledby": "allergies-h", id: "allergies" });
  const message = h("div", { class: "form-message", tabindex: "-1" });
  let staff = patient.allergies.filter((a) => a.source === "staff");
  const sent = patient.allergies.filter((a) => a.source === "prescription");
  draw();
  return card;

  function draw() {
    const items = [...staff, ...sent];
    replace(card, h("h2", { id: "allergies-h" }, "Allergies"),
      items.length ? h("ul", { class: "allergies" }, items.map(entry)) : h("p", { class: "hint" }, "No allergies recorded."),
      message,
      mayChange() ? addForm() : null);
  }

  function entry(a) {
    const coded = a.code ? ` · ${SYSTEM_LABEL[a.code_system] || a.code_system} ${a.code}` : "";
    const reaction = [a.reaction, a.severity && a.severity !== "unknown" ? a.severity : null].filter(Boolean).join(", ");
    const source = a.source === "staff" ? `recorded by ${a.added_by || "staff"}` : "from a prescription";
    return h("li", {},
      h("strong", {}, a.text), reaction ? ` (${reaction})` : "",
      h("span", { class: "hint" }, `${coded} · ${source}`),
      a.source === "staff" && mayChange()
        ? h("button", { type: "button", class: "quiet", "aria-label": `Remove the allergy ${a.text}`, onclick: () => remove(a) }, "Remove") : null);
  }

  async function remove(a) {
    if (!confirm(`Remove the allergy "${a.text}"? The patient's open prescriptions are checked again.`)) return;
    try {
      const body = await api(`/patients/${patient.id}/allergies/${a.id}`, { method: "DELETE" });
      staff = body.allergies;
      draw();
      replace(message, notice("ok", `Removed. ${rechecking(body.rechecking)}`));
      announce(`Allergy ${a.text} removed.`);
    } catch (error) {
      replace(message, notice("error", error.message));
      message.focus();
    }
  }

  function addForm() {
    const f = {
      text: h("input", { type: "text", id: "allergy-text", maxLength: 105, required: true, autocomplete: "off" }),
      system: h("select", { id: "allergy-system" }, CODE_SYSTEMS.map(([v, t]) => h("option", { value: v }, t))),
      code: h("input", { type: "text", id: "allergy-code", maxLength: 35, autocomplete: "off", spellcheck: false }),
      reaction: h("input", { type: "text", id: "allergy-reaction", maxLength: 105, autocomplete: "off" }),
      severity: h("select", { id: "allergy-severity" }, SEVERITIES.map(([v, t]) => h("option", { value: v }, t))),
    };
    const add = h("button", { type: "submit", class: "secondary" }, "Add allergy");
    const field = (id, label, input) => h("div", {}, h("label", { for: id }, label), input);
    async function submit(e) {
      e.preventDefault();
      const body = { allergy: f.text.value, code_system: f.system.value };
      if (f.code.value.trim()) body.code = f.code.value.trim();
      if (f.reaction.value.trim()) body.reaction = f.reaction.value.trim();
      if (f.severity.value) body.severity = f.severity.value;
      add.disabled = true;
      try {
        const answer = await api(`/patients/${patient.id}/allergies`, { method: "POST", body });
        staff = answer.allergies;
        draw();
        replace(message, notice("ok", `Allergy recorded. ${rechecking(answer.rechecking)}`));
        announce("Allergy recorded.");
        document.getElementById("allergy-text")?.focus();
      } catch (error) {
        replace(message, notice("error", error.message));
        (error.message.toLowerCase().includes("code") ? f.code : f.text).focus();
      } finally {
        add.disabled = false;
      }
    }
    return h("form", { class: "allergy-form", "aria-label": "Add an allergy", onsubmit: submit },
      h("div", { class: "fields" },
        field("allergy-text", "Allergen or drug", f.text),
        field("allergy-system", "Code system", f.system),
        field("allergy-code", "Code", f.code)),
      h("div", { class: "fields" },
        field("allergy-reaction", "Reaction", f.reaction),
        field("allergy-severity", "Severity", f.severity)),
      h("div", { class: "actions" }, add));
  }
}

const rechecking = (n) => (n ? `${n} open prescription${n === 1 ? " is" : "s are"} checked again.` : "");

// -- medications and fills ---------------------------------------------------------------------

function prescriberLine(p) {
  const numbers = (p.communication_numbers || []).map((c) => `${c.kind === "PrimaryTelephone" ? "Tel" : c.kind} ${c.number}${c.extension ? ` x${c.extension}` : ""}`);
  return h("div", {}, p.name || "—", p.npi ? h("span", { class: "hint" }, ` · NPI ${p.npi}`) : null,
    numbers.length ? h("div", { class: "hint" }, numbers.join(" · ")) : null);
}

function medicationsCard(medications) {
  return h("section", { class: "card", "aria-labelledby": "meds-h" }, h("h2", { id: "meds-h" }, "Medications and prescribers"),
    medications.length
      ? h("table", { class: "queue" },
        h("thead", {}, h("tr", {}, ["Medication", "Status", "Supply to", "Prescriber"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, medications.map((m) => h("tr", {},
          h("td", {}, h("a", { href: `#/rx/${m.prescription_id}` }, m.drug_description), h("div", { class: "hint" }, `written ${day(m.written_date)}`)),
          h("td", {}, MED_STATUS[m.status] || m.status),
          h("td", {}, m.supply_ends ? day(m.supply_ends) : "—"),
          h("td", {}, prescriberLine(m.prescriber))))))
      : h("p", { class: "hint" }, "No medications."));
}

function fillsCard(fills) {
  return h("section", { class: "card", "aria-labelledby": "fills-h" }, h("h2", { id: "fills-h" }, "Fills"),
    fills.length
      ? h("table", { class: "queue" },
        h("thead", {}, h("tr", {}, ["Medication", "Fill", "Quantity", "State", "Started", "Ended"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, fills.map((f) => h("tr", {},
          h("td", {}, f.drug_description), h("td", {}, String(f.number)),
          h("td", {}, f.quantity ? `${f.quantity}${f.days_supply ? ` · ${f.days_supply} days` : ""}` : "—"),
          h("td", {}, FILL_STATE[f.state] || f.state), h("td", {}, when(f.started_at)), h("td", {}, when(f.ended_at))))))
      : h("p", { class: "hint" }, "No fills."));
}

// -- the timeline ------------------------------------------------------------------------------

function describe(e) {
  const drug = e.drug_description ? ` · ${e.drug_description}` : "";
  switch (e.kind) {
    case "prescription": return [`Prescription: ${RX_STATE[e.status] || e.status}`, drug];
    case "request": return [`${REQUEST[e.what] || e.what}${e.status ? ` (${e.status})` : ""}`, drug];
    case "answer": return [`Prescriber answered: ${e.status}`, drug];
    case "note": return ["Note", drug, e.text ? `: ${e.text}` : ""];
    case "fill": return [`Fill: ${FILL_STATE[e.status] || e.status}`, drug];
    case "consult": return [`Video consult (${e.status})`, ""];
    case "notification": return [`${e.channel === "sms" ? "SMS" : "Email"}: ${KIND_LABELS[e.what] || e.what} — ${e.status}${e.text ? ` (${e.text})` : ""}`, ""];
    case "allergy_added": return [`Allergy recorded: ${e.text}`, e.status ? ` (${e.status})` : ""];
    case "allergy_removed": return [`Allergy removed: ${e.text}`, ""];
    default: return [e.kind, drug];
  }
}

function timelineCard(patientId) {
  const items = h("ol", { class: "timeline", id: "timeline" });
  const more = h("button", { type: "button", class: "secondary", id: "timeline-more", hidden: true }, "Load more");
  const state = h("div", { class: "form-message" });
  let next = null;
  more.addEventListener("click", () => load());
  load();
  return h("section", { class: "card", "aria-labelledby": "timeline-h" }, h("h2", { id: "timeline-h" }, "Timeline"), items, state, h("div", { class: "actions" }, more));

  async function load() {
    more.disabled = true;
    try {
      const page = await api(`/patients/${patientId}/timeline?limit=25${next ? `&after=${encodeURIComponent(next)}` : ""}`);
      append(items, page.items.map((e) => {
        const [what, rest, extra] = describe(e);
        return h("li", { dataset: { kind: e.kind } },
          h("time", { datetime: e.at }, when(e.at)), " ",
          e.prescription_id ? h("a", { href: `#/rx/${e.prescription_id}` }, what) : h("span", {}, what),
          rest || "", extra || "", e.actor && e.kind !== "prescription" && e.kind !== "fill" ? h("span", { class: "hint" }, ` · ${e.actor}`) : null);
      }));
      next = page.next;
      more.hidden = !next;
      replace(state, items.children.length ? null : h("p", { class: "hint" }, "Nothing has happened yet."));
    } catch (error) {
      replace(state, problemBox(error, load));
    } finally {
      more.disabled = false;
    }
  }
}

// -- the search --------------------------------------------------------------------------------

// a page of results at a time ("Load more" while the hub gives a next cursor); a new search
// drops the answers still coming for the one before, so its pages never mix with another's
const SEARCH_PAGE = 25;

export function patientSearchView(el) {
  const f = {
    name: h("input", { type: "search", id: "search-name", maxLength: 100, autocomplete: "off", placeholder: "Last, First" }),
    born: h("input", { type: "date", id: "search-born" }),
    phone: h("input", { type: "tel", id: "search-phone", maxLength: 100, autocomplete: "off" }),
  };
  const results = h("div", { id: "search-results" });
  const paging = pager("search-more", ["patient", "patients"], () => run(false));
  let query = null;
  let next = null;
  let search = 0; // bumped by each new search: an answer to an older one is dropped
  let seen = new Set();
  const field = (id, label, input) => h("div", {}, h("label", { for: id }, label), input);
  replace(el,
    h("div", { class: "page-head" }, h("h1", {}, "Patients")),
    h("form", { class: "card", role: "search", "aria-label": "Find a patient", onsubmit: (e) => { e.preventDefault(); run(true); } },
      h("div", { class: "fields" },
        field("search-name", "Name", f.name),
        field("search-born", "Date of birth", f.born),
        field("search-phone", "Mobile number", f.phone)),
      h("p", { class: "hint" }, "Any of them; every one given must match. A name's beginning is enough (\"smi, jo\")."),
      h("div", { class: "actions" }, h("button", { type: "submit", id: "search-go" }, "Search"))),
    results, paging.element);
  f.name.focus();

  async function run(fresh) {
    if (fresh) {
      search += 1;
      query = new URLSearchParams({ limit: String(SEARCH_PAGE) });
      if (f.name.value.trim()) query.set("name", f.name.value.trim());
      if (f.born.value) query.set("birth_date", f.born.value);
      if (f.phone.value.trim()) query.set("phone", f.phone.value.trim());
      next = null;
      seen = new Set();
      paging.hide();
      replace(results);
    } else if (!next) {
      return;
    }
    const asked = search;
    const params = new URLSearchParams(query);
    if (next) params.set("after", next);
    try {
      const page = await api(`/patients?${params}`);
      if (asked !== search || !el.isConnected) return;
      let table = results.querySelector("tbody");
      if (!table) {
        if (!page.items.length) {
          replace(results, emptyBox("No patient of your pharmacy matches."));
          paging.hide();
          announce("No patient found.");
          return;
        }
        table = h("tbody", {});
        replace(results, h("table", { class: "queue" },
          h("thead", {}, h("tr", {}, ["Patient", "Born", "Gender"].map((t) => h("th", { scope: "col" }, t)))), table));
      }
      const had = table.children.length;
      const added = page.items.filter((p) => !seen.has(p.id));
      for (const p of added) seen.add(p.id);
      append(table, added.map((p) => h("tr", { dataset: { id: p.id }, onclick: () => { location.hash = `#/patients/${p.id}`; } },
        h("td", {}, h("a", { href: `#/patients/${p.id}` }, personName(p.name))),
        h("td", {}, day(p.name.date_of_birth)), h("td", {}, { M: "Male", F: "Female", U: "Unknown" }[p.gender] || p.gender))));
      next = page.next;
      paging.show(table.children.length, Boolean(next));
      if (!fresh) table.children[had]?.querySelector("a")?.focus(); // the first patient it brought
    } catch (error) {
      if (asked !== search) return;
      if (!fresh) throw error; // said beside the button, the results kept
      replace(results, notice("error", error.message));
      paging.hide();
    }
  }
}
