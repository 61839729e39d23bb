// A patient's profile: allergies, active medications, other prescriptions, notes; contact
// points, preferences and consent, and adherence (pharmacists), from preferences.js.

import { loadInto } from "../lib/api.js";
import { currentUser } from "../lib/auth.js";
import { h, replace, fact, when, day, personName } from "../lib/dom.js";
import { markers, stateBadge } from "./queue.js";
import { startConsult } from "./consults.js";
import { contactCard, patientAdherenceCard } from "./preferences.js";
import { medSyncCard } from "./medsync.js";

export async function patientView(el, id) {
  const patient = await loadInto(el, `/patients/${id}`, "patient");
  if (!patient) return;
  const list = (items, render, empty) => (items.length ? h("ul", {}, items.map(render)) : h("p", { class: "hint" }, empty));
  replace(el,
    h("p", {}, h("a", { href: "#/queue", onclick: (e) => { e.preventDefault(); history.back(); } }, "← Back")),
    h("div", { class: "page-head" }, h("h1", {}, personName(patient.name)), h("span", { class: "spacer" }),
      currentUser()?.role === "pharmacist"
        ? h("button", { type: "button", onclick: () => startConsult(patient.id, null) }, "Video consult…") : null),
    h("div", { class: "grid" },
      h("section", { class: "card" }, h("h2", {}, "Details"),
        h("dl", { class: "facts" },
          fact("Born", day(patient.date_of_birth)),
          fact("Gender", { M: "Male", F: "Female", U: "Unknown" }[patient.gender] || patient.gender),
          fact("Address", [patient.demographics?.address?.line1, patient.demographics?.address?.city].filter(Boolean).join(", ")))),
      h("section", { class: "card" }, h("h2", {}, "Allergies"),
        list(patient.allergies, (a) => h("li", {}, a), "No allergies recorded.")),
      h("section", { class: "card" }, h("h2", {}, "Active medications"),
        list(patient.active_medications, (m) => h("li", {}, h("a", { href: `#/rx/${m.prescription_id}` }, m.drug_description),
          h("span", { class: "hint" }, ` · supply to ${day(m.supply_ends)}`)), "No active medications."))),
    h("section", { class: "card" }, h("h2", {}, "Prescriptions"),
      patient.prescriptions.length
        ? h("table", { class: "queue" },
          h("thead", {}, h("tr", {}, ["Medication", "Received", "State"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, patient.prescriptions.map((rx) =>
            h("tr", { onclick: () => { location.hash = `#/rx/${rx.id}`; } },
              h("td", {}, h("a", { href: `#/rx/${rx.id}` }, rx.drug_description), " ", markers(rx)),
              h("td", {}, when(rx.received_at)), h("td", {}, stateBadge(rx.state))))))
        : h("p", { class: "hint" }, "No prescriptions.")),
    contactCard(patient.id),
    currentUser()?.role === "pharmacist" ? patientAdherenceCard(patient.id) : null,
    currentUser()?.role === "pharmacist" ? medSyncCard(patient.id) : null,
    h("section", { class: "card" }, h("h2", {}, "Notes"),
      list(patient.notes, (n) => h("li", {}, n.text, h("div", { class: "hint" }, `${n.drug_description} · ${n.author || "—"} · ${when(n.at)}`)),
        "No notes on this patient's prescriptions.")));
}
